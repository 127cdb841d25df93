"""What re-identification gives the algorithm, and choosing the next object to recover."""

import dataclasses
from typing import Protocol

import numpy as np

from vsreid_jax.inference.boxes import box_overlap, object_boxes

ROUNDS = ('person', 'object')


class ReidScorer(Protocol):
  """Re-ID of one video: candidate boxes per frame, scored against each object's first look."""

  def person_scores(self):
    """float [N]: probability that each object is a person (its person round needs > threshold)."""

  def similarity(self, frame, boxes, valid):
    """float [N]: similarity in [-1, 1] of each object's box in a frame with its first look.

    Args:
      frame: frame index.
      boxes: float [N, 4] (x_min, y_min, x_max, y_max), one box per object.
      valid: bool [N], the boxes to score (the others score 0).
    """

  def look_alike_boxes(self, frame):
    """float [K, 4]: boxes (x_min, y_min, x_max, y_max) in `frame` of things that look like
    some object but are none (K may be 0). A mask on one is looked past when the rounds look
    for its object, and replaced if the object is found elsewhere."""

  def resembles_non_object(self, frame, labels):
    """bool [N]: objects whose mask in `frame` (`labels`, [H, W] object ids) looks more like
    something of the first frame that is no object than like the object itself (all False for
    a scorer that cannot tell). Such a mask on a look-alike's box does not look like its
    object."""

  def candidates(self, frame, kind, labels):
    """Candidate boxes of a frame and their scores for every object.

    Args:
      frame: frame index.
      kind: 'person' (person detections) or 'object' (all detections).
      labels: `frame -> [H, W]` label map of the segmentation as it stands, without the
        masks that do not look like their object (`reid_keep_threshold`), for scorers
        that use it (the official scores, read from files, do not).

    Returns:
      (boxes, scores): float [M, 4] (x_min, y_min, x_max, y_max) in pixels and
      float [M, N], the score of box m being object n. M may be 0.
    """


@dataclasses.dataclass(frozen=True)
class Candidate:
  """A re-ID box accepted for recovery."""
  frame: int
  index: int
  box: tuple[float, float, float, float]
  score: float


def best_candidate(candidates, labels, appears, sources, targets, config, doubtful=None,
                   on_look_alike=None):
  """The single best (frame, object) re-ID box over the video, or None (the official selection).

  For every frame but the first and last, and every target object missing
  there (its box area is at most 1, or its mask there is `doubtful`) whose
  mask there was not already recovered, the frame's top-scoring box for that
  object is a candidate when its score exceeds `reid_threshold`; no object
  with a pixel inside the box (max corner included; a doubtful object's own
  pixels aside) has its `occlusion_quantile` box overlap it by more than
  `occlusion_threshold`; and no other missing target object scores that box
  higher. The highest score wins; ties go to the earliest frame, then the
  lowest object index. A mask on a look-alike (`on_look_alike`) counts as
  missing too, but only for a box that holds none of its pixels: the object is
  looked for elsewhere. Without either, the official selection.

  Args:
    candidates: `frame -> (boxes, scores)`, `ReidScorer.candidates` of the round.
    labels: `frame -> [H, W]` label map.
    appears: bool [T, N], whether each object appears in each frame.
    sources: int [T, N], source frame of each mask (a frame is its own source
      once recovered there).
    targets: object indices of the round, increasing.
    config: the inference config.
    doubtful: optional bool [T, N], masks that do not look like their object.
    on_look_alike: optional bool [T, N], masks that lie on a look-alike.

  Returns:
    a `Candidate`, or None when nothing qualifies.
  """
  best, best_score = None, 0.0
  num_frames, num_objects = appears.shape
  doubtful = np.zeros_like(appears) if doubtful is None else doubtful
  on_look_alike = np.zeros_like(appears) if on_look_alike is None else on_look_alike
  appears = appears & ~doubtful & ~on_look_alike
  for frame in range(1, num_frames - 1):
    missing = [j for j in targets if not appears[frame, j] and sources[frame, j] != frame]
    if not missing:
      continue
    boxes, scores = candidates(frame)
    if len(boxes) == 0:
      continue
    robust_boxes = None
    for index in missing:
      top = int(np.argmax(scores[:, index]))
      score = float(scores[top, index])
      if not (score > best_score and score > config.reid_threshold):
        continue
      if robust_boxes is None:
        frame_labels = labels(frame)
        robust_boxes = object_boxes(frame_labels, num_objects, quantile=config.occlusion_quantile)
      box = np.asarray(boxes[top], np.float64)
      if on_look_alike[frame, index] and _holds(box, frame_labels, index + 1):
        continue
      ignored = index + 1 if doubtful[frame, index] else None
      if _occludes(box, frame_labels, robust_boxes, config.occlusion_threshold, ignored):
        continue
      if any(other != index and not appears[frame, other] and scores[top, other] > score
             for other in targets):
        continue
      best = Candidate(frame, index, tuple(float(v) for v in box), score)
      best_score = score
  return best


def _inside(box, labels):
  """The truncated box and the ids of `labels` inside it (the official code truncates the box
  and reads its max corner as inside)."""
  x_min, y_min, x_max, y_max = box.astype(np.int64)
  inside = np.unique(labels[max(y_min, 0):y_max + 1, max(x_min, 0):x_max + 1])
  return (x_min, y_min, x_max, y_max), inside


def _holds(box, labels, object_id):
  """Whether `box` holds a pixel of `object_id` in `labels`."""
  return object_id in _inside(box, labels)[1]


def _occludes(box, labels, robust_boxes, threshold, ignored=None):
  """Whether `box` overlaps the robust box of an object (id `ignored` aside) with a pixel inside
  it by more than `threshold`."""
  truncated, inside = _inside(box, labels)
  return any(box_overlap(truncated, robust_boxes[i - 1]) > threshold
             for i in inside if i not in (0, ignored))
