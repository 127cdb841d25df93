"""Online instance matching (OIM) loss of Xiao et al. 2017; its lookup table and queue are state."""

from typing import NamedTuple

import jax
import jax.numpy as jnp

UNLABELLED = -1
"""Label of a box with no identity: it feeds the queue and takes no loss."""


class OIMState(NamedTuple):
  """Non-learned memory of the loss, updated by `oim_loss`.

  Attributes:
    lut: [num_identities, features] one L2-normalised feature per labelled
      identity (zeros until the identity is first seen).
    queue: [queue_size, features] the latest features of unlabelled boxes.
    queue_pointer: int32 scalar, the queue slot written next.
  """
  lut: jax.Array
  queue: jax.Array
  queue_pointer: jax.Array


def init_oim_state(num_identities, features=256, queue_size=5000):
  """Empty lookup table and queue.

  Raises:
    ValueError: a size is not positive; the message names it.
  """
  for name, value in (('num_identities', num_identities), ('features', features),
                      ('queue_size', queue_size)):
    if value < 1:
      raise ValueError(f'{name} must be positive, got {value}')
  return OIMState(jnp.zeros((num_identities, features)), jnp.zeros((queue_size, features)),
                  jnp.zeros((), jnp.int32))


def _normalise(x):
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _update_memory(state, embeddings, labelled, unlabelled, labels, momentum):
  """Box by box, as the reference implementations: a box's update sees the previous boxes' ones."""

  def update(state, box):
    x, is_labelled, is_unlabelled, label = box
    row = jnp.where(is_labelled, label, 0)
    updated_row = _normalise(momentum * state.lut[row] + (1 - momentum) * x)
    lut = state.lut.at[row].set(jnp.where(is_labelled, updated_row, state.lut[row]))
    slot = state.queue_pointer
    queue = state.queue.at[slot].set(jnp.where(is_unlabelled, x, state.queue[slot]))
    pointer = (slot + is_unlabelled.astype(jnp.int32)) % state.queue.shape[0]
    return OIMState(lut, queue, pointer), None

  state, _ = jax.lax.scan(update, state, (embeddings, labelled, unlabelled, labels))
  return state


def oim_loss(state, embeddings, labels, mask=None, momentum=0.5, scale=10.0):
  """OIM loss of a batch of box embeddings, and the memory updated with them.

  Each box is scored against every lookup-table row and queue slot
  (cosine similarities times `scale`, i.e. temperature 1 / scale); the loss is
  the softmax cross-entropy of labelled boxes' identities over all those
  scores, averaged over labelled boxes (0 when there are none). Scores use the
  memory before this batch's updates; gradients reach the embeddings only.

  Args:
    state: `OIMState`.
    embeddings: [N, D] L2-normalised box embeddings.
    labels: [N] int, identities in [0, num_identities) or `UNLABELLED`; other
      values are ignored.
    mask: optional [N] bool, False for padding (ignored).
    momentum: weight of the old lookup-table row in its update.
    scale: multiplier of the cosine similarities.

  Returns:
    (loss, new_state).
  """
  if mask is None:
    mask = jnp.ones(labels.shape, bool)
  num_identities = state.lut.shape[0]
  labelled = mask & (labels >= 0) & (labels < num_identities)
  unlabelled = mask & (labels == UNLABELLED)
  memory = jax.lax.stop_gradient(jnp.concatenate([state.lut, state.queue]))
  logits = scale * embeddings @ memory.T
  log_probabilities = jax.nn.log_softmax(logits)
  target = jnp.take_along_axis(log_probabilities, jnp.where(labelled, labels, 0)[:, None],
                               axis=1)[:, 0]
  loss = -jnp.sum(jnp.where(labelled, target, 0.0)) / jnp.maximum(jnp.sum(labelled), 1)
  new_state = _update_memory(state, jax.lax.stop_gradient(embeddings), labelled, unlabelled,
                             labels, momentum)
  return loss, new_state
