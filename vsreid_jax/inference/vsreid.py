"""VS-ReID multi-round inference: propagate, re-identify, recover, re-propagate (davis_test.py)."""

import dataclasses
import functools
import time

import numpy as np

from vsreid_jax.data import palette
from vsreid_jax.errors import InputError
from vsreid_jax.flow.provider import DisFlow
from vsreid_jax.inference import reid
from vsreid_jax.inference.predictor import BucketedPredictor
from vsreid_jax.inference.propagation import NO_SOURCE, VideoState, propagate
from vsreid_jax.inference.recovery import recover
from vsreid_jax.models.boxes import pairwise_iou

# A mask whose box overlaps a look-alike's this much (IoU) may lie on the look-alike.
LOOK_ALIKE_IOU = 0.3


@dataclasses.dataclass(frozen=True)
class Recovery:
  """One object recovered by re-ID, and the frames re-propagated from it.

  Attributes:
    round: 'person' or 'object'.
    frame: the frame it was recovered in.
    object_id: its id (index + 1).
    score: the re-ID score of the accepted box.
    box: the re-ID box (x_min, y_min, x_max, y_max).
    backward_frames: frames re-segmented going back from `frame`.
    forward_frames: frames re-segmented going on from `frame`.
  """
  round: str
  frame: int
  object_id: int
  score: float
  box: tuple[float, float, float, float]
  backward_frames: int
  forward_frames: int

  def describe(self):
    box = ', '.join(f'{v:.0f}' for v in self.box)
    return (f'{self.round} round: object {self.object_id} recovered in frame {self.frame} '
            f'(score {self.score:.3f}, box {box}); re-propagated {self.backward_frames} frames '
            f'back, {self.forward_frames} on')


@dataclasses.dataclass(frozen=True, eq=False)
class Segmentation:
  """A segmented video: label maps computed on demand from compact probabilities.

  Attributes:
    probabilities: the `ObjectProbabilities` of every frame and object.
    recoveries: the re-ID recoveries in the order they happened.
    timings: seconds per stage ('flow', 'warp', 'network', 'reid', 'total').
  """
  probabilities: object
  recoveries: tuple[Recovery, ...]
  timings: dict

  def __len__(self):
    return self.probabilities.num_frames

  def label_map(self, frame):
    """uint8 [H, W] object ids of `frame`."""
    return self.probabilities.labels(frame)

  def label_maps(self):
    """Yields every frame's label map in order; one frame in memory at a time."""
    return (self.label_map(frame) for frame in range(len(self)))


def check_config(config):
  """Raises ValueError naming the first inference config field with a bad value."""
  if config.patch_size < 0:
    raise ValueError(f'config.patch_size must be 0 or positive, got {config.patch_size}')
  if config.max_area_shrink <= 0:
    raise ValueError(f'config.max_area_shrink must be positive, got {config.max_area_shrink}')
  for field in ('box_enlarge', 'reid_threshold', 'occlusion_threshold', 'person_threshold'):
    if not 0.0 <= config[field] <= 1.0:
      raise ValueError(f'config.{field} must lie in [0, 1], got {config[field]}')
  if not 0.5 <= config.occlusion_quantile <= 1.0:
    raise ValueError(
        f'config.occlusion_quantile must lie in [0.5, 1], got {config.occlusion_quantile}')
  if not -1.0 <= config.reid_keep_threshold <= 1.0:
    raise ValueError(
        f'config.reid_keep_threshold must lie in [-1, 1], got {config.reid_keep_threshold}')
  for field in ('recovery_iterations', 'refinement_iterations'):
    if config[field] < 0:
      raise ValueError(f'config.{field} must be 0 or more, got {config[field]}')
  if config.storage_dtype not in ('float16', 'float32'):
    raise ValueError(
        f'config.storage_dtype must be "float16" or "float32", got {config.storage_dtype!r}')


def _objects_of(first_mask, frames):
  """The first mask as uint8 ids (void as background) and N, its largest id."""
  first_mask = np.asarray(first_mask)
  size = np.shape(frames[0])[:2]
  if first_mask.shape != size:
    raise InputError(f'first mask shape {first_mask.shape} differs from the frame size {size}')
  first_mask = np.where(first_mask == palette.VOID_LABEL, 0, first_mask).astype(np.uint8)
  if not first_mask.any():
    raise InputError('the first-frame mask contains no object')
  # As the official code, ids 1..max are objects even if some are absent.
  return first_mask, int(first_mask.max())


