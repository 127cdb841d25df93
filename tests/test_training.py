"""Guidance deformations, optimiser groups, config checks and the training loop on synthetic videos."""

import functools
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import propagation
from configs import reid as reid_config
from vsreid_jax import models
from vsreid_jax.data import augment, synthetic
from vsreid_jax.errors import InputError
from vsreid_jax.evaluation import metrics
from vsreid_jax.training import finetune, loop, optimizer, propagation_data, trainer


def tiny_config(num_steps=8):
  config = propagation.get_config('smoke')
  config.num_train_steps = num_steps
  config.checkpoint_every_steps = num_steps // 2
  config.log_every_steps = 2
  config.eval_every_steps = 0
  config.batch_size = 4
  config.num_eval_examples = 4
  config.model.width = 0.25
  config.model.aspp_features = 16
  config.model.patch_size = 65
  config.data.synthetic.num_train_videos = 2
  config.data.synthetic.num_eval_videos = 1
  config.data.num_workers = 1
  return config


def test_deformed_guidance_stays_near_the_object_and_varies():
  mask = np.zeros((97, 97), bool)
  mask[25:70, 30:75] = True
  rng = np.random.default_rng(0)
  deformation = augment.GuidanceDeformation(box_probability=0, empty_probability=0)
  guidances = [augment.deform_guidance(mask, rng, deformation) for _ in range(30)]
  overlaps = np.array([metrics.region_similarity(mask, g > 0) for g in guidances])
  assert overlaps.min() > 0.4 and np.median(overlaps) > 0.6
  assert (overlaps < 0.98).all()  # every one is corrupted
  assert len({g.tobytes() for g in guidances}) == 30  # and each differently
  centres = np.array([np.argwhere(g > 0).mean(axis=0) for g in guidances])
  assert np.abs(centres - [47, 52]).max() < 0.25 * 45
  always_box = augment.GuidanceDeformation(box_probability=1, empty_probability=0)
  np.testing.assert_array_equal(augment.deform_guidance(mask, rng, always_box), mask)
  always_empty = augment.GuidanceDeformation(box_probability=0, empty_probability=1)
  assert not augment.deform_guidance(mask, rng, always_empty).any()


def test_thin_plate_map_interpolates_its_control_points():
  targets = np.array([[10., 10.], [50., 12.], [12., 40.], [48., 44.], [30., 25.]])
  sources = targets + np.array([[1., -2.], [0., 3.], [-2., 0.], [2., 2.], [0.5, -1.]])
  map_x, map_y = augment.thin_plate_map(targets, sources, 60, 70)
  for (tx, ty), (sx, sy) in zip(targets.astype(int), sources):
    assert map_x[ty, tx] == pytest.approx(sx, abs=1e-3) and map_y[ty, tx] == pytest.approx(sy, abs=1e-3)


def test_flip_negates_flow_x():
  image, flow = np.arange(24.).reshape(2, 4, 3), np.stack([np.ones((2, 4)), 2 * np.ones((2, 4))], -1)
  flipped_image, flipped_flow, _, _ = augment.flip_example(image, flow, np.zeros((2, 4)), np.zeros((2, 4)))
  np.testing.assert_array_equal(flipped_image, image[:, ::-1])
  assert (flipped_flow[..., 0] == -1).all() and (flipped_flow[..., 1] == 2).all()


