"""Shapes of the Faster R-CNN re-ID detector, its proposals and its parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vsreid_jax.models import detector


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


@pytest.fixture(name='tiny', scope='module')
def fixture_tiny():
  """The tiny detector (3 classes), its variables and its jitted outputs on two 64x96 frames."""
  model = detector.FasterRCNNTiny(num_classes=3)
  images = np.random.default_rng(0).uniform(0, 255, (2, 64, 96, 3)).astype(np.float32)
  outputs, variables = jax.jit(model.init_with_output)(jax.random.key(0), images)
  return model, variables, images, outputs


def test_tiny_forward_shapes(tiny):
  _, _, _, outputs = tiny
  num_anchors = 4 * 6 * 9  # A 4x6 map at stride 16, 3 scales x 3 ratios.
  expected = {'anchors': (num_anchors, 4), 'rpn_objectness': (2, num_anchors),
              'rpn_deltas': (2, num_anchors, 4), 'proposals': (2, 8, 4), 'proposal_mask': (2, 8),
              'class_logits': (2, 8, 4), 'box_deltas': (2, 8, 4, 4), 'embeddings': (2, 8, 256)}
  assert {k: v.shape for k, v in outputs.items()} == expected
  for value in outputs.values():
    assert np.isfinite(value).all()


def test_proposals_lie_in_the_image_and_embeddings_are_unit_vectors(tiny):
  _, _, _, outputs = tiny
  proposals, mask = outputs['proposals'], outputs['proposal_mask']
  assert mask.any()
  assert (proposals[..., 0::2] >= 0).all() and (proposals[..., 0::2] <= 96).all()
  assert (proposals[..., 1::2] >= 0).all() and (proposals[..., 1::2] <= 64).all()
  np.testing.assert_allclose(np.linalg.norm(outputs['embeddings'], axis=-1), 1, rtol=1e-5)


def test_given_boxes_get_outputs_and_degenerate_ones_stay_finite(tiny):
  model, variables, images, _ = tiny
  boxes = jnp.array([[[0, 0, 96, 64], [10, 10, 10, 10], [-50, -50, -10, -10]]] * 2, jnp.float32)

  def box_outputs(module, images, boxes):
    return module.box_outputs(module.features(images), boxes)

  outputs = jax.jit(lambda v, i, b: model.apply(v, i, b, method=box_outputs))(
      variables, images, boxes)
  assert outputs['embeddings'].shape == (2, 3, 256)
  assert outputs['class_logits'].shape == (2, 3, 4)
  assert all(np.isfinite(v).all() for v in outputs.values())


def test_frames_smaller_than_the_anchors(tiny):
  model, variables, _, _ = tiny
  outputs = jax.jit(model.apply)(variables, jnp.zeros((1, 20, 24, 3)))
  assert outputs['anchors'].shape == (2 * 2 * 9, 4)
  assert outputs['proposals'].shape == (1, 8, 4)
  assert all(np.isfinite(v).all() for v in outputs.values())


def test_class_agnostic_box_regression():
  model = detector.FasterRCNNTiny(num_classes=3, class_agnostic_boxes=True)
  outputs, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  assert outputs['box_deltas'].shape == (1, 8, 1, 4)


def test_resnet50_parameters():
  model = detector.FasterRCNNResNet50(num_classes=80)
  variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
  params = variables['params']
  # torchvision's ResNet-50 without its fc layer: 23,508,032 parameters.
  assert _count(params['backbone']) + _count(params['box_head']) == 23_508_032
  assert params['rpn']['conv']['kernel'].shape == (3, 3, 1024, 1024)
  assert params['rpn']['objectness']['kernel'].shape == (1, 1, 1024, 15)
  assert params['class_scores']['kernel'].shape == (2048, 81)
  assert params['box_deltas']['kernel'].shape == (2048, 81 * 4)
  assert params['embedding']['kernel'].shape == (2048, 256)
