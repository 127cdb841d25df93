"""Re-ID training: the frame sampler, config checks, and the smoke config on synthetic videos."""

import contextlib
import io
import re

import jax
import numpy as np
import pytest

from configs import reid as reid_config
from tests.conftest import make_davis2017, moving_squares
from vsreid_jax import checkpoints
from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.reid.evaluation import ReidCounts, score_video
from vsreid_jax.reid.frame_detector import FrameDetector
from vsreid_jax.reid.model import build_detection_settings, build_detector
from vsreid_jax.training import propagation_data, reid_trainer
from vsreid_jax.training.reid_data import FrameBoxSampler, IdentityMixture


def test_sampler_boxes_identities_and_determinism(tmp_path):
  root = make_davis2017(tmp_path, {'a': moving_squares(num_objects=2), 'b': moving_squares()},
                        split='train')
  sampler = FrameBoxSampler(DavisDataset(root, 'train'), (20, 40), max_boxes=3)
  assert sampler.num_identities == 4
  seen = {}
  for index in range(12):
    example = sampler.example(propagation_data.example_rng(0, 0, index))
    assert example['image'].shape == (20, 40, 3)
    np.testing.assert_array_equal(example['box_mask'], [True, True, False])
    np.testing.assert_array_equal(example['classes'], [1, 1, 0])
    boxes = example['boxes'][:2]
    # 40x60 frames at half size: 5x5 squares, rows 2.5 and 10 (object 1, then 2).
    np.testing.assert_allclose(boxes[:, [1, 3]], [[2.5, 7.5], [10, 15]])
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], 5)
    seen.setdefault(tuple(example['identities'][:2]), set()).add(float(boxes[0, 0]))
  # Two videos, each with its own identities, and flips that mirror the boxes.
  assert set(seen) == {(0, 1), (2, 3)}
  assert any(x > 20 for xs in seen.values() for x in xs)
  again = sampler.example(propagation_data.example_rng(0, 0, 5))
  np.testing.assert_array_equal(again['image'], sampler.example(
      propagation_data.example_rng(0, 0, 5))['image'])


def test_zoom_scales_frames_and_boxes_within_its_range(tmp_path):
  root = make_davis2017(tmp_path, {'a': moving_squares()}, split='train')
  sampler = FrameBoxSampler(DavisDataset(root, 'train'), (20, 40), max_boxes=2,
                            scale_range=(0.5, 0.8))
  widths = []
  for index in range(10):
    example = sampler.example(propagation_data.example_rng(0, 0, index))
    box = example['boxes'][0]
    widths.append(box[2] - box[0])
    # Nothing beyond the zoomed frame (30x40 at most 0.8 x half size: 16 rows).
    assert not example['image'][17:].any() and box[3] <= 16
  # 10-pixel squares at half size (5 pixels) zoomed by 0.5-0.8.
  assert 2.5 <= min(widths) < max(widths) <= 4.0
  with pytest.raises(InputError, match='scale_range'):
    FrameBoxSampler(DavisDataset(root, 'train'), (20, 40), 2, scale_range=(0.5, 1.5))


def test_identity_mixture_keeps_identities_of_its_samplers_apart(tmp_path):
  first = FrameBoxSampler(DavisDataset(make_davis2017(tmp_path / 'a', {'a': moving_squares(
      num_objects=2)}, split='train'), 'train'), (20, 40), max_boxes=3)
  second = FrameBoxSampler(DavisDataset(make_davis2017(tmp_path / 'b', {'b': moving_squares()},
                                                       split='train'), 'train'), (20, 40), 3)
  mixture = IdentityMixture([first, second], [1, 3])
  assert mixture.num_identities == first.num_identities + second.num_identities == 4
  seen = set()
  for index in range(40):
    example = mixture.example(propagation_data.example_rng(0, 0, index))
    seen.add(tuple(example['identities'][example['box_mask']]))
  assert seen == {(0, 1), (2, 3)}
  with pytest.raises(InputError, match='mixture weights'):
    IdentityMixture([first, second], [1])


def test_config_errors_name_the_field(tmp_path):
  for group, field, value in (('data', 'source', 'coco'), ('data', 'max_boxes', 0),
                              ('data', 'scale_range', (0.0, 1.0)),
                              ('data', 'synthetic_fraction', 1.5),
                              ('targets', 'box_positive_fraction', 2.0), (None, 'batch_size', 0)):
    config = reid_config.get_config('smoke')
    (config[group] if group else config)[field] = value
    with pytest.raises(InputError, match=f'config.{group + "." if group else ""}{field}'):
      reid_trainer.train_and_evaluate(config, tmp_path)


def test_smoke_config_trains_and_retrieves_objects(tmp_path):
  config = reid_config.get_config('smoke')
  log = io.StringIO()
  with contextlib.redirect_stdout(log):
    state = reid_trainer.train_and_evaluate(config, tmp_path)
  assert int(state.step) == config.num_train_steps
  losses = [dict(re.findall(r'(\w+) (\d+\.\d+)', line)) for line in log.getvalue().splitlines()
            if line.startswith('step ')]
  assert len(losses) == 4
  first, last = losses[0], losses[-1]
  print({k: (float(first[k]), float(last[k])) for k in reid_trainer.LOSSES + ('loss',)})
  assert float(last['loss']) < 0.8 * float(first['loss'])
  for key in ('rpn_objectness', 'classification', 'identification'):
    assert float(last[key]) < float(first[key])
  assert (tmp_path / 'checkpoints' / '20').is_dir()

  # Distractors are identities too: every instance of each training video's first frame.
  training_videos = DavisDataset(tmp_path / 'synthetic_instances', 'train')
  assert state.oim.lut.shape == (sum(training_videos.sequence(name).num_objects
                                     for name in training_videos.sequence_names), 256)
  assert state.oim.lut.shape[0] > 4 * 3  # more than the 3 annotated objects of each video

  # Twenty steps teach little; the shipped detector's test asks for real retrieval.
  detector = FrameDetector(build_detector(config.model),
                           {'params': state.params, 'batch_stats': state.batch_stats},
                           build_detection_settings(config.detection),
                           (config.data.image_height, config.data.image_width))
  counts = ReidCounts()
  for seed in range(100, 103):
    video = synthetic.generate_video(synthetic.SyntheticVideoConfig(
        num_frames=24, height=120, width=214, hidden_frames=(4, 8), seed=seed))
    counts.add(score_video(detector, video.frames[::3], video.boxes[::3],
                           video.visible_area[::3] >= 50))
  _, top1, _, chance = counts.rates()
  print(f'retrieval top-1 {top1:.3f}, chance {chance:.3f}')
  assert top1 > chance


def test_training_starts_from_a_reid_checkpoint(reid_dir, checkpoint_dir, tmp_path):
  config = reid_config.get_config('smoke')
  config.num_train_steps, config.log_every_steps, config.checkpoint_every_steps = 1, 1, 1
  config.optimizer.learning_rate = 0.0  # the step leaves the parameters where they start
  config.init_checkpoint = str(reid_dir)
  with contextlib.redirect_stdout(io.StringIO()):
    state = reid_trainer.train_and_evaluate(config, tmp_path / 'run')
  variables, _ = checkpoints.restore_model_checkpoint(reid_dir)
  for started, saved in zip(jax.tree.leaves(state.params), jax.tree.leaves(variables['params'])):
    np.testing.assert_array_equal(started, saved)
  config.init_checkpoint = str(checkpoint_dir)  # an MP2S checkpoint
  with pytest.raises(InputError, match='init_checkpoint .* do not match'):
    reid_trainer.train_and_evaluate(config, tmp_path / 'other')
