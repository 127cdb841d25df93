"""VS-ReID with the propagation network fine-tuned on each video's first frame first."""

import time

from vsreid_jax import checkpoints, models
from vsreid_jax.inference.predictor import BucketedPredictor, inference_network
from vsreid_jax.inference.vsreid import VSReID, check_config
from vsreid_jax.training.finetune import finetune_propagation


class FinetunedVSReID:
  """A `VSReID` whose propagation network starts each video fine-tuned on its first frame.

  `segment` fine-tunes a copy of the training variables (`finetune_propagation`),
  folds them into the inference network and segments as `VSReID.segment`; the
  inference program compiles once for all videos. Timings gain 'finetune'.
  """

  def __init__(self, variables, network_config, config, num_steps, reid_factory=None,
               source='network'):
    """Args:
      variables: the unfolded training {'params', 'batch_stats'} of the propagation network.
      network_config: the config it was built from (its `model` field is used).
      config: the inference config.
      num_steps: fine-tuning steps per video.
      reid_factory: as for `VSReID`.
      source: where the network came from, for error messages.

    Raises:
      InputError: the variables hold no propagation network.
    """
    check_config(config)
    self.model, _ = inference_network(variables, network_config, source)
    self.apply = models.jit_inference(self.model)
    self.variables, self.network_config, self.config = variables, network_config, config
    self.num_steps, self.reid_factory = num_steps, reid_factory

  @classmethod
  def from_checkpoint(cls, propagation_dir, config, num_steps, reid_factory=None):
    """Restores the unfolded network and its config from an orbax checkpoint directory."""
    variables, network_config = checkpoints.restore_model_checkpoint(propagation_dir)
    return cls(variables, network_config, config, num_steps, reid_factory, source=propagation_dir)

  def segment(self, frames, first_mask, flows=None, log=None, after_propagation=None):
    """Fine-tunes on `frames[0]` and `first_mask`, then segments; see `VSReID.segment`."""
    start = time.perf_counter()
    tuned = finetune_propagation(self.variables, self.network_config, frames[0], first_mask,
                                 self.num_steps, log=log)
    predictor = BucketedPredictor.from_model(
        self.model, models.fold_batch_norm(tuned),
        self.config.patch_size or self.network_config.model.patch_size, apply=self.apply,
        flip=self.config.flip, buckets=self.config.buckets)
    seconds = time.perf_counter() - start
    segmentation = VSReID(predictor, self.config, self.reid_factory).segment(
        frames, first_mask, flows, log, after_propagation)
    segmentation.timings['finetune'] = seconds
    segmentation.timings['total'] += seconds
    return segmentation