def test_optimizer_groups_and_multipliers():
  params = {'backbone': {'conv1': {'kernel': np.ones((3, 3, 1, 1))},
                         'bn1': {'scale': np.ones(1), 'bias': np.ones(1)}},
            'classifier': {'kernel': np.ones((1, 1, 1, 2)), 'bias': np.ones(2)},
            'flow_classifier': {'kernel': np.ones((1, 1, 1, 2)), 'bias': np.ones(2)}}
  groups = optimizer.parameter_groups(params, ('rgb',))
  assert groups['backbone'] == {'conv1': {'kernel': 'weight'}, 'bn1': {'scale': 'norm', 'bias': 'norm'}}
  assert groups['classifier'] == {'kernel': 'weight', 'bias': 'bias'}
  assert groups['flow_classifier'] == {'kernel': 'frozen', 'bias': 'frozen'}
  config = propagation.get_config('smoke')
  config.optimizer.warmup_steps = 0
  config.optimizer.momentum = 0.0
  config.optimizer.weight_decay = 0.1
  config.trainable_branches = ('rgb',)
  tx = optimizer.make_optimizer(config, params)
  grads = jax.tree.map(np.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  lr = config.optimizer.learning_rate
  # Weights and BatchNorm: lr x1 with decay x1; biases: lr x2 without decay; flow branch frozen.
  np.testing.assert_allclose(updates['classifier']['kernel'], -lr * (1 + 0.1))
  np.testing.assert_allclose(updates['backbone']['bn1']['scale'], -lr * (1 + 0.1))
  np.testing.assert_allclose(updates['backbone']['bn1']['bias'], -lr * (1 + 0.1))
  np.testing.assert_allclose(updates['classifier']['bias'], -2 * lr)
  np.testing.assert_allclose(updates['flow_classifier']['kernel'], 0)


def test_learning_rate_warms_up_then_decays():
  config = propagation.get_config('smoke')
  schedule = optimizer.learning_rate_schedule(config)
  lr, warmup = config.optimizer.learning_rate, config.optimizer.warmup_steps
  assert float(schedule(0)) == 0
  assert float(schedule(warmup)) == pytest.approx(lr)
  assert float(schedule(config.num_train_steps)) == pytest.approx(config.optimizer.end_learning_rate)


@pytest.mark.parametrize('field, value, message', [
    ('batch_size', 3, 'divisible by the number of devices'),
    ('num_train_steps', 0, 'config.num_train_steps must be a positive integer'),
    ('trainable_branches', ('rbg',), 'config.trainable_branches'),
    ('data.source', 'imagenet', 'config.data.source'),
    ('data.synthetic.neighbour_leak', 1.5, 'config.data.synthetic.neighbour_leak'),
    ('data.synthetic.annotation', 'boxes', 'config.data.synthetic.annotation'),
])
def test_bad_config_values_are_named(field, value, message):
  config = tiny_config()
  if field == 'batch_size':
    config.num_eval_examples = 3
  *sections, name = field.split('.')
  functools.reduce(lambda block, key: block[key], sections, config)[name] = value
  with pytest.raises(ValueError, match=message):
    trainer.validate_config(config, num_devices=2 if field == 'batch_size' else 1)


def test_config_typo_fails_at_once():
  config = propagation.get_config('smoke')
  with pytest.raises(AttributeError, match='batchsize'):
    config.batchsize  # pylint: disable=pointless-statement
  with pytest.raises(ValueError, match='unknown propagation config'):
    propagation.get_config('smok')


def test_examples_are_deterministic_and_well_formed(tmp_path):
  config = tiny_config()
  sampler, _ = trainer.make_samplers(config, tmp_path)
  first = propagation_data.local_batch(sampler, 0, step=5, indices=range(2))
  again = propagation_data.local_batch(sampler, 0, step=5, indices=range(2))
  other = propagation_data.local_batch(sampler, 0, step=6, indices=range(2))
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  assert not np.array_equal(first['image'], other['image'])
  assert first['image'].shape == (2, 65, 65, 3) and first['flow'].shape == (2, 65, 65, 2)
  assert first['guidance'].shape == (2, 65, 65, 1) and first['target'].dtype == np.int32
  assert set(np.unique(first['target']).tolist()) <= {0, 1} and first['target'].any()


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state.params)]


@pytest.mark.slow
def test_training_loss_falls_and_resume_is_exact(tmp_path, capsys, monkeypatch):
  config = tiny_config(num_steps=12)
  config.optimizer.learning_rate = 0.02
  straight = trainer.train_and_evaluate(config, tmp_path / 'straight')
  losses = [float(line.split('loss ')[1].split()[0]) for line in capsys.readouterr().out.splitlines()
            if line.startswith('step ')]
  assert len(losses) == 6
  assert np.mean(losses[-2:]) < 0.75 * losses[0], losses

  real_batch = propagation_data.local_batch

  def crash_after_checkpoint(sampler, seed, step, indices, stream=0):
    if step == 8:
      raise KeyboardInterrupt('simulated preemption')
    return real_batch(sampler, seed, step, indices, stream)

  monkeypatch.setattr(propagation_data, 'local_batch', crash_after_checkpoint)
  with pytest.raises(KeyboardInterrupt):
    trainer.train_and_evaluate(config, tmp_path / 'resumed')
  monkeypatch.setattr(propagation_data, 'local_batch', real_batch)
  resumed = trainer.train_and_evaluate(config, tmp_path / 'resumed')
  assert 'resumed from step 6' in capsys.readouterr().out
  assert int(resumed.step) == 12
  for a, b in zip(_leaves(straight), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)

  # A training checkpoint exports to a model checkpoint without the optimiser state.
  from vsreid_jax import checkpoints, convert  # pylint: disable=g-import-not-at-top
  convert.main(['training-checkpoint', str(tmp_path / 'straight' / 'checkpoints'), '--output',
                str(tmp_path / 'model')])
  variables, exported_config = checkpoints.restore_model_checkpoint(tmp_path / 'model')
  assert exported_config.model.to_dict() == json.loads(json.dumps(config.model.to_dict()))  # tuples as lists
  for a, b in zip(_leaves(straight), jax.tree.leaves(variables['params'])):
    np.testing.assert_array_equal(a, b)