def segment_video(frames, first_mask, predictor, flows, config, scorer=None, log=None,
                  after_propagation=None):
  """Segments every frame of a video from its first-frame mask (the official algorithm).

  1. Every object is propagated forward from the first frame (`propagate`).
  2. Unless `config.reid` is False or there is no `scorer`: a person round
     (objects whose person score exceeds `config.person_threshold`), then an
     object round (all objects). Each picks the single best re-ID box over the
     video (`reid.best_candidate`), recovers the object there (`recover`),
     re-propagates it back and on until the nearest frame where it appears, and
     repeats until no box qualifies. Not in the official code
     (`config.reid_keep_threshold`): masks that do not look like their object
     count as missing for the selection and are replaced by re-propagation,
     which also stops where its own mask does not look like the object; those
     still left after the rounds are dropped. Masks whose box overlaps a
     look-alike's (`ReidScorer.look_alike_boxes`) count as missing for the
     selection and are replaced by re-propagation too, but are otherwise kept;
     unless they also resemble a first-frame non-object more than their object
     (`ReidScorer.resembles_non_object`): those do not look like it.

  Args:
    frames: the video's uint8 RGB [H, W, 3] frames (`len`, indexing), such as a
      `FrameSequence` (read lazily) or an array [T, H, W, 3].
    first_mask: [H, W] object ids of frame 0; 255 (void) counts as background.
    predictor: a `PatchPredictor`.
    flows: flow source of the video (`forward(i)`, `backward(i)`).
    config: the inference config (`configs/inference.py`).
    scorer: a `reid.ReidScorer` for this video, or None.
    log: optional callable receiving one line per recovery.
    after_propagation: optional callable given the `Segmentation` of step 1
      alone (propagation without re-ID); the re-ID rounds change it afterwards,
      so it must use the masks before returning.

  Returns:
    a `Segmentation`.

  Raises:
    InputError: the first mask does not fit the frames or holds no object.
    ValueError: a bad config value.
  """
  check_config(config)
  start = time.perf_counter()
  first_mask, num_objects = _objects_of(first_mask, frames)
  state = VideoState(frames, first_mask, flows, predictor, config, num_objects)
  propagate(state, 1, len(frames), 1, range(num_objects))
  if after_propagation is not None:
    after_propagation(Segmentation(state.probabilities, (), dict(state.timings)))
  recoveries = []
  state.timings['reid'] = 0.0
  if config.reid and scorer is not None:
    recoveries = _reid_rounds(state, scorer, log or (lambda line: None))
  state.timings['total'] = time.perf_counter() - start
  return Segmentation(state.probabilities, tuple(recoveries), state.timings)


def _reid_rounds(state, scorer, log):
  """Runs the person and object rounds; returns the `Recovery` list."""
  config, store = state.config, state.probabilities
  num_frames = store.num_frames
  is_person = np.asarray(scorer.person_scores(), np.float64) > config.person_threshold
  likeness = _Likeness(state, scorer)
  recoveries = []
  for kind in reid.ROUNDS:
    targets = [j for j in range(state.num_objects) if kind == 'object' or is_person[j]]

    @functools.cache
    def candidates(frame, kind=kind):
      begin = time.perf_counter()
      boxes, scores = scorer.candidates(frame, kind, likeness.trusted_labels)
      state.timings['reid'] += time.perf_counter() - begin
      return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64)

    while targets:
      appears = store.appears()
      doubtful, on_look_alike = likeness.marks(appears)
      found = reid.best_candidate(candidates, store.labels, appears, state.sources, targets,
                                  config, doubtful, on_look_alike)
      if found is None:
        break
      frame, index = found.frame, found.index
      # Re-propagation replaces doubtful masks and those on look-alikes, up to the nearest
      # trusted one; the latter are otherwise kept (a look-alike's track may have passed onto
      # the object).
      replaceable = doubtful | on_look_alike
      trusted = appears[:, index] & ~replaceable[:, index]
      before = next((f for f in range(frame - 1, -1, -1) if trusted[f]), 0)
      after = next((f for f in range(frame + 1, num_frames) if trusted[f]), num_frames)
      sources = state.sources[before + 1:after, index]
      # A recovered mask keeps its source (itself), so no frame is recovered twice.
      recovered = sources == np.arange(before + 1, after)
      sources[replaceable[before + 1:after, index] & ~recovered] = NO_SOURCE
      state.sources[frame, index] = frame
      recover(state, frame, index, found.box)
      keep = lambda f, index=index: likeness.looks_like(f)[index]
      backward = propagate(state, frame - 1, before, -1, [index], keep)
      forward = propagate(state, frame + 1, after, 1, [index], keep)
      recoveries.append(Recovery(kind, frame, index + 1, found.score, found.box,
                                 len(backward), len(forward)))
      log(recoveries[-1].describe())
  # What still does not look like its object is taken for something else hiding it.
  doubtful, _ = likeness.marks(store.appears())
  for frame, index in zip(*np.nonzero(doubtful)):
    store.clear(frame, index)
  return recoveries


