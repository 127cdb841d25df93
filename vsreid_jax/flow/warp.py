"""The official VS-ReID forward-backward flow warp of labels and probabilities between frames."""

import numpy as np

# Forward-backward disagreement, in pixels (Euclidean), at which a pixel is rejected.
MAX_FLOW_ERROR = 100.0


def warp_positions(backward_flow, forward_flow):
  """Where each pixel of the current frame reads its warped value in the previous frame.

  "Previous" is the frame propagated from: the earlier frame when propagating
  forward in time, the later one when propagating backward. For each pixel p,
  q = p + backward_flow(p) and the forward flow is sampled bilinearly at q;
  p is kept when |forward_flow(q) + backward_flow(p)| < 100 (Euclidean norm),
  and it reads the previous frame at p + (backward_flow(p) - forward_flow(q)) / 2
  rounded to the nearest pixel.

  Readings of the official `get_warp_label` (core/utils/flow.py), followed as
  written:
    * q and the read position must both lie in [0, H - 1) x [0, W - 1): the far
      bound is strict, so anything landing exactly on the last row or column is
      rejected, and with zero flow the last row and column come out empty.
    * Rounding is NumPy's half-to-even, so a read position of 2.5 reads pixel 2.
    * Arithmetic is in float64, as the official code's integer grid promotes it,
      so the threshold and the rounding see the same numbers up to the order of
      floating-point operations.

  Args:
    backward_flow: [H, W, 2] flow (x, y) in pixels from the current frame to
      the previous one.
    forward_flow: [H, W, 2] flow (x, y) in pixels from the previous frame to the
      current one.

  Returns:
    (rows, cols, valid): intp [H, W] row and column read in the previous frame
    (0 where not valid) and bool [H, W], True where the pixel gets a value.

  Raises:
    ValueError: flows that are not [H, W, 2] of one size.
  """
  backward_flow = np.asarray(backward_flow, np.float64)
  forward_flow = np.asarray(forward_flow, np.float64)
  if backward_flow.ndim != 3 or backward_flow.shape[2] != 2:
    raise ValueError(f'backward_flow must be [H, W, 2], got shape {backward_flow.shape}')
  if forward_flow.shape != backward_flow.shape:
    raise ValueError(f'forward_flow shape {forward_flow.shape} differs from backward_flow '
                     f'shape {backward_flow.shape}')
  height, width = backward_flow.shape[:2]
  rows, cols = np.indices((height, width), np.float64)
  # (x, y) planes first: NumPy broadcasts [H, W] weights over them far faster
  # than over a trailing axis of length 2.
  backward_x, backward_y = np.moveaxis(backward_flow, -1, 0)
  forward_planes = np.ascontiguousarray(np.moveaxis(forward_flow, -1, 0))

  query_rows = rows + backward_y
  query_cols = cols + backward_x
  valid = _inside(query_rows, query_cols, height, width)
  sampled_x, sampled_y = _sample_bilinear(forward_planes, np.where(valid, query_rows, 0),
                                          np.where(valid, query_cols, 0))
  error_x = sampled_x + backward_x
  error_y = sampled_y + backward_y
  valid &= np.sqrt(error_x * error_x + error_y * error_y) < MAX_FLOW_ERROR

  read_rows = rows + (backward_y - sampled_y) / 2
  read_cols = cols + (backward_x - sampled_x) / 2
  valid &= _inside(read_rows, read_cols, height, width)
  read_rows = np.round(np.where(valid, read_rows, 0)).astype(np.intp)
  read_cols = np.round(np.where(valid, read_cols, 0)).astype(np.intp)
  return read_rows, read_cols, valid


def _inside(rows, cols, height, width):
  """Positions in [0, H - 1) x [0, W - 1), where all four bilinear neighbours exist."""
  return (rows >= 0) & (rows < height - 1) & (cols >= 0) & (cols < width - 1)


def _sample_bilinear(planes, rows, cols):
  """Bilinear samples of [C, H, W] `planes` at positions with all neighbours inside."""
  channels, height, width = planes.shape
  flat = planes.reshape(channels, height * width)
  top = np.floor(rows).astype(np.intp)
  left = np.floor(cols).astype(np.intp)
  # Only reached by a 1-pixel-high or -wide image, whose positions are all rejected.
  bottom = np.minimum(top + 1, height - 1)
  right = np.minimum(left + 1, width - 1)
  top_weight = 1 - (rows - top)
  left_weight = 1 - (cols - left)
  bottom_weight = 1 - (bottom - rows)
  right_weight = 1 - (right - cols)
  return (top_weight * left_weight * np.take(flat, top * width + left, axis=1)
          + bottom_weight * left_weight * np.take(flat, bottom * width + left, axis=1)
          + top_weight * right_weight * np.take(flat, top * width + right, axis=1)
          + bottom_weight * right_weight * np.take(flat, bottom * width + right, axis=1))


def warp_labels(prev_labels, backward_flow, forward_flow):
  """Warps the previous frame's label map to the current frame.

  The official code only warps probabilities; a label map is looked up at the
  same positions, which gives the argmax of the warped one-hot probabilities.

  Args:
    prev_labels: [H, W] label map of the previous frame.
    backward_flow: [H, W, 2] flow from the current frame to the previous one.
    forward_flow: [H, W, 2] flow from the previous frame to the current one.

  Returns:
    [H, W] labels of `prev_labels`' dtype; 0 (background) where the flows
    disagree or point out of the image (see `warp_positions`).

  Raises:
    ValueError: shapes that do not match.
  """
  return _warp(prev_labels, 2, backward_flow, forward_flow)


def warp_probabilities(prev_probs, backward_flow, forward_flow):
  """Warps the previous frame's per-channel probabilities to the current frame.

  Args:
    prev_probs: [H, W, K] probabilities of the previous frame, channels last.
    backward_flow: [H, W, 2] flow from the current frame to the previous one.
    forward_flow: [H, W, 2] flow from the previous frame to the current one.

  Returns:
    [H, W, K] array of `prev_probs`' dtype; where the flows disagree or point
    out of the image (see `warp_positions`) every channel is 0, a background
    channel included, as in the official code (an argmax there picks channel 0).

  Raises:
    ValueError: shapes that do not match.
  """
  return _warp(prev_probs, 3, backward_flow, forward_flow)


def _warp(values, ndim, backward_flow, forward_flow):
  """Looks `values` ([H, W] or [H, W, K], by `ndim`) up at the warp positions; 0 elsewhere."""
  rows, cols, valid = warp_positions(backward_flow, forward_flow)
  height, width = valid.shape
  values = np.asarray(values)
  if values.ndim != ndim or values.shape[:2] != valid.shape:
    expected = '[H, W]' if ndim == 2 else '[H, W, K]'
    raise ValueError(f'values must be {expected} with H, W = {valid.shape} of the flows, '
                     f'got shape {values.shape}')
  # A flat `take` is several times faster than 2-D fancy indexing.
  warped = np.take(values.reshape(height * width, *values.shape[2:]), rows * width + cols, axis=0)
  warped[~valid] = 0
  return warped
