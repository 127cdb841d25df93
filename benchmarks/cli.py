"""Argument types that the benchmark command lines share: a bad value stops the command with one
argparse error line naming the flag."""

import argparse


def positive_int(text):
  """An integer of at least 1."""
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
  return value


def name_list(choices):
  """The type of a comma-separated list of names, each one of `choices`."""
  def parse(text):
    names = text.split(',')
    unknown = [name for name in names if name not in choices]
    if unknown:
      raise argparse.ArgumentTypeError(
          f'unknown {",".join(unknown)}; expected some of {",".join(choices)}')
    return names
  return parse
