"""Detector losses on sampled targets (see `targets`): RPN, box head and OIM identification."""

import jax.numpy as jnp
import optax

from vsreid_jax.models import oim

# torchvision's smooth-L1 transition point of both box losses.
SMOOTH_L1_BETA = 1 / 9


def smooth_l1(x, beta=SMOOTH_L1_BETA):
  """Elementwise smooth L1: quadratic below `beta`, linear above."""
  x = jnp.abs(x)
  return jnp.where(x < beta, 0.5 * x**2 / beta, x - 0.5 * beta)


def _per_draw_mean(values, valid):
  """Sum over valid draws divided by their number (at least 1), as torchvision normalises."""
  return jnp.sum(jnp.where(valid, values, 0.0)) / jnp.maximum(jnp.sum(valid), 1)


def rpn_losses(objectness, deltas, targets):
  """Objectness binary cross-entropy and smooth-L1 delta loss of the drawn anchors.

  Args:
    objectness: [B, A] logits.
    deltas: [B, A, 4] predicted deltas.
    targets: `targets.rpn_targets` of each image, stacked ([B, S] leaves).

  Returns:
    (objectness loss, box loss); both average over the drawn anchors, the
    box loss counting positives only.
  """
  indices = targets['indices']
  logits = jnp.take_along_axis(objectness, indices, axis=1)
  predicted = jnp.take_along_axis(deltas, indices[..., None], axis=1)
  valid = targets['valid']
  classification = _per_draw_mean(
      optax.sigmoid_binary_cross_entropy(logits, targets['objectness']), valid)
  box_errors = jnp.sum(smooth_l1(predicted - targets['deltas']), axis=-1)
  return classification, _per_draw_mean(jnp.where(targets['positive'], box_errors, 0.0), valid)


def box_head_losses(class_logits, box_deltas, targets):
  """Classification cross-entropy and smooth-L1 delta loss of the drawn regions.

  Args:
    class_logits: [B, S, C + 1] logits of the drawn regions.
    box_deltas: [B, S, C + 1 or 1, 4] their predicted deltas.
    targets: `targets.box_head_targets` of each image, stacked ([B, S] leaves).

  Returns:
    (classification loss, box loss); both average over the drawn regions, the
    box loss counting foreground ones only, on their class's deltas.
  """
  valid, classes = targets['valid'], targets['classes']
  classification = _per_draw_mean(
      optax.softmax_cross_entropy_with_integer_labels(class_logits, classes), valid)
  # Class-agnostic regression has a single box.
  box_class = jnp.minimum(classes, box_deltas.shape[2] - 1)
  predicted = jnp.take_along_axis(box_deltas, box_class[..., None, None], axis=2)[:, :, 0]
  box_errors = jnp.sum(smooth_l1(predicted - targets['deltas']), axis=-1)
  return classification, _per_draw_mean(jnp.where(targets['foreground'], box_errors, 0.0), valid)


def identification_loss(oim_state, embeddings, targets, momentum=0.5, scale=10.0):
  """OIM loss of the foreground regions' embeddings, and the updated lookup table and queue.

  A foreground region takes the identity of the object it matches; regions
  of objects without identity (`oim.UNLABELLED`) feed the queue; background
  regions take no part.

  Args:
    oim_state: `oim.OIMState`.
    embeddings: [B, S, E] unit embeddings of the drawn regions.
    targets: `targets.box_head_targets` of each image, stacked ([B, S] leaves).
    momentum: lookup-table momentum.
    scale: similarity scale (inverse temperature).

  Returns:
    (loss, new `OIMState`).
  """
  mask = targets['valid'] & targets['foreground']
  return oim.oim_loss(oim_state, embeddings.reshape(-1, embeddings.shape[-1]),
                      targets['identities'].reshape(-1), mask.reshape(-1), momentum, scale)
