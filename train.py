"""Trains a network: `python train.py --config configs/{propagation,reid,verifier}.py[:smoke] --workdir DIR`.

Override any config field on the command line, e.g. `--config.batch_size=16`.
Rerunning with the same workdir resumes from its latest checkpoint.
"""

import re

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from vsreid_jax.errors import InputError, exit_on_input_error
from vsreid_jax.training import reid_trainer
from vsreid_jax.training import trainer
from vsreid_jax.training import verifier_trainer

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Training config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Checkpoints, summaries and caches go here.')
flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize() (multi-host runs).')
flags.mark_flags_as_required(['config', 'workdir'])


@exit_on_input_error
def parse_flags(argv):
  """absl's flag parsing; an override of a field the config lacks is one error naming it."""
  try:
    return FLAGS(argv)
  except (AttributeError, KeyError) as error:  # how ml_collections reports a missing field
    text = str(error)
    field = re.search(r"(\w+)", text).group(1)
    suggestion = re.search(r'Did you mean \W*"(\w+)"', text)
    hint = f'; did you mean {suggestion.group(1)!r}?' if suggestion else ''
    overrides = ' '.join(arg.split('=')[0] for arg in argv[1:] if arg.startswith('--config.'))
    raise InputError(f'the config has no field {field!r}{hint} (overrides given: {overrides})'
                     ) from None


@exit_on_input_error
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
  if FLAGS.distributed:
    jax.distributed.initialize()
  task = {'reid': reid_trainer, 'verifier': verifier_trainer}.get(FLAGS.config.get('task'), trainer)
  task.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
