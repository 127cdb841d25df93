"""MP2S: the two-branch (RGB and optical flow) mask propagation network of VS-ReID."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ModuleDef = Any

# The official means (104, 117, 123) in BGR order. Checkpoints store the first
# RGB conv with its input channels already in RGB order (the converter swaps
# them once), so the network never reorders channels.
RGB_MEAN = (123.0, 117.0, 104.0)


def _align_corners_weights(in_size, out_size):
  """[out_size, in_size] linear interpolation matrix sampling as `align_corners=True`."""
  scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
  positions = np.arange(out_size) * scale
  lower = np.minimum(np.floor(positions).astype(np.int64), in_size - 1)
  upper = np.minimum(lower + 1, in_size - 1)
  fraction = positions - lower
  weights = np.zeros((out_size, in_size), np.float32)
  np.add.at(weights, (np.arange(out_size), lower), 1.0 - fraction)
  np.add.at(weights, (np.arange(out_size), upper), fraction)
  return weights


def resize_align_corners(x, height, width):
  """Bilinear resize of [B, h, w, C] to [B, height, width, C] with corner-aligned sampling."""
  rows = _align_corners_weights(x.shape[1], height)
  cols = _align_corners_weights(x.shape[2], width)
  return jnp.einsum('yh,bhwc,xw->byxc', rows, x, cols, precision=jax.lax.Precision.HIGHEST)


class MP2S(nn.Module):
  """Mask propagation network: RGB and flow branches whose logits are summed.

  Attributes:
    backbone_cls: a `ResNet` partial; instantiated twice with separate weights.
    aspp_cls: an `ASPP` partial; instantiated twice with separate weights.
    dropout_rate: channel dropout before each classifier, in training only.
    num_classes: 2, background and foreground.
    dtype: computation dtype; parameters and the returned logits are float32.
  """
  backbone_cls: ModuleDef
  aspp_cls: ModuleDef
  dropout_rate: float = 0.1
  num_classes: int = 2
  dtype: Any = jnp.float32

  def _branch(self, x, guidance, train, prefix):
    x = self.backbone_cls(name=f'{prefix}backbone')(x, guidance, train)
    x = self.aspp_cls(name=f'{prefix}aspp')(x, train)
    # Dropout2d: whole channels are dropped, so the mask broadcasts over H and W.
    x = nn.Dropout(self.dropout_rate, broadcast_dims=(1, 2), deterministic=not train)(x)
    return nn.Conv(self.num_classes, (1, 1), dtype=self.dtype, name=f'{prefix}classifier')(x)

  @nn.compact
  def __call__(self, image, flow, guidance, train=False):
    """Foreground/background logits of the object that `guidance` marks.

    Args:
      image: [B, H, W, 3] RGB, 0..255.
      flow: [B, H, W, 2] optical flow in pixels.
      guidance: [B, H, W, 1] probability of the object, 0..1.
      train: training mode (dropout on; BN batch statistics unless frozen). Needs
        a 'dropout' rng and `mutable=['batch_stats']` unless BN is frozen.

    Returns:
      [B, H, W, 2] float32 logits (background, foreground).
    """
    image = (image - jnp.asarray(RGB_MEAN)).astype(self.dtype)
    flow = flow.astype(self.dtype)
    guidance = guidance.astype(self.dtype)
    logits = (self._branch(image, guidance, train, '')
              + self._branch(flow, guidance, train, 'flow_'))
    return resize_align_corners(logits.astype(jnp.float32), image.shape[1], image.shape[2])
