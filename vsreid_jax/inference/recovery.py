"""Recovering a lost object inside a re-ID box (davis_test.py `predict_single`)."""

import numpy as np

from vsreid_jax.inference.boxes import clip_box, object_boxes
from vsreid_jax.inference.propagation import guidance_crops


def _objects_inside(labels, box, inclusive_max):
  """Indices of the objects with a pixel in `box` (max corner inside too when `inclusive_max`)."""
  x_min, y_min, x_max, y_max = (int(v) for v in box)
  extra = 1 if inclusive_max else 0
  ids = np.unique(labels[y_min:y_max + extra, x_min:x_max + extra])
  return {int(i) - 1 for i in ids if i != 0}


def recover(state, frame, index, box):
  """Re-segments object `index` in `frame` from a re-ID box.

  As the official code: the objects around the object's enlarged box join
  it; the pixels the object held (foreground > 0.5) are cleared for every
  object; the network runs `recovery_iterations` times in the clipped re-ID box
  (not enlarged), first guided by the object's first-frame mask resized into
  the box, then by its own latest output; every other object is cleared where
  the new mask exceeds 0.5; then `refinement_iterations` joint passes re-segment
  the object and its neighbours in their enlarged boxes, guided by the frame's
  own merged probabilities. The flow is the frame's backward flow throughout.

  Args:
    state: the `VideoState`.
    frame: frame index, 1 or more.
    index: the object's index.
    box: the re-ID box (x_min, y_min, x_max, y_max), floats as the detector gave.
  """
  config, store = state.config, state.probabilities
  num_objects = state.num_objects
  labels = store.labels(frame)
  around = object_boxes(labels, num_objects, config.box_enlarge)[index]
  objects = {index} | _objects_inside(labels, around, inclusive_max=True)
  store.clear_where(frame, store.foreground(frame, index) > 0.5)

  box = clip_box(box, store.height, store.width)
  x_min, y_min, x_max, y_max = box
  flow = state.flows.backward(frame)
  guidance = state.first_crops[index]
  for _ in range(config.recovery_iterations):
    state.segment(frame, [index], [box], [guidance], flow)
    guidance = store.foreground(frame, index)[y_min:y_max, x_min:x_max]
  store.clear_where(frame, store.foreground(frame, index) > 0.5, keep=index)

  labels = store.labels(frame)
  around = object_boxes(labels, num_objects, config.box_enlarge)[index]
  objects = sorted(objects | _objects_inside(labels, around, inclusive_max=False))
  for _ in range(config.refinement_iterations):
    merged = store.merged(frame)
    boxes = object_boxes(np.argmax(merged, axis=-1), num_objects, config.box_enlarge)
    state.segment(frame, objects, boxes[objects], guidance_crops(merged, boxes, objects), flow)
