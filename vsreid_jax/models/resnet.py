"""ResNet backbones with a deep or 7x7 stem, dilated stages and an optional guidance input."""

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from vsreid_jax.models.folding import EPSILON, FoldedBatchNorm

ModuleDef = Any

# Kaiming-normal over fan-out, the initialisation torchvision gives ResNets.
conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def scale_width(channels, width):
  """Channel count of a layer in a network whose widths are multiplied by `width`."""
  return max(1, int(round(channels * width)))


def _shortcut(x, features, strides, conv, norm):
  """Identity, or (as the official code) a strided 1x1 conv + BN where the shape changes."""
  if strides == 1 and x.shape[-1] == features:
    return x
  x = conv(features, (1, 1), strides, padding=0, name='downsample_conv')(x)
  return norm(name='downsample_bn')(x)


class BasicBlock(nn.Module):
  """Two 3x3 convs; as in the official `sense_resnet`, only the first one is dilated."""
  features: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  dilation: int = 1

  @nn.compact
  def __call__(self, x):
    d = self.dilation
    y = self.conv(self.features, (3, 3), self.strides, padding=d, kernel_dilation=d,
                  name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.features, (3, 3), padding=1, name='conv2')(y)
    y = self.norm(name='bn2')(y)
    return nn.relu(y + _shortcut(x, self.features, self.strides, self.conv, self.norm))


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (strided and dilated) -> 1x1 with 4x expansion."""
  features: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  dilation: int = 1

  @nn.compact
  def __call__(self, x):
    d = self.dilation
    y = self.conv(self.features, (1, 1), padding=0, name='conv1')(x)
    y = nn.relu(self.norm(name='bn1')(y))
    y = self.conv(self.features, (3, 3), self.strides, padding=d, kernel_dilation=d,
                  name='conv2')(y)
    y = nn.relu(self.norm(name='bn2')(y))
    out_features = self.features * 4
    y = self.conv(out_features, (1, 1), padding=0, name='conv3')(y)
    y = self.norm(name='bn3')(y)
    return nn.relu(y + _shortcut(x, out_features, self.strides, self.conv, self.norm))


class ResNet(nn.Module):
  """ResNet feature extractor (no pooling head), NHWC.

  Attributes:
    stage_sizes: blocks per stage.
    block_cls: `BasicBlock` or `Bottleneck`.
    stem: 'deep' (three 3x3 convs, 64-64-128, as the official MP2S backbone)
      or 'standard' (one 7x7 conv, as torchvision).
    strides: stride of each stage's first block.
    dilations: dilation of every block of each stage.
    width: multiplier of every channel count (1.0 for the published networks).
    frozen_bn: normalise with the running statistics even when training.
    bn_momentum: Flax convention, the weight of the old running average.
    folded_bn: inference only, BatchNorms reduced to biases (see `fold_batch_norm`).
    dtype: computation dtype; parameters stay float32.
  """
  stage_sizes: Sequence[int]
  block_cls: ModuleDef
  stem: str = 'deep'
  strides: Sequence[int] = (1, 2, 2, 2)
  dilations: Sequence[int] = (1, 1, 1, 1)
  width: float = 1.0
  frozen_bn: bool = False
  bn_momentum: float = 0.9
  folded_bn: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, guidance=None, train=False):
    """Features at the output stride of the stages ([B, H/8, W/8, C] for the MP2S settings).

    Args:
      x: [B, H, W, C] input.
      guidance: optional [B, H, W, 1] map, encoded by `prob_encode` and added to
        the first conv's output before its BatchNorm.
      train: training mode (batch statistics unless `frozen_bn`).
    """
    conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype, kernel_init=conv_init)
    norm = FoldedBatchNorm if self.folded_bn else functools.partial(
        nn.BatchNorm, use_running_average=self.frozen_bn or not train, momentum=self.bn_momentum,
        epsilon=EPSILON, dtype=self.dtype)
    stem_features = scale_width(64, self.width)
    if self.stem == 'deep':
      first_conv = conv(stem_features, (3, 3), 2, padding=1, name='conv1_1')
      # (name of the first conv, of the BN that follows it) in the official layout.
      stem_names = [('conv1_1', 'bn1_1'), ('conv1_2', 'bn1_2'), ('conv1_3', 'bn1_3')]
      stem_widths = [stem_features, stem_features, scale_width(128, self.width)]
    elif self.stem == 'standard':
      first_conv = conv(stem_features, (7, 7), 2, padding=3, name='conv1')
      stem_names = [('conv1', 'bn1')]
      stem_widths = [stem_features]
    else:
      raise ValueError(f'unknown stem {self.stem!r}')
    x = first_conv(x)
    if guidance is not None:
      x = x + conv(stem_features, (3, 3), 2, padding=1, name='prob_encode')(guidance)
    x = nn.relu(norm(name=stem_names[0][1])(x))
    for (conv_name, bn_name), features in zip(stem_names[1:], stem_widths[1:]):
      x = conv(features, (3, 3), padding=1, name=conv_name)(x)
      x = nn.relu(norm(name=bn_name)(x))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    stages = zip(self.stage_sizes, self.strides, self.dilations)
    for i, (num_blocks, stride, dilation) in enumerate(stages):
      features = scale_width(64 * 2**i, self.width)
      for j in range(num_blocks):
        x = self.block_cls(features, conv, norm, stride if j == 0 else 1, dilation,
                           name=f'layer{i + 1}_{j}')(x)
    return x


ResNet18 = functools.partial(ResNet, stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock)
ResNet34 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock)
ResNet50 = functools.partial(ResNet, stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck)
ResNet101 = functools.partial(ResNet, stage_sizes=(3, 4, 23, 3), block_cls=Bottleneck)
ResNet152 = functools.partial(ResNet, stage_sizes=(3, 8, 36, 3), block_cls=Bottleneck)

RESNETS = {18: ResNet18, 34: ResNet34, 50: ResNet50, 101: ResNet101, 152: ResNet152}