_DEVICE_SCRIPT = '''
import sys
sys.path.insert(0, {tests!r})
import jax
from test_training import tiny_config
from vsreid_jax.training import trainer
config = tiny_config(num_steps=2)
config.checkpoint_every_steps = 2
config.log_every_steps = 1
trainer.train_and_evaluate(config, {workdir!r})
print('devices', jax.device_count())
'''


@pytest.mark.slow
def test_four_devices_give_the_loss_of_one(tmp_path):
  losses = {}
  for devices in (1, 4):
    env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
    script = _DEVICE_SCRIPT.format(tests=os.path.dirname(__file__), workdir=str(tmp_path / f'd{devices}'))
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f'devices {devices}' in done.stdout
    losses[devices] = [float(line.split('loss ')[1].split()[0]) for line in done.stdout.splitlines()
                       if line.startswith('step ')]
  assert len(losses[1]) == 2
  np.testing.assert_allclose(losses[4], losses[1], rtol=1e-4)


def _initialised_variables(config, batch):
  """Random parameters with BatchNorm statistics of real inputs (frozen BN needs sensible statistics)."""
  model = models.build_propagation_model(config.model)
  variables = model.init({'params': jax.random.key(0)}, batch['image'][:1], batch['flow'][:1],
                         batch['guidance'][:1])
  _, updates = model.apply(variables, batch['image'], batch['flow'], batch['guidance'], train=True,
                           mutable=['batch_stats'], rngs={'dropout': jax.random.key(1)})
  return model, {'params': variables['params'], 'batch_stats': updates['batch_stats']}


def test_finetuning_on_the_first_frame_lowers_its_loss():
  config = tiny_config()
  clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
      num_frames=12, height=96, width=128, hidden_frames=(2, 4), seed=1))
  rng = np.random.default_rng(0)
  examples = [finetune.first_frame_example(clip.frames[0], clip.labels[0], rng, 65) for _ in range(8)]
  batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
  model, variables = _initialised_variables(config, batch)

  def loss(variables):
    logits = model.apply(variables, batch['image'], batch['flow'], batch['guidance'])
    return float(trainer.pixel_metrics(logits, batch['target'])[0])

  assert finetune.finetune_propagation(variables, config, clip.frames[0], clip.labels[0], 0) is variables
  tuned = finetune.finetune_propagation(variables, config, clip.frames[0], clip.labels[0], num_steps=15,
                                        learning_rate=3e-3)
  assert loss(tuned) < 0.8 * loss(variables)
  finetune.finetune_propagation(variables, config, clip.frames[1], clip.labels[1], num_steps=1,
                                learning_rate=3e-3)
  _, step = finetune._finetune_step(json.dumps(config.model.to_dict(), sort_keys=True), 3e-3)
  assert step._cache_size() == 1  # a second sequence reuses the compiled step
  for before, after in zip(jax.tree.leaves(variables['batch_stats']), jax.tree.leaves(tuned['batch_stats'])):
    np.testing.assert_array_equal(before, after)  # frozen during fine-tuning
  with pytest.raises(InputError, match='at least one object'):
    finetune.finetune_propagation(variables, config, clip.frames[0], np.zeros_like(clip.labels[0]), 5)


def test_dreamed_frames_move_frame_and_mask_together():
  frame = np.zeros((60, 80, 3), np.uint8)
  labels = np.zeros((60, 80), np.uint8)
  frame[20:40, 30:50] = 200
  labels[20:40, 30:50] = 1
  dreamed, dreamed_labels = finetune.dream_frame(frame, labels, np.random.default_rng(3))
  bright = dreamed.mean(axis=-1) > 100
  assert metrics.region_similarity(bright, dreamed_labels == 1) > 0.85
  assert not np.array_equal(dreamed_labels, labels)


