"""The propagation network as inference sees it: patches in, foreground probabilities out."""

from typing import Protocol

import jax
import numpy as np

from vsreid_jax import checkpoints
from vsreid_jax import models
from vsreid_jax.errors import InputError

DEFAULT_BUCKETS = (1, 2, 4, 8, 16)


class PatchPredictor(Protocol):
  """Foreground probability of the object that the guidance marks, per patch.

  Attributes:
    patch_size: side of the square patches it takes.
  """
  patch_size: int

  def __call__(self, images, flows, guidance):
    """Args: images float32 [B, P, P, 3] RGB 0..255, flows [B, P, P, 2] in
    pixels, guidance [B, P, P] in 0..1. Returns float32 [B, P, P]."""


class BucketedPredictor:
  """A jitted logits function run on batches padded to a few fixed sizes.

  A frame's objects go through one call padded to the smallest bucket that
  holds them (more objects than the largest bucket take several calls), so the
  network compiles once per bucket, not per frame or object count. With
  `flip`, each patch's mirror image (flow x negated, since the motion is
  mirrored too) rides in the same batch and the two softmax outputs are
  averaged, as the official test-time augmentation.
  """

  def __init__(self, logits_fn, patch_size, flip=True, buckets=DEFAULT_BUCKETS):
    """Wraps `logits_fn`.

    Args:
      logits_fn: jitted `(image, flow, guidance) -> logits`: image [B, P, P, 3],
        flow [B, P, P, 2], guidance [B, P, P, 1], logits [B, P, P, 2]
        (background, foreground).
      patch_size: P.
      flip: average with the horizontally mirrored prediction.
      buckets: batch sizes in patches (doubled by `flip`), increasing.

    Raises:
      ValueError: empty or non-increasing buckets, or a patch size below 1.
    """
    buckets = tuple(int(b) for b in buckets)
    if not buckets or buckets[0] < 1 or list(buckets) != sorted(set(buckets)):
      raise ValueError(f'buckets must be increasing positive batch sizes, got {buckets}')
    if patch_size < 1:
      raise ValueError(f'patch_size must be positive, got {patch_size}')
    self.logits_fn = logits_fn
    self.patch_size = int(patch_size)
    self.flip = flip
    self.buckets = buckets
    self.patches_predicted = 0  # object patches (not padding, not mirrors), for speed reports

  def __call__(self, images, flows, guidance):
    largest = self.buckets[-1]
    return np.concatenate([
        self._predict(images[start:start + largest], flows[start:start + largest],
                      guidance[start:start + largest])
        for start in range(0, len(images), largest)])

  def _predict(self, images, flows, guidance):
    count = len(images)
    self.patches_predicted += count
    bucket = next(b for b in self.buckets if b >= count)
    pad = [(0, bucket - count)] + [(0, 0)] * 3
    images = np.pad(np.asarray(images, np.float32), pad)
    flows = np.pad(np.asarray(flows, np.float32), pad)
    guidance = np.pad(np.asarray(guidance, np.float32)[..., None], pad)
    if self.flip:
      mirrored_flows = flows[:, :, ::-1] * np.array([-1, 1], np.float32)
      images = np.concatenate([images, images[:, :, ::-1]])
      flows = np.concatenate([flows, mirrored_flows])
      guidance = np.concatenate([guidance, guidance[:, :, ::-1]])
    logits = np.asarray(self.logits_fn(images, flows, guidance), np.float32)
    # The two-class softmax's foreground, in a form that cannot overflow.
    foreground = 0.5 + 0.5 * np.tanh(0.5 * (logits[..., 1] - logits[..., 0]))
    if self.flip:
      foreground = (foreground[:bucket] + foreground[bucket:, :, ::-1]) / 2
    return foreground[:count]

  @classmethod
  def from_model(cls, model, variables, patch_size, apply=None, **kwargs):
    """Wraps a Flax propagation `model` applied with `variables` (jitted for inference).

    `apply`, `models.jit_inference(model)` made once, lets predictors for new
    variables of the same model (such as fine-tuned ones) reuse its compiled programs.
    """
    apply = apply or models.jit_inference(model)
    variables = jax.device_put(variables)
    return cls(lambda image, flow, guidance: apply(variables, image, flow, guidance),
               patch_size, **kwargs)

  @classmethod
  def from_checkpoint(cls, directory, patch_size=None, **kwargs):
    """Loads MP2S (inference variant, BatchNorm folded) from an orbax checkpoint.

    Args:
      directory: written by `checkpoints.save_model_checkpoint`.
      patch_size: patch side; None takes the checkpoint's `model.patch_size`.
      **kwargs: `flip`, `buckets`.

    Raises:
      InputError: missing or unreadable checkpoint, or one that holds no
        propagation network.
    """
    variables, config = checkpoints.restore_model_checkpoint(directory)
    model, variables = inference_network(variables, config, directory)
    return cls.from_model(model, variables, patch_size or config.model.patch_size, **kwargs)


def inference_network(variables, config, source):
  """MP2S's inference variant and its variables (BatchNorm folded) from training ones.

  Args:
    variables: {'params', 'batch_stats'} of the network that `config.model` describes.
    config: the network's config, as stored in its checkpoint.
    source: where they came from (a checkpoint directory), for the error message.

  Returns:
    (model, folded variables).

  Raises:
    InputError: `config` and `variables` hold no propagation network.
  """
  try:
    return (models.build_propagation_model(config.model, inference=True),
            models.fold_batch_norm(variables))
  except (AttributeError, KeyError, ValueError) as error:
    raise InputError(f'{source}: not a propagation (MP2S) checkpoint ({error})') from None
