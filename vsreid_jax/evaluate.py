"""Command line: `python -m vsreid_jax.evaluate --results DIR --davis-root DIR --split val`."""

import argparse
import pathlib

from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.evaluation import davis_eval


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m vsreid_jax.evaluate',
      description='Official DAVIS 2017 semi-supervised evaluation (J, F, J&F) of a results folder.')
  parser.add_argument('--results', required=True, type=pathlib.Path,
                      help='folder with <sequence>/<frame>.png result label maps')
  parser.add_argument('--davis-root', required=True, type=pathlib.Path, help='DAVIS root folder')
  parser.add_argument('--split', default='val', help='split file name (default: val)')
  parser.add_argument('--layout', default='auto', choices=('auto', '2017', '2016'),
                      help='dataset layout (default: recognised from the split files)')
  parser.add_argument('--sequences', nargs='+', help='evaluate only these sequences')
  parser.add_argument('--output', type=pathlib.Path,
                      help='where to write the CSVs (default: the results folder)')
  return parser.parse_args(argv)


@exit_on_input_error
def main(argv=None):
  args = parse_args(argv)
  report = davis_eval.evaluate(args.results, args.davis_root, args.split, args.layout, args.sequences)
  paths = davis_eval.write_csvs(report, args.output or args.results, args.split)
  print(davis_eval.format_report(report))
  print('\nwrote ' + ' and '.join(str(p) for p in paths))
  return report


if __name__ == '__main__':
  main()
