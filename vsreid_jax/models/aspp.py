"""Atrous spatial pyramid pooling head of MP2S (the official `ASPP_simple`)."""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from vsreid_jax.models.folding import EPSILON, FoldedBatchNorm
from vsreid_jax.models.resnet import conv_init


class ASPP(nn.Module):
  """Parallel dilated 3x3 convs, concatenated and fused by a 3x3 conv, BN and ReLU.

  Attributes:
    features: channels of every branch and of the output.
    dilations: one 3x3 conv (with bias, padding = dilation) per entry.
    frozen_bn: normalise with the running statistics even when training.
    bn_momentum: Flax convention, the weight of the old running average.
    folded_bn: inference only, the BatchNorm reduced to a bias (see `fold_batch_norm`).
    dtype: computation dtype; parameters stay float32.
  """
  features: int = 512
  dilations: Sequence[int] = (6, 12, 18, 24, 1)
  frozen_bn: bool = False
  bn_momentum: float = 0.9
  folded_bn: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    branches = [
        nn.Conv(self.features, (3, 3), padding=d, kernel_dilation=d, dtype=self.dtype,
                kernel_init=conv_init, name=f'conv2d_list_{i}')(x)
        for i, d in enumerate(self.dilations)
    ]
    x = jnp.concatenate(branches, axis=-1)
    x = nn.Conv(self.features, (3, 3), padding=1, use_bias=False, dtype=self.dtype,
                kernel_init=conv_init, name='out_conv2d')(x)
    if self.folded_bn:
      x = FoldedBatchNorm(name='out_bn2d')(x)
    else:
      x = nn.BatchNorm(use_running_average=self.frozen_bn or not train, momentum=self.bn_momentum,
                       epsilon=EPSILON, dtype=self.dtype, name='out_bn2d')(x)
    return nn.relu(x)
