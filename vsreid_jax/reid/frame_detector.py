"""The re-ID detector on frames of any size, as it was trained: each frame is fitted into the
training image size, and boxes are given and returned in the frame's own pixels."""

from typing import NamedTuple

import cv2
import numpy as np

from vsreid_jax import checkpoints
from vsreid_jax.errors import InputError
from vsreid_jax.reid import detection
from vsreid_jax.reid.model import PERSON_CLASS, build_detection_settings, build_detector


def fit_frame(frame, height, width, zoom=1.0):
  """`frame` resized to fit in height x width, aspect ratio kept, times `zoom` (<= 1),
  zero-padded to height x width; and the scale."""
  scale = zoom * min(height / frame.shape[0], width / frame.shape[1])
  size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
  canvas = np.zeros((height, width, 3), np.float32)
  canvas[:size[1], :size[0]] = cv2.resize(np.asarray(frame), size, interpolation=cv2.INTER_LINEAR)
  return canvas, scale


class Detections(NamedTuple):
  """Valid detections of one frame, best first: boxes [D, 4] in frame pixels, detection scores
  [D], classes [D] (1..C) and unit embeddings [D, E]."""
  boxes: np.ndarray
  scores: np.ndarray
  labels: np.ndarray
  embeddings: np.ndarray


class FrameDetector:
  """`detect`, `embed` and `describe` of one frame at a time; frames of every size share one
  compiled program."""

  def __init__(self, model, variables, settings, input_size, person_class=None):
    """Args:
      model: a `FasterRCNN`.
      variables: its variables.
      settings: `DetectionSettings`.
      input_size: (height, width) frames are fitted into (the training image size).
      person_class: the detector's person class, or None if it has none.
    """
    self.model, self.variables, self.settings = model, variables, settings
    self.input_size = tuple(input_size)
    self.person_class = person_class

  @classmethod
  def from_checkpoint(cls, checkpoint_dir):
    """The detector of a re-ID checkpoint (`configs/reid.py`), at its training image size.

    Raises:
      InputError: missing or unreadable checkpoint, or one of another network.
    """
    variables, config = checkpoints.restore_model_checkpoint(checkpoint_dir, 'reid', 're-ID')
    # Checkpoints from before class vocabularies are class-agnostic.
    person = config.data.get('classes', 'object') == 'person'
    return cls(build_detector(config.model), variables, build_detection_settings(config.detection),
               (config.data.image_height, config.data.image_width),
               PERSON_CLASS if person else None)

  def _fit(self, frame):
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
      raise InputError(f'a frame must be [height, width, 3] RGB, got shape {frame.shape}')
    return fit_frame(frame, *self.input_size)

  def detect(self, frame):
    """`Detections` of one frame."""
    image, scale = self._fit(frame)
    found = detection.detect(self.model, self.variables, image[None], self.settings)
    valid = np.asarray(found['valid'][0])
    # Boxes may cover the padding beyond the frame.
    height, width = np.shape(frame)[:2]
    boxes = np.clip(np.asarray(found['boxes'][0])[valid] / scale, 0, [width, height, width, height])
    return Detections(boxes, *(np.asarray(found[name][0])[valid]
                               for name in ('scores', 'labels', 'embeddings')))

  def describe(self, frame, boxes, valid=None):
    """Unit embeddings [K, E] and class probabilities [K, C + 1] (background first) of boxes
    [K, 4] (frame pixels) of one frame; zeros where `valid` ([K] bool, default all) is False."""
    image, scale = self._fit(frame)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    valid = np.ones(len(boxes), bool) if valid is None else np.asarray(valid, bool)
    outputs = detection.describe_boxes(self.model, self.variables, image[None],
                                       (boxes * scale)[None], valid[None])
    return np.asarray(outputs['embeddings'][0]), np.asarray(outputs['class_probabilities'][0])

  def embed(self, frame, boxes, valid=None):
    """[K, E] unit embeddings of boxes (see `describe`)."""
    return self.describe(frame, boxes, valid)[0]
