"""Training loop of the propagation network: data-parallel jit over all devices, orbax, metrics."""

import concurrent.futures
import functools
import pathlib
import time

from clu import metric_writers
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from vsreid_jax import checkpoints, models
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.data.synthetic import SyntheticVideoConfig
from vsreid_jax.errors import InputError
from vsreid_jax.training import optimizer as optimizer_lib
from vsreid_jax.training import propagation_data
from vsreid_jax.training import tfds_data

DATA_AXIS = 'data'
DATA_SOURCES = ('davis', 'synthetic', 'tfds_davis', 'coco')


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState


class NonFiniteError(FloatingPointError):
  """Loss or gradients became NaN or infinite."""


def validate_config(config, num_devices):
  """Fails early with an `InputError` (a ValueError) naming the field the trainer cannot run with."""
  for field in ('batch_size', 'num_train_steps', 'checkpoint_every_steps', 'log_every_steps'):
    value = config[field]
    if not isinstance(value, int) or value <= 0:
      raise InputError(f'config.{field} must be a positive integer, got {value!r}')
  if config.batch_size % num_devices:
    raise InputError(f'config.batch_size ({config.batch_size}) must be divisible by the number of '
                     f'devices ({num_devices})')
  if config.num_eval_examples % config.batch_size:
    raise InputError(f'config.num_eval_examples ({config.num_eval_examples}) must be a multiple of '
                     f'config.batch_size ({config.batch_size})')
  if config.data.source not in DATA_SOURCES:
    raise InputError(f'config.data.source must be one of {DATA_SOURCES}, got {config.data.source!r}')
  if config.data.source == 'davis' and not config.data.root:
    raise InputError('config.data.root must name a DAVIS folder when config.data.source is "davis"')
  unknown = set(config.trainable_branches) - {'rgb', 'flow'}
  if unknown or not config.trainable_branches:
    raise InputError(f'config.trainable_branches must be a non-empty subset of ("rgb", "flow"), '
                     f'got {tuple(config.trainable_branches)}')


def make_samplers(config, workdir):
  """Training and held-out samplers (objects with `example(rng)`) for the configured data."""
  data = config.data
  if data.source == 'coco':
    return [tfds_data.CocoInstanceSampler(
        tfds_data.open_data_source(tfds_data.COCO_PANOPTIC, split, data.tfds_data_dir or None),
        config.model.patch_size, augment=augment) for split, augment in
            ((data.train_split, True), (data.eval_split, False))]
  splits = (data.train_split, data.eval_split)
  if data.source == 'synthetic':
    video = SyntheticVideoConfig(num_frames=data.synthetic.num_frames, height=data.synthetic.height,
                                 width=data.synthetic.width, hidden_frames=(4, 8))
    root = propagation_data.prepare_synthetic_root(
        workdir / 'synthetic_data', data.synthetic.num_train_videos, data.synthetic.num_eval_videos,
        video, config.seed)
    splits = ('train', 'eval')
  elif data.source == 'tfds_davis':
    root = workdir / 'tfds_videos'
    for split in splits:
      tfds_data.export_tfds_videos(
          tfds_data.open_data_source(data.tfds_name, split, data.tfds_data_dir or None), root, split,
          data.tfds_name)
  else:
    root = pathlib.Path(data.root)
  flow_cache = workdir / 'flow_cache' if data.cache_flow else None
  return [propagation_data.VideoPairSampler(
      DavisDataset(root, split, data.layout), config.model.patch_size, max_gap=data.max_gap,
      flow_preset=data.flow_preset, flow_cache_dir=None if flow_cache is None else flow_cache / split,
      augment=augment) for split, augment in zip(splits, (True, False))]


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


def _state_dict(state):
  return flax.serialization.to_state_dict(state)


