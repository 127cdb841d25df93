"""Segments a video from its first-frame mask, or runs the demo.

  python infer.py --sequence FRAMES_DIR --first-mask MASK.png --output OUT_DIR
  python infer.py --demo [--output OUT_DIR]
"""

import argparse
import pathlib

from vsreid_jax.errors import InputError, exit_on_input_error
from vsreid_jax.flow import dis
from vsreid_jax.inference import demo, driver


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
  return parser.parse_args(argv)


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
                                  args.flow_dir, args.flow_cache)
  print(driver.format_timings(timings))
  print(f'masks written to {args.output}')
  return timings


if __name__ == '__main__':
  main()
