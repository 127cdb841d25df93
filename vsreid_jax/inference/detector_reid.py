"""Re-identification for the VS-ReID rounds from the re-ID detector (`configs/reid.py` checkpoints).

Candidates in a frame are the detector's boxes; a box's score for an object is
the cosine similarity of its embedding with the object's first-frame template,
the embedding of the object's box in the first frame.
"""

import numpy as np

from vsreid_jax import checkpoints
from vsreid_jax.data.palette import VOID_LABEL
from vsreid_jax.errors import InputError
from vsreid_jax.reid import detection
from vsreid_jax.reid.model import build_detection_settings, build_detector


class DetectorReid:
  """The `ReidScorer` of one video.

  Each frame is detected once, when first asked for; only its boxes and scores
  are kept. The detector has no person class yet, so the person round finds no
  candidates and every object goes to the object round.
  """

  def __init__(self, model, variables, settings, frames, first_mask):
    labels = np.where(first_mask == VOID_LABEL, 0, first_mask)
    self._num_objects = int(labels.max())
    boxes, present = detection.boxes_from_masks(labels[None], self._num_objects)
    self._templates = detection.embed(model, variables, np.asarray(frames[0])[None], boxes, present)[0]
    self._model, self._variables, self._settings, self._frames = model, variables, settings, frames
    self._candidates = {}

  def person_scores(self):
    return np.zeros(self._num_objects)

  def candidates(self, frame, kind):
    if kind == 'person':
      return np.zeros((0, 4), np.float32), np.zeros((0, self._num_objects), np.float32)
    if frame not in self._candidates:
      found = detection.detect(self._model, self._variables, np.asarray(self._frames[frame])[None],
                               self._settings)
      valid = np.asarray(found['valid'][0])
      scores = detection.reid_scores(found['embeddings'][0][valid], self._templates)
      self._candidates[frame] = (np.asarray(found['boxes'][0])[valid], np.asarray(scores))
    return self._candidates[frame]


def detector_reid_factory(checkpoint_dir):
  """`(frames, first_mask) -> DetectorReid` from a re-ID checkpoint, the `reid_factory` of `VSReID`.

  Raises:
    InputError: missing or unreadable checkpoint, or one of another network.
  """
  variables, config = checkpoints.restore_model_checkpoint(checkpoint_dir)
  if config.get('task') != 'reid':
    raise InputError(f'{checkpoint_dir}: not a re-ID checkpoint (its config has task '
                     f'{config.get("task")!r}; expected "reid")')
  model, settings = build_detector(config.model), build_detection_settings(config.detection)
  return lambda frames, first_mask: DetectorReid(model, variables, settings, frames, first_mask)