@pytest.mark.parametrize('override, message', [
    ('--config.batch_size=3', 'config.num_eval_examples (64) must be a multiple of config.batch_size (3)'),
    ('--config.data.root=/nonexistent', '/nonexistent: DAVIS folder not found'),
])
def test_train_command_reports_bad_config_in_one_line(tmp_path, override, message):
  command = [sys.executable, 'train.py', '--config', 'configs/propagation.py', '--workdir', str(tmp_path),
             override]
  done = subprocess.run(command, capture_output=True, text=True,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert done.returncode == 2, done.stderr[-2000:]
  assert message in done.stderr and 'Traceback' not in done.stderr
  errors = [line for line in done.stderr.splitlines() if line.startswith('error:')]
  assert errors == [f'error: {errors[0][7:]}'] and message in errors[0]


def test_train_command_rejects_a_config_typo(tmp_path):
  command = [sys.executable, 'train.py', '--config', 'configs/propagation.py:smoke', '--workdir', str(tmp_path),
             '--config.batchsize=8']
  done = subprocess.run(command, capture_output=True, text=True,
                        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert done.returncode == 2 and 'Traceback' not in done.stderr, done.stderr[-2000:]
  assert done.stderr.strip().splitlines() == [
      "error: the config has no field 'batchsize'; did you mean 'batch_size'? "
      '(overrides given: --config.batchsize)']


def test_initial_weights_come_from_a_checkpoint(tmp_path):
  from vsreid_jax import checkpoints  # pylint: disable=g-import-not-at-top
  config = tiny_config()
  model = models.build_propagation_model(config.model)
  tx_for = functools.partial(optimizer.make_optimizer, config)
  fresh = trainer.init_state(jax.random.key(0), model, tx_for, 65)
  other = trainer.init_state(jax.random.key(1), model, tx_for, 65)
  checkpoints.save_model_checkpoint(tmp_path / 'init', other.params, other.batch_stats, config)
  loaded = loop.load_initial_weights(fresh, tmp_path / 'init')
  for a, b in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(other.params)):
    np.testing.assert_array_equal(a, b)
  config.model.width = 0.5
  wider = trainer.init_state(jax.random.key(0), models.build_propagation_model(config.model), tx_for, 65)
  with pytest.raises(InputError, match='do not match the configured model'):
    loop.load_initial_weights(wider, tmp_path / 'init')


def test_video_pairs_from_a_davis2016_tree(tmp_path):
  from conftest import make_davis2016  # pylint: disable=g-import-not-at-top
  from vsreid_jax.data.davis import DavisDataset  # pylint: disable=g-import-not-at-top
  clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
      num_frames=12, height=96, width=128, num_objects=1, num_distractors=0, hidden_frames=(2, 4), seed=2))
  root = make_davis2016(tmp_path, {'single': clip.labels})
  sampler = propagation_data.VideoPairSampler(DavisDataset(root, 'val'), patch_size=65, flow_preset='ultrafast')
  example = sampler.example(np.random.default_rng(0))
  assert set(np.unique(example['target']).tolist()) == {0, 1}  # 0/255 masks read as object 1


def test_synthetic_annotation_and_neighbour_leak_reach_the_training_sampler(tmp_path):
  config = tiny_config()
  config.data.synthetic.annotation = 'instances'
  config.data.synthetic.neighbour_leak = 0.5
  train, held_out = trainer.make_samplers(config, tmp_path)
  assert (train.neighbour_leak, held_out.neighbour_leak) == (0.5, 0.0)
  sequence = train.dataset.sequence(train.dataset.sequence_names[0])
  ids = set(np.unique([sequence.read_annotation(i) for i in range(len(sequence.frames))]).tolist())
  assert ids - {0, 255} > {1, 2, 3}  # the look-alikes (4, 5) are annotated too


def test_neighbour_leak_adds_the_near_part_of_one_neighbour():
  labels = np.zeros((60, 100), np.uint8)
  labels[20:40, 20:40] = 1
  labels[20:40, 40:70] = 2  # touches object 1
  labels[0:10, 90:100] = 3  # far away
  mask = (labels == 1).astype(np.uint8)
  leaked = propagation_data._leak_onto_neighbour(mask, labels, np.random.default_rng(0))  # pylint: disable=protected-access
  assert leaked[labels == 1].all() and not leaked[labels == 3].any() and not leaked[labels == 0].any()
  spilled = leaked[labels == 2]
  assert 0 < spilled.sum() < spilled.size  # the part of 2 next to 1, not all of it
  assert leaked[30, 41] and not leaked[30, 69]


