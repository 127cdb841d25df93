"""Training throughput of the propagation network: steps/s and images/s per device, and the input pipeline.

  python -m benchmarks.train_throughput [--configs smoke paper] [--steps 3] [--dtypes float32]

The network rows time the jitted train step alone on random inputs (compile
time separate); the pipeline row times building a batch of real examples
(synthetic videos, DIS flow, guidance deformation) on the host.
"""

import argparse
import functools
import pathlib
import tempfile
import time

import jax
import numpy as np

from benchmarks.cli import positive_int
from vsreid_jax import convert, models
from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.training import optimizer, propagation_data, trainer


def time_train_step(config, steps):
  model = models.build_propagation_model(config.model)
  size, batch_size = config.model.patch_size, config.batch_size
  rng = np.random.default_rng(0)
  batch = {'image': rng.uniform(0, 255, (batch_size, size, size, 3)).astype(np.float32),
           'flow': rng.normal(0, 2, (batch_size, size, size, 2)).astype(np.float32),
           'guidance': (rng.random((batch_size, size, size, 1)) > 0.5).astype(np.float32),
           'target': (rng.random((batch_size, size, size)) > 0.5).astype(np.int32)}
  variables = jax.jit(functools.partial(model.init, train=False))(
      {'params': jax.random.key(0)}, batch['image'][:1], batch['flow'][:1], batch['guidance'][:1])
  tx = optimizer.make_optimizer(config, variables['params'])
  state = trainer.TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=variables['params'],
                             batch_stats=variables['batch_stats'], opt_state=tx.init(variables['params']))
  step = jax.jit(functools.partial(trainer.train_step, model=model, tx=tx,
                                   schedule=optimizer.learning_rate_schedule(config),
                                   dropout_key=jax.random.key(1)), donate_argnums=0)
  start = time.perf_counter()
  compiled = step.lower(state, batch).compile()
  compile_seconds = time.perf_counter() - start
  flops = (compiled.cost_analysis() or {}).get('flops', float('nan'))
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / steps
  return compile_seconds, seconds, flops


def time_pipeline(config, batches):
  with tempfile.TemporaryDirectory() as workdir:
    sampler, _ = trainer.make_samplers(config, pathlib.Path(workdir))
    start = time.perf_counter()
    for step in range(batches):
      propagation_data.local_batch(sampler, 0, step, range(config.batch_size))
    return (time.perf_counter() - start) / batches


@exit_on_input_error
def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--configs', nargs='+', default=['smoke', 'paper'],
                      choices=['smoke', 'demo', 'paper'])
  parser.add_argument('--dtypes', nargs='+', default=['float32'],
                      choices=['float32', 'bfloat16', 'float16'])
  parser.add_argument('--steps', type=positive_int, default=3)
  parser.add_argument('--paper-batch-size', type=positive_int, default=1)
  args = parser.parse_args()
  devices = jax.device_count()
  print(f'{jax.devices()[0].device_kind} x{devices}, jax {jax.__version__}')
  print(f'{"config":8} {"dtype":8} {"batch":>5} {"patch":>5} {"compile s":>9} {"step s":>8} '
        f'{"steps/s":>8} {"img/s/dev":>9} {"GFLOP/step":>10} {"GFLOP/s":>8}')
  for name in args.configs:
    for dtype in args.dtypes:
      config = convert.load_config(arg=None if name == 'paper' else name)
      config.model.dtype = dtype
      if name == 'paper':
        config.batch_size = args.paper_batch_size * devices
      compile_seconds, seconds, flops = time_train_step(config, args.steps)
      print(f'{name:8} {dtype:8} {config.batch_size:5d} {config.model.patch_size:5d} '
            f'{compile_seconds:9.1f} {seconds:8.2f} {1 / seconds:8.3f} '
            f'{config.batch_size / seconds / devices:9.2f} {flops / 1e9:10.1f} {flops / 1e9 / seconds:8.1f}')
  smoke = convert.load_config(arg='smoke')
  print(f'input pipeline (smoke data, batch {smoke.batch_size}, 2-core host): '
        f'{time_pipeline(smoke, 5):.2f} s per batch')


if __name__ == '__main__':
  main()