class _Likeness:
  """Whether each object's mask in each frame looks like the object, and whether it lies on a
  look-alike the scorer follows there.

  A mask does not look like its object when the re-ID similarity of its box with the object's
  first look is below `reid_keep_threshold`, or when its box overlaps a look-alike's (IoU >=
  `LOOK_ALIKE_IOU`) and the scorer finds the mask more like a first-frame non-object than like
  the object (`ReidScorer.resembles_non_object`). Kept per frame until the frame's masks
  change. With `reid_keep_threshold` at -1 nothing is computed: every mask looks like its
  object (the official algorithm).
  """

  def __init__(self, state, scorer):
    self._state, self._scorer = state, scorer
    self._cache = {}

  def _judge(self, frame):
    """(looks like its object, bool [N], True where there is no mask; on a look-alike, bool [N])."""
    state = self._state
    version = state.probabilities.version(frame)
    if self._cache.get(frame, (None,))[0] != version:
      boxes = state.probabilities.boxes(frame).astype(np.float32)
      present = state.probabilities.appears_in(frame)
      looks_like = np.ones(state.num_objects, bool)
      on_look_alike = np.zeros(state.num_objects, bool)
      if present.any():
        begin = time.perf_counter()
        similarity = self._scorer.similarity(frame, boxes, present)
        looks_like = ~present | (similarity >= state.config.reid_keep_threshold)
        look_alikes = np.asarray(self._scorer.look_alike_boxes(frame), np.float32)
        if len(look_alikes):
          overlaps = np.asarray(pairwise_iou(boxes, look_alikes.reshape(-1, 4)))
          on_look_alike = present & (overlaps >= LOOK_ALIKE_IOU).any(axis=1)
        if on_look_alike.any():
          looks_like &= ~(on_look_alike & np.asarray(self._scorer.resembles_non_object(
              frame, state.probabilities.labels(frame)), bool))
        state.timings['reid'] += time.perf_counter() - begin
      self._cache[frame] = (version, looks_like, on_look_alike)
    return self._cache[frame][1:]

  def looks_like(self, frame):
    """bool [N]: whether each object's mask in `frame` looks like it (True where it has none)."""
    if self._state.config.reid_keep_threshold <= -1:
      return np.ones(self._state.num_objects, bool)
    return self._judge(frame)[0]

  def trusted_labels(self, frame):
    """uint8 [H, W]: the label map of `frame` without the masks that do not look like their
    object."""
    labels = self._state.probabilities.labels(frame)
    unlike = np.flatnonzero(~self.looks_like(frame)) + 1
    return np.where(np.isin(labels, unlike), 0, labels).astype(labels.dtype)

  def marks(self, appears):
    """(doubtful, on_look_alike), bool [T, N] each, for the masks after the first frame
    (`appears` [T, N] says which objects have one): those that do not look like their object,
    and the others whose box overlaps a look-alike's."""
    doubtful, on_look_alike = np.zeros_like(appears), np.zeros_like(appears)
    if self._state.config.reid_keep_threshold > -1:
      for frame in range(1, len(appears)):
        if appears[frame].any():
          looks_like, on_look_alike[frame] = self._judge(frame)
          doubtful[frame] = ~looks_like
    return doubtful, on_look_alike & ~doubtful


class VSReID:
  """The segmenter for scripts and notebooks: networks built once, then `segment` per video."""

  def __init__(self, predictor, config, reid_factory=None):
    """Args:
      predictor: a `PatchPredictor` (for example `BucketedPredictor.from_checkpoint`).
      config: the inference config.
      reid_factory: `(frames, first_mask) -> ReidScorer` for one video, or None
        to propagate only.
    """
    check_config(config)
    self.predictor, self.config, self.reid_factory = predictor, config, reid_factory

  @classmethod
  def from_checkpoint(cls, propagation_dir, config, reid_factory=None):
    """Builds the bucketed, flip-averaging MP2S predictor from an orbax checkpoint directory."""
    check_config(config)
    predictor = BucketedPredictor.from_checkpoint(
        propagation_dir, patch_size=config.patch_size or None, flip=config.flip,
        buckets=config.buckets)
    return cls(predictor, config, reid_factory)

  def segment(self, frames, first_mask, flows=None, log=None, after_propagation=None):
    """Segments a video; see `segment_video`. Flows default to DIS with `config.flow_preset`."""
    flows = DisFlow(frames, preset=self.config.flow_preset) if flows is None else flows
    scorer = None
    if self.config.reid and self.reid_factory is not None:
      scorer = self.reid_factory(frames, first_mask)
    return segment_video(frames, first_mask, self.predictor, flows, self.config, scorer, log,
                         after_propagation)
