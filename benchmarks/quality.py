"""Segmentation quality of the shipped (or given) networks: J&F with and without re-ID rounds
and online fine-tuning, on a DAVIS split and on synthetic videos from unseen seeds.

  python -m benchmarks.quality --davis-root ../shared/data/DAVIS2016 --split val \
      --synthetic-videos 5 --output outputs/quality

Methods: optical flow alone; the propagation network with the re-ID rounds
(`vs-reid`) and without them (`-no-reid`, the same run's masks before the
rounds); and both again with --finetune-steps of online fine-tuning on each
sequence's first frame (`vs-reid-ft`); --methods runs a subset, and
--plain-reid-scores scores re-ID boxes by plain cosine similarity (no
`reid_nearest_template`). Synthetic videos (48 frames, 240x427) come from seeds
--seed, --seed + 1, ..., which training never uses; their hidden objects give
the count found again after being fully hidden. --truth-reid takes the likeness
of masks, the candidate boxes or both from the synthetic videos' instance
ground truth (`vsreid_jax.inference.truth_reid`): what a perfect re-ID would give.
"""

import argparse
import dataclasses
import functools
import pathlib
import shutil
import time

from benchmarks.cli import name_list
from configs import inference as inference_config
from vsreid_jax.data import synthetic
from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.inference import demo, truth_reid

METHODS = (demo.FLOW_BASELINE, 'vs-reid', 'vs-reid-ft')


def synthetic_clip(root, count, seed):
  """`count` synthetic videos written to `root` (split 'test', replacing any) as one `demo.Clip`."""
  shutil.rmtree(root, ignore_errors=True)
  videos = {f'synthetic-{seed + index}': synthetic.generate_video(
      dataclasses.replace(demo.SYNTHETIC_CLIP, seed=seed + index)) for index in range(count)}
  synthetic.write_davis(root, videos, 'test')
  return demo.Clip('synthetic', root, 'test', videos)


@exit_on_input_error
def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--propagation-checkpoint', type=pathlib.Path,
                      default=demo.SHIPPED_PROPAGATION)
  parser.add_argument('--reid-checkpoint', type=pathlib.Path, default=demo.SHIPPED_REID)
  parser.add_argument('--verifier-checkpoint', type=pathlib.Path, default=demo.SHIPPED_VERIFIER)
  parser.add_argument('--no-verifier', action='store_true',
                      help='no mask verifier: masks on look-alikes told by box overlap alone')
  parser.add_argument('--davis-root', type=pathlib.Path)
  parser.add_argument('--split', default='val')
  parser.add_argument('--synthetic-videos', type=int, default=5)
  parser.add_argument('--seed', type=int, default=1000)
  parser.add_argument('--finetune-steps', type=int, default=demo.FINETUNE_STEPS)
  parser.add_argument('--methods', type=name_list(METHODS), default=','.join(METHODS),
                      help=f'comma-separated subset of {",".join(METHODS)}')
  parser.add_argument('--plain-reid-scores', action='store_true',
                      help='re-ID scores without the nearest-template rule (reid_nearest_template)')
  parser.add_argument('--truth-reid', choices=truth_reid.PARTS,
                      help='re-ID (or half of it) from ground truth; synthetic videos only')
  parser.add_argument('--output', type=pathlib.Path, default=pathlib.Path('outputs/quality'))
  args = parser.parse_args()
  if args.truth_reid and (args.davis_root or not args.synthetic_videos):
    parser.error('--truth-reid needs instance ground truth: synthetic videos only, no --davis-root')
  clips = []
  if args.davis_root:
    clips.append(demo.Clip(f'davis-{args.split}', args.davis_root, args.split))
  if args.synthetic_videos:
    clips.append(synthetic_clip(args.output / 'synthetic_data', args.synthetic_videos, args.seed))
  config = inference_config.get_config()
  config.reid_nearest_template = not args.plain_reid_scores
  wrap_reid = None
  reid_checkpoint = args.reid_checkpoint
  if args.truth_reid:
    wrap_reid = functools.partial(truth_reid.truth_reid_factory, clips[-1].videos, args.truth_reid)
    if args.truth_reid == 'both':
      reid_checkpoint = None  # the detector would go unused
  verifier = None if args.no_verifier or reid_checkpoint is None else args.verifier_checkpoint
  segmenters = {}
  for name in args.methods:
    if name == demo.FLOW_BASELINE:
      segmenters[name] = None
    else:
      steps = args.finetune_steps if name == 'vs-reid-ft' else 0
      segmenters[name] = demo.vsreid_segmenter(config, args.propagation_checkpoint,
                                               reid_checkpoint, steps, wrap_reid, verifier)
  start = time.perf_counter()
  results = demo.segment_and_score(clips, segmenters, args.output, log=lambda line: None,
                                   overlays=False)
  truth = f', {args.truth_reid} from ground truth' if args.truth_reid else ''
  print(f'propagation {args.propagation_checkpoint}, re-ID {reid_checkpoint}{truth}, '
        f'verifier {verifier}, '
        f'{args.finetune_steps} fine-tuning steps for -ft; {time.perf_counter() - start:.0f} s')
  print(demo.format_scores(results))


if __name__ == '__main__':
  main()
