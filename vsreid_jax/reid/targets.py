"""Training targets of the detector with static shapes: anchor and proposal matching, sampling.

Labels of matched boxes are 1 (foreground), 0 (background) or -1 (ignored or
padding), as torchvision's `Matcher` and `BalancedPositiveNegativeSampler`.
"""

import jax
import jax.numpy as jnp

from vsreid_jax.models import boxes as box_ops
from vsreid_jax.models.detector import BOX_DELTA_WEIGHTS

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


def match_boxes(boxes, gt_boxes, gt_mask, high, low, best_anchors_positive=False, valid=None):
  """Labels each box by its largest IoU with a valid ground-truth box.

  Args:
    boxes: [N, 4] anchors or proposals.
    gt_boxes: [G, 4] ground-truth boxes.
    gt_mask: [G] bool, False for padding.
    high: IoU from which a box is positive.
    low: IoU below which a box is negative; in between, ignored.
    best_anchors_positive: also make positive, for each ground-truth box, the
      boxes with its largest IoU when that IoU is above zero (the RPN's rule,
      ties included, so every object has an anchor).
    valid: optional [N] bool; invalid boxes are ignored.

  Returns:
    ([N] int32 labels, [N] int32 index of each box's best ground-truth box
    (0 when none is valid)).
  """
  if gt_boxes.shape[0] == 0:
    # One padding box keeps the reductions below defined.
    gt_boxes, gt_mask = jnp.zeros((1, 4)), jnp.zeros((1,), bool)
  iou = jnp.where(gt_mask[None, :], box_ops.pairwise_iou(boxes, gt_boxes), -1.0)
  best_iou, matches = jnp.max(iou, axis=1), jnp.argmax(iou, axis=1).astype(jnp.int32)
  labels = jnp.where(best_iou >= high, POSITIVE, jnp.where(best_iou >= low, IGNORED, NEGATIVE))
  labels = jnp.where(best_iou < 0, NEGATIVE, labels)
  if best_anchors_positive:
    best_for_gt = jnp.max(iou, axis=0)
    is_best = jnp.any((iou == best_for_gt[None, :]) & (best_for_gt[None, :] > 0), axis=1)
    labels = jnp.where(is_best, POSITIVE, labels)
  if valid is not None:
    labels = jnp.where(valid, labels, IGNORED)
  return labels.astype(jnp.int32), matches


def sample_balanced(key, labels, num_samples, positive_fraction):
  """Draws a fixed number of boxes: positives up to a fraction, negatives for the rest.

  Args:
    key: PRNG key.
    labels: [N] `POSITIVE`, `NEGATIVE` or `IGNORED`.
    num_samples: static number of draws.
    positive_fraction: largest share of positives.

  Returns:
    ([num_samples] int32 indices into `labels`, positives first,
    [num_samples] bool True for drawn positives, [num_samples] bool True for
    drawn boxes; slots beyond the available boxes are padding (index 0).
  """
  num_boxes = labels.shape[0]
  priority = jax.random.uniform(key, (num_boxes,))

  def random_ranks(members):
    order = jnp.argsort(jnp.where(members, priority, 2.0))
    return jnp.zeros(num_boxes, jnp.int32).at[order].set(jnp.arange(num_boxes, dtype=jnp.int32))

  positive, negative = labels == POSITIVE, labels == NEGATIVE
  num_positive = jnp.minimum(jnp.sum(positive), int(num_samples * positive_fraction))
  num_negative = jnp.minimum(jnp.sum(negative), num_samples - num_positive)
  positive_rank, negative_rank = random_ranks(positive), random_ranks(negative)
  slot = jnp.where(positive & (positive_rank < num_positive), positive_rank,
                   jnp.where(negative & (negative_rank < num_negative),
                             num_positive + negative_rank, num_samples + num_boxes))
  indices = jnp.argsort(slot)[:num_samples]
  indices = jnp.pad(indices, (0, max(0, num_samples - num_boxes)))
  slots = jnp.arange(num_samples)
  drawn = slots < num_positive + num_negative
  return jnp.where(drawn, indices, 0).astype(jnp.int32), slots < num_positive, drawn


def rpn_targets(key, anchors, gt_boxes, gt_mask, num_samples=256, positive_fraction=0.5,
                high=0.7, low=0.3):
  """Sampled anchors of one image and their objectness and delta targets.

  Args:
    key: PRNG key of the sampling.
    anchors: [A, 4].
    gt_boxes: [G, 4] ground-truth boxes.
    gt_mask: [G] bool, False for padding.
    num_samples: anchors drawn per image.
    positive_fraction: largest share of positive anchors.
    high: IoU from which an anchor is positive (also each object's best anchors).
    low: IoU below which an anchor is negative.

  Returns:
    dict of 'indices' [S] of the drawn anchors, 'objectness' [S] float 1/0,
    'deltas' [S, 4] (unweighted) towards the matched boxes, 'positive' [S] and
    'valid' [S] bool, S = `num_samples`.
  """
  labels, matches = match_boxes(anchors, gt_boxes, gt_mask, high, low, best_anchors_positive=True)
  indices, positive, valid = sample_balanced(key, labels, num_samples, positive_fraction)
  deltas = box_ops.encode_boxes(gt_boxes[matches[indices]], anchors[indices])
  return {'indices': indices, 'objectness': positive.astype(jnp.float32),
          'deltas': jnp.where(positive[:, None], deltas, 0.0), 'positive': positive, 'valid': valid}


def box_head_targets(key, proposals, proposal_mask, gt_boxes, gt_classes, gt_identities, gt_mask,
                     num_samples=512, positive_fraction=0.25, foreground_iou=0.5):
  """Sampled regions of one image for the box head, with class, delta and identity targets.

  The ground-truth boxes join the proposals, so every object has a foreground
  region early in training. Regions with IoU >= `foreground_iou` are
  foreground; the others (IoU in [0, `foreground_iou`)) background.

  Args:
    key: PRNG key of the sampling.
    proposals: [P, 4] RPN proposals.
    proposal_mask: [P] bool, False for padding.
    gt_boxes: [G, 4] ground-truth boxes.
    gt_classes: [G] int classes in 1..C.
    gt_identities: [G] int identities (`oim.UNLABELLED` for none).
    gt_mask: [G] bool, False for padding.
    num_samples: regions drawn per image.
    positive_fraction: largest share of foreground regions.
    foreground_iou: IoU from which a region is foreground.

  Returns:
    dict of 'boxes' [S, 4] regions, 'classes' [S] int32 (0 for background),
    'deltas' [S, 4] targets weighted by `BOX_DELTA_WEIGHTS`, 'identities' [S]
    int32 of the matched objects, 'foreground' [S] and 'valid' [S] bool,
    S = `num_samples`.
  """
  regions = jnp.concatenate([proposals, gt_boxes])
  region_mask = jnp.concatenate([proposal_mask, gt_mask])
  labels, matches = match_boxes(regions, gt_boxes, gt_mask, foreground_iou, foreground_iou,
                                valid=region_mask)
  indices, foreground, valid = sample_balanced(key, labels, num_samples, positive_fraction)
  boxes, matched = regions[indices], matches[indices]
  deltas = box_ops.encode_boxes(gt_boxes[matched], boxes, BOX_DELTA_WEIGHTS)
  return {'boxes': boxes,
          'classes': jnp.where(foreground, gt_classes[matched], 0).astype(jnp.int32),
          'deltas': jnp.where(foreground[:, None], deltas, 0.0),
          'identities': gt_identities[matched].astype(jnp.int32),
          'foreground': foreground, 'valid': valid}
