"""Training the propagation network: config checks, data, the train and eval steps."""

import functools
import pathlib

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vsreid_jax import models
from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.training import loop
from vsreid_jax.training import optimizer as optimizer_lib
from vsreid_jax.training import propagation_data
from vsreid_jax.training import tfds_data

DATA_SOURCES = ('davis', 'synthetic', 'tfds_davis', 'coco')


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState


def validate_config(config, num_devices):
  """Fails early with an `InputError` (a ValueError) naming the field the trainer cannot run with."""
  loop.validate_loop_config(config, num_devices)
  if config.num_eval_examples % config.batch_size:
    raise InputError(f'config.num_eval_examples ({config.num_eval_examples}) must be a multiple of '
                     f'config.batch_size ({config.batch_size})')
  if config.data.source not in DATA_SOURCES:
    raise InputError(f'config.data.source must be one of {DATA_SOURCES}, got {config.data.source!r}')
  if config.data.source == 'davis' and not config.data.root:
    raise InputError('config.data.root must name a DAVIS folder when config.data.source is "davis"')
  if not 0 <= config.data.synthetic_fraction <= 1:
    raise InputError(f'config.data.synthetic_fraction must lie in [0, 1], got {config.data.synthetic_fraction}')
  if not 0 <= config.data.synthetic.neighbour_leak <= 1:
    raise InputError(f'config.data.synthetic.neighbour_leak must lie in [0, 1], '
                     f'got {config.data.synthetic.neighbour_leak}')
  if config.data.synthetic.annotation not in synthetic.ANNOTATIONS:
    raise InputError(f'config.data.synthetic.annotation must be one of {synthetic.ANNOTATIONS}, '
                     f'got {config.data.synthetic.annotation!r}')
  unknown = set(config.trainable_branches) - {'rgb', 'flow'}
  if unknown or not config.trainable_branches:
    raise InputError(f'config.trainable_branches must be a non-empty subset of ("rgb", "flow"), '
                     f'got {tuple(config.trainable_branches)}')


def _synthetic_root(config, workdir):
  videos = config.data.synthetic
  video = synthetic.SyntheticVideoConfig(num_frames=videos.num_frames, height=videos.height,
                                         width=videos.width, hidden_frames=(4, 8))
  return propagation_data.prepare_synthetic_root(
      workdir / 'synthetic_data', videos.num_train_videos, videos.num_eval_videos, video, config.seed,
      videos.annotation)


def make_samplers(config, workdir):
  """Training and held-out samplers (objects with `example(rng)`) for the configured data.

  With `data.synthetic_fraction` > 0, that fraction of the training examples
  comes from synthetic videos generated into the workdir.
  """
  data = config.data
  if data.source == 'coco':
    return [tfds_data.CocoInstanceSampler(
        tfds_data.open_data_source(tfds_data.COCO_PANOPTIC, split, data.tfds_data_dir or None),
        config.model.patch_size, augment=augment) for split, augment in
            ((data.train_split, True), (data.eval_split, False))]
  splits = (data.train_split, data.eval_split)
  if data.source == 'synthetic':
    root, splits = _synthetic_root(config, workdir), ('train', 'eval')
  elif data.source == 'tfds_davis':
    root = workdir / 'tfds_videos'
    for split in splits:
      tfds_data.export_tfds_videos(
          tfds_data.open_data_source(data.tfds_name, split, data.tfds_data_dir or None), root, split,
          data.tfds_name)
  else:
    root = pathlib.Path(data.root)

  def video_sampler(root, split, augment, neighbour_leak=0.0):
    cache = None if not data.cache_flow else workdir / 'flow_cache' / pathlib.Path(root).name / split
    return propagation_data.VideoPairSampler(
        DavisDataset(root, split, data.layout), config.model.patch_size, max_gap=data.max_gap,
        flow_preset=data.flow_preset, flow_cache_dir=cache, augment=augment,
        neighbour_leak=neighbour_leak)

  synthetic_leak = data.synthetic.neighbour_leak
  train = video_sampler(root, splits[0], True,
                        synthetic_leak if data.source == 'synthetic' else 0.0)
  held_out = video_sampler(root, splits[1], False)
  if data.synthetic_fraction > 0 and data.source != 'synthetic':
    synthetic_train = video_sampler(_synthetic_root(config, workdir), 'train', True, synthetic_leak)
    train = propagation_data.MixtureSampler(
        [train, synthetic_train], [1 - data.synthetic_fraction, data.synthetic_fraction])
  return train, held_out


