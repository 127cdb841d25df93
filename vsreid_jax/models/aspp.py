"""Atrous spatial pyramid pooling head of MP2S (the official `ASPP_simple`)."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from vsreid_jax.models.folding import EPSILON, FoldedBatchNorm
from vsreid_jax.models.resnet import conv_init


def _overlap(offset, size):
  """(output slice, input slice) where a tap shifted by `offset` reads inside the map."""
  start, stop = max(0, -offset), min(size, size - offset)
  return (slice(start, stop), slice(start + offset, stop + offset)) if start < stop else None


class TapConv(nn.Module):
  """3x3 conv with bias and padding = dilation, computed as one matmul per tap.

  Same parameters as `nn.Conv`. Each tap only touches the outputs whose input
  lies inside the map: at ASPP's dilations a large part of every off-centre tap
  reads padding, which XLA's convolutions compute anyway. On a CPU this makes
  the ASPP convs 1.1x (dilation 6) to 1.8x (24 on a 29x29 map) faster; for
  the backbone's convs it is slower.
  """
  features: int
  dilation: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', conv_init, (3, 3, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = jnp.broadcast_to(bias, (*x.shape[:3], self.features))
    for i in range(3):
      rows = _overlap((i - 1) * self.dilation, x.shape[1])
      for j in range(3):
        cols = _overlap((j - 1) * self.dilation, x.shape[2])
        if rows and cols:
          tap = jnp.einsum('bhwi,io->bhwo', x[:, rows[1], cols[1]], kernel[i, j])
          y = y.at[:, rows[0], cols[0]].add(tap)
    return y


class ASPP(nn.Module):
  """Parallel dilated 3x3 convs, concatenated and fused by a 3x3 conv, BN and ReLU.

  Attributes:
    features: channels of every branch and of the output.
    dilations: one 3x3 conv (with bias, padding = dilation) per entry.
    frozen_bn: normalise with the running statistics even when training.
    bn_momentum: Flax convention, the weight of the old running average.
    folded_bn: inference only, the BatchNorm reduced to a bias (see `fold_batch_norm`).
    tap_convs: dilated branches as `TapConv` (same parameters, faster on CPU).
    dtype: computation dtype; parameters stay float32.
  """
  features: int = 512
  dilations: Sequence[int] = (6, 12, 18, 24, 1)
  frozen_bn: bool = False
  bn_momentum: float = 0.9
  folded_bn: bool = False
  tap_convs: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    branches = []
    for i, d in enumerate(self.dilations):
      name = f'conv2d_list_{i}'
      if self.tap_convs and d > 1:
        branch = TapConv(self.features, d, dtype=self.dtype, name=name)
      else:
        branch = nn.Conv(self.features, (3, 3), padding=d, kernel_dilation=d, dtype=self.dtype,
                         kernel_init=conv_init, name=name)
      branches.append(branch(x))
    x = jnp.concatenate(branches, axis=-1)
    x = nn.Conv(self.features, (3, 3), padding=1, use_bias=False, dtype=self.dtype,
                kernel_init=conv_init, name='out_conv2d')(x)
    if self.folded_bn:
      x = FoldedBatchNorm(name='out_bn2d')(x)
    else:
      x = nn.BatchNorm(use_running_average=self.frozen_bn or not train, momentum=self.bn_momentum,
                       epsilon=EPSILON, dtype=self.dtype, name='out_bn2d')(x)
    return nn.relu(x)
