"""Whether objects are found again after being fully hidden (synthetic videos record when)."""

import numpy as np

from vsreid_jax.evaluation import metrics

FOUND_AGAIN_IOU = 0.5
"""Mean J after reappearing from which a hidden object counts as found again."""


def reappearance_scores(predicted, truth, spans):
  """Mean J of each hidden object over the frames after it reappears.

  Args:
    predicted: [T, H, W] predicted object ids.
    truth: [T, H, W] ground-truth object ids.
    spans: the video's hidden spans (`SyntheticVideo.events`); spans that last
      to the end of the video are skipped.

  Returns:
    list of (span, mean J from the span's end to the object's next
    disappearance or the end of the video).
  """
  predicted, truth = np.asarray(predicted), np.asarray(truth)
  if predicted.shape != truth.shape:
    raise ValueError(f'predicted masks {predicted.shape} and ground truth {truth.shape} differ')
  scores = []
  for span in spans:
    if span.end_frame >= len(truth):
      continue
    visible = np.any(truth[span.end_frame:] == span.object_id, axis=(1, 2))
    # The frames until the object hides again, if it does.
    end = span.end_frame + (int(np.argmin(visible)) if not visible.all() else len(visible))
    region = metrics.region_similarity(truth[span.end_frame:end] == span.object_id,
                                       predicted[span.end_frame:end] == span.object_id)
    scores.append((span, float(np.mean(region))))
  return scores


def count_found_again(scores, threshold=FOUND_AGAIN_IOU):
  """(found again, hidden objects) of `reappearance_scores` output."""
  return sum(score >= threshold for _, score in scores), len(scores)
