"""The training loop shared by the networks: data-parallel jit over all devices, orbax, metrics.

A network's trainer supplies pure pieces (state initialisation, a train step,
this host's share of a batch, how to summarise metrics); this module runs them
on a mesh of every device and host, checkpoints asynchronously, resumes from
the latest checkpoint, logs, and stops on non-finite loss or gradients.
"""

import concurrent.futures
import pathlib
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from vsreid_jax import checkpoints
from vsreid_jax.errors import InputError

DATA_AXIS = 'data'


class NonFiniteError(FloatingPointError):
  """Loss or gradients became NaN or infinite."""


def validate_loop_config(config, num_devices):
  """Fails early with an `InputError` (a ValueError) naming the field the loop cannot run with."""
  for field in ('batch_size', 'num_train_steps', 'checkpoint_every_steps', 'log_every_steps'):
    value = config[field]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise InputError(f'config.{field} must be a positive integer, got {value!r}')
  if config.batch_size % num_devices:
    raise InputError(f'config.batch_size ({config.batch_size}) must be divisible by the number of '
                     f'devices ({num_devices})')


def make_mesh():
  """A 1-D mesh over every device of every host, and the shardings of batches and of the state."""
  mesh = jax.make_mesh((jax.device_count(),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))
  return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS)),
          jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def local_indices(batch_size):
  """Indices in the global batch of the examples this host builds."""
  size = batch_size // jax.process_count()
  return range(jax.process_index() * size, (jax.process_index() + 1) * size)


class _Prefetcher:
  """Builds this host's batches a few steps ahead in worker threads (OpenCV and NumPy release the GIL)."""

  def __init__(self, build, steps, workers, depth=2):
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


def _format_summary(summary):
  return '  '.join(f'{key} {value:.2e}' if key == 'learning_rate' else f'{key} {value:.4f}'
                   for key, value in summary.items())


