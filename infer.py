"""Segments a video from its first-frame mask, or every sequence of a DAVIS split, or runs the demo.

  python infer.py --sequence FRAMES_DIR [--first-mask MASK.png] --output OUT_DIR [--overlay]
  python infer.py --davis-root DAVIS_DIR --split val --output OUT_DIR [--evaluate] [--overlay]
      [--process-index I --process-count N]
  python infer.py --demo [--output OUT_DIR]

  Either segmenting mode runs VS-ReID with the shipped demo models (models/propagation_demo,
  fine-tuned for 100 steps on each video's first frame, models/reid_demo and
  models/verifier_demo) unless told otherwise: [--propagation-checkpoint CKPT_DIR]
  [--reid-checkpoint CKPT_DIR] [--verifier-checkpoint CKPT_DIR | --no-verifier] [--no-flip]
  [--no-reid] [--finetune-steps N], or --flow-only to propagate masks by optical flow alone.
"""

import argparse
import pathlib

from configs import inference as inference_config
from vsreid_jax.data import video
from vsreid_jax.errors import InputError, exit_on_input_error
from vsreid_jax.evaluation import davis_eval
from vsreid_jax.flow import dis
from vsreid_jax.inference import dataset, demo, driver

SHIPPED_NAMES = tuple(str(path.relative_to(demo.REPOSITORY))
                      for path in (demo.SHIPPED_PROPAGATION, demo.SHIPPED_REID,
                                   demo.SHIPPED_VERIFIER))


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--demo', action='store_true', help='segment and score the demo clip')
  parser.add_argument('--sequence', type=pathlib.Path, help='folder of frames (.jpg/.png, natural order)')
  parser.add_argument('--first-mask', type=pathlib.Path,
                      help='first-frame mask: palette PNG, grayscale label PNG or binary PNG '
                           '(default for a DAVIS JPEGImages folder: its first annotation)')
  parser.add_argument('--davis-root', type=pathlib.Path,
                      help='DAVIS folder (2017 or 2016 layout): segment every sequence of --split')
  parser.add_argument('--split', default='val', help='DAVIS split to segment (default val)')
  parser.add_argument('--evaluate', action='store_true',
                      help='score the results on the split (process 0, after its sequences)')
  parser.add_argument('--process-index', type=int,
                      help='this process among --process-count sharing the split (default: JAX\'s)')
  parser.add_argument('--process-count', type=int,
                      help='processes sharing the split (default: JAX\'s process count)')
  parser.add_argument('--output', type=pathlib.Path, help='output folder (demo default: outputs/demo)')
  parser.add_argument('--overlay', action='store_true',
                      help='also write <sequence>.mp4: masks over the frames in palette colours')
  parser.add_argument('--flow-preset', default='medium', choices=dis.PRESETS, help='OpenCV DIS preset')
  parser.add_argument('--flow-dir', type=pathlib.Path,
                      help='pre-computed flow in the official layout (<frame>.flo, <frame>.rflo; '
                           'one subfolder per sequence with --davis-root)')
  parser.add_argument('--flow-cache', type=pathlib.Path, help='keep computed DIS flow here for reruns')
  parser.add_argument('--propagation-checkpoint', type=pathlib.Path,
                      help=f'MP2S checkpoint directory (default: the shipped {SHIPPED_NAMES[0]})')
  parser.add_argument('--reid-checkpoint', type=pathlib.Path,
                      help='re-ID detector checkpoint directory, to recover lost objects by re-ID '
                           f'rounds (default: the shipped {SHIPPED_NAMES[1]})')
  parser.add_argument('--verifier-checkpoint', type=pathlib.Path,
                      help='mask verifier checkpoint directory, for the re-ID rounds to tell masks '
                           f'on look-alikes (default: the shipped {SHIPPED_NAMES[2]})')
  parser.add_argument('--no-verifier', action='store_true',
                      help='no mask verifier: masks on look-alikes are told by box overlap alone')
  parser.add_argument('--no-flip', action='store_true', help='no horizontal-flip averaging')
  parser.add_argument('--no-reid', action='store_true', help='propagate only, no re-ID rounds')
  parser.add_argument('--finetune-steps', type=int,
                      help='fine-tune the network on each video\'s first frame for N steps first '
                           f'(default: {demo.FINETUNE_STEPS} for the shipped network, else 0)')
  parser.add_argument('--flow-only', action='store_true',
                      help='no networks: propagate the first mask by optical flow alone (baseline)')
  return parser.parse_args(argv)


def _used(*flags):
  """The names of the flags among (name, value) pairs that were given."""
  return [name for name, value in flags if value]