def pixel_metrics(logits, target):
  """Cross-entropy and the sums behind pixel accuracy and foreground IoU."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  loss = -jnp.mean(jnp.take_along_axis(log_probs, target[..., None], axis=-1))
  predicted = jnp.argmax(logits, axis=-1)
  foreground, truth = predicted == 1, target == 1
  return loss, {
      'loss': loss,
      'correct': jnp.sum(predicted == target),
      'pixels': jnp.asarray(target.size),
      'intersection': jnp.sum(foreground & truth),
      'union': jnp.sum(foreground | truth),
  }


def train_step(state, batch, model, tx, schedule, dropout_key):
  """One SGD step; metrics carry a flag that is False when loss or gradients are not finite."""
  def loss_fn(params):
    logits, updates = model.apply(
        {'params': params, 'batch_stats': state.batch_stats}, batch['image'], batch['flow'],
        batch['guidance'], train=True, rngs={'dropout': jax.random.fold_in(dropout_key, state.step)},
        mutable=['batch_stats'])
    loss, metrics = pixel_metrics(logits, batch['target'])
    return loss, (metrics, updates.get('batch_stats', state.batch_stats))

  (_, (metrics, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  metrics['finite'] = jnp.isfinite(metrics['loss']) & jnp.all(jnp.array(
      [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
  metrics['learning_rate'] = schedule(state.step)
  new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                            batch_stats=batch_stats, opt_state=opt_state)
  return new_state, metrics


def eval_step(state, batch, model):
  logits = model.apply({'params': state.params, 'batch_stats': state.batch_stats}, batch['image'],
                       batch['flow'], batch['guidance'], train=False)
  return pixel_metrics(logits, batch['target'])[1]


def summarise(metrics_list):
  """Host-side scalars from a list of fetched per-step metrics."""
  total = {key: sum(float(m[key]) for m in metrics_list) for key in ('correct', 'pixels', 'intersection', 'union')}
  summary = {
      'loss': float(np.mean([m['loss'] for m in metrics_list])),
      'pixel_accuracy': total['correct'] / max(total['pixels'], 1),
      'foreground_iou': total['intersection'] / max(total['union'], 1),
  }
  if 'learning_rate' in metrics_list[-1]:
    summary['learning_rate'] = float(metrics_list[-1]['learning_rate'])
  return summary


def init_state(rng, model, tx_for, patch_size):
  """A fresh `TrainState`: network variables and the optimiser state."""
  dummy = (jnp.zeros((1, patch_size, patch_size, 3)), jnp.zeros((1, patch_size, patch_size, 2)),
           jnp.zeros((1, patch_size, patch_size, 1)))
  variables = model.init({'params': rng, 'dropout': rng}, *dummy, train=False)
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}), opt_state=tx_for(params).init(params))


def train_and_evaluate(config, workdir):
  """Trains the propagation network as `config` says, resuming from `workdir` if it holds checkpoints.

  Args:
    config: a `configs/propagation.py` config.
    workdir: receives checkpoints (orbax), TensorBoard summaries, synthetic data and the flow cache.

  Returns:
    the final `TrainState`.
  """
  workdir = pathlib.Path(workdir).absolute()
  validate_config(config, jax.device_count())
  model = models.build_propagation_model(config.model)
  train_sampler, eval_sampler = make_samplers(config, workdir)
  tx_for = functools.partial(optimizer_lib.make_optimizer, config)
  initial = functools.partial(init_state, model=model, tx_for=tx_for, patch_size=config.model.patch_size)
  # The optimiser's parameter groups follow the parameter tree, known without initialising.
  tx = tx_for(jax.eval_shape(initial, jax.random.key(0)).params)
  _, dropout_key = jax.random.split(jax.random.key(config.seed))
  step = functools.partial(train_step, model=model, tx=tx,
                           schedule=optimizer_lib.learning_rate_schedule(config), dropout_key=dropout_key)
  indices = loop.local_indices(config.batch_size)
  eval_batches = [propagation_data.local_batch(eval_sampler, config.seed, i, indices, propagation_data.EVAL_STREAM)
                  for i in range(config.num_eval_examples // config.batch_size)]
  after_init = None
  if config.init_checkpoint:
    after_init = functools.partial(loop.load_initial_weights, init_checkpoint=config.init_checkpoint)
  return loop.run_training(
      config, workdir, init_state=initial, train_step=step,
      local_batch=lambda s, idx: propagation_data.local_batch(train_sampler, config.seed, s, idx),
      summarise=summarise, eval_step=functools.partial(eval_step, model=model),
      eval_batches=eval_batches, after_init=after_init, num_workers=config.data.num_workers)
