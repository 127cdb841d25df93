"""Imports weights into model checkpoints: the official MP2S release, torchvision ResNets, training runs.

Usage:
  python -m vsreid_jax.convert official-mp2s MP2S.pth.tar --output CKPT_DIR
  python -m vsreid_jax.convert torchvision-resnet resnet101.pth --output CKPT_DIR
  python -m vsreid_jax.convert training-checkpoint WORKDIR/checkpoints --output CKPT_DIR
"""

import argparse
import importlib.util
import pathlib
import re

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from vsreid_jax import checkpoints, models
from vsreid_jax.errors import InputError, exit_on_input_error
from vsreid_jax.models.resnet import BasicBlock, RESNETS

DEFAULT_CONFIG = pathlib.Path(__file__).resolve().parents[1] / 'configs' / 'propagation.py'

# torchvision normalises RGB in 0..1 by these; MP2S feeds 0..255 minus the means.
TORCHVISION_STD = np.array([0.229, 0.224, 0.225], np.float32)

_LEAF_NAMES = {
    ('params', 'kernel'): 'weight',
    ('params', 'scale'): 'weight',
    ('params', 'bias'): 'bias',
    ('batch_stats', 'mean'): 'running_mean',
    ('batch_stats', 'var'): 'running_var',
}
_MODULE_NAMES = {'downsample_conv': 'downsample.0', 'downsample_bn': 'downsample.1'}


def load_config(path=DEFAULT_CONFIG, arg=None):
  """Runs `get_config(arg)` of a config file (by default `configs/propagation.py`)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f'{path}: config file not found')
  spec = importlib.util.spec_from_file_location(f'_config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def read_state_dict(path):
  """Reads a flat {name: array} from a PyTorch file (weights only) or an .npz file.

  A top-level 'state_dict' entry is unwrapped and 'module.' prefixes (from
  `DataParallel`) are removed.

  Raises:
    InputError: missing or unreadable file, or torch not installed for a
      PyTorch file.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise InputError(f'{path}: file not found')
  if path.suffix == '.npz':
    try:
      with np.load(path, allow_pickle=False) as data:
        state = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
      raise InputError(f'{path}: unreadable .npz file ({error})') from None
  else:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise InputError(f'{path}: install torch to read .pth files (pip install torch), '
                       'or pass the weights as an .npz file') from None
    try:
      loaded = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises many types for bad or unsafe files.
      raise InputError(f'{path}: unreadable PyTorch weights file ({error})') from None
    if isinstance(loaded, dict) and isinstance(loaded.get('state_dict'), dict):
      loaded = loaded['state_dict']
    if not isinstance(loaded, dict):
      raise InputError(f'{path}: expected a state dict, got {type(loaded).__name__}')
    state = {name: value.detach().float().numpy() for name, value in loaded.items()
             if isinstance(value, torch.Tensor)}
  return {name.removeprefix('module.'): value for name, value in state.items()}


def torch_name(path):
  """The PyTorch state-dict key of a flattened Flax variable path."""
  collection, *modules, leaf = path
  parts = [_MODULE_NAMES.get(m) or re.sub(r'^(layer\d+|conv2d_list)_(\d+)$', r'\1.\2', m)
           for m in modules]
  return '.'.join(parts + [_LEAF_NAMES[collection, leaf]])


def _listed(kind, names):
  shown = ', '.join(names[:8])
  more = f' and {len(names) - 8} more' if len(names) > 8 else ''
  return f'{len(names)} {kind} ({shown}{more})'


def import_variables(abstract, state, source, ignored=(), skipped=()):
  """Fills Flax variables from a PyTorch state dict.

  Args:
    abstract: {'params': ..., 'batch_stats': ...} of shape structs.
    state: {torch name: array}, NCHW/OIHW layout.
    source: the file name, for errors.
    ignored: regular expressions of state-dict keys to drop silently.
    skipped: Flax module names that have no PyTorch counterpart.

  Returns:
    The filled variables as numpy float32 (kernels OIHW -> HWIO).

  Raises:
    InputError: missing, unexpected or mis-shaped keys, all listed at once.
  """
  filled, missing, misshaped, used = {}, [], [], set()
  for path, target in flax.traverse_util.flatten_dict(abstract).items():
    if any(module in skipped for module in path[1:-1]):
      continue
    name = torch_name(path)
    if name not in state:
      missing.append(name)
      continue
    used.add(name)
    value = np.asarray(state[name], np.float32)
    expected = target.shape
    if path[-1] == 'kernel':
      expected = (expected[3], expected[2], expected[0], expected[1])
    if value.shape != expected:
      misshaped.append(f'{name} {value.shape} instead of {expected}')
      continue
    filled[path] = value.transpose(2, 3, 1, 0) if path[-1] == 'kernel' else value
  extra = sorted(n for n in state
                 if n not in used and not any(re.search(p, n) for p in ignored))
  if missing or extra or misshaped:
    problems = [_listed(kind, names) for kind, names in
                [('missing keys', missing), ('unexpected keys', extra),
                 ('mis-shaped keys', misshaped)] if names]
    raise InputError(f'{source}: weights do not fit the model: {"; ".join(problems)}')
  return flax.traverse_util.unflatten_dict(filled)


