"""Config blocks that the training configs (`configs/propagation.py`, `configs/reid.py`) share.

They live in the package so that a config file loads from any directory.
"""

import ml_collections


def sgd_optimizer(power, weight_decay, **extra):
  """`config.optimizer`: SGD with momentum 0.9, a 500-step linear warm-up to 1e-3, then polynomial
  decay of `power` to 0 (`vsreid_jax.training.optimizer.learning_rate_schedule`); `extra` holds the
  task's own fields."""
  return ml_collections.ConfigDict({
      'learning_rate': 1e-3, 'end_learning_rate': 0.0, 'power': power, 'warmup_steps': 500,
      'momentum': 0.9, 'weight_decay': weight_decay, **extra})


def synthetic_videos(smoke=False):
  """`config.data.synthetic`: how many synthetic videos to generate into the workdir, and their
  size; `smoke` makes them few and small, for the one-minute smoke configs."""
  if smoke:
    return ml_collections.ConfigDict(
        {'num_train_videos': 4, 'num_eval_videos': 2, 'num_frames': 24, 'height': 120, 'width': 214})
  return ml_collections.ConfigDict(
      {'num_train_videos': 16, 'num_eval_videos': 4, 'num_frames': 24, 'height': 240, 'width': 427})
