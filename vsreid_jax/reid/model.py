"""Builds the re-ID detector and its post-processing settings from a config (`configs/reid.py`)."""

import numbers
from typing import NamedTuple

import jax.numpy as jnp

from vsreid_jax.errors import InputError
from vsreid_jax.models import detector

DETECTORS = {'FasterRCNNResNet50': detector.FasterRCNNResNet50,
             'FasterRCNNSmall': detector.FasterRCNNSmall,
             'FasterRCNNTiny': detector.FasterRCNNTiny}
_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
CLASS_VOCABULARIES = {'object': 1, 'person': 2}
"""Box-class vocabularies (`config.data.classes`) and their numbers of classes."""
OBJECT_CLASS = 1
"""The class of every box in the 'object' vocabulary."""
PERSON_CLASS = 1
OTHER_CLASS = 2
"""In the 'person' vocabulary, persons are class 1 and all other objects class 2."""


class DetectionSettings(NamedTuple):
  """How box-head outputs become detections (hashable, so a static argument of `jax.jit`).

  Attributes:
    max_detections: static number of detections per frame.
    score_threshold: a detection's class probability must exceed this.
    nms_threshold: IoU above which NMS suppresses a detection of the same class
      (of any class when `class_agnostic_nms`).
    class_agnostic_nms: one detection per proposal, its best class, and NMS
      across classes; otherwise every (proposal, class) pair is a candidate.
    pre_nms_top_k: best-scoring candidates kept before NMS, which bounds its cost.
    min_size: detections narrower or shorter than this (pixels) are dropped.
  """
  max_detections: int = 100
  score_threshold: float = 0.05
  nms_threshold: float = 0.5
  class_agnostic_nms: bool = False
  pre_nms_top_k: int = 1000
  min_size: float = 1e-2


def _positive_int(value, field):
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
    raise InputError(f'config.{field} must be a positive integer, got {value!r}')
  return int(value)


def _unit_interval(value, field):
  if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
    raise InputError(f'config.{field} must lie in [0, 1], got {value!r}')
  return float(value)


def _positive_numbers(values, field):
  values = tuple(values)
  if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0
                           for v in values):
    raise InputError(f'config.{field} must be positive numbers, got {values}')
  return values


def build_detector(model_config):
  """The `FasterRCNN` that `model_config` (the `model` field of a re-ID config) describes.

  Raises:
    InputError: (a ValueError) a field has a bad value; the message names it.
  """
  c = model_config
  if c.name not in DETECTORS:
    raise InputError(f'config.model.name must be one of {sorted(DETECTORS)}, got {c.name!r}')
  if c.dtype not in _DTYPES:
    raise InputError(f'config.model.dtype must be one of {sorted(_DTYPES)}, got {c.dtype!r}')
  return DETECTORS[c.name](
      num_classes=_positive_int(c.num_classes, 'model.num_classes'),
      anchor_scales=_positive_numbers(c.anchor_scales, 'model.anchor_scales'),
      aspect_ratios=_positive_numbers(c.aspect_ratios, 'model.aspect_ratios'),
      pre_nms_top_k=_positive_int(c.pre_nms_top_k, 'model.pre_nms_top_k'),
      post_nms_top_k=_positive_int(c.post_nms_top_k, 'model.post_nms_top_k'),
      rpn_nms_threshold=_unit_interval(c.rpn_nms_threshold, 'model.rpn_nms_threshold'),
      embedding_features=_positive_int(c.embedding_features, 'model.embedding_features'),
      class_agnostic_boxes=bool(c.class_agnostic_boxes), frozen_bn=bool(c.frozen_bn),
      dtype=_DTYPES[c.dtype])


def build_detection_settings(detection_config):
  """`DetectionSettings` from the `detection` field of a re-ID config.

  Raises:
    InputError: (a ValueError) a field has a bad value; the message names it.
  """
  c = detection_config
  if isinstance(c.min_size, bool) or not c.min_size >= 0:
    raise InputError(f'config.detection.min_size must be non-negative, got {c.min_size!r}')
  return DetectionSettings(
      max_detections=_positive_int(c.max_detections, 'detection.max_detections'),
      score_threshold=_unit_interval(c.score_threshold, 'detection.score_threshold'),
      nms_threshold=_unit_interval(c.nms_threshold, 'detection.nms_threshold'),
      class_agnostic_nms=bool(c.class_agnostic_nms),
      pre_nms_top_k=_positive_int(c.pre_nms_top_k, 'detection.pre_nms_top_k'),
      min_size=float(c.min_size))
