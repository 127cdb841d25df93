"""Shapes, parameter counts, BatchNorm modes and config validation of the propagation network."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vsreid_jax import convert, models
from vsreid_jax.models import aspp, mp2s, resnet


def _inputs(batch, height, width, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.uniform(0, 255, (batch, height, width, 3)).astype(np.float32),
          rng.normal(0, 5, (batch, height, width, 2)).astype(np.float32),
          rng.uniform(0, 1, (batch, height, width, 1)).astype(np.float32))


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def _abstract_variables(model, shape=(1, 33, 33)):
  return jax.eval_shape(model.init, jax.random.key(0), *_inputs(*shape))


@pytest.mark.parametrize('depth, count', [
    (18, 11_176_512), (34, 21_284_672), (50, 23_508_032), (101, 42_500_160), (152, 58_143_808)])
def test_standard_resnets_have_torchvision_parameter_counts(depth, count):
  # torchvision's totals without the 1000-class fc layer.
  net = resnet.RESNETS[depth](stem='standard')
  variables = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
  assert _count(variables['params']) == count


@pytest.mark.parametrize('arg, count', [(None, 203_222_468), ('smoke', 7_513_060)])
def test_parameter_counts(arg, count):
  # Equal to the PyTorch reference's counts (checked in test_convert.py).
  model = models.build_propagation_model(convert.load_config(arg=arg).model)
  variables = _abstract_variables(model)
  assert _count(variables['params']) == count
  assert set(variables['params']) == {'backbone', 'aspp', 'classifier', 'flow_backbone',
                                      'flow_aspp', 'flow_classifier'}


def test_paper_backbone_output_stride_and_channels():
  model = models.build_propagation_model(convert.load_config().model)
  features = jax.eval_shape(lambda x: model.backbone_cls().init_with_output(
      jax.random.key(0), x)[0], jnp.zeros((1, 449, 449, 3)))
  assert features.shape == (1, 57, 57, 2048)


@pytest.fixture(name='smoke', scope='module')
def fixture_smoke():
  """The smoke config and variables of its model, initialised once for this file."""
  config = convert.load_config(arg='smoke')
  model = models.build_propagation_model(config.model)
  return config, jax.jit(model.init)(jax.random.key(0), *_inputs(1, 33, 33))


@pytest.mark.parametrize('shape', [(2, 65, 65), (1, 33, 49)])
def test_logits_shape(smoke, shape):
  config, variables = smoke
  model = models.build_propagation_model(config.model)
  logits = jax.jit(model.apply)(variables, *_inputs(*shape))
  assert logits.shape == (*shape, 2) and logits.dtype == jnp.float32
  assert np.isfinite(logits).all()


def test_bfloat16_is_close_to_float32(smoke):
  config, variables = smoke
  inputs = _inputs(1, 65, 65)
  expected = jax.jit(models.build_propagation_model(config.model).apply)(variables, *inputs)
  config = config.copy_and_resolve_references()
  config.model.dtype = 'bfloat16'
  logits = jax.jit(models.build_propagation_model(config.model).apply)(variables, *inputs)
  assert logits.dtype == jnp.float32
  assert np.abs(logits - expected).max() < 0.05 * np.abs(expected).max()


@pytest.mark.parametrize('frozen', [True, False])
def test_frozen_batch_norm_keeps_statistics(smoke, frozen):
  config, variables = smoke
  config = config.copy_and_resolve_references()
  config.model.frozen_bn = frozen
  model = models.build_propagation_model(config.model)
  inputs = _inputs(2, 33, 33)
  train = jax.jit(lambda v, key: model.apply(v, *inputs, train=True, mutable=['batch_stats'],
                                             rngs={'dropout': key}))
  logits, updates = train(variables, jax.random.key(1))
  assert logits.shape == (2, 33, 33, 2)
  unchanged = jax.tree.map(np.array_equal, updates['batch_stats'], variables['batch_stats'])
  assert set(jax.tree.leaves(unchanged)) == {frozen}
  # Dropout is on in training whether or not BN is frozen.
  assert not np.allclose(train(variables, jax.random.key(2))[0], logits)


@pytest.mark.parametrize('dilation', [1, 2, 5, 7, 24])
def test_tap_conv_equals_dilated_conv(dilation):
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 9, 5)), jnp.float32)
  tap_conv = aspp.TapConv(4, dilation)
  variables = tap_conv.init(jax.random.key(0), x)
  variables['params']['bias'] = jnp.arange(4.0)
  conv = nn.Conv(4, (3, 3), padding=dilation, kernel_dilation=dilation)
  np.testing.assert_allclose(tap_conv.apply(variables, x), conv.apply(variables, x), atol=1e-5)


def test_resize_align_corners():
  x = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
  y = mp2s.resize_align_corners(x, 3, 5)[0, :, :, 0]
  expected = np.array([[0, 0.25, 0.5, 0.75, 1], [1, 1.25, 1.5, 1.75, 2], [2, 2.25, 2.5, 2.75, 3]])
  np.testing.assert_allclose(y, expected, atol=1e-6)
  np.testing.assert_allclose(mp2s.resize_align_corners(x, 1, 1)[0, :, :, 0], [[0.0]])


@pytest.mark.parametrize('field, value', [
    ('depth', 42), ('stem', 'fancy'), ('strides', (1, 2, 1)), ('dilations', (1, 0, 2, 4)),
    ('width', 0.0), ('dtype', 'float16'), ('aspp_dilations', ()), ('dropout_rate', 1.0),
    ('backbone_bn_momentum', 1.5), ('name', 'unet')])
def test_bad_config_names_the_field(field, value):
  config = convert.load_config(arg='smoke')
  config.model[field] = value
  with pytest.raises(ValueError, match=f'config.model.{field}'):
    models.build_propagation_model(config.model)


def test_unknown_config_argument():
  with pytest.raises(ValueError, match='unknown propagation config'):
    convert.load_config(arg='huge')


def test_inference_variant_matches(smoke):
  config, variables = smoke
  rng = np.random.default_rng(0)
  statistics = jax.tree.map(lambda x: rng.uniform(0.5, 1.5, x.shape).astype(np.float32),
                            variables['batch_stats'])
  variables = {'params': variables['params'], 'batch_stats': statistics}
  inputs = _inputs(1, 33, 33)
  expected = models.jit_inference(models.build_propagation_model(config.model))(variables, *inputs)
  fast = models.build_propagation_model(config.model, inference=True)
  logits = models.jit_inference(fast)(models.fold_batch_norm(variables), *inputs)
  assert np.abs(logits - expected).max() < 1e-5 * np.abs(expected).max()