def _init_state(config, model, tx_for, mesh, rng):
  """Parameters initialised directly with replicated shardings (no copy from one device)."""
  size = config.model.patch_size
  dummy = (jnp.zeros((1, size, size, 3)), jnp.zeros((1, size, size, 2)), jnp.zeros((1, size, size, 1)))

  def init(rng):
    variables = model.init({'params': rng, 'dropout': rng}, *dummy, train=False)
    params = variables['params']
    tx = tx_for(params)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get('batch_stats', {}), opt_state=tx.init(params))

  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  abstract = jax.eval_shape(init, rng)
  shardings = jax.tree.map(lambda _: replicated, abstract)
  return jax.jit(init, out_shardings=shardings)(rng), shardings


def _load_initial_weights(state, init_checkpoint):
  """Replaces the freshly initialised network variables by those of a converted checkpoint."""
  variables, _ = checkpoints.restore_model_checkpoint(init_checkpoint)
  def replace(fresh, loaded, what):
    fresh_shapes = jax.tree.map(np.shape, fresh)
    loaded_shapes = jax.tree.map(np.shape, loaded)
    if fresh_shapes != loaded_shapes:
      raise ValueError(f'config.init_checkpoint {init_checkpoint}: its {what} do not match the '
                       'configured model (different depth, width or stem?)')
    return jax.tree.map(lambda f, l: jnp.asarray(l, f.dtype), fresh, loaded)
  return state.replace(params=replace(state.params, variables['params'], 'parameters'),
                       batch_stats=replace(state.batch_stats, variables['batch_stats'], 'batch statistics'))


class _Prefetcher:
  """Builds this host's batches a few steps ahead in worker threads (OpenCV and NumPy release the GIL)."""

  def __init__(self, build, steps, workers, depth):
    self._build, self._steps = build, iter(steps)
    self._pool = concurrent.futures.ThreadPoolExecutor(workers)
    self._pending = [self._pool.submit(build, s) for s in _take(self._steps, depth)]

  def __next__(self):
    future = self._pending.pop(0)
    for step in _take(self._steps, 1):
      self._pending.append(self._pool.submit(self._build, step))
    return future.result()

  def close(self):
    self._pool.shutdown(wait=False, cancel_futures=True)


def _take(iterator, count):
  for _ in range(count):
    value = next(iterator, None)
    if value is None:
      return
    yield value


