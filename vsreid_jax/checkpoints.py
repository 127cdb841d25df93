"""Model checkpoints on disk (orbax), and loading the propagation network from one."""

import pathlib

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from vsreid_jax import models
from vsreid_jax.errors import InputError

# Items of every step directory. A trainer adds its optimizer state and step to
# the 'state' tree; converted weights are saved as step 0.
STATE_ITEM = 'state'
CONFIG_ITEM = 'config'


def save_model_checkpoint(directory, params, batch_stats, config, step=0):
  """Writes network variables and the config (as JSON) to a new checkpoint directory.

  Args:
    directory: `CheckpointManager` directory; must not hold this step already.
    params: the network's 'params' tree.
    batch_stats: the network's 'batch_stats' tree.
    config: the `ml_collections.ConfigDict` the network was built from.
    step: step number of the checkpoint.
  """
  directory = pathlib.Path(directory).absolute()
  state = {'params': params, 'batch_stats': batch_stats}
  with ocp.CheckpointManager(directory, item_names=(STATE_ITEM, CONFIG_ITEM)) as manager:
    manager.save(step, args=ocp.args.Composite(**{
        STATE_ITEM: ocp.args.StandardSave(state),
        CONFIG_ITEM: ocp.args.JsonSave(config.to_dict()),
    }))
    manager.wait_until_finished()


def restore_model_checkpoint(directory, task=None, network=None):
  """Reads the latest checkpoint in `directory`.

  Args:
    directory: the checkpoint directory.
    task: if given, the `task` its config must have (`configs/reid.py`: 'reid').
    network: what such a checkpoint holds, for the error message ('re-ID'; default `task`).

  Returns:
    (variables, config): {'params': ..., 'batch_stats': ...} and the stored
    `ml_collections.ConfigDict`.

  Raises:
    InputError: the directory is missing, holds no readable checkpoint, or one of
      another task.
  """
  directory = pathlib.Path(directory).absolute()
  if not directory.is_dir():
    raise InputError(f'{directory}: checkpoint directory not found')
  options = ocp.CheckpointManagerOptions(create=False)
  try:
    with ocp.CheckpointManager(directory, options=options,
                               item_names=(STATE_ITEM, CONFIG_ITEM)) as manager:
      step = manager.latest_step()
      if step is None:
        raise InputError(f'{directory}: no checkpoint in this directory')
      restored = manager.restore(step, args=ocp.args.Composite(**{
          STATE_ITEM: ocp.args.StandardRestore(),
          CONFIG_ITEM: ocp.args.JsonRestore(),
      }))
  except InputError:
    raise
  except Exception as error:  # orbax raises many types for damaged files.
    raise InputError(
        f'{directory}: unreadable checkpoint ({type(error).__name__}: {error})') from None
  config = ml_collections.ConfigDict(restored[CONFIG_ITEM])
  if task is not None and config.get('task') != task:
    raise InputError(f'{directory}: not a {network or task} checkpoint (its config has task '
                     f'{config.get("task")!r}; expected {task!r})')
  state = restored[STATE_ITEM]
  variables = {'params': state['params'], 'batch_stats': state['batch_stats']}
  return variables, config


def _check_inputs(image, flow, guidance):
  shapes = {'image': np.shape(image), 'flow': np.shape(flow), 'guidance': np.shape(guidance)}
  expected = {'image': 3, 'flow': 2, 'guidance': 1}
  for name, shape in shapes.items():
    if len(shape) != 4 or shape[-1] != expected[name] or shape[:3] != shapes['image'][:3]:
      described = ', '.join(f'{n} {s}' for n, s in shapes.items())
      raise InputError(f'propagation inputs must be image [B, H, W, 3], flow [B, H, W, 2] and '
                       f'guidance [B, H, W, 1]; got {described}')


def load_propagation(checkpoint_dir):
  """Loads the propagation network (MP2S) from a checkpoint.

  Args:
    checkpoint_dir: a directory written by `save_model_checkpoint` (for example
      by `python -m vsreid_jax.convert`).

  Returns:
    `net(image, flow, guidance) -> logits`, jitted: image [B, H, W, 3] RGB
    0..255, flow [B, H, W, 2] in pixels, guidance [B, H, W, 1] in 0..1;
    logits [B, H, W, 2] float32 (background, foreground). It runs the
    inference variant of the network (BatchNorm folded, see
    `models.build_propagation_model`); each new input shape compiles once.

  Raises:
    InputError: missing or unreadable checkpoint; the returned `net` raises it
      for inputs of the wrong shapes.
  """
  variables, config = restore_model_checkpoint(checkpoint_dir)
  model = models.build_propagation_model(config.model, inference=True)
  variables = jax.device_put(models.fold_batch_norm(variables))
  apply = models.jit_inference(model)

  def net(image, flow, guidance):
    _check_inputs(image, flow, guidance)
    return apply(variables, image, flow, guidance)

  return net
