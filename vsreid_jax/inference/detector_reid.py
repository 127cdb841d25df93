"""Re-identification for the VS-ReID rounds from the re-ID detector (`configs/reid.py` checkpoints).

Candidates in a frame are the detector's boxes (in the person round, its boxes
classed as persons); a box's score for an object is the cosine similarity of
its embedding with the object's first-frame template, the embedding of the
object's box in the first frame. An object's person score is the detector's
person probability of that box; a detector without a person class (trained
with `data.classes='object'`) gives 0, so every object goes to the object
round.
"""

import numpy as np

from vsreid_jax.data.palette import VOID_LABEL
from vsreid_jax.reid import detection
from vsreid_jax.reid.frame_detector import FrameDetector


class DetectorReid:
  """The `ReidScorer` of one video.

  Each frame is detected once, when first asked for; only its boxes, classes
  and scores are kept.
  """

  def __init__(self, detector, frames, first_mask):
    """Args:
      detector: a `FrameDetector`.
      frames: the video's frames (`len`, indexing).
      first_mask: [H, W] object ids of frame 0.
    """
    labels = np.where(first_mask == VOID_LABEL, 0, first_mask)
    self._num_objects = int(labels.max())
    boxes, present = detection.boxes_from_masks(labels, self._num_objects)
    self._templates, probabilities = detector.describe(frames[0], boxes, present)
    person_class = detector.person_class
    self._person_scores = (np.zeros(self._num_objects) if person_class is None
                           else probabilities[:, person_class].astype(np.float64))
    self._detector, self._frames = detector, frames
    self._detections = {}

  def person_scores(self):
    return self._person_scores

  def candidates(self, frame, kind):
    if frame not in self._detections:
      found = self._detector.detect(self._frames[frame])
      self._detections[frame] = (found.boxes, found.labels, np.asarray(
          detection.reid_scores(found.embeddings, self._templates)))
    boxes, labels, scores = self._detections[frame]
    if kind == 'person':
      keep = labels == self._detector.person_class
      return boxes[keep], scores[keep]
    return boxes, scores


def detector_reid_factory(checkpoint_dir):
  """`(frames, first_mask) -> DetectorReid` from a re-ID checkpoint, the `reid_factory` of `VSReID`.

  Raises:
    InputError: missing or unreadable checkpoint, or one of another network.
  """
  detector = FrameDetector.from_checkpoint(checkpoint_dir)
  return lambda frames, first_mask: DetectorReid(detector, frames, first_mask)
