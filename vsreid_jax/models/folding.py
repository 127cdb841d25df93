"""Inference-mode BatchNorm folded into the convolution before it."""

import flax.linen as nn
import flax.traverse_util
import numpy as np

EPSILON = 1e-5


class FoldedBatchNorm(nn.Module):
  """What remains of a BatchNorm whose scale moved into the previous conv: a bias."""

  @nn.compact
  def __call__(self, x):
    return x + self.param('bias', nn.initializers.zeros, (x.shape[-1],)).astype(x.dtype)


def fold_batch_norm(variables):
  """Moves every BatchNorm's running statistics and scale into the conv that feeds it.

  Convs and BNs pair by name (`conv1_1`/`bn1_1`, `conv2`/`bn2`,
  `downsample_conv`/`downsample_bn`, `out_conv2d`/`out_bn2d`). The stem's first
  BN normalises the sum of the first conv and `prob_encode`, so both are scaled.

  Args:
    variables: {'params', 'batch_stats'} of a network built with BatchNorm.

  Returns:
    {'params'} for the same network built with `folded_bn=True`.
  """
  params = {path: np.asarray(v, np.float32)
            for path, v in flax.traverse_util.flatten_dict(variables['params']).items()}
  stats = flax.traverse_util.flatten_dict(variables['batch_stats'])
  for path in [p for p in stats if p[-1] == 'mean']:
    *parent, bn = path[:-1]
    variance = np.asarray(stats[(*parent, bn, 'var')])
    scale = params.pop((*parent, bn, 'scale')) / np.sqrt(variance + EPSILON)
    bias = params.pop((*parent, bn, 'bias'))
    params[(*parent, bn, 'bias')] = bias - np.asarray(stats[path]) * scale
    convs = [bn.replace('bn', 'conv')]
    if bn in ('bn1_1', 'bn1') and (*parent, 'prob_encode', 'kernel') in params:
      convs.append('prob_encode')
    for conv in convs:
      params[(*parent, conv, 'kernel')] = params[(*parent, conv, 'kernel')] * scale
  return {'params': flax.traverse_util.unflatten_dict(params)}
