"""Shared test fixtures: tiny DAVIS trees written by the tests themselves."""

import pathlib

import cv2
import jax
import numpy as np
import pytest
from PIL import Image

from configs import propagation
from configs import reid as reid_configs
from vsreid_jax import checkpoints, models
from vsreid_jax.data import palette
from vsreid_jax.models.random_init import he_random_variables
from vsreid_jax.reid.model import build_detector

TINY_PATCH = 33
SHARED_DAVIS2016 = pathlib.Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'DAVIS2016'


def write_jpeg(path, rgb):
  path.parent.mkdir(parents=True, exist_ok=True)
  cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def make_davis2017(root, sequences, split='val'):
  """Writes a DAVIS 2017 tree; `sequences` maps a name to a [T, H, W] label array."""
  rng = np.random.default_rng(0)
  for name, labels in sequences.items():
    for t, frame_labels in enumerate(labels):
      write_jpeg(root / 'JPEGImages' / '480p' / name / f'{t:05d}.jpg',
                 rng.integers(0, 255, frame_labels.shape + (3,), dtype=np.uint8))
      palette.write_label_png(root / 'Annotations' / '480p' / name / f'{t:05d}.png', frame_labels)
  (root / 'ImageSets' / '2017').mkdir(parents=True, exist_ok=True)
  (root / 'ImageSets' / '2017' / f'{split}.txt').write_text('\n'.join(sequences) + '\n')
  return root


def make_davis2016(root, sequences, split='val'):
  """Writes a DAVIS 2016 tree (binary 0/255 masks, per-frame split file)."""
  rng = np.random.default_rng(0)
  lines = []
  for name, masks in sequences.items():
    for t, mask in enumerate(masks):
      frame = f'/JPEGImages/480p/{name}/{t:05d}.jpg'
      annotation = f'/Annotations/480p/{name}/{t:05d}.png'
      write_jpeg(root / frame.lstrip('/'), rng.integers(0, 255, mask.shape + (3,), dtype=np.uint8))
      (root / annotation.lstrip('/')).parent.mkdir(parents=True, exist_ok=True)
      Image.fromarray((mask > 0).astype(np.uint8) * 255, mode='L').save(root / annotation.lstrip('/'))
      lines.append(f'{frame} {annotation}')
  (root / 'ImageSets' / '480p').mkdir(parents=True, exist_ok=True)
  (root / 'ImageSets' / '480p' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
  return root


def moving_squares(num_frames=6, height=40, width=60, num_objects=2):
  """Label maps of `num_objects` squares moving right by 2 px a frame."""
  labels = np.zeros((num_frames, height, width), np.uint8)
  for t in range(num_frames):
    for k in range(num_objects):
      top, left = 5 + 15 * k, 5 + 2 * t + 10 * k
      labels[t, top:top + 10, left:left + 10] = k + 1
  return labels


@pytest.fixture
def shared_davis2016():
  if not SHARED_DAVIS2016.is_dir():
    pytest.skip(f'shared DAVIS 2016 data not found at {SHARED_DAVIS2016} (only on development machines and CI)')
  return SHARED_DAVIS2016


@pytest.fixture(name='checkpoint_dir', scope='session')
def fixture_checkpoint_dir(tmp_path_factory):
  """A smoke-size MP2S checkpoint with random weights, made without compiling `init`."""
  config = propagation.get_config('smoke')
  config.model.patch_size = TINY_PATCH
  model = models.build_propagation_model(config.model)
  inputs = [jax.ShapeDtypeStruct((1, TINY_PATCH, TINY_PATCH, channels), np.float32) for channels in (3, 2, 1)]
  shapes = jax.eval_shape(model.init, jax.random.key(0), *inputs)
  variables = he_random_variables(shapes)
  directory = tmp_path_factory.mktemp('mp2s')
  checkpoints.save_model_checkpoint(directory, variables['params'], variables['batch_stats'], config)
  return directory


def save_random_reid_checkpoint(directory, config):
  """Saves a re-ID detector of `config` with random weights, made without compiling `init`."""
  model = build_detector(config.model)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 64, 96, 3), np.float32))
  variables = he_random_variables(shapes)
  checkpoints.save_model_checkpoint(directory, variables['params'], variables.get('batch_stats', {}), config)
  return directory


@pytest.fixture(name='reid_dir', scope='session')
def fixture_reid_dir(tmp_path_factory):
  """A smoke-size re-ID detector checkpoint with random weights."""
  return save_random_reid_checkpoint(tmp_path_factory.mktemp('reid'), reid_configs.get_config('smoke'))
