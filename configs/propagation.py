"""MP2S mask propagation network: the paper setting, or `arg='smoke'` for a tiny CPU model."""

import ml_collections


def get_config(arg=None):
  """Returns the propagation config; `arg` is None (paper) or 'smoke'."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.batch_size = 8
  config.num_train_steps = 100_000
  config.checkpoint_every_steps = 5_000
  config.log_every_steps = 100

  model = config.model = ml_collections.ConfigDict()
  model.name = 'mp2s'
  model.depth = 101
  model.stem = 'deep'
  model.strides = (1, 2, 1, 1)
  model.dilations = (1, 1, 2, 4)
  model.width = 1.0
  model.aspp_features = 512
  model.aspp_dilations = (6, 12, 18, 24, 1)
  model.dropout_rate = 0.1
  # The official training code keeps BN in training mode.
  model.frozen_bn = False
  # Flax convention (weight of the old average): 1 - the official PyTorch
  # momenta 0.95 (backbone) and 0.9997 (ASPP), which weight the new batch.
  model.backbone_bn_momentum = 0.05
  model.aspp_bn_momentum = 0.0003
  model.dtype = 'float32'
  model.patch_size = 449

  if arg == 'smoke':
    config.batch_size = 2
    config.num_train_steps = 4
    config.checkpoint_every_steps = 2
    config.log_every_steps = 1
    model.depth = 18
    model.width = 0.5
    model.aspp_features = 64
    model.patch_size = 129
  elif arg is not None:
    raise ValueError(f'unknown propagation config {arg!r}; expected none or "smoke"')
  return config