def test_neighbour_leak_moves_guidance_onto_the_neighbour(tmp_path):
  from vsreid_jax.data import davis  # pylint: disable=g-import-not-at-top
  from vsreid_jax.data.davis import DavisDataset  # pylint: disable=g-import-not-at-top
  # A still video of two touching objects: without a leak, the exact guidance is the target.
  rng = np.random.default_rng(0)
  frames = np.repeat(rng.integers(0, 255, (1, 64, 96, 3), np.uint8), 4, axis=0)
  labels = np.zeros((4, 64, 96), np.uint8)
  labels[:, 20:44, 20:44], labels[:, 20:44, 44:70] = 1, 2
  davis.write_davis_sequences(tmp_path, {'still': (frames, labels)}, 'train')
  exact = augment.GuidanceDeformation(scale=0, translation=0, thin_plate=0, morphology=0,
                                      box_probability=0, empty_probability=0)
  def off_object_pixels(leak):
    sampler = propagation_data.VideoPairSampler(DavisDataset(tmp_path, 'train'), patch_size=65,
                                                flow_preset='ultrafast', neighbour_leak=leak,
                                                deformation=exact)
    examples = [sampler.example(np.random.default_rng(i)) for i in range(8)]
    return [int(np.sum((e['guidance'][..., 0] > 0) & (e['target'] == 0))) for e in examples]
  assert max(off_object_pixels(0.0)) == 0
  assert min(off_object_pixels(1.0)) > 0
  with pytest.raises(InputError, match='neighbour_leak'):
    propagation_data.VideoPairSampler(DavisDataset(tmp_path, 'train'), patch_size=65,
                                      neighbour_leak=-0.1)


def test_video_pairs_from_shared_davis2016(shared_davis2016, tmp_path):
  from vsreid_jax.data.davis import DavisDataset  # pylint: disable=g-import-not-at-top
  sampler = propagation_data.VideoPairSampler(DavisDataset(shared_davis2016, 'train'), patch_size=65,
                                              flow_preset='ultrafast', flow_cache_dir=tmp_path)
  example = sampler.example(np.random.default_rng(0))
  assert example['target'].any() and np.isfinite(example['flow']).all()


def test_mixture_sampler_follows_its_weights():
  class Constant:
    def __init__(self, value):
      self.value = value

    def example(self, rng):
      return self.value

  mixture = propagation_data.MixtureSampler([Constant('a'), Constant('b')], [0.7, 0.3])
  draws = [mixture.example(np.random.default_rng(i)) for i in range(2000)]
  assert 0.65 < draws.count('a') / len(draws) < 0.75
  with pytest.raises(ValueError, match='mixture weights'):
    propagation_data.MixtureSampler([Constant('a')], [0.0])


@pytest.mark.slow
def test_non_finite_loss_stops_training_naming_the_step(tmp_path, monkeypatch):
  config = tiny_config(num_steps=6)
  config.checkpoint_every_steps = 6
  real_batch = propagation_data.local_batch

  def poisoned(sampler, seed, step, indices, stream=0):
    batch = real_batch(sampler, seed, step, indices, stream)
    if step == 3 and stream == propagation_data.TRAIN_STREAM:
      batch['image'][0, 0, 0, 0] = np.nan
    return batch

  monkeypatch.setattr(propagation_data, 'local_batch', poisoned)
  with pytest.raises(loop.NonFiniteError, match='non-finite at step 3'):
    trainer.train_and_evaluate(config, tmp_path)
  assert not (tmp_path / 'checkpoints' / '6').exists()  # nothing non-finite was saved


@pytest.mark.parametrize('module, variant, own_field', [
    (propagation, None, 'bias_lr_multiplier'), (propagation, 'demo', 'bias_lr_multiplier'),
    (propagation, 'smoke', 'bias_lr_multiplier'), (reid_config, None, 'clip_norm'),
    (reid_config, 'demo', 'clip_norm'), (reid_config, 'smoke', 'clip_norm')])
def test_training_configs_take_the_shared_blocks(module, variant, own_field):
  config = module.get_config(variant)
  assert own_field in config.optimizer
  assert (config.optimizer.momentum, config.optimizer.end_learning_rate) == (0.9, 0.0)
  # Smoke configs generate small synthetic videos; the others full-size ones.
  assert config.data.synthetic.height == (120 if variant == 'smoke' else 240)


def test_training_configs_load_from_any_directory(tmp_path):
  root = pathlib.Path(__file__).resolve().parents[1]
  code = ('from vsreid_jax import convert; import sys; '
          'print(convert.load_config(sys.argv[1], "smoke").optimizer.power, '
          'convert.load_config(sys.argv[2], "smoke").optimizer.power)')
  done = subprocess.run([sys.executable, '-c', code, str(root / 'configs' / 'propagation.py'),
                         str(root / 'configs' / 'reid.py')], cwd=tmp_path, capture_output=True,
                        text=True, env={**os.environ, 'PYTHONPATH': ''})
  assert done.returncode == 0, done.stderr
  assert done.stdout.split() == ['0.9', '1.0']