def run_training(config, workdir, *, init_state, train_step, local_batch, summarise, eval_step=None,
                 eval_batches=(), after_init=None, num_workers=2):
  """Trains from scratch or from the latest checkpoint in `workdir/checkpoints`.

  Args:
    config: the run's `ConfigDict`; uses batch_size, num_train_steps,
      checkpoint_every_steps, log_every_steps, eval_every_steps and
      keep_checkpoints, and is stored (as JSON) in every checkpoint.
    workdir: receives checkpoints and TensorBoard summaries.
    init_state: rng -> initial state, a flax struct with a `step` field.
    train_step: (state, batch) -> (state, metrics); metrics hold a boolean 'finite'.
    local_batch: (step, indices) -> dict of NumPy arrays, this host's examples of a step.
    summarise: list of host metrics dicts -> dict of scalars (loss first).
    eval_step: optional (state, batch) -> metrics for held-out batches.
    eval_batches: this host's shares of the held-out batches (dicts of NumPy arrays).
    after_init: optional state -> state applied to a fresh (not resumed) state,
      e.g. to load pretrained weights.
    num_workers: threads building batches ahead.

  Returns:
    the final state.
  """
  workdir = pathlib.Path(workdir).absolute()
  data_sharding, replicated = make_mesh()
  rng = jax.random.key(config.seed)
  abstract = jax.eval_shape(init_state, rng)
  state_shardings = jax.tree.map(lambda _: replicated, abstract)
  state = jax.jit(init_state, out_shardings=state_shardings)(rng)

  manager = ocp.CheckpointManager(
      workdir / 'checkpoints', item_names=(checkpoints.STATE_ITEM, checkpoints.CONFIG_ITEM),
      options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints,
                                           enable_async_checkpointing=True))
  start_step = manager.latest_step()
  if start_step is not None:
    target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          flax.serialization.to_state_dict(state),
                          flax.serialization.to_state_dict(state_shardings))
    restored = manager.restore(start_step, args=ocp.args.Composite(**{
        checkpoints.STATE_ITEM: ocp.args.StandardRestore(target)}))
    state = flax.serialization.from_state_dict(state, restored[checkpoints.STATE_ITEM])
    print(f'resumed from step {start_step} in {workdir / "checkpoints"}', flush=True)
  else:
    start_step = 0
    if after_init is not None:
      state = jax.device_put(after_init(state), state_shardings)

  p_train_step = jax.jit(train_step, in_shardings=(state_shardings, data_sharding),
                         out_shardings=(state_shardings, None), donate_argnums=0)
  p_eval_step = None if eval_step is None else jax.jit(eval_step, in_shardings=(state_shardings, data_sharding))

  def to_global(batch):
    return {k: jax.make_array_from_process_local_data(data_sharding, v) for k, v in batch.items()}

  eval_batches = [to_global(batch) for batch in eval_batches]
  is_main = jax.process_index() == 0
  # Imported here: clu brings in TensorFlow, which inference (fine-tuning included) never needs.
  from clu import metric_writers  # pylint: disable=g-import-not-at-top
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str))})
  indices = local_indices(config.batch_size)
  prefetcher = _Prefetcher(lambda step: local_batch(step, indices),
                           range(start_step, config.num_train_steps), num_workers)
  pending, timer_start, timer_step = [], time.perf_counter(), start_step
  try:
    for step in range(start_step, config.num_train_steps):
      state, metrics = p_train_step(state, to_global(next(prefetcher)))
      pending.append((step, metrics))
      done = step + 1
      last = done == config.num_train_steps
      logging_now = done % config.log_every_steps == 0 or last
      saving_now = done % config.checkpoint_every_steps == 0 or last
      if logging_now or saving_now:
        # Metrics reach the host only here; nothing non-finite may be saved.
        fetched = [(s, jax.device_get(m)) for s, m in pending]
        pending = []
        bad = [s for s, m in fetched if not m['finite']]
        if bad:
          raise NonFiniteError(f'loss or gradients became non-finite at step {bad[0]}; the last '
                               f'checkpoint before it is kept in {workdir / "checkpoints"}')
      if logging_now:
        steps_per_second = (done - timer_step) / max(time.perf_counter() - timer_start, 1e-9)
        summary = summarise([m for _, m in fetched])
        rates = {'steps_per_second': steps_per_second,
                 'images_per_second': steps_per_second * config.batch_size}
        writer.write_scalars(done, {**summary, **rates})
        if is_main:
          eta = (config.num_train_steps - done) / max(steps_per_second, 1e-9)
          print(f'step {done}/{config.num_train_steps}  {_format_summary(summary)}  '
                f'{steps_per_second:.2f} steps/s  {rates["images_per_second"]:.1f} img/s  '
                f'ETA {_format_eta(eta)}', flush=True)
        timer_start, timer_step = time.perf_counter(), done
      if p_eval_step is not None and config.eval_every_steps and (
          done % config.eval_every_steps == 0 or last):
        scores = summarise([jax.device_get(p_eval_step(state, batch)) for batch in eval_batches])
        writer.write_scalars(done, {f'eval_{k}': v for k, v in scores.items()})
        if is_main:
          print(f'eval at step {done}: {_format_summary(scores)}', flush=True)
      if saving_now:
        manager.save(done, args=ocp.args.Composite(**{
            checkpoints.STATE_ITEM: ocp.args.StandardSave(flax.serialization.to_state_dict(state)),
            checkpoints.CONFIG_ITEM: ocp.args.JsonSave(config.to_dict()),
        }), force=True)
  finally:
    prefetcher.close()
    manager.wait_until_finished()
    writer.flush()
  manager.close()
  return state


def load_initial_weights(state, init_checkpoint):
  """Replaces the freshly initialised network variables (`params`, `batch_stats`) by those of a
  model checkpoint (converted, exported or shipped) of the same network."""
  variables, _ = checkpoints.restore_model_checkpoint(init_checkpoint)

  def replace(fresh, loaded, what):
    fresh_shapes = jax.tree.map(np.shape, fresh)
    loaded_shapes = jax.tree.map(np.shape, loaded)
    if fresh_shapes != loaded_shapes:
      raise InputError(f'config.init_checkpoint {init_checkpoint}: its {what} do not match the '
                       'configured model (different depth, width or stem?)')
    return jax.tree.map(lambda f, l: jnp.asarray(l, f.dtype), fresh, loaded)
  return state.replace(params=replace(state.params, variables['params'], 'parameters'),
                       batch_stats=replace(state.batch_stats, variables['batch_stats'], 'batch statistics'))
