"""Times the foundation pieces on a DAVIS-sized synthetic sequence and prints a table.

  python -m benchmarks.foundation [--frames 80] [--objects 3]

Rows: DIS flow per frame pair and preset, the official warp, reading frames,
and the DAVIS evaluation of one sequence (480p).
"""

import argparse
import pathlib
import tempfile
import time

import numpy as np

from benchmarks.cli import positive_int
from vsreid_jax.data import synthetic, video
from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.evaluation import davis_eval
from vsreid_jax.flow import dis
from vsreid_jax.flow.warp import warp_labels


def median_seconds(function, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    function()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


@exit_on_input_error
def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  shortest = synthetic.min_num_frames(synthetic.SyntheticVideoConfig.hidden_frames)
  parser.add_argument('--frames', type=positive_int, default=80, help=f'at least {shortest}')
  parser.add_argument('--objects', type=positive_int, default=3)
  args = parser.parse_args()
  if args.frames < shortest:
    parser.error(f'--frames must be at least {shortest}, got {args.frames}')
  config = synthetic.SyntheticVideoConfig(num_frames=args.frames, height=480, width=854,
                                          num_objects=args.objects, seed=0)
  rows = []
  with tempfile.TemporaryDirectory() as root:
    root = pathlib.Path(root)
    start = time.perf_counter()
    clip = synthetic.generate_video(config)
    rows.append((f'generate a synthetic {args.frames}-frame 854x480 video', time.perf_counter() - start, 'video'))
    synthetic.write_davis(root / 'davis', {'clip': clip}, 'val')
    frames = video.read_frame_folder(root / 'davis' / 'JPEGImages' / '480p' / 'clip')
    rows.append(('read one 854x480 JPEG frame', median_seconds(lambda: frames[5], 20), 'frame'))
    first, second = frames[10], frames[11]
    for preset in dis.PRESETS:
      rows.append((f'DIS flow, preset {preset}', median_seconds(lambda: dis.compute_flow(first, second, preset), 10), 'pair'))
    backward, forward = dis.compute_flow(second, first), dis.compute_flow(first, second)
    rows.append(('official forward-backward warp of a label map',
                 median_seconds(lambda: warp_labels(clip.labels[10], backward, forward), 10), 'frame'))
    # Results: the ground truth with every object shifted by 4 px, so F is not trivially 1.
    for index, labels in enumerate(clip.labels):
      video.write_label_sequence(root / 'results' / 'clip', [f'{index:05d}'], [np.roll(labels, 4, axis=1)])
    start = time.perf_counter()
    report = davis_eval.evaluate(root / 'results', root / 'davis', 'val', log=None)
    seconds = time.perf_counter() - start
    rows.append((f'DAVIS evaluation, {args.frames} frames, {len(report.objects)} objects (J&F '
                 f'{report.global_scores()["J&F-Mean"]:.3f})', seconds, 'sequence'))
  width = max(len(r[0]) for r in rows)
  print(f'{"what".ljust(width)}  {"median":>10}  per')
  for name, seconds, unit in rows:
    value = f'{seconds * 1e3:.1f} ms' if seconds < 1 else f'{seconds:.2f} s'
    print(f'{name.ljust(width)}  {value:>10}  {unit}')


if __name__ == '__main__':
  main()
