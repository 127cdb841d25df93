"""Training the mask verifier: config checks, pairs, the train and eval steps (binary cross-entropy)."""

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vsreid_jax.data.synthetic import SyntheticVideoConfig
from vsreid_jax.errors import InputError
from vsreid_jax.models.verifier import build_verifier
from vsreid_jax.training import loop
from vsreid_jax.training import optimizer as optimizer_lib
from vsreid_jax.training import propagation_data
from vsreid_jax.training.verifier_data import VerifierPairs

METRICS = ('loss', 'accuracy')


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  batch_stats: dict  # empty: kept so that exported checkpoints look like the other networks'
  opt_state: optax.OptState


def validate_config(config, num_devices):
  """Fails early with an `InputError` (a ValueError) naming the field the trainer cannot use."""
  loop.validate_loop_config(config, num_devices)
  data, model = config.data, config.model
  for field in ('num_train_videos', 'num_eval_videos', 'num_frames', 'queries_per_instance'):
    if not isinstance(data[field], int) or data[field] < 1:
      raise InputError(f'config.data.{field} must be a positive integer, got {data[field]!r}')
  for field in ('positive_fraction', 'look_alike_fraction'):
    if not 0.0 <= data[field] <= 1.0:
      raise InputError(f'config.data.{field} must lie in [0, 1], got {data[field]}')
  if not isinstance(model.crop_size, int) or model.crop_size < 16:
    raise InputError(f'config.model.crop_size must be an integer of at least 16, got '
                     f'{model.crop_size!r}')
  if len(model.widths) != len(model.strides) or not len(model.widths):
    raise InputError(f'config.model.widths and config.model.strides must be non-empty and of one '
                     f'length, got {tuple(model.widths)} and {tuple(model.strides)}')


def make_pairs(config, first_seed, count, stream):
  """`VerifierPairs` of `count` videos from `first_seed`, with progress lines."""
  data = config.data
  video = SyntheticVideoConfig(num_frames=data.num_frames)
  name = ('training', 'held-out')[stream]

  def progress(done, total):
    if done == total or done % 50 == 0:
      print(f'verifier pairs: {done}/{total} {name} videos', flush=True)
  return VerifierPairs(video, range(first_seed, first_seed + count), config.model.crop_size,
                       data.queries_per_instance, np.random.default_rng([config.seed, stream]),
                       data.positive_fraction, data.look_alike_fraction, progress)


def loss_and_metrics(params, model, batch):
  logits = model.apply({'params': params}, batch['template'], batch['query'])
  loss = optax.sigmoid_binary_cross_entropy(logits, batch['label']).mean()
  accuracy = jnp.mean((logits > 0) == (batch['label'] > 0.5))
  return loss, {'loss': loss, 'accuracy': accuracy}


def train_step(state, batch, model, tx, schedule):
  (loss, metrics), grads = jax.value_and_grad(
      functools.partial(loss_and_metrics, model=model, batch=batch), has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  metrics = {**metrics, 'learning_rate': schedule(state.step),
             'finite': jnp.isfinite(loss) & jnp.all(jnp.array(
                 [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))}
  return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                       opt_state=opt_state), metrics


def eval_step(state, batch, model):
  return loss_and_metrics(state.params, model, batch)[1]


def summarise(metrics_list):
  """Host-side means of the loss and accuracy, and the last learning rate (when trained)."""
  summary = {key: float(np.mean([m[key] for m in metrics_list])) for key in METRICS}
  if 'learning_rate' in metrics_list[-1]:
    summary['learning_rate'] = float(metrics_list[-1]['learning_rate'])
  return summary


def train_and_evaluate(config, workdir):
  """Trains the mask verifier as `config` (`configs/verifier.py`) says, resuming from `workdir`.

  Returns:
    the final `TrainState`.
  """
  validate_config(config, jax.device_count())
  model = build_verifier(config.model)
  data = config.data
  train_pairs = make_pairs(config, data.first_seed, data.num_train_videos, stream=0)
  eval_pairs = make_pairs(config, data.first_seed + data.num_train_videos, data.num_eval_videos,
                          stream=1)
  schedule = optimizer_lib.learning_rate_schedule(config)
  tx = optax.adamw(schedule, weight_decay=config.optimizer.weight_decay)
  size = config.model.crop_size
  crops = jnp.zeros((1, size, size, 4))

  def init_state(rng):
    params = model.init(rng, crops, crops)['params']
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={},
                      opt_state=tx.init(params))

  # Held-out batches: a fixed draw, the same at every evaluation.
  indices = loop.local_indices(config.batch_size)
  eval_batches = [propagation_data.local_batch(eval_pairs, config.seed, step, indices,
                                               propagation_data.EVAL_STREAM) for step in range(8)]
  return loop.run_training(
      config, workdir, init_state=init_state,
      train_step=functools.partial(train_step, model=model, tx=tx, schedule=schedule),
      local_batch=lambda s, idx: propagation_data.local_batch(train_pairs, config.seed, s, idx),
      summarise=summarise, eval_step=functools.partial(eval_step, model=model),
      eval_batches=eval_batches, num_workers=data.num_workers)
