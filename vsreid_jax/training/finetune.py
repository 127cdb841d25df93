"""Online fine-tuning of the propagation network on a sequence's first frame, before propagating.

Training triples are synthesised from the one annotated frame in the spirit of
Lucid Data Dreaming: the frame and its mask move together under a random global
affine transform and the frame's illumination changes, then each example is
cropped around one object whose mask, corrupted as in offline training, is the
guidance. Stills have no motion, so the flow input is zero.
"""

import functools
import json

import cv2
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from vsreid_jax import models
from vsreid_jax.data import augment as augment_lib
from vsreid_jax.errors import InputError
from vsreid_jax.training import loop, propagation_data, trainer

_DREAM_TRIES = 10


def dream_frame(frame, labels, rng, max_rotation=10.0, max_scale=0.1, max_shift=0.05):
  """The frame and its label map under one random affine transform and an illumination change."""
  height, width = labels.shape
  angle = rng.uniform(-max_rotation, max_rotation)
  scale = 1 + rng.uniform(-max_scale, max_scale)
  matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
  matrix[:, 2] += rng.uniform(-max_shift, max_shift, 2) * (width, height)
  moved = cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
  moved_labels = cv2.warpAffine(labels, matrix, (width, height), flags=cv2.INTER_NEAREST,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  gain = rng.uniform(0.8, 1.2, 3)  # per-channel: a colour cast as well as brightness
  offset = rng.uniform(-20, 20)
  # As a lookup table of the 256 values of each channel: a full-frame float pass costs more.
  table = np.clip(np.arange(256, dtype=np.float32)[:, None] * gain + offset, 0, 255)
  return cv2.LUT(moved, table.astype(np.uint8)[None]), moved_labels


def first_frame_example(frame, labels, rng, patch_size, deformation=augment_lib.GuidanceDeformation()):
  """One training example for a random object of the first frame."""
  object_ids = [k for k in np.unique(labels) if 0 < k < 255]
  for attempt in range(_DREAM_TRIES + 1):
    # The transform may push the object out of the frame; the last try keeps the frame as it is.
    dreamed, dreamed_labels = (frame, labels) if attempt == _DREAM_TRIES else dream_frame(frame, labels, rng)
    mask = dreamed_labels == object_ids[rng.integers(len(object_ids))]
    box = augment_lib.mask_box(mask)
    if box is not None:
      flow = np.zeros(mask.shape + (2,), np.float32)
      return propagation_data.make_example(dreamed, flow, mask, mask, box, rng, patch_size,
                                           deformation, augment=True)
  raise InputError('the first-frame mask has no object to fine-tune on')


@functools.lru_cache(maxsize=4)
def _finetune_step(model_config_json, learning_rate):
  """The optimiser and jitted train step for a model config, built once so sequences share one compile.

  BatchNorm is frozen: a few crops of one frame are no population.
  """
  model_config = ml_collections.ConfigDict(json.loads(model_config_json))
  model_config.frozen_bn = True
  model = models.build_propagation_model(model_config)
  tx = optax.sgd(learning_rate, momentum=0.9)

  def step(state, batch, dropout_key):
    return trainer.train_step(state, batch, model, tx, lambda _: learning_rate, dropout_key)

  return tx, jax.jit(step)


def finetune_propagation(variables, config, frame, labels, num_steps, batch_size=4, learning_rate=1e-3,
                         seed=0, log=None):
  """Fine-tunes the propagation network on one annotated frame, with BatchNorm statistics frozen.

  Args:
    variables: {'params', 'batch_stats'} of the network.
    config: the config the network was built from (its `model` field is used).
    frame: [H, W, 3] uint8 RGB first frame.
    labels: [H, W] object ids of the first frame.
    num_steps: SGD steps; 0 returns `variables` unchanged.
    batch_size: examples per step.
    learning_rate: constant SGD learning rate (momentum 0.9).
    seed: seed of the synthesised examples and dropout.
    log: optional callable for a progress line every 10 steps.

  Returns:
    the fine-tuned {'params', 'batch_stats'}.
  """
  if num_steps == 0:
    return variables
  if num_steps < 0 or batch_size < 1:
    raise InputError(f'fine-tuning needs num_steps >= 0 and batch_size >= 1, got {num_steps}, {batch_size}')
  if not np.any((labels > 0) & (labels < 255)):
    raise InputError('fine-tuning needs a first-frame mask with at least one object')
  tx, step_fn = _finetune_step(json.dumps(config.model.to_dict(), sort_keys=True), learning_rate)
  state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=variables['params'],
                             batch_stats=variables['batch_stats'], opt_state=tx.init(variables['params']))
  rng = np.random.default_rng(seed)
  dropout_key = jax.random.key(seed)
  for step in range(num_steps):
    examples = [first_frame_example(frame, labels, rng, config.model.patch_size) for _ in range(batch_size)]
    batch = {key: np.stack([e[key] for e in examples]) for key in examples[0]}
    state, metrics = step_fn(state, batch, dropout_key)
    if not bool(metrics['finite']):
      raise loop.NonFiniteError(f'fine-tuning loss or gradients became non-finite at step {step}')
    if log and (step + 1) % 10 == 0:
      log(f'fine-tuning step {step + 1}/{num_steps}: loss {float(metrics["loss"]):.4f}')
  return {'params': state.params, 'batch_stats': state.batch_stats}
