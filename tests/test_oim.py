"""OIM loss, lookup-table and queue updates on hand-checked cases: 3 identities, 4 slots, 2-d."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vsreid_jax.models import oim

U = oim.UNLABELLED


def _state(pointer=3):
  lut = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # Identity 2 not seen yet.
  queue = jnp.array([[-1.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
  return oim.OIMState(lut, queue, jnp.array(pointer, jnp.int32))


def test_init_state():
  state = oim.init_oim_state(7, features=5, queue_size=4)
  assert state.lut.shape == (7, 5) and state.queue.shape == (4, 5)
  assert int(state.queue_pointer) == 0
  assert oim.init_oim_state(10).queue.shape == (5000, 256)
  with pytest.raises(ValueError, match='queue_size'):
    oim.init_oim_state(3, queue_size=0)


def test_loss_and_updates_by_hand():
  embeddings = jnp.array([[0.6, 0.8], [0.6, 0.8], [0.0, 1.0], [0.8, 0.6], [0.0, -1.0]])
  labels = jnp.array([0, U, 1, U, 2])
  mask = jnp.array([True, True, False, True, True])  # Box 2 is padding.
  loss, state = jax.jit(oim.oim_loss)(_state(), embeddings, labels, mask)

  # Box 0 against [lut; queue] = [0.6, 0.8, 0, -0.6, 0, 0, 0], times 10.
  box0 = -6 + np.log(np.exp(6) + np.exp(8) + np.exp(-6) + 4)
  # Box 4: [0, -1, 0, 0, 0, 0, 0] times 10, identity 2's row still zero.
  box4 = np.log(6 + np.exp(-10))
  np.testing.assert_allclose(loss, (box0 + box4) / 2, rtol=1e-6)

  np.testing.assert_allclose(state.lut, [[2 / 5**0.5, 1 / 5**0.5], [0, 1], [0, -1]], rtol=1e-6)
  # The queue wraps around: slot 3, then slot 0.
  np.testing.assert_allclose(state.queue, [[0.8, 0.6], [0, 0], [0, 0], [0.6, 0.8]])
  assert int(state.queue_pointer) == 1


def test_repeated_identity_updates_in_order():
  a, b = np.array([0.6, 0.8]), np.array([0.0, -1.0])
  _, state = oim.oim_loss(_state(), jnp.array([a, b]), jnp.array([1, 1]))
  normalise = lambda v: v / np.linalg.norm(v)
  first = normalise(0.5 * np.array([0.0, 1.0]) + 0.5 * a)
  np.testing.assert_allclose(state.lut[1], normalise(0.5 * first + 0.5 * b), atol=1e-6)


def test_more_unlabelled_boxes_than_queue_slots_keep_the_latest():
  embeddings = np.arange(12.0).reshape(6, 2)
  _, state = oim.oim_loss(_state(pointer=2), embeddings, jnp.full((6,), U))
  # Boxes 0..5 go to slots 2, 3, 0, 1, 2, 3: the last four survive.
  np.testing.assert_array_equal(state.queue, embeddings[[2, 3, 4, 5]])
  assert int(state.queue_pointer) == 0


def test_no_labelled_box_gives_zero_loss_and_out_of_range_labels_are_ignored():
  embeddings = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  loss, state = oim.oim_loss(_state(), embeddings, jnp.array([3, -2]))
  assert float(loss) == 0.0
  for before, after in zip(_state(), state):
    np.testing.assert_array_equal(before, after)


def test_padding_changes_nothing():
  rng = np.random.default_rng(0)
  embeddings = rng.normal(size=(5, 2))
  embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
  labels = jnp.array([0, U, 2, 1, U])
  loss, state = oim.oim_loss(_state(), embeddings[:3], labels[:3])
  padded_loss, padded_state = oim.oim_loss(_state(), embeddings, labels,
                                           jnp.array([True] * 3 + [False] * 2))
  np.testing.assert_allclose(padded_loss, loss, rtol=1e-6)
  for unpadded, padded in zip(state, padded_state):
    np.testing.assert_allclose(padded, unpadded, rtol=1e-6)


def test_gradients_reach_embeddings_only():
  embeddings = jnp.array([[0.8, 0.6], [0.6, 0.8]])
  labels = jnp.array([0, 1])

  def loss(lut, queue, embeddings):
    return oim.oim_loss(_state()._replace(lut=lut, queue=queue), embeddings, labels)[0]

  lut_grad, queue_grad, embedding_grad = jax.grad(loss, argnums=(0, 1, 2))(
      _state().lut, _state().queue, embeddings)
  assert np.isfinite(embedding_grad).all() and np.abs(embedding_grad).sum() > 0
  np.testing.assert_array_equal(lut_grad, 0)
  np.testing.assert_array_equal(queue_grad, 0)
  # Raising the true identity's similarity lowers the loss, and so does a sharper softmax
  # when the true identity already scores highest.
  assert float(embedding_grad[0] @ jnp.array([1.0, 0.0])) < 0
  scaled = functools.partial(oim.oim_loss, scale=20.0)
  assert scaled(_state(), embeddings, labels)[0] < oim.oim_loss(_state(), embeddings, labels)[0]
