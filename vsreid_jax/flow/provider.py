"""Per-video flow sources: DIS flow computed on demand, or flow files in the official layout."""

import abc
import functools
import operator
import pathlib

from vsreid_jax.flow import dis
from vsreid_jax.flow import flo

# forward(i) and backward(i + 1) share frames i and i + 1, and inference asks
# for the same few flows of neighbouring frames repeatedly.
_CACHED_FRAMES = 2
_CACHED_FLOWS = 4


def flow_file_name(stem, forward):
  """The official VS-ReID file name of a flow from the frame with file stem `stem`.

  Args:
    stem: the frame's file stem, such as '00000'.
    forward: True for the flow to the next frame, False to the previous one.

  Returns:
    '<stem>.flo' for the forward flow, '<stem>.rflo' for the backward one.
  """
  return f'{stem}.flo' if forward else f'{stem}.rflo'


def cached_flow(path, compute):
  """Reads the flow at `path` if the file exists; else computes it and, unless `path` is None, writes it there."""
  if path is not None and pathlib.Path(path).is_file():
    return flo.read_flo(path)
  flow = compute()
  if path is not None:
    flo.write_flo(path, flow)
  return flow


class _FlowSource(abc.ABC):
  """Range checking and a small LRU shared by the flow sources.

  Only a few flows stay in memory, so a long video costs no more than a short one.
  """

  def __init__(self, num_frames):
    self._num_frames = num_frames
    self._cached_flow = functools.lru_cache(maxsize=_CACHED_FLOWS)(self._flow)

  def __len__(self):
    return self._num_frames

  def forward(self, index):
    """Flow from frame `index` to frame `index + 1`.

    Args:
      index: frame index, 0 <= index < len(self) - 1.

    Returns:
      Read-only float32 [H, W, 2] flow in pixels, (x, y) per pixel.

    Raises:
      IndexError: `index` has no next frame.
    """
    return self._cached_flow(self._check(index, 0, self._num_frames - 1, 'forward'), True)

  def backward(self, index):
    """Flow from frame `index` to frame `index - 1`.

    Args:
      index: frame index, 1 <= index < len(self).

    Returns:
      Read-only float32 [H, W, 2] flow in pixels, (x, y) per pixel.

    Raises:
      IndexError: `index` has no previous frame.
    """
    return self._cached_flow(self._check(index, 1, self._num_frames, 'backward'), False)

  def _check(self, index, start, stop, direction):
    index = operator.index(index)
    if not start <= index < stop:
      raise IndexError(f'no {direction} flow for frame {index} of a {self._num_frames}-frame video '
                       f'(needs {start} <= frame < {stop})')
    return index

  def _flow(self, index, forward):
    flow = self._load(index, forward)
    # Cached arrays are shared between callers; an in-place edit must fail.
    flow.setflags(write=False)
    return flow

  @abc.abstractmethod
  def _load(self, index, forward):
    """Returns a fresh float32 [H, W, 2] flow from frame `index` to its neighbour."""


class DisFlow(_FlowSource):
  """DIS optical flow of a video, computed when asked for and optionally cached on disk.

  With `cache_dir`, each flow is written there in the official layout the first
  time it is computed and read back afterwards, so `PrecomputedFlow` can read
  the folder too. The files do not record the preset: use one folder per
  preset and frame size.
  """

  def __init__(self, frames, preset='medium', cache_dir=None):
    """Sets up the source; no frame is read until a flow is asked for.

    Args:
      frames: sequence of uint8 RGB [H, W, 3] frames (`len`, indexing), with a
        `names` attribute of file stems when `cache_dir` is given.
      preset: DIS preset, 'ultrafast', 'fast' or 'medium'.
      cache_dir: folder of cached `.flo` / `.rflo` files, or None to keep
        nothing on disk.

    Raises:
      InputError: unknown preset.
    """
    dis.check_preset(preset)
    super().__init__(len(frames))
    self._preset = preset
    self._cache_dir = None if cache_dir is None else pathlib.Path(cache_dir)
    self._names = None if cache_dir is None else list(frames.names)
    self._frame = functools.lru_cache(maxsize=_CACHED_FRAMES)(frames.__getitem__)

  def _load(self, index, forward):
    path = None if self._cache_dir is None else self._cache_dir / flow_file_name(self._names[index], forward)
    other = index + 1 if forward else index - 1
    return cached_flow(path, lambda: dis.compute_flow(self._frame(index), self._frame(other), self._preset))


class PrecomputedFlow(_FlowSource):
  """Flow files of one video in the official layout (`Flow/480p/<sequence>/`)."""

  def __init__(self, directory, names):
    """Sets up the source; files are read when a flow is asked for.

    Args:
      directory: folder holding `<stem>.flo` and `<stem>.rflo` files.
      names: the video's frame file stems in temporal order ('00000', ...).
    """
    super().__init__(len(names))
    self._directory = pathlib.Path(directory)
    self._names = list(names)

  def _load(self, index, forward):
    return flo.read_flo(self._directory / flow_file_name(self._names[index], forward))
