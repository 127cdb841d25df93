"""The mask verifier: does a mask in a later frame lie on the instance of a first-frame template?

Not in the paper. Its re-ID embedding compares boxes; the verifier compares a template crop with
a query crop, each RGB plus a mask channel, through one shared small CNN, and gives the logit of
"same instance". It is trained on synthetic videos, where look-alikes copy an object's shape
family, texture and colours (`vsreid_jax.training.verifier_trainer`).
"""

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MaskVerifier(nn.Module):
  """Logits [B] that each query crop [B, S, S, 4] shows the instance of its template crop.

  Attributes:
    widths: output channels of the tower's 3x3 convolutions.
    strides: their strides.
    head_features: hidden units of the comparison head.
  """
  widths: Sequence[int] = (16, 32, 64, 64, 128)
  strides: Sequence[int] = (2, 2, 1, 2, 1)
  head_features: int = 128

  def setup(self):
    if len(self.widths) != len(self.strides):
      raise ValueError(f'MaskVerifier: {len(self.widths)} widths but {len(self.strides)} strides')
    self.convs = [nn.Conv(width, (3, 3), strides=stride, name=f'conv{i}')
                  for i, (width, stride) in enumerate(zip(self.widths, self.strides))]
    self.norms = [nn.GroupNorm(num_groups=min(8, width), name=f'norm{i}')
                  for i, width in enumerate(self.widths)]
    self.hidden = nn.Dense(self.head_features)
    self.logit = nn.Dense(1)

  def describe(self, crops):
    """[B, 2 * widths[-1]]: mean- and max-pooled tower features of crops [B, S, S, 4]."""
    x = crops
    for conv, norm in zip(self.convs, self.norms):
      x = nn.relu(norm(conv(x)))
    return jnp.concatenate([x.mean(axis=(1, 2)), x.max(axis=(1, 2))], axis=-1)

  def compare(self, templates, queries):
    """Logits [B] from described templates and queries [B, F]."""
    pairs = jnp.concatenate([templates * queries, jnp.abs(templates - queries)], axis=-1)
    return self.logit(nn.relu(self.hidden(pairs)))[:, 0]

  def __call__(self, templates, queries):
    return self.compare(self.describe(templates), self.describe(queries))


def build_verifier(model_config):
  """The `MaskVerifier` of a `configs/verifier.py` config's `model` block."""
  return MaskVerifier(widths=tuple(model_config.widths), strides=tuple(model_config.strides),
                      head_features=model_config.head_features)