def _model_and_variables(config, init_seed=None):
  """The model, and its abstract variables (or, with `init_seed`, initialised ones)."""
  model = models.build_propagation_model(config.model)
  size = 33
  inputs = (jnp.zeros((1, size, size, 3)), jnp.zeros((1, size, size, 2)),
            jnp.zeros((1, size, size, 1)))
  if init_seed is None:
    return model, jax.eval_shape(model.init, jax.random.key(0), *inputs)
  # Op by op: compiling one init program for hundreds of parameters takes twice as long.
  return model, model.init(jax.random.key(init_seed), *inputs)


def convert_official_mp2s(path, output, config=None):
  """Converts the official MP2S weights (e.g. `MP2S.pth.tar`) into a checkpoint.

  The official RGB branch reads BGR; the input channels of its first conv are
  reversed here, once, so that the checkpoint (and the network) take RGB.

  Args:
    path: PyTorch file (or .npz) with the official key layout.
    output: new checkpoint directory.
    config: propagation config; by default `configs/propagation.py` (the paper
      setting, which the released weights use).
  """
  config = config or load_config()
  state = read_state_dict(path)
  first_conv = 'backbone.conv1_1.weight'
  if first_conv in state:
    state[first_conv] = np.asarray(state[first_conv])[:, ::-1]
  _, abstract = _model_and_variables(config)
  variables = import_variables(abstract, state, path, ignored=[r'\.num_batches_tracked$'])
  _save(output, variables, config)


def _torchvision_depth(state, path):
  stage_sizes = tuple(
      len({m.group(1) for name in state if (m := re.match(rf'layer{i}\.(\d+)\.', name))})
      for i in range(1, 5))
  basic = 'layer1.0.conv3.weight' not in state
  for depth, resnet in RESNETS.items():
    if (resnet.keywords['stage_sizes'] == stage_sizes
        and (resnet.keywords['block_cls'] is BasicBlock) == basic):
      return depth
  raise InputError(f'{path}: not a torchvision ResNet (blocks per stage {stage_sizes})')


def convert_torchvision_resnet(path, output, config=None, seed=0):
  """Initialises MP2S for training from torchvision-layout ImageNet ResNet weights.

  Both backbones get the ImageNet weights with the standard 7x7 stem; the depth
  follows the file. The RGB first conv absorbs torchvision's 1/(255 std)
  input scaling, since MP2S feeds 0..255 minus the means. The flow branch's
  first conv is that conv averaged over its 3 input channels and repeated for
  the 2 flow channels (cross-modality initialisation as in two-stream
  networks). `prob_encode`, the ASPP heads and the classifiers are initialised
  randomly from `seed`.

  Args:
    path: torchvision ResNet state dict (.pth or .npz); `fc.*` is ignored.
    output: new checkpoint directory.
    config: propagation config whose depth, stem and width are overridden; by
      default `configs/propagation.py`.
    seed: seed of the random initialisation.
  """
  config = (config or load_config()).copy_and_resolve_references()
  state = read_state_dict(path)
  config.model.depth = _torchvision_depth(state, path)
  config.model.stem = 'standard'
  config.model.width = 1.0
  _, variables = _model_and_variables(config, init_seed=seed)
  variables = jax.tree.map(np.asarray, variables)
  abstract = {c: variables[c]['backbone'] for c in ('params', 'batch_stats')}
  imported = import_variables(abstract, state, path, ignored=[r'^fc\.', r'\.num_batches_tracked$'],
                              skipped=('prob_encode',))
  rgb_kernel = imported['params']['conv1']['kernel'] / (255.0 * TORCHVISION_STD[:, None])
  flow_kernel = np.repeat(rgb_kernel.mean(axis=2, keepdims=True), 2, axis=2)
  for branch, first_kernel in (('backbone', rgb_kernel), ('flow_backbone', flow_kernel)):
    for collection in ('params', 'batch_stats'):
      variables[collection][branch].update(imported[collection])
    variables['params'][branch]['conv1'] = {'kernel': first_kernel}
  _save(output, variables, config)


def _save(output, variables, config):
  output = pathlib.Path(output)
  if output.exists() and any(output.iterdir()):
    raise InputError(f'{output}: output directory exists and is not empty')
  checkpoints.save_model_checkpoint(output, variables['params'], variables['batch_stats'], config)


def export_training_checkpoint(path, output):
  """Keeps the network variables and config of a training checkpoint's latest step (no optimiser state)."""
  variables, config = checkpoints.restore_model_checkpoint(path)
  _save(output, variables, config)


@exit_on_input_error
def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m vsreid_jax.convert', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('source', choices=['official-mp2s', 'torchvision-resnet', 'training-checkpoint'],
                      help='layout of the weights')
  parser.add_argument('path', help='PyTorch weights (.pth, .pth.tar), .npz, or a training '
                                   'checkpoint directory (<workdir>/checkpoints)')
  parser.add_argument('--output', required=True, help='new checkpoint directory')
  parser.add_argument('--config', default=str(DEFAULT_CONFIG), help='propagation config file')
  parser.add_argument('--seed', type=int, default=0,
                      help='torchvision-resnet: seed for the layers ImageNet lacks')
  args = parser.parse_args(argv)
  if args.source == 'training-checkpoint':
    export_training_checkpoint(args.path, args.output)
    print(f'wrote {args.output}')
    return
  config = load_config(args.config)
  if args.source == 'official-mp2s':
    convert_official_mp2s(args.path, args.output, config)
  else:
    convert_torchvision_resnet(args.path, args.output, config, seed=args.seed)
  print(f'wrote {args.output}')


if __name__ == '__main__':
  main()
