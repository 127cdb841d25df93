"""Tests for .flo files, DIS flow and the per-video flow sources."""

import cv2
import numpy as np
import pytest

from vsreid_jax.errors import InputError
from vsreid_jax.flow import dis
from vsreid_jax.flow import flo
from vsreid_jax.flow import provider


def _random_flow(height=5, width=7, seed=0):
  return np.random.default_rng(seed).normal(0, 10, (height, width, 2)).astype(np.float32)


def _textured_image(height, width, seed=0):
  """Smoothed noise: texture at every scale DIS looks at, no repeating pattern."""
  rng = np.random.default_rng(seed)
  blurred = cv2.GaussianBlur(rng.uniform(size=(height, width, 3)).astype(np.float32), (0, 0), 2)
  stretched = (blurred - blurred.min()) / (blurred.max() - blurred.min())
  return (255 * stretched).astype(np.uint8)


def _shifted_pair(shift_x, shift_y, height=96, width=128, margin=8):
  """Two crops of one image whose content moves by (shift_x, shift_y) pixels."""
  image = _textured_image(height + 2 * margin, width + 2 * margin)
  source = image[margin:margin + height, margin:margin + width]
  # target(p + shift) = source(p).
  target = image[margin - shift_y:margin - shift_y + height,
                 margin - shift_x:margin - shift_x + width]
  return source, target


class CountingFrames:
  """A frame sequence that records which frames were read."""

  def __init__(self, frames):
    self._frames = frames
    self.names = [f'{i:05d}' for i in range(len(frames))]
    self.reads = []

  def __len__(self):
    return len(self._frames)

  def __getitem__(self, index):
    self.reads.append(index)
    return self._frames[index]


@pytest.fixture(name='video')
def _video():
  """Five 48x64 frames of a texture sliding right by 2 px per frame."""
  image = _textured_image(48, 80)
  return [np.ascontiguousarray(image[:, 16 - 2 * i:80 - 2 * i]) for i in range(5)]


def test_flo_round_trip(tmp_path):
  flow = _random_flow()
  path = tmp_path / 'sub' / '00000.flo'
  flo.write_flo(path, flow)
  read = flo.read_flo(path)
  assert read.dtype == np.float32
  np.testing.assert_array_equal(read, flow)
  assert [p.name for p in path.parent.iterdir()] == ['00000.flo']


def test_flo_layout_is_middlebury(tmp_path):
  path = tmp_path / 'a.flo'
  flow = _random_flow(2, 3)
  flo.write_flo(path, flow)
  data = path.read_bytes()
  assert data[:4] == b'PIEH'
  assert np.frombuffer(data, '<i4', 2, 4).tolist() == [3, 2]
  np.testing.assert_array_equal(np.frombuffer(data, '<f4', offset=12), flow.ravel())


@pytest.mark.parametrize('corrupt, message', [
    (lambda data: None, 'file not found'),
    (lambda data: b'ABCD' + data[4:], 'not a .flo file'),
    (lambda data: data[:10], 'truncated .flo header'),
    (lambda data: data[:-4], 'truncated flow data'),
    (lambda data: data + b'\0' * 8, 'trailing bytes'),
    (lambda data: data[:4] + np.array([0, 5], '<i4').tobytes() + data[12:], 'invalid .flo size'),
])
def test_read_flo_rejects_bad_files(tmp_path, corrupt, message):
  good = tmp_path / 'good.flo'
  flo.write_flo(good, _random_flow())
  bad = tmp_path / 'bad.flo'
  data = corrupt(good.read_bytes())
  if data is not None:
    bad.write_bytes(data)
  with pytest.raises(InputError, match=message) as error:
    flo.read_flo(bad)
  assert str(bad) in str(error.value)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize('shape', [(5, 7), (5, 7, 3), (0, 7, 2)])
def test_write_flo_rejects_bad_shapes(tmp_path, shape):
  path = tmp_path / 'x.flo'
  with pytest.raises(InputError, match=r'x\.flo: flow must be'):
    flo.write_flo(path, np.zeros(shape, np.float32))
  assert not any(tmp_path.iterdir())


@pytest.mark.parametrize('preset', ['ultrafast', 'fast', 'medium'])
def test_dis_flow_recovers_translation_both_ways(preset):
  source, target = _shifted_pair(3, -2)
  interior = (slice(16, -16), slice(16, -16))
  forward = dis.compute_flow(source, target, preset)
  backward = dis.compute_flow(target, source, preset)
  assert forward.dtype == np.float32 and forward.shape == (96, 128, 2)
  np.testing.assert_allclose(np.median(forward[interior], axis=(0, 1)), [3, -2], atol=0.5)
  np.testing.assert_allclose(np.median(backward[interior], axis=(0, 1)), [-3, 2], atol=0.5)


def test_dis_rejects_bad_input():
  frame = np.zeros((8, 8, 3), np.uint8)
  with pytest.raises(InputError, match="'ultrafast', 'fast', 'medium'"):
    dis.compute_flow(frame, frame, 'slow')
  with pytest.raises(InputError, match='uint8 RGB'):
    dis.compute_flow(frame[..., 0], frame)
  with pytest.raises(InputError, match='differ in size'):
    dis.compute_flow(frame, np.zeros((8, 9, 3), np.uint8))


def test_dis_flow_is_lazy_and_matches_compute_flow(video):
  frames = CountingFrames(video)
  source = provider.DisFlow(frames, preset='fast')
  assert len(source) == 5 and frames.reads == []
  np.testing.assert_array_equal(source.forward(1), dis.compute_flow(video[1], video[2], 'fast'))
  np.testing.assert_array_equal(source.backward(2), dis.compute_flow(video[2], video[1], 'fast'))
  # The second flow reuses both frames of the first.
  assert sorted(frames.reads) == [1, 2]
  np.testing.assert_allclose(np.median(source.forward(1), axis=(0, 1)), [2, 0], atol=0.5)


def test_dis_flow_index_range(video):
  source = provider.DisFlow(video)
  for bad in (lambda: source.forward(4), lambda: source.backward(0), lambda: source.forward(-1)):
    with pytest.raises(IndexError, match='5-frame video'):
      bad()


def test_flows_are_read_only(video):
  flow = provider.DisFlow(video, preset='ultrafast').forward(0)
  with pytest.raises(ValueError):
    flow[0, 0, 0] = 1


def test_dis_flow_rejects_unknown_preset(video):
  with pytest.raises(InputError, match='unknown DIS flow preset'):
    provider.DisFlow(video, preset='best')


def test_dis_flow_cache_round_trip(tmp_path, video):
  first = provider.DisFlow(CountingFrames(video), preset='ultrafast', cache_dir=tmp_path)
  computed = [first.forward(0), first.backward(1), first.forward(3)]
  assert sorted(p.name for p in tmp_path.iterdir()) == ['00000.flo', '00001.rflo', '00003.flo']

  frames = CountingFrames(video)
  second = provider.DisFlow(frames, preset='ultrafast', cache_dir=tmp_path)
  cached = [second.forward(0), second.backward(1), second.forward(3)]
  assert frames.reads == []
  for a, b in zip(computed, cached):
    np.testing.assert_array_equal(a, b)

  precomputed = provider.PrecomputedFlow(tmp_path, frames.names)
  assert len(precomputed) == 5
  np.testing.assert_array_equal(precomputed.forward(0), computed[0])
  np.testing.assert_array_equal(precomputed.backward(1), computed[1])
  with pytest.raises(InputError, match=r'00002\.rflo: file not found'):
    precomputed.backward(2)
  with pytest.raises(IndexError):
    precomputed.backward(0)
