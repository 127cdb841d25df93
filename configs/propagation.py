"""Training the MP2S mask propagation network.

  python train.py --config configs/propagation.py --workdir DIR --config.data.root=DAVIS
      video pairs from a DAVIS folder, both branches (the paper's video stage)
  python train.py --config configs/propagation.py:static --workdir DIR
      still images with COCO instance masks (TFDS coco/2017_panoptic), RGB branch only
  python train.py --config configs/propagation.py:smoke --workdir DIR
      a tiny model on synthetic videos: 20 steps in about a minute on a 2-core CPU
  python train.py --config configs/propagation.py:demo --workdir DIR --config.data.root=DAVIS2016
      the small CPU model shipped for the demo: DAVIS 2016 train plus synthetic videos

Other video data: `--config.data.source=tfds_davis` (TFDS davis/480p) or `synthetic`.
"""

import ml_collections

from vsreid_jax.training import config_blocks


def get_config(arg=None):
  """Returns the propagation config; `arg` is None (video stage), 'static', 'demo' or 'smoke'."""
  config = ml_collections.ConfigDict()
  config.task = 'propagation'
  config.seed = 0
  config.batch_size = 8
  config.num_train_steps = 100_000
  config.checkpoint_every_steps = 5_000
  config.log_every_steps = 100
  config.eval_every_steps = 5_000
  config.num_eval_examples = 64
  config.keep_checkpoints = 3
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
  # 'davis' (a DAVIS-layout folder), 'tfds_davis' (TFDS video data, exported once into the
  # workdir), 'synthetic' (generated into the workdir) or 'coco' (TFDS coco/2017_panoptic stills).
  data.source = 'davis'
  data.root = ''
  data.tfds_name = 'davis/480p'
  data.tfds_data_dir = ''
  data.layout = 'auto'
  data.train_split = 'train'
  data.eval_split = 'val'
  data.max_gap = 3
  data.flow_preset = 'medium'
  data.cache_flow = True
  # Fraction of training examples drawn from synthetic videos generated into the workdir.
  data.synthetic_fraction = 0.0
  data.num_workers = 2
  data.synthetic = config_blocks.synthetic_videos(smoke=arg == 'smoke')
  # Synthetic masks: 'labels' (look-alikes are background) or 'instances' (look-alikes are objects
  # too: trained on, and neighbours for neighbour_leak).
  data.synthetic.annotation = 'labels'
  # Chance that a synthetic example's guidance spills onto a neighbouring object (target unchanged).
  data.synthetic.neighbour_leak = 0.0

  opt = config.optimizer = config_blocks.sgd_optimizer(power=0.9, weight_decay=5e-4,
                                                      bias_lr_multiplier=2.0)

  if arg == 'static':
    config.trainable_branches = ('rgb',)
    data.source = 'coco'
    data.eval_split = 'validation'
  elif arg == 'demo':
    # Small enough to train in about two hours on a 2-core CPU and to ship in the repository.
    config.batch_size = 8
    config.num_train_steps = 3_000
    config.checkpoint_every_steps = 250
    config.log_every_steps = 50
    config.eval_every_steps = 500
    config.num_eval_examples = 32
    config.keep_checkpoints = 2
    model.depth = 18
    model.width = 0.25
    model.aspp_features = 64
    model.patch_size = 129
    # Running statistics averaged over many batches. With the official momenta the last
    # batch weighs 0.95, so a small network trained from scratch exports the statistics of
    # its last few batches, and its held-out loss jumps between checkpoints (0.26 to 0.81).
    model.backbone_bn_momentum = 0.9
    model.aspp_bn_momentum = 0.9
    # DAVIS 2016 layout: 'val' holds the held-out sequences.
    data.flow_preset = 'fast'
    data.cache_flow = False  # flows of every 480p frame pair would fill tens of GB
    data.synthetic_fraction = 0.3
    opt.learning_rate = 0.01
    opt.warmup_steps = 200
  elif arg == 'smoke':
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
    opt.learning_rate = 0.01
    opt.warmup_steps = 2
  elif arg is not None:
    raise ValueError(f'unknown propagation config {arg!r}; expected none, "static", "demo" or "smoke"')
  return config
