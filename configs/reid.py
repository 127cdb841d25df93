"""Training the re-ID detector (Faster R-CNN with an OIM identification head).

  python train.py --config configs/reid.py --workdir DIR --config.data.root=DAVIS
      frames of DAVIS-layout videos; each annotated object is an identity
  python train.py --config configs/reid.py:youtube_vis --workdir DIR
      the paper-scale detector: TFDS youtube_vis tracks as identities, half the examples
      TFDS coco/2017 stills, persons told from other objects for the person round
  python train.py --config configs/reid.py:demo --workdir DIR --config.data.root=DAVIS2016
      the small class-agnostic CPU detector shipped for the demo (its first run; the README's
      "The shipped networks" gives the two after it): DAVIS 2016 train plus synthetic videos whose
      look-alike distractors are identities too
  python train.py --config configs/reid.py:smoke --workdir DIR
      a tiny detector on synthetic videos: 20 steps in about a minute on a 2-core CPU
"""

import ml_collections

from vsreid_jax.training import config_blocks


def get_config(arg=None):
  """Returns the re-ID config; `arg` is None, 'demo', 'smoke' or 'youtube_vis'."""
  config = ml_collections.ConfigDict()
  config.task = 'reid'
  config.seed = 0
  config.batch_size = 8
  config.num_train_steps = 50_000
  config.checkpoint_every_steps = 5_000
  config.log_every_steps = 100
  config.keep_checkpoints = 3
  # A re-ID checkpoint (exported or shipped) of the same network to start from.
  config.init_checkpoint = ''

  model = config.model = ml_collections.ConfigDict()
  model.name = 'FasterRCNNResNet50'
  model.num_classes = 1
  model.anchor_scales = (32, 64, 128, 256, 512)
  model.aspect_ratios = (0.5, 1.0, 2.0)
  model.pre_nms_top_k = 6000
  model.post_nms_top_k = 300
  model.rpn_nms_threshold = 0.7
  model.embedding_features = 256
  model.class_agnostic_boxes = False
  # True: BatchNorm keeps its (ImageNet) running statistics; False learns them.
  model.frozen_bn = True
  model.dtype = 'float32'

  detection = config.detection = ml_collections.ConfigDict()
  detection.max_detections = 100
  detection.score_threshold = 0.05
  detection.nms_threshold = 0.5
  detection.class_agnostic_nms = False
  detection.pre_nms_top_k = 1000
  detection.min_size = 0.01

  targets = config.targets = ml_collections.ConfigDict()
  targets.rpn_samples = 256
  targets.rpn_positive_fraction = 0.5
  targets.box_samples = 128
  targets.box_positive_fraction = 0.25

  loss = config.loss = ml_collections.ConfigDict()
  loss.oim_weight = 1.0
  loss.oim_momentum = 0.5
  loss.oim_scale = 10.0
  loss.queue_size = 5000

  data = config.data = ml_collections.ConfigDict()
  # 'davis' (a DAVIS-layout folder), 'synthetic' (generated into the workdir) or
  # 'youtube_vis' (TFDS, `data.tfds_name`).
  data.source = 'davis'
  data.root = ''
  data.layout = 'auto'
  data.tfds_name = 'youtube_vis/480_640_only_frames_with_labels'
  data.tfds_data_dir = ''
  # Identities reserved per youtube_vis video (tracks beyond are unlabelled).
  data.max_tracks_per_video = 10
  # Box classes: 'object' (all one class; model.num_classes = 1) or 'person' (persons and
  # other objects; model.num_classes = 2), which the person round of inference uses.
  data.classes = 'object'
  data.train_split = 'train'
  data.image_height = 480
  data.image_width = 864
  data.max_boxes = 16
  # Each frame is fitted into the image size, then zoomed by a random factor in this range.
  data.scale_range = (1.0, 1.0)
  # Shares of examples drawn from synthetic videos and from TFDS coco/2017 still images
  # (boxes without identity, which feed the OIM queue); the rest come from data.source.
  data.synthetic_fraction = 0.0
  data.coco_fraction = 0.0
  data.num_workers = 2
  data.synthetic = config_blocks.synthetic_videos(smoke=arg == 'smoke')

  opt = config.optimizer = config_blocks.sgd_optimizer(power=1.0, weight_decay=1e-4, clip_norm=10.0)

  if arg == 'smoke':
    config.batch_size = 2
    config.num_train_steps = 20
    config.checkpoint_every_steps = 10
    config.log_every_steps = 5
    model.name = 'FasterRCNNTiny'
    model.anchor_scales = (16, 32, 64)
    model.pre_nms_top_k = 128
    model.post_nms_top_k = 32
    model.frozen_bn = False
    detection.max_detections = 8
    detection.pre_nms_top_k = 64
    targets.rpn_samples = 64
    targets.box_samples = 16
    loss.queue_size = 64
    data.source = 'synthetic'
    data.image_height = 128
    data.image_width = 224
    data.max_boxes = 4
    opt.learning_rate = 0.02
    opt.warmup_steps = 2
  elif arg == 'demo':
    config.batch_size = 4
    config.num_train_steps = 2600
    config.checkpoint_every_steps = 500
    config.log_every_steps = 50
    model.name = 'FasterRCNNSmall'
    model.anchor_scales = (24, 48, 96, 192)
    model.pre_nms_top_k = 600
    model.post_nms_top_k = 64
    model.class_agnostic_boxes = True
    model.frozen_bn = False
    detection.max_detections = 16
    detection.pre_nms_top_k = 200
    detection.score_threshold = 0.1
    targets.rpn_samples = 128
    targets.box_samples = 64
    loss.queue_size = 512
    data.image_height = 240
    data.image_width = 432
    data.max_boxes = 8
    data.scale_range = (0.6, 1.0)
    data.synthetic_fraction = 0.5
    data.synthetic.num_train_videos = 60
    data.synthetic.num_frames = 24
    opt.learning_rate = 0.02
    opt.warmup_steps = 200
  elif arg == 'youtube_vis':
    model.num_classes = 2
    data.source = 'youtube_vis'
    data.classes = 'person'
    data.coco_fraction = 0.5
  elif arg is not None:
    raise ValueError(f'unknown re-ID config {arg!r}; expected none, "demo", "smoke" or '
                     '"youtube_vis"')
  return config
