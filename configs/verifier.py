"""Training the mask verifier (not in the paper): does a later mask lie on a first-frame box's
instance, or on a look-alike of it?

  python train.py --config configs/verifier.py --workdir DIR
      the small verifier shipped for the demo: synthetic videos only, about 40 minutes on a
      2-core CPU
  python train.py --config configs/verifier.py:smoke --workdir DIR
      a few steps on a few small videos
"""

import ml_collections


def get_config(arg=None):
  """Returns the verifier config; `arg` is None or 'smoke'."""
  if arg not in (None, 'smoke'):
    raise ValueError(f'unknown verifier config {arg!r}; expected none or smoke')
  config = ml_collections.ConfigDict()
  config.task = 'verifier'
  config.seed = 0
  config.batch_size = 64
  config.num_train_steps = 9000
  config.checkpoint_every_steps = 3000
  config.log_every_steps = 100
  config.eval_every_steps = 3000
  config.keep_checkpoints = 2

  model = config.model = ml_collections.ConfigDict()
  model.crop_size = 48
  model.widths = (16, 32, 64, 64, 128)
  model.strides = (2, 2, 1, 2, 1)
  model.head_features = 128

  data = config.data = ml_collections.ConfigDict()
  # Synthetic videos from seed `first_seed` on (training), then the held-out ones; far from the
  # seeds the benchmarks score (1000-1999) and those the other trainers generate.
  data.first_seed = 100_000
  data.num_train_videos = 800
  data.num_eval_videos = 20
  data.num_frames = 48
  data.queries_per_instance = 12
  data.positive_fraction = 0.5
  data.look_alike_fraction = 0.75
  data.num_workers = 2

  # AdamW; linear warm-up, then linear decay to `end_learning_rate`.
  config.optimizer = ml_collections.ConfigDict({
      'learning_rate': 2e-3, 'end_learning_rate': 0.0, 'power': 1.0, 'warmup_steps': 100,
      'weight_decay': 1e-4})

  if arg == 'smoke':
    config.batch_size = 8
    config.num_train_steps = 10
    config.checkpoint_every_steps = 5
    config.log_every_steps = 5
    config.eval_every_steps = 10
    data.num_train_videos = 2
    data.num_eval_videos = 1
    data.num_frames = 28
    data.queries_per_instance = 3
  return config
