"""Box operations against hand-computed values and a plain NumPy greedy NMS."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vsreid_jax.models import boxes as box_ops


def _random_boxes(rng, n, size=100.0):
  corner = rng.uniform(0, size, (n, 2))
  extent = rng.uniform(1, size / 2, (n, 2))
  return np.concatenate([corner, corner + extent], axis=1).astype(np.float32)


def _numpy_nms(boxes, scores, threshold, valid):
  """Greedy NMS in float64: visit boxes by decreasing score, keep those overlapping no kept box."""
  boxes = boxes.astype(np.float64)
  kept = []
  for i in np.argsort(-scores, kind='stable'):
    if not valid[i]:
      continue
    overlaps = []
    for j in kept:
      width = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
      height = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
      intersection = max(width, 0) * max(height, 0)
      area = lambda b: (b[2] - b[0]) * (b[3] - b[1])
      overlaps.append(intersection / (area(boxes[i]) + area(boxes[j]) - intersection))
    if all(o <= threshold for o in overlaps):
      kept.append(i)
  return kept


def test_iou_by_hand():
  a = jnp.array([[0, 0, 2, 2], [1, 1, 1, 1]], jnp.float32)
  b = jnp.array([[1, 1, 3, 3], [2, 0, 4, 2], [0, 0, 2, 2], [0.5, 0.5, 1, 1], [1, 1, 1, 1]],
                jnp.float32)
  expected = [[1 / 7, 0, 1, 0.25 / 4, 0],
              [0, 0, 0, 0, 0]]  # A zero-area box overlaps nothing, not even itself.
  np.testing.assert_allclose(box_ops.pairwise_iou(a, b), expected, rtol=1e-6)


def test_iou_of_empty_sets_has_static_shapes():
  assert box_ops.pairwise_iou(jnp.zeros((0, 4)), jnp.zeros((3, 4))).shape == (0, 3)


def test_encode_by_hand_and_with_weights():
  box = jnp.array([0, 0, 20, 10], jnp.float32)
  reference = jnp.array([0, 0, 10, 10], jnp.float32)
  np.testing.assert_allclose(box_ops.encode_boxes(box, reference), [0.5, 0, np.log(2), 0],
                             rtol=1e-6)
  np.testing.assert_allclose(box_ops.encode_boxes(box, reference, (10, 10, 5, 5)),
                             [5, 0, 5 * np.log(2), 0], rtol=1e-6)


@pytest.mark.parametrize('weights', [(1, 1, 1, 1), (10, 10, 5, 5)])
def test_encode_decode_round_trip(weights):
  rng = np.random.default_rng(0)
  boxes, references = _random_boxes(rng, 200), _random_boxes(rng, 200)
  deltas = box_ops.encode_boxes(boxes, references, weights)
  np.testing.assert_allclose(box_ops.decode_boxes(deltas, references, weights), boxes,
                             atol=1e-3)


def test_decode_clips_growth():
  reference = jnp.array([0, 0, 10, 10], jnp.float32)
  decoded = box_ops.decode_boxes(jnp.array([0, 0, 100, 100], jnp.float32), reference)
  np.testing.assert_allclose(decoded[2] - decoded[0], 10 * 1000 / 16, rtol=1e-5)


def test_degenerate_boxes_have_finite_deltas_and_boxes():
  degenerate = jnp.array([[5, 5, 5, 5], [5, 5, 3, 3], [0, 0, 0, 10]], jnp.float32)
  reference = jnp.array([0, 0, 10, 10], jnp.float32)
  for deltas in (box_ops.encode_boxes(degenerate, reference),
                 box_ops.encode_boxes(reference, degenerate)):
    assert np.isfinite(deltas).all()
    assert np.isfinite(box_ops.decode_boxes(deltas, degenerate)).all()


def test_clip_boxes_outside_the_image_become_empty():
  boxes = jnp.array([[-10, -10, -5, -5], [-5, 2, 50, 8], [25, 25, 40, 40]], jnp.float32)
  clipped = box_ops.clip_boxes(boxes, height=20, width=30)
  np.testing.assert_array_equal(clipped, [[0, 0, 0, 0], [0, 2, 30, 8], [25, 20, 30, 20]])
  np.testing.assert_array_equal(box_ops.box_area(clipped), [0, 180, 0])


@pytest.mark.parametrize('seed, threshold', [(0, 0.3), (1, 0.5), (2, 0.7)])
def test_nms_matches_numpy_reference(seed, threshold):
  rng = np.random.default_rng(seed)
  boxes = _random_boxes(rng, 60)
  scores = rng.uniform(size=60).astype(np.float32)
  scores[10:15] = scores[3]  # Ties keep their input order.
  valid = rng.uniform(size=60) > 0.2
  expected = _numpy_nms(boxes, scores, threshold, valid)
  nms = jax.jit(box_ops.non_max_suppression, static_argnums=(2, 3))
  indices, mask = nms(boxes, scores, threshold, 64, valid)
  assert int(mask.sum()) == len(expected) < 60
  np.testing.assert_array_equal(indices[:len(expected)], expected)
  assert mask[:len(expected)].all() and not mask[len(expected):].any()
  np.testing.assert_array_equal(indices[len(expected):], 0)


def test_nms_truncates_to_max_outputs():
  rng = np.random.default_rng(3)
  boxes = _random_boxes(rng, 40)
  scores = rng.uniform(size=40).astype(np.float32)
  expected = _numpy_nms(boxes, scores, 0.5, np.ones(40, bool))
  indices, mask = box_ops.non_max_suppression(boxes, scores, 0.5, 5)
  assert mask.all()
  np.testing.assert_array_equal(indices, expected[:5])


def test_nms_of_no_boxes_and_degenerate_boxes():
  indices, mask = box_ops.non_max_suppression(jnp.zeros((0, 4)), jnp.zeros((0,)), 0.5, 3)
  np.testing.assert_array_equal(indices, [0, 0, 0])
  assert not mask.any()
  # Zero-area boxes overlap nothing, so none suppresses another.
  degenerate = jnp.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 4, 4]], jnp.float32)
  indices, mask = box_ops.non_max_suppression(degenerate, jnp.array([0.9, 0.8, 0.7]), 0.5, 4)
  np.testing.assert_array_equal(indices, [0, 1, 2, 0])
  np.testing.assert_array_equal(mask, [True, True, True, False])


def test_anchors_by_hand():
  anchors = box_ops.generate_anchors(1, 2, stride=16, scales=(32,), aspect_ratios=(0.5, 1, 2))
  # Ratio 0.5: width 32 * sqrt(2) = 45.25 and height 22.63, halves rounded to 23 and 11.
  first_cell = [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]]
  np.testing.assert_array_equal(anchors, first_cell + [[x0 + 16, y0, x1 + 16, y1]
                                                       for x0, y0, x1, y1 in first_cell])


def test_anchor_layout_matches_a_flattened_head_output():
  anchors = box_ops.generate_anchors(3, 4, scales=(32, 64), aspect_ratios=(0.5, 1, 2))
  grid = anchors.reshape(3, 4, 6, 4)
  centres = (grid[..., :2] + grid[..., 2:]) / 2
  np.testing.assert_allclose(centres[2, 1, 5], [16, 32])
  np.testing.assert_allclose(box_ops.box_area(grid[0, 0, 1::2]) ** 0.5, 64, rtol=0.05)
