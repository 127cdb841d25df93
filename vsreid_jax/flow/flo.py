"""Optical flow as Middlebury `.flo` files: strict reading and atomic writing."""

import os
import pathlib
import uuid

import numpy as np

from vsreid_jax.errors import InputError

# The float 202021.25 stored little-endian reads as the ASCII bytes 'PIEH'.
_MAGIC = np.array(202021.25, '<f4').tobytes()
_HEADER_BYTES = 12


def read_flo(path):
  """Reads a `.flo` file.

  Args:
    path: the file.

  Returns:
    float32 [H, W, 2] array; channel 0 is the horizontal (x) component, channel
    1 the vertical (y) one, in pixels.

  Raises:
    InputError: missing or unreadable file, wrong magic number, a non-positive
      size, or a data block shorter or longer than the header announces.
  """
  try:
    data = pathlib.Path(path).read_bytes()
  except FileNotFoundError:
    raise InputError(f'{path}: file not found') from None
  except OSError as error:
    raise InputError(f'{path}: unreadable flow file ({error.strerror})') from None
  if len(data) < _HEADER_BYTES:
    raise InputError(f'{path}: truncated .flo header ({len(data)} bytes)')
  if data[:4] != _MAGIC:
    raise InputError(f'{path}: not a .flo file (magic {data[:4]!r}, expected {_MAGIC!r})')
  width, height = np.frombuffer(data, '<i4', count=2, offset=4)
  if width <= 0 or height <= 0:
    raise InputError(f'{path}: invalid .flo size {width}x{height}')
  expected = _HEADER_BYTES + int(width) * int(height) * 8
  if len(data) != expected:
    problem = 'truncated' if len(data) < expected else 'trailing bytes after the'
    raise InputError(f'{path}: {problem} flow data ({len(data)} bytes, expected {expected} '
                     f'for {width}x{height})')
  flow = np.frombuffer(data, '<f4', offset=_HEADER_BYTES)
  return flow.reshape(height, width, 2).astype(np.float32)


def write_flo(path, flow):
  """Writes a `.flo` file atomically.

  The data goes to a uniquely named sibling file that is then renamed onto
  `path`, so readers (and concurrent writers of the same cache) never see a
  half-written file.

  Args:
    path: destination file; missing parent folders are created.
    flow: [H, W, 2] array of (x, y) displacements in pixels.

  Raises:
    InputError: `flow` is not a non-empty [H, W, 2] array.
  """
  flow = np.asarray(flow)
  if flow.ndim != 3 or flow.shape[2] != 2 or not flow.size:
    raise InputError(f'{path}: flow must be a non-empty [H, W, 2] array, got shape {flow.shape}')
  height, width = flow.shape[:2]
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  # A unique name keeps concurrent writers of one cache file apart; 'xb' (not
  # mkstemp) keeps the permissions the umask gives ordinary files.
  partial = path.with_name(f'.{path.name}.{uuid.uuid4().hex[:12]}.partial')
  try:
    with open(partial, 'xb') as file:
      file.write(_MAGIC)
      file.write(np.array([width, height], '<i4').tobytes())
      file.write(np.ascontiguousarray(flow, '<f4').tobytes())
    os.replace(partial, path)
  except BaseException:
    partial.unlink(missing_ok=True)
    raise
