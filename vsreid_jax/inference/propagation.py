"""One video's segmentation state, and the official propagation pass (davis_test.py `predict`)."""

import time

import numpy as np

from vsreid_jax.flow.warp import warp_probabilities
from vsreid_jax.inference.boxes import box_overlap, object_boxes
from vsreid_jax.inference.object_store import ObjectProbabilities
from vsreid_jax.inference.patches import predict_in_boxes

# Boxes whose official overlap exceeds this touch.
TOUCH_OVERLAP = 1e-6
# The official initial source of every mask: farther than any real frame.
NO_SOURCE = -1000


class VideoState:
  """What the algorithm knows about one video while it segments it.

  Attributes:
    frames: the video's uint8 RGB [H, W, 3] frames (`len`, indexing).
    flows: a flow source with `forward(i)` (i -> i + 1) and `backward(i)` (i -> i - 1).
    predictor: the `PatchPredictor`.
    config: the inference config.
    num_objects: N, the largest object id of the first mask.
    probabilities: the `ObjectProbabilities` of every frame and object.
    sources: int [T, N], the frame from which each object's current mask was
      propagated (`NO_SOURCE` before any); a frame recovered by re-ID is its own
      source (the official `bbox_cnt`).
    first_areas: int [N], each object's pixel count in the first frame.
    first_crops: per object, float32 first-frame mask cropped to its box.
    timings: seconds spent on 'flow', 'warp', 'network' (patches included).
  """

  def __init__(self, frames, first_mask, flows, predictor, config, num_objects):
    self.frames, self.flows, self.predictor, self.config = frames, flows, predictor, config
    self.num_objects = num_objects
    height, width = first_mask.shape
    self.probabilities = ObjectProbabilities(len(frames), height, width, num_objects,
                                             np.dtype(config.storage_dtype))
    self.probabilities.set_labels(0, first_mask)
    self.sources = np.full((len(frames), num_objects), NO_SOURCE, np.int64)
    self.sources[0] = 0
    self.first_areas = np.bincount(first_mask.ravel(), minlength=num_objects + 1)[1:num_objects + 1]
    self.first_crops = [
        (first_mask[y_min:y_max, x_min:x_max] == index + 1).astype(np.float32)
        for index, (x_min, y_min, x_max, y_max) in enumerate(object_boxes(first_mask, num_objects))]
    self.timings = {'flow': 0.0, 'warp': 0.0, 'network': 0.0}

  def flows_toward(self, frame, previous):
    """(flow frame -> previous, flow previous -> frame) for neighbouring frames."""
    start = time.perf_counter()
    if previous == frame - 1:
      flows = self.flows.backward(frame), self.flows.forward(previous)
    else:
      flows = self.flows.forward(frame), self.flows.backward(previous)
    self.timings['flow'] += time.perf_counter() - start
    return flows

  def segment(self, frame, objects, boxes, guidance_crops, flow):
    """Runs the network for `objects` (indices) in `frame` and stores their masks.

    Args:
      frame: frame index.
      objects: object indices, one network call for all.
      boxes: one (x_min, y_min, x_max, y_max) box per object in `objects`.
      guidance_crops: one 2-D guidance map per object in `objects`.
      flow: [H, W, 2] flow from `frame` toward the frame that guides it.
    """
    start = time.perf_counter()
    masks = predict_in_boxes(self.predictor, self.frames[frame], flow, boxes, guidance_crops)
    self.timings['network'] += time.perf_counter() - start
    for index, box, mask in zip(objects, boxes, masks):
      self.probabilities.set(frame, index, box, mask)


def guidance_crops(merged, boxes, objects):
  """Each object's channel of merged [H, W, N + 1] probabilities, cropped to its box of `boxes`."""
  return [merged[boxes[index, 1]:boxes[index, 3], boxes[index, 0]:boxes[index, 2], index + 1]
          for index in objects]


def propagate(state, start, stop, step, objects, keep=None):
  """Propagates `objects` over frames range(start, stop, step) (the official `predict`).

  The source of the pass is frame start - step. In each frame an object is
  re-segmented from the previous frame's warped merged probabilities when:
  it is the pass's first frame, or the object's area in the previous frame is
  at least its first-frame area / `max_area_shrink`; its current mask comes
  from a source strictly farther than this pass's; and it is one of
  `objects` (whose source becomes this pass's) or its enlarged box touches the
  box of one of `objects`. The pass stops at the first frame where none of
  `objects` qualifies, or (with `keep`) at the first frame where `keep` is
  False; that frame loses the masks of `objects`.

  Args:
    state: the `VideoState`.
    start, stop, step: the frames, as `range`; step is 1 or -1.
    objects: object indices to propagate.
    keep: optional `frame -> bool` asked after each frame is segmented.

  Returns:
    the frames where objects were re-segmented, in order.
  """
  config, store = state.config, state.probabilities
  source, objects = start - step, set(objects)
  done = []
  for frame in range(start, stop, step):
    previous = frame - step
    merged = store.merged(previous)
    areas = np.bincount(np.argmax(merged, axis=-1).ravel(), minlength=state.num_objects + 1)[1:]
    backward, forward = state.flows_toward(frame, previous)
    begin = time.perf_counter()
    warped = warp_probabilities(merged, backward, forward)
    boxes = object_boxes(np.argmax(warped, axis=-1), state.num_objects, config.box_enlarge)
    state.timings['warp'] += time.perf_counter() - begin
    selected = []
    for index in range(state.num_objects):
      if frame != start and state.first_areas[index] > config.max_area_shrink * areas[index]:
        continue
      if abs(state.sources[frame, index] - frame) <= abs(source - frame):
        continue
      if index in objects:
        state.sources[frame, index] = source
        selected.append(index)
      elif any(box_overlap(boxes[index], boxes[other]) > TOUCH_OVERLAP for other in objects):
        selected.append(index)
    if not objects.intersection(selected):
      break
    state.segment(frame, selected, boxes[selected], guidance_crops(warped, boxes, selected),
                  backward)
    if keep is not None and not keep(frame):
      for index in objects:
        store.clear(frame, index)
        state.sources[frame, index] = NO_SOURCE
      break
    done.append(frame)
  return done
