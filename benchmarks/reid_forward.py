"""Times re-ID detection (boxes, scores, embeddings) and template embedding per 480p frame.

  python -m benchmarks.reid_forward --configs default,smoke --templates 5

Each row: one `configs/reid.py` model, the compile time and the median time
of `detect` on one 480x854 frame, and of `embed` on `--templates` given
boxes of that frame. Weights are random (speed does not depend on them).
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.cli import name_list, positive_int
from configs import reid as reid_config
from vsreid_jax.reid import detection
from vsreid_jax.reid.model import build_detection_settings, build_detector

HEIGHT, WIDTH = 480, 854


def time_call(function, repeats):
  """(first-call seconds, including compilation; median seconds of the following calls)."""
  start = time.perf_counter()
  jax.block_until_ready(function())
  first = time.perf_counter() - start
  seconds = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(function())
    seconds.append(time.perf_counter() - start)
  return first, statistics.median(seconds)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--configs', type=name_list(('default', 'demo', 'smoke', 'youtube_vis')),
                      default='default,smoke')
  parser.add_argument('--templates', type=positive_int, default=5)
  parser.add_argument('--repeats', type=positive_int, default=3)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  frame = rng.integers(0, 255, (1, HEIGHT, WIDTH, 3), dtype=np.uint8)
  corners = rng.uniform(0, [WIDTH / 2, HEIGHT / 2], (1, args.templates, 2))
  boxes = jnp.asarray(np.concatenate([corners, corners + [WIDTH / 4, HEIGHT / 4]], -1), jnp.float32)
  valid = jnp.ones((1, args.templates), bool)
  print(f'{jax.devices()[0].device_kind}, one {HEIGHT}x{WIDTH} frame')
  print(f'{"config":8} {"detect compile s":>17} {"detect s":>9} {"embed compile s":>16} '
        f'{"embed s":>8}')
  for name in args.configs:
    config = reid_config.get_config(None if name == 'default' else name)
    model = build_detector(config.model)
    settings = build_detection_settings(config.detection)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
    detect = time_call(lambda: detection.detect(model, variables, frame, settings), args.repeats)
    embed = time_call(lambda: detection.embed(model, variables, frame, boxes, valid), args.repeats)
    print(f'{name:8} {detect[0]:17.1f} {detect[1]:9.3f} {embed[0]:16.1f} {embed[1]:8.3f}',
          flush=True)


if __name__ == '__main__':
  main()
