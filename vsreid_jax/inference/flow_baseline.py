"""Mask propagation by optical flow alone: the network-free baseline of the pipeline.

Each frame's labels are the previous frame's labels warped by the official
forward-backward flow check. It runs the real flow and I/O path end to end and
gives the floor that the propagation network must beat.
"""

import time

import numpy as np

from vsreid_jax.data import palette
from vsreid_jax.flow.warp import warp_labels


def propagate_by_flow(first_mask, flow_source, timings=None):
  """Yields one label map per frame, the first mask first, warping frame to frame.

  Args:
    first_mask: [H, W] uint8 object ids of frame 0; 255 (void) counts as background.
    flow_source: `DisFlow` or `PrecomputedFlow` of the video.
    timings: optional dict; seconds spent on 'flow' and 'warp' are added to it.

  Yields:
    [H, W] uint8 label maps, frame by frame; nothing but the current map is kept.
  """
  timings = {} if timings is None else timings
  # Void (DAVIS 2017's unlabelled border pixels) is no object: background, as in `VSReID`.
  labels = np.where(first_mask == palette.VOID_LABEL, 0, first_mask).astype(np.uint8)
  yield labels
  for index in range(1, len(flow_source)):
    start = time.perf_counter()
    backward, forward = flow_source.backward(index), flow_source.forward(index - 1)
    middle = time.perf_counter()
    labels = warp_labels(labels, backward, forward)
    end = time.perf_counter()
    timings['flow'] = timings.get('flow', 0.0) + middle - start
    timings['warp'] = timings.get('warp', 0.0) + end - middle
    yield labels
