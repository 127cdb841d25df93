"""The flow-propagation pipeline end to end and the infer.py command line."""

import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

import infer
from conftest import write_jpeg
from vsreid_jax.data import palette
from vsreid_jax.evaluation import metrics
from vsreid_jax.inference import demo, driver
from vsreid_jax.inference.finetuned import FinetunedVSReID
from vsreid_jax.inference.vsreid import VSReID

REPO = __import__('pathlib').Path(__file__).resolve().parents[1]


def smooth_texture(rng, shape):
  """Blurred colour noise: structure at several pixels' scale, as optical flow needs."""
  noise = rng.random(shape + (3,)).astype(np.float32)
  blurred = cv2.GaussianBlur(noise, (0, 0), 2.0)
  blurred = (blurred - blurred.min()) / (blurred.max() - blurred.min())
  return (255 * blurred).astype(np.uint8)


def translating_video(folder, num_frames=8, step=(2, 1), size=(96, 128)):
  """A textured square moving over a static textured background; returns its true masks."""
  rng = np.random.default_rng(3)
  background = smooth_texture(rng, size)
  texture = smooth_texture(rng, (32, 32))
  masks = np.zeros((num_frames,) + size, np.uint8)
  for t in range(num_frames):
    frame = background.copy()
    top, left = 20 + step[1] * t, 24 + step[0] * t
    frame[top:top + 32, left:left + 32] = texture
    masks[t, top:top + 32, left:left + 32] = 1
    write_jpeg(folder / f'img{t}.jpg', frame)
  return masks


def test_segment_folder_follows_a_moving_object(tmp_path):
  masks = translating_video(tmp_path / 'frames')
  palette.write_label_png(tmp_path / 'first.png', masks[0])
  timings = driver.segment_folder(tmp_path / 'frames', tmp_path / 'first.png', tmp_path / 'out',
                                  show_progress=False)
  assert timings['frames'] == 8
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [f'img{t}.png' for t in range(8)]
  predicted = np.stack([palette.read_label_png(tmp_path / 'out' / f'img{t}.png') for t in range(8)])
  iou = metrics.region_similarity(masks == 1, predicted == 1)
  assert iou.min() > 0.6, iou  # flow-only propagation erodes the mask a little per frame
  # Without motion compensation the last frame would overlap the truth far less.
  assert metrics.region_similarity(masks[-1] == 1, masks[0] == 1) < 0.4


def test_segment_folder_reuses_cached_flow(tmp_path):
  translating_video(tmp_path / 'frames', num_frames=4)
  first = np.zeros((96, 128), np.uint8)
  first[20:52, 24:56] = 1
  palette.write_label_png(tmp_path / 'first.png', first)
  driver.segment_folder(tmp_path / 'frames', tmp_path / 'first.png', tmp_path / 'a',
                        flow_cache_dir=tmp_path / 'flow', show_progress=False)
  assert sorted(p.name for p in (tmp_path / 'flow').iterdir()) == [
      'img0.flo', 'img1.flo', 'img1.rflo', 'img2.flo', 'img2.rflo', 'img3.rflo']
  driver.segment_folder(tmp_path / 'frames', tmp_path / 'first.png', tmp_path / 'b',
                        flow_dir=tmp_path / 'flow', show_progress=False)
  for t in range(4):
    np.testing.assert_array_equal(palette.read_label_png(tmp_path / 'a' / f'img{t}.png'),
                                  palette.read_label_png(tmp_path / 'b' / f'img{t}.png'))


