"""End-to-end VS-ReID inference on a 480p synthetic video: frames/s, time per stage, peak host memory.

  python -m benchmarks.inference_end_to_end [--configs demo paper] [--frames 40] [--objects 3]
  python -m benchmarks.inference_end_to_end --checkpoint runs/demo/checkpoints --frames 1000 --objects 5

For each propagation config, a network with random weights (speed does not
depend on their values; a random network loses objects early, though, so it
runs fewer patches) and the tiny re-ID detector segment the same video in a
fresh process, reading frames lazily from disk and writing palette PNGs, as
`infer.py` does; the child reports its timings and peak resident memory.
`--checkpoint` uses a trained propagation checkpoint instead.
"""

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from benchmarks.cli import positive_int
from vsreid_jax import checkpoints, convert, models
from vsreid_jax.data import synthetic
from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.models.random_init import he_random_variables

REPO = pathlib.Path(__file__).resolve().parents[1]


def random_checkpoint(directory, config, build, inputs):
  """Saves He-scaled random variables of the network `build(config.model)` with `config`."""
  model = build(config.model)
  variables = he_random_variables(jax.eval_shape(model.init, jax.random.key(0), *inputs))
  checkpoints.save_model_checkpoint(directory, variables['params'], variables.get('batch_stats', {}), config)


def child(args):
  """Segments one video and prints its timings and peak memory as JSON."""
  from vsreid_jax.inference import demo, driver  # pylint: disable=g-import-not-at-top
  config = convert.load_config(REPO / 'configs' / 'inference.py')
  segmenter = demo.vsreid_segmenter(config, args.propagation, args.reid, finetune_steps=0)
  timings = driver.segment_folder(args.sequence, args.first_mask, args.output, show_progress=False,
                                  segmenter=segmenter)
  timings['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  timings['patches'] = segmenter.predictor.patches_predicted
  print(json.dumps(timings))


@exit_on_input_error
def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--configs', nargs='+', default=['demo', 'paper'],
                      choices=['demo', 'paper', 'smoke'])
  shortest = synthetic.min_num_frames((1, 1))
  parser.add_argument('--frames', type=positive_int, default=40, help=f'at least {shortest}')
  parser.add_argument('--objects', type=positive_int, default=3)
  parser.add_argument('--checkpoint', type=pathlib.Path, help='a trained propagation checkpoint')
  parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  for flag in ('--propagation', '--reid', '--sequence', '--first-mask', '--output'):
    parser.add_argument(flag, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    return child(args)
  if args.frames < shortest:
    parser.error(f'--frames must be at least {shortest}, got {args.frames}')
  longest_hidden = args.frames - shortest + 1  # the longest span this many frames allow
  rows = []
  with tempfile.TemporaryDirectory() as root:
    root = pathlib.Path(root)
    clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
        num_frames=args.frames, height=480, width=854, num_objects=args.objects,
        hidden_frames=(max(1, min(10, longest_hidden - 2)), min(20, longest_hidden)), seed=0))
    synthetic.write_davis(root / 'davis', {'clip': clip}, 'val')
    del clip
    sequence = root / 'davis' / 'JPEGImages' / '480p' / 'clip'
    first_mask = root / 'davis' / 'Annotations' / '480p' / 'clip' / '00000.png'
    reid_config = convert.load_config(REPO / 'configs' / 'reid.py', 'smoke')
    from vsreid_jax.reid.model import build_detector  # pylint: disable=g-import-not-at-top
    random_checkpoint(root / 'reid', reid_config, build_detector,
                      [jax.ShapeDtypeStruct((1, 64, 96, 3), np.float32)])
    networks = {}
    if args.checkpoint:
      networks['trained'] = (args.checkpoint, checkpoints.restore_model_checkpoint(args.checkpoint)[1])
    for name in [] if args.checkpoint else args.configs:
      config = convert.load_config(arg=None if name == 'paper' else name)
      size = config.model.patch_size
      random_checkpoint(root / name, config, models.build_propagation_model,
                        [jax.ShapeDtypeStruct((1, size, size, c), np.float32) for c in (3, 2, 1)])
      networks[name] = (root / name, config)
    for name, (directory, config) in networks.items():
      size = config.model.patch_size
      start = time.perf_counter()
      done = subprocess.run(
          [sys.executable, '-m', 'benchmarks.inference_end_to_end', '--child', '--propagation',
           str(directory), '--reid', str(root / 'reid'), '--sequence', str(sequence),
           '--first-mask', str(first_mask), '--output', str(root / f'out_{name}')],
          capture_output=True, text=True, cwd=REPO)
      if done.returncode:
        sys.exit(f'segmenting with the {name} config failed:\n{done.stderr[-3000:]}')
      timings = json.loads(done.stdout.strip().splitlines()[-1])
      timings['wall'] = time.perf_counter() - start
      rows.append((name, size, timings))
  print(f'{jax.devices()[0].device_kind}; {args.frames} frames 854x480, {args.objects} objects, '
        'flip averaging, re-ID rounds with the tiny detector')
  stages = ('read', 'flow', 'warp', 'network', 'reid', 'other', 'write')
  # With random weights objects may be lost early, so the network time per patch is the
  # figure that carries over to trained networks; s/obj-frame counts every object and frame.
  print(f'{"config":7} {"patch":>5} {"frames/s":>8} {"s/obj-frame":>11} {"patches":>7} '
        f'{"s/patch":>7} {"total s":>8} ' + ' '.join(f'{s:>7}' for s in stages) + f' {"peak RSS":>9}')
  for name, size, t in rows:
    print(f'{name:7} {size:5d} {t["frames"] / t["total"]:8.2f} '
          f'{t["total"] / (t["frames"] * args.objects):11.3f} {t["patches"]:7d} '
          f'{t["network"] / max(t["patches"], 1):7.3f} {t["total"]:8.1f} '
          + ' '.join(f'{t.get(s, 0.0):7.1f}' for s in stages) + f' {t["peak_rss_mb"]:7.0f} MB')


if __name__ == '__main__':
  main()