def _format_eta(seconds):
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def train_and_evaluate(config, workdir):
  """Trains the propagation network as `config` says, resuming from `workdir` if it holds checkpoints.

  Args:
    config: a `configs/propagation.py` config.
    workdir: receives checkpoints (orbax), TensorBoard summaries, synthetic data and the flow cache.

  Returns:
    the final `TrainState`.
  """
  workdir = pathlib.Path(workdir).absolute()
  num_devices = jax.device_count()
  validate_config(config, num_devices)
  mesh = jax.make_mesh((num_devices,), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
  data_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))
  model = models.build_propagation_model(config.model)
  train_sampler, eval_sampler = make_samplers(config, workdir)

  rng = jax.random.key(config.seed)
  init_key, dropout_key = jax.random.split(rng)
  tx_for = functools.partial(optimizer_lib.make_optimizer, config)
  state, state_shardings = _init_state(config, model, tx_for, mesh, init_key)
  tx = tx_for(state.params)
  schedule = optimizer_lib.learning_rate_schedule(config)

  manager = ocp.CheckpointManager(
      workdir / 'checkpoints', item_names=(checkpoints.STATE_ITEM, checkpoints.CONFIG_ITEM),
      options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints,
                                           enable_async_checkpointing=True))
  start_step = manager.latest_step()
  if start_step is not None:
    target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          _state_dict(state), _state_dict(state_shardings))
    restored = manager.restore(start_step, args=ocp.args.Composite(**{
        checkpoints.STATE_ITEM: ocp.args.StandardRestore(target)}))
    state = flax.serialization.from_state_dict(state, restored[checkpoints.STATE_ITEM])
    print(f'resumed from step {start_step} in {workdir / "checkpoints"}', flush=True)
  else:
    start_step = 0
    if config.init_checkpoint:
      state = _load_initial_weights(state, config.init_checkpoint)

  p_train_step = jax.jit(
      functools.partial(train_step, model=model, tx=tx, schedule=schedule, dropout_key=dropout_key),
      in_shardings=(state_shardings, data_sharding), out_shardings=(state_shardings, None),
      donate_argnums=0)
  p_eval_step = jax.jit(functools.partial(eval_step, model=model),
                        in_shardings=(state_shardings, data_sharding))

  process, processes = jax.process_index(), jax.process_count()
  local_size = config.batch_size // processes
  local_indices = range(process * local_size, (process + 1) * local_size)

  def build(step, stream=propagation_data.TRAIN_STREAM, sampler=train_sampler):
    return propagation_data.local_batch(sampler, config.seed, step, local_indices, stream)

  def to_global(batch):
    return {k: jax.make_array_from_process_local_data(data_sharding, v) for k, v in batch.items()}

  eval_batches = [to_global(build(i, propagation_data.EVAL_STREAM, eval_sampler))
                  for i in range(config.num_eval_examples // config.batch_size)]

  def evaluate():
    return summarise([jax.device_get(p_eval_step(state, batch)) for batch in eval_batches])

  writer = metric_writers.create_default_writer(workdir, just_logging=process > 0)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str))})
  is_main = process == 0

  def save(step):
    manager.save(step, args=ocp.args.Composite(**{
        checkpoints.STATE_ITEM: ocp.args.StandardSave(_state_dict(state)),
        checkpoints.CONFIG_ITEM: ocp.args.JsonSave(config.to_dict()),
    }), force=True)

  prefetcher = _Prefetcher(build, range(start_step, config.num_train_steps), config.data.num_workers,
                           depth=2)
  pending, timer_start, timer_step = [], time.perf_counter(), start_step
  try:
    for step in range(start_step, config.num_train_steps):
      state, metrics = p_train_step(state, to_global(next(prefetcher)))
      pending.append((step, metrics))
      done = step + 1
      last = done == config.num_train_steps
      if done % config.log_every_steps == 0 or done % config.checkpoint_every_steps == 0 or last:
        fetched = [(s, jax.device_get(m)) for s, m in pending]
        pending = []
        bad = [s for s, m in fetched if not m['finite']]
        if bad:
          raise NonFiniteError(f'loss or gradients became non-finite at step {bad[0]}; the last '
                               f'checkpoint before it is kept in {workdir / "checkpoints"}')
        if done % config.log_every_steps == 0 or last:
          elapsed = time.perf_counter() - timer_start
          steps_per_second = (done - timer_step) / max(elapsed, 1e-9)
          summary = summarise([m for _, m in fetched])
          summary.update(steps_per_second=steps_per_second,
                         images_per_second=steps_per_second * config.batch_size)
          writer.write_scalars(done, summary)
          if is_main:
            eta = (config.num_train_steps - done) / max(steps_per_second, 1e-9)
            print(f'step {done}/{config.num_train_steps}  loss {summary["loss"]:.4f}  '
                  f'acc {summary["pixel_accuracy"]:.3f}  fg-IoU {summary["foreground_iou"]:.3f}  '
                  f'lr {summary["learning_rate"]:.2e}  {steps_per_second:.2f} steps/s  '
                  f'{summary["images_per_second"]:.1f} img/s  ETA {_format_eta(eta)}', flush=True)
          timer_start, timer_step = time.perf_counter(), done
      if config.eval_every_steps and (done % config.eval_every_steps == 0 or last):
        scores = evaluate()
        writer.write_scalars(done, {f'eval_{k}': v for k, v in scores.items()})
        if is_main:
          print(f'eval at step {done}: loss {scores["loss"]:.4f}  fg-IoU {scores["foreground_iou"]:.3f}',
                flush=True)
      if done % config.checkpoint_every_steps == 0 or last:
        save(done)
  finally:
    prefetcher.close()
    manager.wait_until_finished()
    writer.flush()
  manager.close()
  return state
