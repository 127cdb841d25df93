"""Dense optical flow between two frames with OpenCV's DIS (dense inverse search)."""

import cv2
import numpy as np

from vsreid_jax.errors import InputError

PRESETS = {
    'ultrafast': cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    'fast': cv2.DISOPTICAL_FLOW_PRESET_FAST,
    'medium': cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def check_preset(preset):
  """Raises `InputError` unless `preset` names a DIS preset."""
  if preset not in PRESETS:
    allowed = ', '.join(repr(name) for name in PRESETS)
    raise InputError(f'unknown DIS flow preset {preset!r}; expected one of {allowed}')


def _to_gray(frame, role):
  frame = np.asarray(frame)
  if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
    raise InputError(f'{role} frame must be uint8 RGB [H, W, 3], got {frame.dtype} {frame.shape}')
  return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def compute_flow(source_rgb, target_rgb, preset='medium'):
  """Optical flow from one frame to another.

  Args:
    source_rgb: uint8 RGB [H, W, 3] frame the flow starts from.
    target_rgb: uint8 RGB [H, W, 3] frame the flow points into.
    preset: DIS speed/quality preset, 'ultrafast', 'fast' or 'medium'.

  Returns:
    float32 [H, W, 2] flow in pixels, (x, y) per pixel: source pixel p shows
    what target pixel p + flow(p) shows.

  Raises:
    InputError: unknown preset, or frames that are not uint8 RGB of one size.
  """
  check_preset(preset)
  source = _to_gray(source_rgb, 'source')
  target = _to_gray(target_rgb, 'target')
  if source.shape != target.shape:
    raise InputError(f'source and target frames differ in size: {source.shape} vs {target.shape}')
  # Creating the estimator costs microseconds; a fresh one per call keeps no
  # state between unrelated frame pairs.
  flow = cv2.DISOpticalFlow_create(PRESETS[preset]).calc(source, target, None)
  return flow.astype(np.float32, copy=False)
