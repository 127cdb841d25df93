"""Re-identification from instance ground truth: what a perfect detector and embedder would give.

For measuring how much of the quality re-ID costs, on videos whose every instance is
annotated (synthetic videos: objects 1..N, look-alikes and other instances above N).
`TruthReid` replaces the whole re-ID; `truth_reid_factory` can also replace one half of a
real scorer, the likeness of masks (`similarity`) or the candidate boxes (`candidates`).
"""

import numpy as np

from vsreid_jax.errors import InputError
from vsreid_jax.inference.boxes import object_boxes

# Scores of a box for its own object, and for any other.
OWN_SCORE, OTHER_SCORE = 0.9, 0.05
PARTS = ('likeness', 'candidates', 'both')


class TruthReid:
  """The `ReidScorer` of a video with instance maps: a box per visible instance, scoring
  `OWN_SCORE` for its own object and `OTHER_SCORE` for the others; no object is a person."""

  def __init__(self, instances, num_objects):
    """Args:
      instances: int [T, H, W] instance ids per frame (0 background, 1..N the objects).
      num_objects: N.
    """
    self.instances, self.num_objects = np.asarray(instances), num_objects

  def person_scores(self):
    return np.zeros(self.num_objects)

  def similarity(self, frame, boxes, valid):
    """`OWN_SCORE` for a box mostly on the object's own instance, `OTHER_SCORE` otherwise."""
    scores = np.zeros(len(boxes))
    for index, (x_min, y_min, x_max, y_max) in enumerate(np.asarray(boxes, int)):
      if not valid[index]:
        continue
      inside = self.instances[frame, max(y_min, 0):y_max, max(x_min, 0):x_max]
      inside = inside[inside > 0]
      own = inside.size and np.bincount(inside).argmax() == index + 1
      scores[index] = OWN_SCORE if own else OTHER_SCORE
    return scores

  def look_alike_boxes(self, frame):
    """No boxes: the likeness from ground truth needs no help."""
    del frame
    return np.zeros((0, 4))

  def resembles_non_object(self, frame, labels):
    """All False, for the same reason."""
    del frame, labels
    return np.zeros(self.num_objects, bool)

  def candidates(self, frame, kind, labels):
    del kind, labels
    count = int(self.instances.max())
    boxes = object_boxes(self.instances[frame], count).astype(np.float64)
    visible = np.flatnonzero(np.bincount(self.instances[frame].ravel(), minlength=count + 1)[1:])
    scores = np.full((len(visible), self.num_objects), OTHER_SCORE)
    for row, instance in enumerate(visible):
      if instance < self.num_objects:
        scores[row, instance] = OWN_SCORE
    return boxes[visible], scores


class _Mixed:
  """Mask likeness (and look-alikes) from one scorer, person scores and candidates from
  another."""

  def __init__(self, likeness, candidates):
    self._likeness, self._candidates = likeness, candidates

  def person_scores(self):
    return self._candidates.person_scores()

  def similarity(self, frame, boxes, valid):
    return self._likeness.similarity(frame, boxes, valid)

  def look_alike_boxes(self, frame):
    return self._likeness.look_alike_boxes(frame)

  def resembles_non_object(self, frame, labels):
    return self._likeness.resembles_non_object(frame, labels)

  def candidates(self, frame, kind, labels):
    return self._candidates.candidates(frame, kind, labels)


def truth_reid_factory(videos, part='both', scorer_factory=None):
  """`(frames, first_mask) -> ReidScorer` for `VSReID`, with ground truth in `part` of the re-ID.

  Args:
    videos: {sequence name: `SyntheticVideo`}; a video is found by the name of its frames'
      folder (`frames` must be a `FrameSequence`).
    part: 'both' (all re-ID from ground truth), 'likeness' (masks' likeness from ground
      truth, candidates from `scorer_factory`) or 'candidates' (the other way round).
    scorer_factory: the real re-ID's `(frames, first_mask) -> ReidScorer`; not needed for
      'both'.

  Raises:
    ValueError: an unknown `part`, or no `scorer_factory` for half of the re-ID.
  """
  if part not in PARTS:
    raise ValueError(f'part must be one of {PARTS}, got {part!r}')
  if part != 'both' and scorer_factory is None:
    raise ValueError(f'ground truth for the {part} alone needs the real scorer_factory')

  def factory(frames, first_mask):
    name = frames.paths[0].parent.name
    if name not in videos:
      raise InputError(f'{frames.paths[0].parent}: no instance ground truth for sequence {name!r}')
    video = videos[name]
    truth = TruthReid(video.instances, int(video.labels[0].max()))
    if part == 'both':
      return truth
    real = scorer_factory(frames, first_mask)
    return _Mixed(truth, real) if part == 'likeness' else _Mixed(real, truth)

  return factory