def make_segmenter(args, log=print):
  """The VS-ReID segmenter the flags ask for, or None for flow-only propagation."""
  if args.finetune_steps is not None and args.finetune_steps < 0:
    raise InputError(f'--finetune-steps must be 0 or more, got {args.finetune_steps}')
  if args.flow_only:
    flags = _used(('--no-flip', args.no_flip), ('--no-reid', args.no_reid),
                  ('--finetune-steps', args.finetune_steps is not None),
                  ('--propagation-checkpoint', args.propagation_checkpoint),
                  ('--reid-checkpoint', args.reid_checkpoint),
                  ('--verifier-checkpoint', args.verifier_checkpoint),
                  ('--no-verifier', args.no_verifier))
    if flags:
      raise InputError(f'{", ".join(flags)} cannot be used with --flow-only')
    log('segmenting by optical flow alone (--flow-only)')
    return None
  if args.no_reid:
    flags = _used(('--reid-checkpoint', args.reid_checkpoint),
                  ('--verifier-checkpoint', args.verifier_checkpoint),
                  ('--no-verifier', args.no_verifier))
    if flags:
      raise InputError(f'{", ".join(flags)} cannot be used with --no-reid')
  if args.no_verifier and args.verifier_checkpoint:
    raise InputError('--verifier-checkpoint cannot be used with --no-verifier')
  propagation = args.propagation_checkpoint or demo.SHIPPED_PROPAGATION
  if args.propagation_checkpoint is None and not propagation.is_dir():
    raise InputError(f'{propagation}: the shipped propagation network is missing (run from a '
                     'checkout of the repository, or pass --propagation-checkpoint or --flow-only)')
  finetune_steps = args.finetune_steps
  if finetune_steps is None:
    finetune_steps = demo.FINETUNE_STEPS if args.propagation_checkpoint is None else 0
  reid = args.reid_checkpoint
  if reid is None and not args.no_reid:
    reid = demo.SHIPPED_REID if demo.SHIPPED_REID.is_dir() else None
  verifier = args.verifier_checkpoint
  if verifier is None and not args.no_verifier and demo.SHIPPED_VERIFIER.is_dir():
    verifier = demo.SHIPPED_VERIFIER
  config = inference_config.get_config()
  config.flip = not args.no_flip
  log(f'propagation network: {propagation}'
      + (f', fine-tuned for {finetune_steps} steps on the first frame' if finetune_steps else '')
      + f'; re-ID: {reid or ("off" if args.no_reid else f"off ({SHIPPED_NAMES[1]} is missing)")}'
      + (f', mask verifier: {verifier or "none"}' if reid else ''))
  return demo.vsreid_segmenter(config, propagation, reid, finetune_steps,
                               verifier_dir=verifier if reid else None)


def check_mode(args):
  """Raises `InputError` for flags that the chosen mode lacks or does not take."""
  if args.demo:
    defaults = vars(parse_args([]))
    flags = [f'--{name.replace("_", "-")}' for name, value in vars(args).items()
             if name not in ('demo', 'output') and value != defaults[name]]
    if flags:
      raise InputError(f'{", ".join(flags)} cannot be used with --demo (it runs fixed methods)')
    return
  if args.sequence is not None and args.davis_root is not None:
    raise InputError('use either --sequence or --davis-root, not both')
  if args.davis_root is None:
    flags = _used(('--evaluate', args.evaluate), ('--process-index', args.process_index is not None),
                  ('--process-count', args.process_count is not None))
    if flags:
      raise InputError(f'{", ".join(flags)} needs --davis-root')
    missing = _used(('--sequence', args.sequence is None), ('--first-mask', args.first_mask is None),
                    ('--output', args.output is None))
    if missing:
      raise InputError(f'missing {", ".join(missing)} (or use --davis-root or --demo)')
  else:
    if args.first_mask is not None:
      raise InputError('--first-mask is for --sequence; DAVIS sequences start from their first annotation')
    if args.output is None:
      raise InputError('missing --output')


@exit_on_input_error
def main(argv=None):
  args = parse_args(argv)
  if args.demo:
    check_mode(args)
    return demo.run_demo(args.output or pathlib.Path('outputs/demo'), demo.demo_segmenters(
        inference_config.get_config()))
  if args.sequence is not None and args.first_mask is None:
    args.first_mask = video.davis_first_mask(args.sequence)
  check_mode(args)
  segmenter = make_segmenter(args)
  if args.davis_root is not None:
    run = dataset.segment_dataset(
        args.davis_root, args.split, args.output, segmenter, flow_preset=args.flow_preset,
        flow_dir=args.flow_dir, flow_cache_dir=args.flow_cache, overlay=args.overlay,
        process_index=args.process_index, process_count=args.process_count, evaluate=args.evaluate)
    print(run.summary())
    if run.report is not None:
      print(davis_eval.format_report(run.report))
    print(f'masks written to {args.output}')
    return run
  overlay_path = args.output / f'{args.sequence.name}.mp4' if args.overlay else None
  timings = driver.segment_folder(args.sequence, args.first_mask, args.output, args.flow_preset,
                                  args.flow_dir, args.flow_cache, segmenter=segmenter, log=print,
                                  overlay_path=overlay_path)
  print(driver.format_timings(timings))
  print(f'masks written to {args.output}')
  return timings


if __name__ == '__main__':
  main()
