"""Weight import against an independent PyTorch reference, checkpoints, and converter errors."""

import json
import sys

import jax
import numpy as np
import pytest

from vsreid_jax import checkpoints, convert, models
from vsreid_jax.errors import InputError
from vsreid_jax.models.mp2s import RGB_MEAN

torch = pytest.importorskip('torch')
nn = torch.nn

BGR_MEAN = (104.0, 117.0, 123.0)


def _conv(in_channels, out_channels, kernel, stride=1, dilation=1, bias=False):
  return nn.Conv2d(in_channels, out_channels, kernel, stride, padding=dilation * (kernel // 2),
                   dilation=dilation, bias=bias)


class TorchBlock(nn.Module):
  """Basic (two 3x3, only the first dilated) or bottleneck residual block."""

  def __init__(self, bottleneck, in_channels, planes, stride, dilation):
    super().__init__()
    out_channels = planes * 4 if bottleneck else planes
    if bottleneck:
      shapes = [(in_channels, planes, 1, 1, 1), (planes, planes, 3, stride, dilation),
                (planes, out_channels, 1, 1, 1)]
    else:
      shapes = [(in_channels, planes, 3, stride, dilation), (planes, planes, 3, 1, 1)]
    for i, (cin, cout, kernel, s, d) in enumerate(shapes, start=1):
      setattr(self, f'conv{i}', _conv(cin, cout, kernel, s, d))
      setattr(self, f'bn{i}', nn.BatchNorm2d(cout))
    self.num_convs = len(shapes)
    self.downsample = None
    if stride != 1 or in_channels != out_channels:
      self.downsample = nn.Sequential(_conv(in_channels, out_channels, 1, stride),
                                      nn.BatchNorm2d(out_channels))

  def forward(self, x):
    y = x
    for i in range(1, self.num_convs + 1):
      y = getattr(self, f'bn{i}')(getattr(self, f'conv{i}')(y))
      if i < self.num_convs:
        y = torch.relu(y)
    return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(nn.Module):
  """ResNet with the official (deep stem, prob_encode) or torchvision (7x7 stem) names."""

  def __init__(self, bottleneck, stage_sizes, stem, strides, dilations, width, in_channels,
               guidance):
    super().__init__()
    scaled = lambda c: max(1, int(round(c * width)))
    self.stem = stem
    if stem == 'deep':
      self.conv1_1 = _conv(in_channels, scaled(64), 3, 2)
      self.bn1_1 = nn.BatchNorm2d(scaled(64))
      self.conv1_2 = _conv(scaled(64), scaled(64), 3)
      self.bn1_2 = nn.BatchNorm2d(scaled(64))
      self.conv1_3 = _conv(scaled(64), scaled(128), 3)
      self.bn1_3 = nn.BatchNorm2d(scaled(128))
      channels = scaled(128)
    else:
      self.conv1 = nn.Conv2d(in_channels, scaled(64), 7, 2, 3, bias=False)
      self.bn1 = nn.BatchNorm2d(scaled(64))
      channels = scaled(64)
    self.prob_encode = _conv(1, scaled(64), 3, 2) if guidance else None
    for i, (size, stride, dilation) in enumerate(zip(stage_sizes, strides, dilations)):
      planes = scaled(64 * 2**i)
      blocks = []
      for j in range(size):
        blocks.append(TorchBlock(bottleneck, channels, planes, stride if j == 0 else 1, dilation))
        channels = planes * 4 if bottleneck else planes
      setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
    self.out_channels = channels

  def forward(self, x, guidance=None):
    if self.stem == 'deep':
      x = self.conv1_1(x)
      if guidance is not None:
        x = x + self.prob_encode(guidance)
      x = torch.relu(self.bn1_1(x))
      x = torch.relu(self.bn1_2(self.conv1_2(x)))
      x = torch.relu(self.bn1_3(self.conv1_3(x)))
    else:
      x = self.conv1(x)
      if guidance is not None:
        x = x + self.prob_encode(guidance)
      x = torch.relu(self.bn1(x))
    x = nn.functional.max_pool2d(x, 3, 2, 1)
    return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class TorchASPP(nn.Module):

  def __init__(self, in_channels, features, dilations):
    super().__init__()
    self.conv2d_list = nn.ModuleList(
        [_conv(in_channels, features, 3, 1, d, bias=True) for d in dilations])
    self.out_conv2d = _conv(len(dilations) * features, features, 3)
    self.out_bn2d = nn.BatchNorm2d(features)

  def forward(self, x):
    x = torch.cat([conv(x) for conv in self.conv2d_list], dim=1)
    return torch.relu(self.out_bn2d(self.out_conv2d(x)))


class TorchMP2S(nn.Module):
  """The official MP2S layout; takes BGR 0..255 like the released model."""

  def __init__(self, model_config):
    super().__init__()
    c = model_config
    resnet = models.resnet.RESNETS[c.depth].keywords
    bottleneck = resnet['block_cls'] is models.resnet.Bottleneck
    for prefix, channels in (('', 3), ('flow_', 2)):
      backbone = TorchResNet(bottleneck, resnet['stage_sizes'], c.stem, c.strides, c.dilations,
                             c.width, channels, guidance=True)
      setattr(self, f'{prefix}backbone', backbone)
      setattr(self, f'{prefix}aspp',
              TorchASPP(backbone.out_channels, c.aspp_features, c.aspp_dilations))
      setattr(self, f'{prefix}classifier', nn.Conv2d(c.aspp_features, 2, 1))

  def forward(self, bgr, flow, guidance):
    x = bgr - torch.tensor(BGR_MEAN).view(1, 3, 1, 1)
    logits = self.classifier(self.aspp(self.backbone(x, guidance)))
    logits = logits + self.flow_classifier(self.flow_aspp(self.flow_backbone(flow, guidance)))
    return nn.functional.interpolate(logits, size=bgr.shape[2:], mode='bilinear',
                                     align_corners=True)


def _randomize(module, *inputs):
  """Random affine BN parameters and conv biases; running statistics from one batch."""
  generator = torch.Generator().manual_seed(0)
  with torch.no_grad():
    for m in module.modules():
      if isinstance(m, nn.BatchNorm2d):
        m.weight.uniform_(0.5, 1.5, generator=generator)
        m.bias.normal_(0.0, 0.2, generator=generator)
        m.momentum = 1.0  # running statistics := those of the next batch.
      elif isinstance(m, nn.Conv2d) and m.bias is not None:
        m.bias.normal_(0.0, 0.1, generator=generator)
    # Damped residual branches keep 101 random layers well conditioned: float32
    # and float64 PyTorch then agree to 1e-6 instead of 1e-3.
    for m in module.modules():
      if isinstance(m, TorchBlock):
        getattr(m, f'bn{m.num_convs}').weight.uniform_(0.1, 0.3, generator=generator)
    module.train()
    module(*inputs)
  module.eval()
  return module


def _inputs(size, seed=0):
  rng = np.random.default_rng(seed)
  rgb = rng.uniform(0, 255, (2, size, size, 3)).astype(np.float32)
  flow = rng.normal(0, 5, (2, size, size, 2)).astype(np.float32)
  guidance = rng.uniform(0, 1, (2, size, size, 1)).astype(np.float32)
  return rgb, flow, guidance


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _torch_logits(reference, rgb, flow, guidance):
  with torch.inference_mode():
    logits = reference(_nchw(rgb[..., ::-1]), _nchw(flow), _nchw(guidance))
  return logits.numpy().transpose(0, 2, 3, 1)


def _official_reference(config, size):
  torch.manual_seed(0)
  rgb, flow, guidance = _inputs(size, seed=1)
  reference = TorchMP2S(config.model)
  return _randomize(reference, _nchw(rgb[..., ::-1]), _nchw(flow), _nchw(guidance))


def _save_official(reference, path):
  state = {f'module.{k}': v for k, v in reference.state_dict().items()}
  if path.suffix == '.npz':
    np.savez(path, **{k: v.numpy() for k, v in state.items()})
  else:
    torch.save({'state_dict': state, 'epoch': 3}, path)


def _count(variables):
  return sum(x.size for x in jax.tree.leaves(variables['params']))


def _check_official(tmp_path, config, size, suffix):
  reference = _official_reference(config, size)
  weights = tmp_path / f'mp2s{suffix}'
  _save_official(reference, weights)
  convert.convert_official_mp2s(weights, tmp_path / 'ckpt', config)
  variables, stored_config = checkpoints.restore_model_checkpoint(tmp_path / 'ckpt')
  assert json.loads(stored_config.to_json()) == json.loads(config.to_json())
  assert _count(variables) == sum(p.numel() for p in reference.parameters())
  net = checkpoints.load_propagation(tmp_path / 'ckpt')
  rgb, flow, guidance = _inputs(size)
  expected = _torch_logits(reference, rgb, flow, guidance)
  logits = np.asarray(net(rgb, flow, guidance))
  assert logits.shape == (2, size, size, 2)
  assert np.abs(expected).max() > 0.5
  return np.abs(logits - expected).max()


@pytest.mark.parametrize('suffix', ['.pth.tar', '.npz'])
def test_official_small_matches_torch(tmp_path, suffix):
  config = convert.load_config(arg='smoke')
  assert _check_official(tmp_path, config, 65, suffix) < 1e-4


@pytest.mark.slow
def test_official_resnet101_matches_torch(tmp_path):
  config = convert.load_config()
  assert _check_official(tmp_path, config, 65, '.pth') < 1e-4


def _torchvision_reference():
  torch.manual_seed(0)
  reference = TorchResNet(False, (2, 2, 2, 2), 'standard', (1, 2, 1, 1), (1, 1, 2, 4), 1.0, 3,
                          guidance=False)
  reference.fc = nn.Linear(512, 1000)
  return reference


def test_torchvision_resnet_import_matches_torch(tmp_path):
  config = convert.load_config(arg='smoke')
  rgb, _, _ = _inputs(49)
  std = torch.tensor(convert.TORCHVISION_STD).view(1, 3, 1, 1)
  # torchvision's normalisation, with the means MP2S subtracts.
  normalise = lambda x: (_nchw(x) - torch.tensor(RGB_MEAN).view(1, 3, 1, 1)) / (255 * std)
  reference = _randomize(_torchvision_reference(), normalise(rgb))
  weights = tmp_path / 'resnet18.pth'
  torch.save(reference.state_dict(), weights)
  convert.convert_torchvision_resnet(weights, tmp_path / 'ckpt', config)

  variables, stored = checkpoints.restore_model_checkpoint(tmp_path / 'ckpt')
  assert (stored.model.depth, stored.model.stem, stored.model.width) == (18, 'standard', 1.0)
  model = models.build_propagation_model(stored.model)
  backbone = {c: variables[c]['backbone'] for c in ('params', 'batch_stats')}
  features = model.backbone_cls().apply(backbone, rgb - np.array(RGB_MEAN, np.float32))
  with torch.inference_mode():
    expected = reference(normalise(rgb)).numpy().transpose(0, 2, 3, 1)
  assert np.abs(np.asarray(features) - expected).max() < 1e-4

  rgb_kernel = np.asarray(variables['params']['backbone']['conv1']['kernel'])
  flow_kernel = np.asarray(variables['params']['flow_backbone']['conv1']['kernel'])
  np.testing.assert_allclose(flow_kernel, np.repeat(rgb_kernel.mean(2, keepdims=True), 2, 2))
  np.testing.assert_array_equal(variables['params']['flow_backbone']['layer4_1']['conv2']['kernel'],
                                variables['params']['backbone']['layer4_1']['conv2']['kernel'])
  net = checkpoints.load_propagation(tmp_path / 'ckpt')
  logits = net(*_inputs(33))
  assert logits.shape == (2, 33, 33, 2) and np.isfinite(logits).all()


@pytest.fixture(name='smoke_state')
def fixture_smoke_state():
  """The official-layout state dict of the smoke-config model."""
  config = convert.load_config(arg='smoke')
  torch.manual_seed(0)
  return config, {k: v.numpy() for k, v in TorchMP2S(config.model).state_dict().items()}


def _convert_npz(tmp_path, config, state):
  weights = tmp_path / 'weights.npz'
  np.savez(weights, **state)
  convert.convert_official_mp2s(weights, tmp_path / 'ckpt', config)


def test_bad_keys_are_listed_in_one_error(tmp_path, smoke_state):
  config, state = smoke_state
  del state['aspp.out_conv2d.weight']
  state['backbone.extra.weight'] = np.zeros(3, np.float32)
  state['classifier.bias'] = np.zeros(5, np.float32)
  with pytest.raises(InputError) as error:
    _convert_npz(tmp_path, config, state)
  message = str(error.value)
  assert 'weights.npz' in message
  assert '1 missing keys (aspp.out_conv2d.weight)' in message
  assert '1 unexpected keys (backbone.extra.weight)' in message
  assert '1 mis-shaped keys (classifier.bias (5,) instead of (2,))' in message
  assert not (tmp_path / 'ckpt').exists()


def test_wrong_architecture_is_reported(tmp_path, smoke_state):
  _, state = smoke_state
  with pytest.raises(InputError, match='missing keys .* and .* more'):
    _convert_npz(tmp_path, convert.load_config(), state)


def test_missing_file_and_missing_torch(tmp_path, monkeypatch):
  with pytest.raises(InputError, match='nothing.pth: file not found'):
    convert.read_state_dict(tmp_path / 'nothing.pth')
  weights = tmp_path / 'w.pth'
  torch.save({'conv.weight': torch.zeros(1)}, weights)
  monkeypatch.setitem(sys.modules, 'torch', None)
  with pytest.raises(InputError, match='install torch to read .pth files'):
    convert.read_state_dict(weights)


def test_unsafe_pickle_is_refused(tmp_path):
  weights = tmp_path / 'unsafe.pth'
  torch.save({'state_dict': {'x': torch.zeros(1)}, 'extra': np.random.default_rng()}, weights)
  with pytest.raises(InputError, match='unreadable PyTorch weights file'):
    convert.read_state_dict(weights)


def test_command_line(tmp_path, smoke_state, capsys):
  _, state = smoke_state
  weights = tmp_path / 'weights.npz'
  np.savez(weights, **state)
  config_file = tmp_path / 'smoke_config.py'
  config_file.write_text(
      'from vsreid_jax import convert\n'
      'def get_config(arg=None):\n'
      '  return convert.load_config(arg="smoke")\n')
  output = tmp_path / 'ckpt'
  convert.main(['official-mp2s', str(weights), '--output', str(output),
                '--config', str(config_file)])
  assert checkpoints.restore_model_checkpoint(output)[1].model.depth == 18
  with pytest.raises(SystemExit) as exit_info:
    convert.main(['official-mp2s', str(weights), '--output', str(output),
                  '--config', str(config_file)])
  assert exit_info.value.code == 2
  assert 'ckpt: output directory exists and is not empty' in capsys.readouterr().err


def test_missing_checkpoint(tmp_path):
  with pytest.raises(InputError, match='missing: checkpoint directory not found'):
    checkpoints.load_propagation(tmp_path / 'missing')
  (tmp_path / 'empty').mkdir()
  with pytest.raises(InputError, match='empty: no checkpoint'):
    checkpoints.restore_model_checkpoint(tmp_path / 'empty')
