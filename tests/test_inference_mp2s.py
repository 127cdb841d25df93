"""The real MP2S network, tiny and randomly initialised, through the whole VS-ReID inference."""

import jax
import ml_collections
import numpy as np
import pytest

import infer
from configs import propagation
from conftest import write_jpeg
from test_inference_algorithm import TruthScorer, make_config
from vsreid_jax import checkpoints, models
from vsreid_jax.data import palette, synthetic, video
from vsreid_jax.errors import InputError
from vsreid_jax.inference.vsreid import VSReID

PATCH = 33


@pytest.fixture(name='checkpoint_dir', scope='module')
def fixture_checkpoint_dir(tmp_path_factory):
  """A smoke-size MP2S checkpoint with random weights."""
  config = propagation.get_config('smoke')
  config.model.patch_size = PATCH
  model = models.build_propagation_model(config.model)
  inputs = (np.zeros((1, PATCH, PATCH, 3), np.float32), np.zeros((1, PATCH, PATCH, 2), np.float32),
            np.zeros((1, PATCH, PATCH, 1), np.float32))
  variables = jax.jit(model.init)(jax.random.key(0), *inputs)
  directory = tmp_path_factory.mktemp('mp2s')
  checkpoints.save_model_checkpoint(directory, variables['params'], variables['batch_stats'],
                                    config)
  return directory


def test_tiny_mp2s_segments_a_synthetic_video_and_writes_pngs(checkpoint_dir, tmp_path):
  clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
      num_frames=10, height=48, width=64, num_objects=2, num_distractors=0, hidden_frames=(2, 2),
      seed=1))
  # The patch size comes from the checkpoint. One bucket: every call (two objects, or one
  # being recovered) runs the same compiled program.
  scorer = TruthScorer(clip.instances, 2)
  segmenter = VSReID.from_checkpoint(checkpoint_dir, make_config(buckets=(2,)),
                                     reid_factory=lambda frames, mask: scorer)
  lines = []
  segmentation = segmenter.segment(clip.frames, clip.labels[0], log=lines.append)
  assert len(lines) == len(segmentation.recoveries)
  assert set(segmentation.timings) >= {'flow', 'warp', 'network', 'reid', 'total'}
  names = [f'{t:05d}' for t in range(10)]
  assert video.write_label_sequence(tmp_path / 'out', names, segmentation.label_maps()) == 10
  for t, name in enumerate(names):
    written = palette.read_label_png(tmp_path / 'out' / f'{name}.png')
    assert written.shape == (48, 64) and set(np.unique(written)) <= {0, 1, 2}
    if t == 0:
      np.testing.assert_array_equal(written, clip.labels[0])


def test_missing_checkpoint_is_one_clear_error(tmp_path):
  with pytest.raises(InputError, match='checkpoint directory not found'):
    VSReID.from_checkpoint(tmp_path / 'nowhere', make_config())


def test_checkpoint_of_another_network_is_one_clear_error(tmp_path):
  config = ml_collections.ConfigDict({'model': {'name': 'reid_resnet'}})
  checkpoints.save_model_checkpoint(tmp_path / 'reid', {'w': np.zeros(2)}, {}, config)
  with pytest.raises(InputError, match='not a propagation \\(MP2S\\) checkpoint'):
    VSReID.from_checkpoint(tmp_path / 'reid', make_config())


def test_infer_command_segments_with_a_propagation_checkpoint(checkpoint_dir, tmp_path, capsys):
  clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
      num_frames=9, height=48, width=64, num_objects=2, num_distractors=0, hidden_frames=(1, 1),
      seed=2))
  for t, frame in enumerate(clip.frames):
    write_jpeg(tmp_path / 'frames' / f'{t:05d}.jpg', frame)
  palette.write_label_png(tmp_path / 'first.png', clip.labels[0])
  timings = infer.main(['--sequence', str(tmp_path / 'frames'), '--first-mask',
                        str(tmp_path / 'first.png'), '--output', str(tmp_path / 'out'),
                        '--propagation-checkpoint', str(checkpoint_dir), '--flow-preset', 'fast',
                        '--no-reid'])
  assert timings['frames'] == 9 and timings['network'] > 0
  assert len(list((tmp_path / 'out').glob('*.png'))) == 9
  assert 'network' in capsys.readouterr().out


def test_infer_network_flags_are_refused_with_flow_only(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    infer.main(['--sequence', str(tmp_path), '--first-mask', str(tmp_path / 'm.png'), '--output',
                str(tmp_path / 'o'), '--no-flip', '--no-reid', '--flow-only'])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == 'error: --no-flip, --no-reid cannot be used with --flow-only\n'