def _infer(*args):
  return subprocess.run([sys.executable, str(REPO / 'infer.py'), *map(str, args)],
                        capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize('case', ['missing_flags', 'mask_size', 'empty_mask', 'no_frames'])
def test_infer_bad_input_gives_one_line(tmp_path, case):
  translating_video(tmp_path / 'frames', num_frames=2)
  (tmp_path / 'empty').mkdir()
  if case == 'missing_flags':
    done, expected = _infer('--sequence', tmp_path / 'frames'), 'missing --first-mask, --output'
  elif case == 'mask_size':
    palette.write_label_png(tmp_path / 'm.png', np.ones((10, 10), np.uint8))
    done = _infer('--sequence', tmp_path / 'frames', '--first-mask', tmp_path / 'm.png', '--output', tmp_path / 'o')
    expected = 'mask size 10x10 differs from the frame size 128x96'
  elif case == 'empty_mask':
    palette.write_label_png(tmp_path / 'm.png', np.zeros((96, 128), np.uint8))
    done = _infer('--sequence', tmp_path / 'frames', '--first-mask', tmp_path / 'm.png', '--output', tmp_path / 'o')
    expected = 'contains no object'
  else:
    done = _infer('--sequence', tmp_path / 'empty', '--first-mask', tmp_path / 'm.png', '--output', tmp_path / 'o')
    expected = 'no frames'
  assert done.returncode == 2
  assert expected in done.stderr
  assert done.stderr.count('\n') == 1 and 'Traceback' not in done.stderr


def test_demo_runs_and_scores(tmp_path):
  done = _infer('--demo', '--output', tmp_path / 'demo')
  assert done.returncode == 0, done.stderr
  assert 'J&F' in done.stdout and 'davis' in done.stdout and 'synthetic' in done.stdout
  results = tmp_path / 'demo' / 'flow-only'
  assert (results / 'global_results-demo-davis.csv').is_file()
  assert (results / 'global_results-demo-synthetic.csv').is_file()
  assert len(list((results / 'synthetic-occlusion').glob('*.png'))) == 48
  assert len(list((results / 'car-shadow').glob('*.png'))) == 40
  assert (results / 'car-shadow.mp4').is_file()
  # VS-ReID with the shipped networks, scored with and without its re-ID rounds.
  methods = ['vs-reid'] + (['vs-reid-no-reid'] if demo.SHIPPED_REID.is_dir() else [])
  for method in methods:
    assert len(list((tmp_path / 'demo' / method / 'car-shadow').glob('*.png'))) == 40
    assert (tmp_path / 'demo' / method / 'global_results-demo-synthetic.csv').is_file()
    assert re.search(rf'^\| {method} \| synthetic \|.* \| \d of \d \|$', done.stdout,
                     re.MULTILINE), done.stdout
  assert (tmp_path / 'demo' / 'vs-reid' / 'synthetic-occlusion.mp4').is_file()
  assert (tmp_path / 'demo' / 'synthetic-occlusion.png').is_file()


def test_davis_frame_folder_finds_its_first_annotation(tmp_path):
  from conftest import make_davis2017, moving_squares  # pylint: disable=g-import-not-at-top
  root = make_davis2017(tmp_path / 'davis', {'squares': moving_squares(num_frames=3)})
  frames = root / 'JPEGImages' / '480p' / 'squares'
  done = _infer('--sequence', frames, '--output', tmp_path / 'out', '--flow-only')
  assert done.returncode == 0, done.stderr
  np.testing.assert_array_equal(palette.read_label_png(tmp_path / 'out' / '00000.png'),
                                moving_squares(num_frames=3)[0])
  (tmp_path / 'plain').mkdir()
  write_jpeg(tmp_path / 'plain' / '0.jpg', np.zeros((8, 8, 3), np.uint8))
  done = _infer('--sequence', tmp_path / 'plain', '--output', tmp_path / 'out2')
  assert done.returncode == 2 and 'missing --first-mask' in done.stderr


def test_without_model_flags_the_shipped_networks_are_used(tmp_path):
  lines = []
  segmenter = infer.make_segmenter(infer.parse_args(['--sequence', 'x']), log=lines.append)
  assert isinstance(segmenter, FinetunedVSReID) and segmenter.num_steps == demo.FINETUNE_STEPS
  assert str(demo.SHIPPED_PROPAGATION) in lines[0] and f'{demo.FINETUNE_STEPS} steps' in lines[0]
  assert (segmenter.reid_factory is not None) == demo.SHIPPED_REID.is_dir()
  assert lines[0].endswith(f'mask verifier: {demo.SHIPPED_VERIFIER}')
  infer.make_segmenter(infer.parse_args(['--no-verifier', '--finetune-steps', '0']),
                       log=lines.append)
  assert lines[-1].endswith('mask verifier: none')
  no_reid = infer.make_segmenter(infer.parse_args(['--no-reid', '--finetune-steps', '0']),
                                 log=lines.append)
  assert isinstance(no_reid, VSReID) and no_reid.reid_factory is None
  assert lines[-1].endswith('re-ID: off')
  assert infer.make_segmenter(infer.parse_args(['--flow-only']), log=lines.append) is None
