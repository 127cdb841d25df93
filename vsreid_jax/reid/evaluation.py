"""Quality of the re-ID detector on videos with ground-truth boxes of known identities.

For each query (an instance's ground-truth box in a later frame) it measures:
- detection recall: some detection overlaps the box with IoU >= 0.5;
- retrieval top-1: of the first-frame templates (every instance visible in the
  first frame), the query's embedding is closest to its own;
- re-ID hit: the detection that scores highest against the instance's template,
  as the VS-ReID rounds pick it, overlaps the box with IoU >= 0.5;
- scores: the cosine similarity of the query's box with its own template and
  with the most similar other template (what a re-ID threshold must separate).
"""

import dataclasses

import numpy as np

from vsreid_jax.models import boxes as box_ops
from vsreid_jax.reid import detection

MATCH_IOU = 0.5


@dataclasses.dataclass
class ReidCounts:
  """Sums over queries; `add` accumulates videos."""
  queries: int = 0
  detected: int = 0
  retrieved: int = 0
  reid_hits: int = 0
  chance: float = 0.0
  own_score: float = 0.0
  other_score: float = 0.0

  def add(self, other):
    for field in dataclasses.fields(self):
      setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

  def rates(self):
    """(detection recall, retrieval top-1, re-ID hit rate, chance top-1), each over queries."""
    n = max(self.queries, 1)
    return self.detected / n, self.retrieved / n, self.reid_hits / n, self.chance / n

  def mean_scores(self):
    """(mean score with the own template, mean best score with another template)."""
    n = max(self.queries, 1)
    return self.own_score / n, self.other_score / n


def score_video(detector, frames, boxes, visible, queries=None):
  """`ReidCounts` of one video.

  Args:
    detector: a `FrameDetector`.
    frames: the frames (`len`, indexing), frame 0 holding the templates.
    boxes: [T, K, 4] ground-truth boxes (x0, y0, x1, y1) of K instances.
    visible: [T, K] bool, where an instance is visible (and large enough to count).
    queries: optional [K] bool, the instances to query (default all); the
      others still compete as templates.
  """
  boxes, visible = np.asarray(boxes, np.float32), np.asarray(visible, bool)
  queries = np.ones(boxes.shape[1], bool) if queries is None else np.asarray(queries, bool)
  templates = detector.embed(frames[0], boxes[0], visible[0])
  counts = ReidCounts()
  for t in range(1, len(frames)):
    asked = visible[t] & visible[0] & queries
    if not asked.any():
      continue
    detections = detector.detect(frames[t])
    truth = boxes[t][asked]
    retrieval = np.where(visible[0], np.asarray(detection.reid_scores(
        detector.embed(frames[t], truth), templates)), -np.inf)
    counts.queries += len(truth)
    own = np.flatnonzero(asked)
    counts.retrieved += int(np.sum(np.argmax(retrieval, axis=1) == own))
    counts.own_score += float(np.sum(retrieval[np.arange(len(own)), own]))
    others = retrieval.copy()
    others[np.arange(len(own)), own] = -np.inf
    counts.other_score += float(np.sum(np.where(np.isfinite(others.max(axis=1)),
                                                others.max(axis=1), 0.0)))
    counts.chance += len(truth) / visible[0].sum()
    if len(detections.boxes):
      overlap = np.asarray(box_ops.pairwise_iou(detections.boxes, truth))  # [D, queries]
      counts.detected += int(np.sum(overlap.max(axis=0) >= MATCH_IOU))
      candidate_scores = np.asarray(detection.reid_scores(detections.embeddings, templates))
      best = np.argmax(candidate_scores[:, np.flatnonzero(asked)], axis=0)
      counts.reid_hits += int(np.sum(overlap[best, np.arange(len(truth))] >= MATCH_IOU))
  return counts
