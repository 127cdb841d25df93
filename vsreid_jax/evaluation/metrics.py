"""DAVIS region similarity J and boundary accuracy F, vectorised over frames.

These follow the official DAVIS 2017 evaluation (davis2017-evaluation,
metrics.py and utils.py) decision for decision, so scores agree with it to
floating-point rounding.
"""

import math

import cv2
import numpy as np

BOUNDARY_TOLERANCE = 0.008  # fraction of the image diagonal
NUM_DECAY_BINS = 4
_CV_MAX_CHANNELS = 128  # OpenCV 5 images hold at most 128 channels


def region_similarity(true_masks, predicted_masks, void=None):
  """J: intersection over union per frame; an empty union scores 1.

  Args:
    true_masks: [T, H, W] (or [H, W]) ground-truth masks of one object.
    predicted_masks: same shape, the predicted masks.
    void: optional same-shape mask of pixels to ignore.

  Returns:
    [T] float64 (or a scalar for 2-D input).
  """
  true_masks = np.asarray(true_masks, bool)
  predicted_masks = np.asarray(predicted_masks, bool)
  _check_same_shape(true_masks, predicted_masks, void)
  valid = np.ones_like(true_masks) if void is None else ~np.asarray(void, bool)
  intersection = np.sum(true_masks & predicted_masks & valid, axis=(-2, -1))
  union = np.sum((true_masks | predicted_masks) & valid, axis=(-2, -1))
  with np.errstate(invalid='ignore', divide='ignore'):
    iou = intersection / union
  return np.where(union == 0, 1.0, iou)


def boundary_map(masks):
  """One-pixel boundaries of binary masks, vectorised over leading axes.

  A pixel is on the boundary when it differs from its east, south or
  south-east neighbour (only east on the last row, only south on the last
  column, never the bottom-right corner): the boundary lies half a pixel
  towards the origin from the true contour.

  Args:
    masks: [..., H, W] binary masks.

  Returns:
    [..., H, W] bool boundary maps.
  """
  masks = np.asarray(masks, bool)
  east = np.zeros_like(masks)
  south = np.zeros_like(masks)
  south_east = np.zeros_like(masks)
  east[..., :, :-1] = masks[..., :, 1:]
  south[..., :-1, :] = masks[..., 1:, :]
  south_east[..., :-1, :-1] = masks[..., 1:, 1:]
  boundary = (masks ^ east) | (masks ^ south) | (masks ^ south_east)
  boundary[..., -1, :] = masks[..., -1, :] ^ east[..., -1, :]
  boundary[..., :, -1] = masks[..., :, -1] ^ south[..., :, -1]
  boundary[..., -1, -1] = False
  return boundary


def boundary_tolerance(height, width, tolerance=BOUNDARY_TOLERANCE):
  """Matching distance in pixels: ceil(tolerance x image diagonal), or `tolerance` if >= 1."""
  if tolerance >= 1:
    return tolerance
  return math.ceil(tolerance * math.hypot(height, width))


def disk(radius):
  """A filled disk of 0/1 as a (2r+1) x (2r+1) uint8 structuring element: x^2 + y^2 <= r^2."""
  offsets = np.arange(-radius, radius + 1)
  return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).astype(np.uint8)


def _dilate(boundaries, radius):
  """Dilates [N, H, W] bool maps with a disk, many frames per OpenCV call (as channels)."""
  kernel = disk(radius)
  dilated = np.empty(boundaries.shape, bool)
  for start in range(0, len(boundaries), _CV_MAX_CHANNELS):
    chunk = np.ascontiguousarray(
        np.moveaxis(boundaries[start:start + _CV_MAX_CHANNELS], 0, -1).astype(np.uint8))
    result = cv2.dilate(chunk, kernel)
    dilated[start:start + _CV_MAX_CHANNELS] = np.moveaxis(
        result.reshape(chunk.shape), -1, 0).astype(bool)
  return dilated


