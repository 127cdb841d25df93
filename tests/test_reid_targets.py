"""Detector training targets and losses on hand-checked cases."""

import jax
import jax.numpy as jnp
import numpy as np

from vsreid_jax.models import boxes as box_ops
from vsreid_jax.models import oim
from vsreid_jax.models.detector import BOX_DELTA_WEIGHTS
from vsreid_jax.reid import losses
from vsreid_jax.reid import targets

GT = jnp.array([[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]], jnp.float32)
GT_MASK = jnp.array([True, True, False])  # The third is padding.
# IoUs with GT[0]: 1, 0.5, 0.2; with GT[1]: 0.25, 25 / 175; the last anchor equals the padding box.
ANCHORS = jnp.array([[0, 0, 10, 10], [0, 0, 10, 5], [0, 0, 10, 2], [50, 50, 60, 52.5],
                     [55, 55, 65, 65], [100, 100, 110, 110]], jnp.float32)


def test_match_boxes_thresholds_and_best_anchors():
  labels, matches = targets.match_boxes(ANCHORS, GT, GT_MASK, 0.7, 0.3)
  np.testing.assert_array_equal(labels, [1, -1, 0, 0, 0, 0])
  np.testing.assert_array_equal(matches[:5], [0, 0, 0, 1, 1])
  labels, _ = targets.match_boxes(ANCHORS, GT, GT_MASK, 0.7, 0.3, best_anchors_positive=True)
  np.testing.assert_array_equal(labels, [1, -1, 0, 1, 0, 0])
  labels, _ = targets.match_boxes(ANCHORS, GT, GT_MASK, 0.7, 0.3, valid=jnp.arange(6) != 0)
  np.testing.assert_array_equal(labels, [-1, -1, 0, 0, 0, 0])
  labels, _ = targets.match_boxes(ANCHORS, GT[:0], GT_MASK[:0], 0.7, 0.3, True)
  np.testing.assert_array_equal(labels, [0] * 6)


def test_sample_balanced_counts_and_randomness():
  labels = jnp.array([1, 1, 1, 0, 0, 0, 0, -1, 1, 0])
  sample = jax.jit(targets.sample_balanced, static_argnums=(2, 3))
  draws = set()
  for seed in range(8):
    indices, positive, valid = sample(jax.random.key(seed), labels, 6, 0.5)
    np.testing.assert_array_equal(positive, [True] * 3 + [False] * 3)
    assert valid.all() and len(set(indices.tolist())) == 6
    np.testing.assert_array_equal(labels[indices], [1] * 3 + [0] * 3)
    draws.add(tuple(indices.tolist()))
  assert len(draws) > 1
  again = sample(jax.random.key(7), labels, 6, 0.5)[0]
  np.testing.assert_array_equal(again, indices)
  # Fewer boxes than draws: every positive and negative, then padding.
  indices, positive, valid = sample(jax.random.key(0), labels, 14, 0.5)
  assert positive.sum() == 4 and valid.sum() == 9
  assert sorted(indices[:9].tolist()) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
  np.testing.assert_array_equal(indices[9:], 0)
  # Few positives: negatives fill the rest.
  _, positive, valid = sample(jax.random.key(0), jnp.array([1, 0, 0, 0, 0, 0]), 4, 0.5)
  assert positive.sum() == 1 and valid.sum() == 4


def test_rpn_targets():
  out = targets.rpn_targets(jax.random.key(0), ANCHORS, GT, GT_MASK, num_samples=8)
  assert out['positive'].sum() == 2 and out['valid'].sum() == 5  # Anchor 1 is ignored.
  np.testing.assert_array_equal(sorted(out['indices'][:2].tolist()), [0, 3])
  np.testing.assert_array_equal(out['objectness'], out['positive'])
  slot = int(np.flatnonzero(np.asarray(out['indices']) == 3)[0])
  np.testing.assert_allclose(out['deltas'][slot], box_ops.encode_boxes(GT[1], ANCHORS[3]),
                             atol=1e-6)
  np.testing.assert_array_equal(out['deltas'][~out['positive']], 0)


