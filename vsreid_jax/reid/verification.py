"""Mask verifier crops, and the verifier on the frames of a video.

A template is the crop of a first-frame box (its mask channel the box itself: first-frame
non-objects are known by their detection boxes only); a query is the crop of a later mask.
"""

import cv2
import jax
import numpy as np

from vsreid_jax import checkpoints
from vsreid_jax.models.verifier import MaskVerifier, build_verifier

# A crop's side is this times the longer side of its box.
CROP_CONTEXT = 1.3
# Crops per verifier call are padded to a multiple of this (one compile per multiple).
BATCH_MULTIPLE = 8


def crop(frame, box, size, mask=None, shift=(0.0, 0.0), zoom=1.0):
  """float32 [size, size, 4]: the square crop about `box` (side `CROP_CONTEXT` x its longer side),
  RGB scaled to [-0.5, 0.5], and `mask` (bool [H, W]; None: the box's rectangle) in [0, 1].

  `shift` (fractions of the side) and `zoom` (side factor) move the crop; training jitters them.
  """
  x_min, y_min, x_max, y_max = box
  side = CROP_CONTEXT * max(x_max - x_min, y_max - y_min, 1.0) * zoom
  centre_x = (x_min + x_max) / 2 + shift[0] * side
  centre_y = (y_min + y_max) / 2 + shift[1] * side
  scale = size / side
  warp = np.array([[scale, 0, size / 2 - scale * centre_x],
                   [0, scale, size / 2 - scale * centre_y]], np.float32)
  interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
  rgb = cv2.warpAffine(np.asarray(frame, np.uint8), warp, (size, size), flags=interpolation)
  if mask is None:
    mask = np.zeros(np.shape(frame)[:2], np.uint8)
    mask[int(y_min):int(np.ceil(y_max)), int(x_min):int(np.ceil(x_max))] = 255
  else:
    mask = np.asarray(mask, np.uint8) * 255
  channel = cv2.warpAffine(mask, warp, (size, size), flags=cv2.INTER_LINEAR)
  return np.concatenate([rgb / 255.0 - 0.5, channel[..., None] / 255.0], -1).astype(np.float32)


class Verifier:
  """The `MaskVerifier` of a checkpoint: describes crops, compares described pairs."""

  def __init__(self, model, variables, crop_size):
    self.model, self.variables, self.crop_size = model, variables, crop_size
    self._describe = jax.jit(lambda v, x: model.apply(v, x, method=MaskVerifier.describe))
    self._compare = jax.jit(lambda v, a, b: jax.nn.sigmoid(
        model.apply(v, a, b, method=MaskVerifier.compare)))

  @classmethod
  def from_checkpoint(cls, checkpoint_dir):
    """The verifier of a `configs/verifier.py` checkpoint.

    Raises:
      InputError: missing or unreadable checkpoint, or one of another network.
    """
    variables, config = checkpoints.restore_model_checkpoint(checkpoint_dir, 'verifier',
                                                             'mask verifier')
    return cls(build_verifier(config.model), {'params': variables['params']},
               config.model.crop_size)

  def describe(self, crops):
    """Features [K, F] of crops [K, S, S, 4] (K may be 0)."""
    crops = np.asarray(crops, np.float32).reshape(-1, self.crop_size, self.crop_size, 4)
    return _padded_call(self._describe, self.variables, crops)

  def probabilities(self, templates, queries):
    """[K, Q]: the probability that each query shows the instance of each template (features)."""
    templates, queries = np.asarray(templates, np.float32), np.asarray(queries, np.float32)
    pairs = (np.repeat(templates, len(queries), axis=0), np.tile(queries, (len(templates), 1)))
    return _padded_call(self._compare, self.variables, *pairs).reshape(
        len(templates), len(queries))


def _padded_call(function, variables, *arrays):
  """`function(variables, *arrays)` with the arrays' leading axis zero-padded to a multiple of
  `BATCH_MULTIPLE`, the padding's rows dropped from the result."""
  count = len(arrays[0])
  padding = -count % BATCH_MULTIPLE or (BATCH_MULTIPLE if count == 0 else 0)
  padded = [np.concatenate([a, np.zeros((padding,) + a.shape[1:], a.dtype)]) for a in arrays]
  return np.asarray(function(variables, *padded))[:count]
