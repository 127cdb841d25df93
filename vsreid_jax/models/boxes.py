"""Box operations for the detector: IoU, delta coding, clipping, static-shape NMS, anchors.

Boxes are (x0, y0, x1, y1) in continuous pixel coordinates (max-exclusive, as the
synthetic videos' boxes), so a box's width is x1 - x0, as in torchvision.
"""

import math

import jax
import jax.numpy as jnp

# torchvision's `BoxCoder.bbox_xform_clip`: no decoded box grows more than 1000/16
# times its reference, so exp() cannot overflow on an untrained network.
DELTA_CLIP = math.log(1000.0 / 16)
# Widths and heights are floored here before division and log, which gives
# degenerate (zero-area) boxes finite deltas.
_MIN_SIZE = 1e-3


def box_area(boxes):
  """Areas of [..., 4] boxes; inverted boxes have area 0."""
  return (jnp.maximum(boxes[..., 2] - boxes[..., 0], 0.0) *
          jnp.maximum(boxes[..., 3] - boxes[..., 1], 0.0))


def pairwise_iou(boxes1, boxes2):
  """[N, M] intersection over union of [N, 4] and [M, 4] boxes; 0 where the union is empty."""
  top_left = jnp.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
  bottom_right = jnp.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
  size = jnp.maximum(bottom_right - top_left, 0.0)
  intersection = size[..., 0] * size[..., 1]
  union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - intersection
  return jnp.where(union > 0, intersection / jnp.where(union > 0, union, 1.0), 0.0)


def _centre_size(boxes):
  size = jnp.maximum(boxes[..., 2:] - boxes[..., :2], _MIN_SIZE)
  return boxes[..., :2] + 0.5 * size, size


def encode_boxes(boxes, references, weights=(1.0, 1.0, 1.0, 1.0)):
  """Faster R-CNN deltas (dx, dy, dw, dh) that turn `references` into `boxes`.

  Args:
    boxes: [..., 4] target boxes.
    references: [..., 4] anchors or proposals, broadcastable against `boxes`.
    weights: (wx, wy, ww, wh) multipliers of the deltas, (10, 10, 5, 5) for the
      box head of torchvision's Faster R-CNN.

  Returns:
    [..., 4] deltas.
  """
  weights = jnp.asarray(weights, jnp.float32)
  centre, size = _centre_size(boxes)
  ref_centre, ref_size = _centre_size(references)
  offset = (centre - ref_centre) / ref_size
  return jnp.concatenate([offset, jnp.log(size / ref_size)], axis=-1) * weights


def decode_boxes(deltas, references, weights=(1.0, 1.0, 1.0, 1.0), clip=DELTA_CLIP):
  """Boxes from deltas, the inverse of `encode_boxes`; dw and dh are clipped at `clip` first."""
  deltas = deltas / jnp.asarray(weights, jnp.float32)
  ref_centre, ref_size = _centre_size(references)
  centre = ref_centre + deltas[..., :2] * ref_size
  half_size = 0.5 * jnp.exp(jnp.minimum(deltas[..., 2:], clip)) * ref_size
  return jnp.concatenate([centre - half_size, centre + half_size], axis=-1)


def clip_boxes(boxes, height, width):
  """Boxes cut to the image [0, width] x [0, height]; a box fully outside becomes degenerate."""
  upper = jnp.asarray([width, height, width, height], boxes.dtype)
  return jnp.clip(boxes, 0.0, upper)


def non_max_suppression(boxes, scores, iou_threshold, max_outputs, valid=None):
  """Greedy NMS with static shapes: by decreasing score, keep each box overlapping no kept box.

  A box is suppressed when its IoU with a higher-scoring kept box exceeds
  `iou_threshold` (torchvision's rule); equal scores keep their input order.

  Args:
    boxes: [N, 4].
    scores: [N].
    iou_threshold: suppression threshold.
    max_outputs: static number of outputs.
    valid: optional [N] bool; invalid boxes are neither kept nor suppress others.

  Returns:
    (indices, mask): [max_outputs] int32 indices into `boxes` of the kept boxes
    by decreasing score, padded with 0, and [max_outputs] bool, True for kept.
  """
  num_boxes = boxes.shape[0]
  if num_boxes == 0:
    return jnp.zeros((max_outputs,), jnp.int32), jnp.zeros((max_outputs,), bool)
  if valid is None:
    valid = jnp.ones((num_boxes,), bool)
  order = jnp.argsort(jnp.where(valid, -scores, jnp.inf), stable=True)
  sorted_valid = valid[order]
  overlaps = pairwise_iou(boxes[order], boxes[order]) > iou_threshold

  def visit(i, keep):
    suppressed = jnp.any(keep & overlaps[i])
    return keep.at[i].set(sorted_valid[i] & ~suppressed)

  keep = jax.lax.fori_loop(0, num_boxes, visit, jnp.zeros((num_boxes,), bool))
  # Kept boxes first, each group in score order; padding to `max_outputs` when N is smaller.
  keep = jnp.pad(keep, (0, max(0, max_outputs - num_boxes)))
  order = jnp.pad(order, (0, max(0, max_outputs - num_boxes)))
  slots = jnp.argsort(~keep, stable=True)[:max_outputs]
  mask = keep[slots]
  return jnp.where(mask, order[slots], 0).astype(jnp.int32), mask


def generate_anchors(feature_height, feature_width, stride=16, scales=(32, 64, 128, 256, 512),
                     aspect_ratios=(0.5, 1.0, 2.0)):
  """Anchors of every feature-map cell, as torchvision's `AnchorGenerator`.

  Each cell (y, x) has anchors centred on (x * stride, y * stride), one per
  (aspect ratio, scale) with ratio = height / width and area scale**2, rounded
  to whole pixels.

  Args:
    feature_height: rows of the feature map.
    feature_width: columns of the feature map.
    stride: pixels per feature-map cell.
    scales: anchor sizes (square roots of their areas) in pixels.
    aspect_ratios: height / width ratios.

  Returns:
    [feature_height * feature_width * A, 4] float32 anchors, cell-major
    (row, column, then anchor) to match a flattened [H, W, A] head output,
    A = len(aspect_ratios) * len(scales).
  """
  height_ratios = jnp.sqrt(jnp.asarray(aspect_ratios, jnp.float32))
  scales = jnp.asarray(scales, jnp.float32)
  half_widths = (scales[None, :] / height_ratios[:, None]).reshape(-1) / 2
  half_heights = (scales[None, :] * height_ratios[:, None]).reshape(-1) / 2
  base = jnp.round(jnp.stack([-half_widths, -half_heights, half_widths, half_heights], axis=-1))
  ys, xs = jnp.meshgrid(jnp.arange(feature_height, dtype=jnp.float32) * stride,
                        jnp.arange(feature_width, dtype=jnp.float32) * stride, indexing='ij')
  shifts = jnp.stack([xs, ys, xs, ys], axis=-1).reshape(-1, 1, 4)
  return (shifts + base[None]).reshape(-1, 4)
