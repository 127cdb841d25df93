"""Training the re-ID detector: config checks, data, the train step (RPN, box and OIM losses)."""

import functools
import pathlib

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.data.synthetic import SyntheticVideoConfig
from vsreid_jax.errors import InputError
from vsreid_jax.models import oim
from vsreid_jax.reid import losses
from vsreid_jax.reid import targets as targets_lib
from vsreid_jax.reid.model import CLASS_VOCABULARIES, build_detector
from vsreid_jax.training import loop
from vsreid_jax.training import optimizer as optimizer_lib
from vsreid_jax.training import propagation_data
from vsreid_jax.training import reid_data
from vsreid_jax.training import tfds_data

DATA_SOURCES = ('davis', 'synthetic', 'youtube_vis')
LOSSES = ('rpn_objectness', 'rpn_box', 'classification', 'box', 'identification')


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState
  oim: oim.OIMState


def validate_config(config, num_devices):
  """Fails early with an `InputError` (a ValueError) naming the field the trainer cannot use."""
  loop.validate_loop_config(config, num_devices)
  if config.data.source not in DATA_SOURCES:
    raise InputError(f'config.data.source must be one of {DATA_SOURCES}, '
                     f'got {config.data.source!r}')
  if config.data.source == 'davis' and not config.data.root:
    raise InputError('config.data.root must name a DAVIS folder when config.data.source is "davis"')
  for field in ('data.image_height', 'data.image_width', 'data.max_boxes', 'targets.rpn_samples',
                'targets.box_samples', 'loss.queue_size'):
    group, name = field.split('.')
    value = config[group][name]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      raise InputError(f'config.{field} must be a positive integer, got {value!r}')
  for field in ('targets.rpn_positive_fraction', 'targets.box_positive_fraction',
                'loss.oim_momentum', 'data.synthetic_fraction', 'data.coco_fraction'):
    group, name = field.split('.')
    if not 0.0 <= config[group][name] <= 1.0:
      raise InputError(f'config.{field} must lie in [0, 1], got {config[group][name]!r}')
  if config.data.synthetic_fraction + config.data.coco_fraction >= 1:
    raise InputError('config.data.synthetic_fraction + config.data.coco_fraction must stay below '
                     f'1 (the rest comes from config.data.source), got '
                     f'{config.data.synthetic_fraction} + {config.data.coco_fraction}')
  vocabulary = config.data.classes
  if vocabulary not in CLASS_VOCABULARIES:
    raise InputError(f'config.data.classes must be one of {sorted(CLASS_VOCABULARIES)}, '
                     f'got {vocabulary!r}')
  if config.model.num_classes != CLASS_VOCABULARIES[vocabulary]:
    raise InputError(f'config.model.num_classes must be {CLASS_VOCABULARIES[vocabulary]} '
                     f'for config.data.classes={vocabulary!r}, got {config.model.num_classes!r}')
  if vocabulary == 'person' and config.data.source == 'davis':
    raise InputError('config.data.classes="person" needs sources that say which boxes are persons '
                     '(youtube_vis, COCO, synthetic); DAVIS objects have no category')
  scale_range = tuple(config.data.scale_range)
  if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1] <= 1:
    raise InputError(f'config.data.scale_range must be (low, high) with 0 < low <= high <= 1, '
                     f'got {scale_range}')


def make_sampler(config, workdir):
  """The training sampler of the configured data.

  `data.source` gives the main sampler. Synthetic videos are written with
  their distractors annotated, so each look-alike is an identity of its own;
  with `data.synthetic_fraction` > 0 that share of examples comes from them,
  and with `data.coco_fraction` > 0 that share from TFDS `coco/2017` stills,
  whose boxes feed the OIM queue.
  """
  data = config.data
  common = dict(image_size=(data.image_height, data.image_width), max_boxes=data.max_boxes,
                scale_range=tuple(data.scale_range))
  tfds_dir = data.tfds_data_dir or None

  def synthetic_sampler():
    video = SyntheticVideoConfig(num_frames=data.synthetic.num_frames,
                                 height=data.synthetic.height, width=data.synthetic.width,
                                 hidden_frames=(4, 8))
    root = propagation_data.prepare_synthetic_root(
        workdir / 'synthetic_instances', data.synthetic.num_train_videos,
        data.synthetic.num_eval_videos, video, config.seed, 'instances')
    # Synthetic objects are never persons.
    return reid_data.FrameBoxSampler(DavisDataset(root, 'train'), **common,
                                     box_class=int(reid_data.box_classes([False], data.classes)[0]))

  if data.source == 'synthetic':
    main = synthetic_sampler()
  elif data.source == 'youtube_vis':
    main = reid_data.YouTubeVisSampler(
        tfds_data.open_data_source(data.tfds_name, data.train_split, tfds_dir), **common,
        vocabulary=data.classes, max_tracks=data.max_tracks_per_video, name=data.tfds_name)
  else:
    main = reid_data.FrameBoxSampler(DavisDataset(pathlib.Path(data.root), data.train_split,
                                                  data.layout), **common)
  samplers, weights = [main], [1.0]
  if data.synthetic_fraction > 0 and data.source != 'synthetic':
    samplers.append(synthetic_sampler())
    weights.append(data.synthetic_fraction)
  if data.coco_fraction > 0:
    samplers.append(reid_data.CocoBoxSampler(
        tfds_data.open_data_source(reid_data.COCO_DETECTION, data.train_split, tfds_dir),
        **common, vocabulary=data.classes))
    weights.append(data.coco_fraction)
  # The main source takes whatever share the others leave.
  weights[0] = 1.0 - sum(weights[1:])
  sampler = samplers[0] if len(samplers) == 1 else reid_data.IdentityMixture(samplers, weights)
  if sampler.num_identities < 1:
    raise InputError(f'{data.source} data has no identities to train the OIM head on')
  return sampler


