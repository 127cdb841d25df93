"""Trains a network: `python train.py --config configs/{propagation,reid}.py[:smoke] --workdir DIR`.

Override any config field on the command line, e.g. `--config.batch_size=16`.
Rerunning with the same workdir resumes from its latest checkpoint.
"""

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from vsreid_jax.errors import exit_on_input_error
from vsreid_jax.training import reid_trainer
from vsreid_jax.training import trainer

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', None, 'Training config file.', lock_config=True)
flags.DEFINE_string('workdir', None, 'Checkpoints, summaries and caches go here.')
flags.DEFINE_bool('distributed', False, 'Call jax.distributed.initialize() (multi-host runs).')
flags.mark_flags_as_required(['config', 'workdir'])


@exit_on_input_error
def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file operation at INFO
  if FLAGS.distributed:
    jax.distributed.initialize()
  task = reid_trainer if FLAGS.config.get('task') == 'reid' else trainer
  task.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == '__main__':
  app.run(main)