def boundary_f_measure(true_masks, predicted_masks, void=None, tolerance=BOUNDARY_TOLERANCE):
  """F: boundary precision/recall F-measure per frame.

  A predicted boundary pixel is correct when a true boundary pixel lies within
  the tolerance disk, and vice versa. Edge cases as the official code: neither
  boundary present -> 1; only the true one -> precision 1, recall 0; only the
  predicted one -> precision 0, recall 1; F = 0 when precision + recall = 0.

  Args:
    true_masks: [T, H, W] (or [H, W]) ground-truth masks of one object.
    predicted_masks: same shape, the predicted masks.
    void: optional same-shape mask of pixels to ignore.
    tolerance: fraction of the image diagonal (or pixels, if >= 1).

  Returns:
    [T] float64 (or a scalar for 2-D input).
  """
  true_masks = np.asarray(true_masks, bool)
  predicted_masks = np.asarray(predicted_masks, bool)
  _check_same_shape(true_masks, predicted_masks, void)
  single_frame = true_masks.ndim == 2
  true_masks = true_masks.reshape((-1,) + true_masks.shape[-2:])
  predicted_masks = predicted_masks.reshape(true_masks.shape)
  if void is not None:
    valid = ~np.asarray(void, bool).reshape(true_masks.shape)
    true_masks = true_masks & valid
    predicted_masks = predicted_masks & valid
  radius = boundary_tolerance(*true_masks.shape[-2:], tolerance)
  true_boundary = boundary_map(true_masks)
  predicted_boundary = boundary_map(predicted_masks)
  true_near = _dilate(true_boundary, radius)
  predicted_near = _dilate(predicted_boundary, radius)
  num_true = true_boundary.sum(axis=(-2, -1)).astype(np.float64)
  num_predicted = predicted_boundary.sum(axis=(-2, -1)).astype(np.float64)
  with np.errstate(invalid='ignore', divide='ignore'):
    precision = (predicted_boundary & true_near).sum(axis=(-2, -1)) / num_predicted
    recall = (true_boundary & predicted_near).sum(axis=(-2, -1)) / num_true
  precision = np.where(num_predicted == 0, 1.0, precision)
  recall = np.where(num_true == 0, 1.0, recall)
  # With exactly one boundary empty the empty side's score is 1 and the other 0.
  only_true = (num_predicted == 0) & (num_true > 0)
  only_predicted = (num_predicted > 0) & (num_true == 0)
  recall = np.where(only_true, 0.0, recall)
  precision = np.where(only_predicted, 0.0, precision)
  total = precision + recall
  with np.errstate(invalid='ignore', divide='ignore'):
    f_measure = np.where(total == 0, 0.0, 2 * precision * recall / total)
  return f_measure[0] if single_frame else f_measure


def statistics(per_frame_values):
  """Mean, recall (fraction above 0.5) and decay of one object's per-frame scores.

  Decay is the mean of the first of four temporal bins minus the mean of the
  last; bins are split at round(linspace(1, N, 5)) - 1 and each includes its
  right edge, as the official code. (The official code stores the bin edges as
  uint8, which wraps for sequences longer than 256 frames; we do not.)

  Returns:
    (mean, recall, decay) as floats.
  """
  values = np.asarray(per_frame_values, np.float64)
  if values.ndim != 1 or values.size == 0:
    raise ValueError(f'statistics need a non-empty 1-D array of per-frame values, got {values.shape}')
  mean = float(np.nanmean(values))
  recall = float(np.nanmean(values > 0.5))
  edges = (np.round(np.linspace(1, len(values), NUM_DECAY_BINS + 1) + 1e-10) - 1).astype(int)
  bins = [values[edges[i]:edges[i + 1] + 1] for i in range(NUM_DECAY_BINS)]
  decay = float(np.nanmean(bins[0]) - np.nanmean(bins[-1]))
  return mean, recall, decay


def _check_same_shape(true_masks, predicted_masks, void):
  if true_masks.shape != predicted_masks.shape or (void is not None and np.shape(void) != true_masks.shape):
    raise ValueError(
        f'mask shapes differ: true {true_masks.shape}, predicted {predicted_masks.shape}'
        + ('' if void is None else f', void {np.shape(void)}'))
