"""Times the MP2S propagation forward pass (a batch of instance patches) and prints a table.

  python -m benchmarks.propagation_forward --configs paper,smoke --dtypes float32,bfloat16

Each row: one config, patch size, dtype, and the patches of one frame without
or with horizontal-flip averaging (which doubles the batch). Weights are random
(speed does not depend on their values); the network is the inference variant
that `load_propagation` runs (folded BatchNorm, tap-wise ASPP convs, CPU
compiler options). `--baseline` times the training-layout network with
default XLA flags instead. The peak is a large matmul timed on the same device.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.cli import name_list, positive_int
from vsreid_jax import convert, models
from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.models.random_init import he_random_variables


def measure_matmul_peak(dtype, repeats=5):
  """FLOP/s of a large square matmul in `dtype`, a practical peak for conv networks."""
  n = 2048 if jax.default_backend() == 'cpu' else 8192
  a = jnp.ones((n, n), dtype)
  matmul = jax.jit(lambda x: x @ x)
  jax.block_until_ready(matmul(a))
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(matmul(a))
    seconds.append(time.perf_counter() - start)
  return 2 * n**3 / min(seconds)


def time_forward(model_config, size, patches, baseline, repeats):
  """(compile seconds, FLOPs, median seconds) of one jitted forward."""
  model = models.build_propagation_model(model_config, inference=not baseline)
  rng = np.random.default_rng(0)
  inputs = (rng.uniform(0, 255, (patches, size, size, 3)).astype(np.float32),
            rng.normal(0, 3, (patches, size, size, 2)).astype(np.float32),
            rng.uniform(0, 1, (patches, size, size, 1)).astype(np.float32))
  abstract = jax.eval_shape(model.init, jax.random.key(0), *inputs)
  variables = jax.device_put(he_random_variables(abstract))
  if baseline:
    forward = jax.jit(lambda v, *x: model.apply(v, *x, train=False))
    variables['batch_stats'] = jax.tree.map(jnp.ones_like, variables['batch_stats'])
  else:
    forward = models.jit_inference(model)
  inputs = jax.device_put(inputs)
  lowered = forward.lower(variables, *inputs)
  start = time.perf_counter()
  compiled = lowered.compile()
  compile_seconds = time.perf_counter() - start
  cost = compiled.cost_analysis()
  flops = (cost[0] if isinstance(cost, list) else cost)['flops']
  jax.block_until_ready(compiled(variables, *inputs))
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(variables, *inputs))
    seconds.append(time.perf_counter() - start)
  return compile_seconds, flops, statistics.median(seconds)


@exit_on_input_error
def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--configs', type=name_list(('paper', 'demo', 'smoke')),
                      default='paper,smoke', help='comma-separated: paper, demo, smoke')
  parser.add_argument('--dtypes', type=name_list(('float32', 'bfloat16', 'float16')),
                      default='float32,bfloat16')
  parser.add_argument('--patches', type=positive_int, default=1, help='instance patches per frame')
  parser.add_argument('--size', type=positive_int, help='patch size (default: the config\'s)')
  parser.add_argument('--flip', type=name_list(('no', 'yes')), default='no,yes',
                      help='rows without and/or with flip averaging')
  parser.add_argument('--repeats', type=positive_int, default=3)
  parser.add_argument('--baseline', action='store_true',
                      help='training-layout network, default XLA flags')
  args = parser.parse_args()

  device = jax.devices()[0]
  print(f'device: {device.device_kind} ({jax.default_backend()}), jax {jax.__version__}, '
        f'{"baseline" if args.baseline else "inference variant"}')
  peaks = {dtype: measure_matmul_peak(jnp.dtype(dtype)) for dtype in args.dtypes}
  print('matmul peak: ' + ', '.join(f'{d} {p / 1e9:.0f} GFLOP/s' for d, p in peaks.items()))
  header = (f'{"config":<7}{"size":>5}{"patches":>8}{"flip":>5}{"dtype":>10}{"compile s":>10}'
            f'{"GFLOP":>9}{"forward s":>10}{"GFLOP/s":>9}{"of peak":>8}')
  print(header)
  print('-' * len(header))
  for name in args.configs:
    config = convert.load_config(arg=None if name == 'paper' else name)
    size = args.size or config.model.patch_size
    for flip in args.flip:
      patches = args.patches * (2 if flip == 'yes' else 1)
      for dtype, peak in peaks.items():
        config.model.dtype = dtype
        compile_s, flops, forward_s = time_forward(config.model, size, patches, args.baseline,
                                                   args.repeats)
        print(f'{name:<7}{size:>5}{patches:>8}{flip:>5}{dtype:>10}{compile_s:>10.1f}'
              f'{flops / 1e9:>9.0f}{forward_s:>10.3f}{flops / forward_s / 1e9:>9.1f}'
              f'{flops / forward_s / peak:>8.0%}', flush=True)


if __name__ == '__main__':
  main()
