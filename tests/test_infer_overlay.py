"""Overlay videos: masks blended in palette colours, read back; the JPEG fallback; --overlay."""

import cv2
import numpy as np

import infer
from conftest import make_davis2017, moving_squares
from vsreid_jax.data import palette
from vsreid_jax.inference import overlay

GRAY = 128


def read_video(path):
  capture = cv2.VideoCapture(str(path))
  frames = []
  while True:
    ok, frame = capture.read()
    if not ok:
      break
    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
  capture.release()
  return np.stack(frames)


def test_blend_mixes_object_pixels_with_their_palette_colour():
  frame = np.full((2, 3, 3), GRAY, np.uint8)
  labels = np.array([[0, 1, 2], [255, 0, 1]], np.uint8)
  blended = overlay.blend_labels(frame, labels, alpha=0.5)
  np.testing.assert_array_equal(blended[0, 1], (GRAY + palette.DAVIS_PALETTE[1].astype(int)) // 2)
  np.testing.assert_array_equal(blended[0, 2], (GRAY + palette.DAVIS_PALETTE[2].astype(int)) // 2)
  for background in ((0, 0), (1, 0), (1, 1)):  # background and void stay as they are
    np.testing.assert_array_equal(blended[background], frame[background])


def test_overlay_video_has_every_frame_and_tints_the_masks(tmp_path):
  labels = moving_squares(6, height=48, width=64, num_objects=1)
  with overlay.OverlayVideo(tmp_path / 'clip.mp4') as video:
    for t, frame_labels in enumerate(labels):
      video.add(np.full((48, 64, 3), GRAY, np.uint8), frame_labels, f'{t:05d}')
  assert [p.name for p in tmp_path.iterdir()] == ['clip.mp4']  # no partial file left
  frames = read_video(tmp_path / 'clip.mp4').astype(int)
  assert frames.shape == (6, 48, 64, 3)
  # The square's centre in each frame: palette colour 1 is dark red.
  inside = np.stack([frames[t, 8:12, 8 + 2 * t:12 + 2 * t] for t in range(6)]).reshape(6, -1, 3)
  outside = frames[:, 35:45, 2:12].reshape(6, -1, 3)
  assert np.all(inside[..., 0].mean(1) - inside[..., 2].mean(1) > 40)
  assert np.all(np.abs(outside.mean(1) - GRAY) < 8)


def test_overlay_falls_back_to_jpegs_without_an_mp4_encoder(tmp_path, monkeypatch):
  class NoEncoder:
    def __init__(self, *args):
      pass

    def isOpened(self):  # pylint: disable=invalid-name
      return False

    def release(self):
      pass

  monkeypatch.setattr(overlay.cv2, 'VideoWriter', NoEncoder)
  lines = []
  with overlay.OverlayVideo(tmp_path / 'clip.mp4', log=lines.append) as video:
    for t in range(3):
      video.add(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), np.uint8), f'{t:05d}')
  jpeg_dir = tmp_path / 'clip_overlay'
  assert lines == [f'no mp4v video encoder in OpenCV: overlay frames written as JPEGs to {jpeg_dir}']
  assert sorted(p.name for p in jpeg_dir.iterdir()) == ['00000.jpg', '00001.jpg', '00002.jpg']
  assert not (tmp_path / 'clip.mp4').exists()


def test_an_error_leaves_no_video(tmp_path):
  try:
    with overlay.OverlayVideo(tmp_path / 'clip.mp4') as video:
      video.add(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), np.uint8), '00000')
      raise RuntimeError('interrupted')
  except RuntimeError:
    pass
  assert list(tmp_path.iterdir()) == []


def test_infer_overlay_writes_one_video_per_sequence(tmp_path):
  root = make_davis2017(tmp_path / 'davis', {'bear': moving_squares(5), 'dog': moving_squares(3)})
  infer.main(['--davis-root', str(root), '--output', str(tmp_path / 'out'), '--overlay',
              '--process-index', '0', '--process-count', '1', '--flow-preset', 'ultrafast',
              '--flow-only'])
  assert len(read_video(tmp_path / 'out' / 'bear.mp4')) == 5
  assert len(read_video(tmp_path / 'out' / 'dog.mp4')) == 3


def test_infer_overlay_of_one_folder(tmp_path):
  root = make_davis2017(tmp_path / 'davis', {'bear': moving_squares(4)})
  infer.main(['--sequence', str(root / 'JPEGImages/480p/bear'), '--first-mask',
              str(root / 'Annotations/480p/bear/00000.png'), '--output', str(tmp_path / 'out'),
              '--overlay', '--flow-preset', 'ultrafast', '--flow-only'])
  assert len(read_video(tmp_path / 'out' / 'bear.mp4')) == 4
  assert len(list((tmp_path / 'out').glob('*.png'))) == 4
