"""User-facing errors and the command-line wrapper that prints them."""

import functools
import sys


class InputError(ValueError):
  """Bad user input: a missing file, a wrong size, an empty mask, a bad value.

  The message is one line that names the offending file or field; command-line
  entry points print it without a traceback and exit with status 2.
  """


def exit_on_input_error(main):
  """Wraps a command-line `main` so that an `InputError` becomes one line on stderr."""

  @functools.wraps(main)
  def wrapped(*args, **kwargs):
    try:
      return main(*args, **kwargs)
    except InputError as error:
      print(f'error: {error}', file=sys.stderr)
      sys.exit(2)

  return wrapped
