"""Segments a video from its first-frame mask, or runs the demo.

  python infer.py --sequence FRAMES_DIR --first-mask MASK.png --output OUT_DIR \
      [--propagation-checkpoint CKPT_DIR [--no-flip] [--no-reid]]
  python infer.py --demo [--output OUT_DIR]

Without --propagation-checkpoint, masks are propagated by optical flow alone.
"""

import argparse
import pathlib

from configs import inference as inference_config
from vsreid_jax.errors import InputError, exit_on_input_error
from vsreid_jax.flow import dis
from vsreid_jax.inference import demo, driver
from vsreid_jax.inference.vsreid import VSReID


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--demo', action='store_true', help='segment and score the demo clip')
  parser.add_argument('--sequence', type=pathlib.Path, help='folder of frames (.jpg/.png, natural order)')
  parser.add_argument('--first-mask', type=pathlib.Path,
                      help='first-frame mask: palette PNG, grayscale label PNG or binary PNG')
  parser.add_argument('--output', type=pathlib.Path, help='output folder (demo default: outputs/demo)')
  parser.add_argument('--flow-preset', default='medium', choices=dis.PRESETS, help='OpenCV DIS preset')
  parser.add_argument('--flow-dir', type=pathlib.Path,
                      help='pre-computed flow in the official layout (<frame>.flo, <frame>.rflo)')
  parser.add_argument('--flow-cache', type=pathlib.Path, help='keep computed DIS flow here for reruns')
  parser.add_argument('--propagation-checkpoint', type=pathlib.Path,
                      help='MP2S checkpoint directory: segment with the VS-ReID algorithm')
  parser.add_argument('--no-flip', action='store_true', help='no horizontal-flip averaging')
  parser.add_argument('--no-reid', action='store_true', help='propagate only, no re-ID rounds')
  return parser.parse_args(argv)


def make_segmenter(args):
  """The VS-ReID segmenter the flags ask for, or None for flow-only propagation."""
  if args.propagation_checkpoint is None:
    flags = [flag for flag, used in (('--no-flip', args.no_flip), ('--no-reid', args.no_reid))
             if used]
    if flags:
      raise InputError(f'{", ".join(flags)} needs --propagation-checkpoint')
    return None
  config = inference_config.get_config()
  config.flip, config.reid = not args.no_flip, not args.no_reid
  # Re-identification joins once its network ships (a `reid_factory`); until then this propagates.
  return VSReID.from_checkpoint(args.propagation_checkpoint, config)


@exit_on_input_error
def main(argv=None):
  args = parse_args(argv)
  if args.demo:
    return demo.run_demo(args.output or pathlib.Path('outputs/demo'))
  missing = [flag for flag, value in (('--sequence', args.sequence), ('--first-mask', args.first_mask),
                                      ('--output', args.output)) if value is None]
  if missing:
    raise InputError(f'missing {", ".join(missing)} (or use --demo)')
  timings = driver.segment_folder(args.sequence, args.first_mask, args.output, args.flow_preset,
                                  args.flow_dir, args.flow_cache, segmenter=make_segmenter(args),
                                  log=print)
  print(driver.format_timings(timings))
  print(f'masks written to {args.output}')
  return timings


if __name__ == '__main__':
  main()
