"""Tests for the forward-backward flow warp."""

import math

import numpy as np
import pytest

from vsreid_jax.flow import warp


def _labels(height, width):
  return np.arange(1, height * width + 1, dtype=np.int32).reshape(height, width)


def _constant_flow(height, width, x, y):
  return np.broadcast_to(np.array([x, y], np.float32), (height, width, 2))


def _reference_warp_labels(prev_labels, backward_flow, forward_flow):
  """The warp written pixel by pixel, straight from its definition."""
  height, width = prev_labels.shape
  inside = lambda row, col: 0 <= row < height - 1 and 0 <= col < width - 1
  warped = np.zeros_like(prev_labels)
  for row in range(height):
    for col in range(width):
      back_x, back_y = backward_flow[row, col].astype(np.float64)
      query_row, query_col = row + back_y, col + back_x
      if not inside(query_row, query_col):
        continue
      top, left = math.floor(query_row), math.floor(query_col)
      down, across = query_row - top, query_col - left
      sampled = ((1 - down) * (1 - across) * forward_flow[top, left]
                 + down * (1 - across) * forward_flow[top + 1, left]
                 + (1 - down) * across * forward_flow[top, left + 1]
                 + down * across * forward_flow[top + 1, left + 1]).astype(np.float64)
      if math.hypot(sampled[0] + back_x, sampled[1] + back_y) >= 100:
        continue
      read_row = row + (back_y - sampled[1]) / 2
      read_col = col + (back_x - sampled[0]) / 2
      if inside(read_row, read_col):
        warped[row, col] = prev_labels[round(read_row), round(read_col)]
  return warped


def test_zero_flow_is_identity_but_for_last_row_and_column():
  labels = _labels(6, 7)
  zero = np.zeros((6, 7, 2), np.float32)
  warped = warp.warp_labels(labels, zero, zero)
  np.testing.assert_array_equal(warped[:-1, :-1], labels[:-1, :-1])
  # The official bound is strict on the far side: [0, H - 1) x [0, W - 1).
  assert not warped[-1].any() and not warped[:, -1].any()


def test_constant_translation_moves_labels():
  height, width = 10, 12
  labels = _labels(height, width)
  # Content moves 3 px right and 2 px up from the previous frame to the current one.
  forward = _constant_flow(height, width, 3, -2)
  backward = _constant_flow(height, width, -3, 2)
  expected = np.zeros_like(labels)
  expected[:height - 3, 3:] = labels[2:height - 1, :width - 3]
  np.testing.assert_array_equal(warp.warp_labels(labels, backward, forward), expected)


def test_probabilities_follow_labels_and_are_zero_where_rejected():
  height, width, channels = 10, 12, 4
  rng = np.random.default_rng(0)
  labels = rng.integers(0, channels, (height, width))
  probs = np.eye(channels, dtype=np.float32)[labels]
  forward = _constant_flow(height, width, 3, -2)
  backward = _constant_flow(height, width, -3, 2)
  warped = warp.warp_probabilities(probs, backward, forward)
  _, _, valid = warp.warp_positions(backward, forward)
  assert warped.shape == probs.shape and warped.dtype == np.float32
  np.testing.assert_array_equal(warped.argmax(-1)[valid],
                                warp.warp_labels(labels, backward, forward)[valid])
  assert not warped[~valid].any() and warped[valid].sum(-1).min() == 1


def test_inconsistent_region_is_rejected_at_100_pixels():
  height, width = 10, 100
  labels = _labels(height, width)
  backward = np.zeros((height, width, 2), np.float32)
  forward = np.zeros((height, width, 2), np.float32)
  # Rows 0-4 disagree by 50.5 + 48.5 = 99 px, rows 5-9 by 51 + 49 = 100 px;
  # both move by (backward - forward) / 2 = 1 px to the right.
  backward[:5, :30, 0], forward[:5, 40:, 0] = 50.5, 48.5
  backward[5:, :30, 0], forward[5:, 40:, 0] = 51, 49
  warped = warp.warp_labels(labels, backward, forward)
  np.testing.assert_array_equal(warped[:5, :30], labels[:5, 1:31])
  assert not warped[5:, :30].any()
  np.testing.assert_array_equal(warped[:-1, 30:40], labels[:-1, 30:40])


@pytest.mark.parametrize('forward_y, kept', [(39, False), (37, True)])
def test_rejection_uses_euclidean_norm(forward_y, kept):
  backward = _constant_flow(64, 64, 31, 41)
  forward = _constant_flow(64, 64, 29, forward_y)
  # Errors (60, 80) and (60, 78): Euclidean 100 and 98.4, unlike max or sum.
  rows, cols, valid = warp.warp_positions(backward, forward)
  assert valid[10, 10] == kept
  if kept:
    assert (rows[10, 10], cols[10, 10]) == (12, 11)


def test_read_position_out_of_image_is_rejected():
  height, width = 4, 12
  labels = _labels(height, width)
  backward = np.zeros((height, width, 2), np.float32)
  # Consistent enough (10 px) to keep, but the read position moves 5 px left.
  forward = _constant_flow(height, width, 10, 0)
  warped = warp.warp_labels(labels, backward, forward)
  assert not warped[:, :5].any()
  np.testing.assert_array_equal(warped[:-1, 5:-1], labels[:-1, :width - 6])


def test_rounding_is_half_to_even():
  backward = _constant_flow(8, 8, 1, 1)
  forward = np.zeros((8, 8, 2), np.float32)
  # Read positions are (row + 0.5, col + 0.5).
  rows, cols, valid = warp.warp_positions(backward, forward)
  assert valid[:6, :6].all() and not valid[6:].any() and not valid[:, 6:].any()
  np.testing.assert_array_equal(rows[:6, 0], [0, 2, 2, 4, 4, 6])
  np.testing.assert_array_equal(cols[0, :6], [0, 2, 2, 4, 4, 6])


def test_matches_pixel_by_pixel_definition():
  rng = np.random.default_rng(1)
  height, width = 17, 23
  labels = _labels(height, width)
  backward = rng.normal(0, 4, (height, width, 2)).astype(np.float32)
  forward = (-backward + rng.normal(0, 1, (height, width, 2))).astype(np.float32)
  # Gross disagreements on both sides of the threshold in a third of the image.
  gross = rng.random((height, width)) < 0.3
  forward[gross] += rng.uniform(-120, 120, (gross.sum(), 2)).astype(np.float32)
  warped = warp.warp_labels(labels, backward, forward)
  np.testing.assert_array_equal(warped, _reference_warp_labels(labels, backward, forward))
  assert warped[gross].any() and not warped[gross].all()


def test_shape_errors():
  flow = np.zeros((4, 5, 2), np.float32)
  with pytest.raises(ValueError, match='forward_flow shape'):
    warp.warp_positions(flow, flow[:, :4])
  with pytest.raises(ValueError, match=r'backward_flow must be \[H, W, 2\]'):
    warp.warp_positions(flow[..., 0], flow[..., 0])
  with pytest.raises(ValueError, match=r'\[H, W, K\]'):
    warp.warp_probabilities(np.zeros((4, 5)), flow, flow)
  with pytest.raises(ValueError, match=r'\[H, W\]'):
    warp.warp_labels(np.zeros((4, 6)), flow, flow)