def make_optimizer(config, params):
  """SGD with momentum on a warm-up + polynomial schedule, gradient clipping, decay on kernels."""
  opt = config.optimizer
  kernels = jax.tree_util.tree_map_with_path(lambda path, _: path[-1].key == 'kernel', params)
  return optax.chain(optax.clip_by_global_norm(opt.clip_norm),
                     optax.add_decayed_weights(opt.weight_decay, kernels),
                     optax.sgd(optimizer_lib.learning_rate_schedule(config), momentum=opt.momentum))


def training_outputs(module, batch, key, targets_config):
  """Detector outputs on `batch` in training mode, and the sampled targets they are scored on."""
  images = batch['image']
  features = module.features(images, train=True)
  rpn = module.rpn_outputs(features, images.shape[1:3])
  rpn_keys, box_keys = jax.random.split(key, (2, images.shape[0]))
  rpn_targets = jax.vmap(functools.partial(
      targets_lib.rpn_targets, num_samples=targets_config.rpn_samples,
      positive_fraction=targets_config.rpn_positive_fraction), in_axes=(0, None, 0, 0))(
          rpn_keys, rpn['anchors'], batch['boxes'], batch['box_mask'])
  box_targets = jax.vmap(functools.partial(
      targets_lib.box_head_targets, num_samples=targets_config.box_samples,
      positive_fraction=targets_config.box_positive_fraction))(
          box_keys, rpn['proposals'], rpn['proposal_mask'], batch['boxes'], batch['classes'],
          batch['identities'], batch['box_mask'])
  heads = module.box_outputs(features, box_targets['boxes'], train=True)
  return rpn, heads, rpn_targets, box_targets


def train_step(state, batch, model, tx, schedule, sampling_key, config):
  """One SGD step on the summed losses; the OIM memory is updated with the batch's embeddings."""
  key = jax.random.fold_in(sampling_key, state.step)

  def loss_fn(params):
    (rpn, heads, rpn_targets, box_targets), updates = model.apply(
        {'params': params, 'batch_stats': state.batch_stats}, batch, key, config.targets,
        method=training_outputs, mutable=['batch_stats'])
    terms = dict(zip(LOSSES[:2], losses.rpn_losses(rpn['rpn_objectness'], rpn['rpn_deltas'],
                                                   rpn_targets)))
    terms.update(zip(LOSSES[2:4], losses.box_head_losses(heads['class_logits'],
                                                         heads['box_deltas'], box_targets)))
    terms['identification'], oim_state = losses.identification_loss(
        state.oim, heads['embeddings'], box_targets, config.loss.oim_momentum,
        config.loss.oim_scale)
    weights = {'identification': config.loss.oim_weight}
    loss = sum(weights.get(name, 1.0) * value for name, value in terms.items())
    return loss, (terms, oim_state, updates.get('batch_stats', state.batch_stats))

  (loss, (metrics, oim_state, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  metrics = {'loss': loss, **metrics, 'learning_rate': schedule(state.step),
             'finite': jnp.isfinite(loss) & jnp.all(jnp.array(
                 [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))}
  new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                            batch_stats=batch_stats, opt_state=opt_state, oim=oim_state)
  return new_state, metrics


def summarise(metrics_list):
  """Host-side means of the losses, and the last learning rate."""
  summary = {key: float(np.mean([m[key] for m in metrics_list])) for key in ('loss',) + LOSSES}
  summary['learning_rate'] = float(metrics_list[-1]['learning_rate'])
  return summary


def init_state(rng, model, tx, image_size, num_identities, queue_size):
  """A fresh `TrainState`: detector variables, optimiser state, empty OIM memory."""
  variables = model.init(rng, jnp.zeros((1,) + image_size + (3,)))
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}), opt_state=tx.init(params),
                    oim=oim.init_oim_state(num_identities, model.embedding_features, queue_size))


def train_and_evaluate(config, workdir):
  """Trains the re-ID detector as `config` says, resuming from `workdir` if it holds checkpoints.

  Args:
    config: a `configs/reid.py` config.
    workdir: receives checkpoints (orbax), TensorBoard summaries and synthetic data.

  A fresh run starts from the detector of `config.init_checkpoint` if set (an
  exported or shipped re-ID checkpoint of the same network); the OIM memory
  always starts empty, since identities differ between data sets.

  Returns:
    the final `TrainState`; its `oim` holds the lookup table of the identities.
  """
  workdir = pathlib.Path(workdir).absolute()
  validate_config(config, jax.device_count())
  model = build_detector(config.model)
  sampler = make_sampler(config, workdir)
  image_size = (config.data.image_height, config.data.image_width)
  abstract_params = jax.eval_shape(model.init, jax.random.key(0),
                                   jnp.zeros((1,) + image_size + (3,)))['params']
  tx = make_optimizer(config, abstract_params)
  initial = functools.partial(init_state, model=model, tx=tx, image_size=image_size,
                              num_identities=sampler.num_identities,
                              queue_size=config.loss.queue_size)
  _, sampling_key = jax.random.split(jax.random.key(config.seed))
  step = functools.partial(train_step, model=model, tx=tx,
                           schedule=optimizer_lib.learning_rate_schedule(config),
                           sampling_key=sampling_key, config=config)
  after_init = None
  if config.init_checkpoint:
    after_init = functools.partial(loop.load_initial_weights, init_checkpoint=config.init_checkpoint)
  return loop.run_training(
      config, workdir, init_state=initial, train_step=step,
      local_batch=lambda s, idx: propagation_data.local_batch(sampler, config.seed, s, idx),
      summarise=summarise, after_init=after_init, num_workers=config.data.num_workers)