def test_box_head_targets_append_ground_truth():
  proposals = jnp.array([[0, 0, 10, 8], [20, 20, 30, 30], [0, 0, 10, 10]], jnp.float32)
  mask = jnp.array([True, True, False])
  out = targets.box_head_targets(jax.random.key(0), proposals, mask, GT, jnp.array([1, 2, 1]),
                                 jnp.array([4, oim.UNLABELLED, 9]), GT_MASK, num_samples=8,
                                 positive_fraction=0.5)
  # Foreground: proposal 0 (IoU 0.8 with GT[0]) and the two valid GT boxes; background: proposal 1.
  assert out['foreground'].sum() == 3 and out['valid'].sum() == 4
  fg = np.asarray(out['foreground'])
  boxes = {tuple(b) for b in np.asarray(out['boxes'])[fg].tolist()}
  assert boxes == {(0, 0, 10, 8), (0, 0, 10, 10), (50, 50, 60, 60)}
  for box, cls, identity, delta in zip(*(np.asarray(out[k])[fg] for k in
                                         ('boxes', 'classes', 'identities', 'deltas'))):
    gt = 0 if box[0] == 0 else 1
    assert cls == [1, 2][gt] and identity == [4, oim.UNLABELLED][gt]
    np.testing.assert_allclose(delta, box_ops.encode_boxes(GT[gt], box, BOX_DELTA_WEIGHTS),
                               atol=1e-5)
  background = np.asarray(out['valid']) & ~fg
  np.testing.assert_array_equal(np.asarray(out['classes'])[background], [0])
  np.testing.assert_array_equal(np.asarray(out['boxes'])[background], [[20, 20, 30, 30]])


def test_smooth_l1():
  np.testing.assert_allclose(losses.smooth_l1(jnp.array([0.0, 0.05, -1.0])),
                             [0.0, 0.5 * 0.05**2 * 9, 1 - 1 / 18], rtol=1e-6)


def test_rpn_losses_by_hand():
  rpn_targets = {'indices': jnp.array([[2, 0, 1]]), 'objectness': jnp.array([[1.0, 0, 0]]),
                 'deltas': jnp.array([[[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]]),
                 'positive': jnp.array([[True, False, False]]),
                 'valid': jnp.array([[True, True, False]])}
  objectness = jnp.array([[0.0, 5.0, 2.0]])
  deltas = jnp.zeros((1, 3, 4)).at[0, 0, 0].set(7.0)  # Anchor 0 is a negative: no box loss.
  classification, box = losses.rpn_losses(objectness, deltas, rpn_targets)
  # Anchor 2 (positive, logit 2) and anchor 0 (negative, logit 0); anchor 1's draw is padding.
  np.testing.assert_allclose(classification, (np.log1p(np.exp(-2)) + np.log(2)) / 2, rtol=1e-6)
  np.testing.assert_allclose(box, (1 - 1 / 18) / 2, rtol=1e-6)


def test_box_head_losses_by_hand():
  box_targets = {'classes': jnp.array([[2, 0]]), 'valid': jnp.array([[True, True]]),
                 'foreground': jnp.array([[True, False]]),
                 'deltas': jnp.array([[[0.05, 0, 0, 0], [0, 0, 0, 0]]])}
  logits = jnp.zeros((1, 2, 3))
  deltas = jnp.zeros((1, 2, 3, 4)).at[0, 0, 1].set(5.0)  # Class 1's deltas are not the target's.
  classification, box = losses.box_head_losses(logits, deltas, box_targets)
  np.testing.assert_allclose(classification, np.log(3), rtol=1e-6)
  np.testing.assert_allclose(box, 0.5 * 0.05**2 * 9 / 2, rtol=1e-5)
  _, agnostic = losses.box_head_losses(logits, deltas[:, :, 1:2], box_targets)
  # All four agnostic deltas are 5: linear branch of smooth L1.
  np.testing.assert_allclose(agnostic, (4.95 + 3 * 5 - 4 / 18) / 2, rtol=1e-5)


def test_identification_loss_uses_foreground_regions_only():
  state = oim.OIMState(jnp.eye(2), jnp.zeros((2, 2)), jnp.array(0, jnp.int32))
  embeddings = jnp.array([[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6]]])
  box_targets = {'identities': jnp.array([[1, oim.UNLABELLED, 0, 0]]),
                 'foreground': jnp.array([[True, True, True, False]]),
                 'valid': jnp.array([[True, True, False, True]])}
  loss, new_state = losses.identification_loss(state, embeddings, box_targets)
  # Only region 0 is labelled, valid and foreground: identity 1 against [1, 0, 0, 0] x 10.
  np.testing.assert_allclose(loss, -0 + np.log(np.exp(10) + 3), rtol=1e-6)
  np.testing.assert_allclose(new_state.queue[0], [0.0, 1.0])  # Region 1 is unlabelled.
  assert int(new_state.queue_pointer) == 1
  np.testing.assert_allclose(new_state.lut[0], [1.0, 0.0])
