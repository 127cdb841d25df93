"""MP2S mask propagation network: the paper setting, or `arg='smoke'` for a tiny CPU model.

  python train.py --config configs/propagation.py --workdir DIR
  python train.py --config configs/propagation.py:smoke --workdir DIR
"""

import ml_collections


def get_config(arg=None):
  """Returns the propagation config; `arg` is None (paper) or 'smoke'."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.batch_size = 8
  config.num_train_steps = 100_000
  config.checkpoint_every_steps = 5_000
  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.num_eval_examples = 64
  config.keep_checkpoints = 3
  # 'video': pairs of nearby frames with flow-warped guidance (stage 2 and 3 of the paper).
  config.stage = 'video'
  config.trainable_branches = ('rgb', 'flow')
  # Optional orbax checkpoint to start from, as written by `python -m vsreid_jax.convert`.
  config.init_checkpoint = ''

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
  # True: BatchNorm uses its running statistics in training too.
  model.frozen_bn = False
  # Flax convention (weight of the old average): 1 - the official PyTorch
  # momenta 0.95 (backbone) and 0.9997 (ASPP), which weight the new batch.
  model.backbone_bn_momentum = 0.05
  model.aspp_bn_momentum = 0.0003
  model.dtype = 'float32'
  model.patch_size = 449

  data = config.data = ml_collections.ConfigDict()
  data.source = 'davis'  # 'davis' (a DAVIS-layout folder) or 'synthetic' (generated into the workdir)
  data.root = ''
  data.layout = 'auto'
  data.train_split = 'train'
  data.eval_split = 'val'
  data.max_gap = 3
  data.flow_preset = 'medium'
  data.cache_flow = True
  data.num_workers = 2
  data.synthetic = ml_collections.ConfigDict(
      {'num_train_videos': 16, 'num_eval_videos': 4, 'num_frames': 24, 'height': 240, 'width': 427})

  opt = config.optimizer = ml_collections.ConfigDict()
  opt.learning_rate = 1e-3
  opt.end_learning_rate = 0.0
  opt.power = 0.9
  opt.warmup_steps = 500
  opt.momentum = 0.9
  opt.weight_decay = 5e-4
  opt.bias_lr_multiplier = 2.0

  if arg == 'smoke':
    config.batch_size = 4
    config.num_train_steps = 20
    config.checkpoint_every_steps = 10
    config.log_every_steps = 5
    config.eval_every_steps = 20
    config.num_eval_examples = 8
    model.depth = 18
    model.width = 0.5
    model.aspp_features = 64
    model.patch_size = 129
    data.source = 'synthetic'
    data.flow_preset = 'fast'
    data.synthetic.num_train_videos = 4
    data.synthetic.num_eval_videos = 2
    data.synthetic.height = 120
    data.synthetic.width = 214
    opt.learning_rate = 0.01
    opt.warmup_steps = 2
  elif arg is not None:
    raise ValueError(f'unknown propagation config {arg!r}; expected none or "smoke"')
  return config
