"""Re-identification for the VS-ReID rounds from the re-ID detector (`configs/reid.py` checkpoints).

Candidates in a frame are the detector's boxes; a box's score for an object is
the cosine similarity of its embedding with the object's first-frame template,
the embedding of the object's box in the first frame.
"""

import numpy as np

from vsreid_jax.data.palette import VOID_LABEL
from vsreid_jax.reid import detection
from vsreid_jax.reid.frame_detector import FrameDetector


class DetectorReid:
  """The `ReidScorer` of one video.

  Each frame is detected once, when first asked for; only its boxes and scores
  are kept. The detector has no person class yet, so the person round finds no
  candidates and every object goes to the object round.
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
    self._templates = detector.embed(frames[0], boxes, present)
    self._detector, self._frames = detector, frames
    self._candidates = {}

  def person_scores(self):
    return np.zeros(self._num_objects)

  def candidates(self, frame, kind):
    if kind == 'person':
      return np.zeros((0, 4), np.float32), np.zeros((0, self._num_objects), np.float32)
    if frame not in self._candidates:
      boxes, _, embeddings = self._detector.detect(self._frames[frame])
      self._candidates[frame] = (boxes, np.asarray(detection.reid_scores(embeddings,
                                                                         self._templates)))
    return self._candidates[frame]


def detector_reid_factory(checkpoint_dir):
  """`(frames, first_mask) -> DetectorReid` from a re-ID checkpoint, the `reid_factory` of `VSReID`.

  Raises:
    InputError: missing or unreadable checkpoint, or one of another network.
  """
  detector = FrameDetector.from_checkpoint(checkpoint_dir)
  return lambda frames, first_mask: DetectorReid(detector, frames, first_mask)
