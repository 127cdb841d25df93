"""Network definitions, and the factory that builds the propagation network from its config."""

import functools
import numbers

import jax
import jax.numpy as jnp

from vsreid_jax.errors import InputError
from vsreid_jax.models.aspp import ASPP
from vsreid_jax.models.folding import fold_batch_norm
from vsreid_jax.models.mp2s import MP2S
from vsreid_jax.models.resnet import RESNETS, ResNet

_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def _positive_ints(values, field, length=None):
  values = tuple(values)
  if not values or not all(isinstance(v, numbers.Integral) and v > 0 for v in values):
    raise InputError(f'config.model.{field} must be positive integers, got {values}')
  if length is not None and len(values) != length:
    raise InputError(f'config.model.{field} needs one value per stage ({length}), got {values}')
  return values


def _unit_interval(value, field, upper_open=False):
  if not 0.0 <= value <= 1.0 or (upper_open and value == 1.0):
    interval = '[0, 1)' if upper_open else '[0, 1]'
    raise InputError(f'config.model.{field} must lie in {interval}, got {value}')
  return value


def build_propagation_model(model_config, inference=False):
  """Builds the MP2S module that `model_config` (`configs/propagation.py`'s `model`) describes.

  Args:
    model_config: the `model` field of a propagation config.
    inference: build the faster inference-only variant: BatchNorm folded into
      the convs (its variables come from `fold_batch_norm`), ASPP's dilated
      convs as `TapConv`.

  Raises:
    InputError: (a ValueError) a field has a bad value; the message names it.
  """
  c = model_config
  if c.name != 'mp2s':
    raise InputError(f'config.model.name must be "mp2s", got {c.name!r}')
  if c.depth not in RESNETS:
    raise InputError(f'config.model.depth must be one of {sorted(RESNETS)}, got {c.depth}')
  if c.stem not in ('deep', 'standard'):
    raise InputError(f'config.model.stem must be "deep" or "standard", got {c.stem!r}')
  if c.dtype not in _DTYPES:
    raise InputError(f'config.model.dtype must be one of {sorted(_DTYPES)}, got {c.dtype!r}')
  if not c.width > 0:
    raise InputError(f'config.model.width must be positive, got {c.width}')
  _positive_ints([c.aspp_features], 'aspp_features')
  _positive_ints([c.patch_size], 'patch_size')
  dtype = _DTYPES[c.dtype]
  backbone = functools.partial(
      RESNETS[c.depth], stem=c.stem, strides=_positive_ints(c.strides, 'strides', 4),
      dilations=_positive_ints(c.dilations, 'dilations', 4), width=float(c.width),
      frozen_bn=bool(c.frozen_bn), folded_bn=inference,
      bn_momentum=_unit_interval(c.backbone_bn_momentum, 'backbone_bn_momentum'), dtype=dtype)
  aspp = functools.partial(
      ASPP, features=c.aspp_features, dilations=_positive_ints(c.aspp_dilations, 'aspp_dilations'),
      frozen_bn=bool(c.frozen_bn), folded_bn=inference, tap_convs=inference,
      bn_momentum=_unit_interval(c.aspp_bn_momentum, 'aspp_bn_momentum'), dtype=dtype)
  return MP2S(backbone, aspp,
              dropout_rate=_unit_interval(c.dropout_rate, 'dropout_rate', upper_open=True),
              dtype=dtype)


def jit_inference(model):
  """Jitted `(variables, image, flow, guidance) -> logits` in inference mode, tuned per backend."""
  options = {}
  if jax.default_backend() == 'cpu':
    # XLA:CPU's YNNPACK convolutions are very slow at large dilations (ASPP's
    # 18 and 24); leaving convolutions to Eigen makes MP2S ~1.4x faster.
    options['xla_cpu_experimental_ynn_fusion_type'] = ''
  return jax.jit(functools.partial(model.apply, train=False), compiler_options=options)


__all__ = ['ASPP', 'MP2S', 'ResNet', 'build_propagation_model', 'fold_batch_norm', 'jit_inference']
