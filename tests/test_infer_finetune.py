"""Fine-tuning the tiny MP2S on each video's first frame before segmenting it."""

import jax
import ml_collections
import numpy as np
import pytest

import infer
from conftest import make_davis2017, moving_squares
from test_inference_algorithm import make_config
from vsreid_jax import checkpoints
from vsreid_jax.errors import InputError
from vsreid_jax.inference import finetuned
from vsreid_jax.inference.finetuned import FinetunedVSReID

def test_finetuned_segmenter_tunes_per_video_and_compiles_inference_once(checkpoint_dir, monkeypatch):
  calls = []

  def finetune_propagation(variables, config, frame, labels, num_steps, log=None):
    calls.append((frame, labels, num_steps))
    return jax.tree.map(lambda leaf: leaf * (1 + 0.1 * len(calls)), variables)

  # The real fine-tuning compiles its train step per video; test_infer_finetunes_... runs it.
  monkeypatch.setattr(finetuned, 'finetune_propagation', finetune_propagation)
  segmenter = FinetunedVSReID.from_checkpoint(checkpoint_dir, make_config(buckets=(2,)), num_steps=3)
  rng = np.random.default_rng(0)
  for num_objects in (1, 2):
    frames = rng.integers(0, 255, (4, 40, 56, 3), dtype=np.uint8)
    first_mask = moving_squares(1, 40, 56, num_objects)[0]
    segmentation = segmenter.segment(frames, first_mask)
    frame, labels, num_steps = calls[-1]
    assert num_steps == 3
    np.testing.assert_array_equal(frame, frames[0])
    np.testing.assert_array_equal(labels, first_mask)
    assert segmentation.timings['total'] > segmentation.timings['finetune'] > 0
    labels = np.stack(list(segmentation.label_maps()))
    np.testing.assert_array_equal(labels[0], first_mask)
    assert set(np.unique(labels)) <= set(range(num_objects + 1))
  # Both videos' fine-tuned variables ran through one compiled inference program.
  assert segmenter.apply._cache_size() == 1  # pylint: disable=protected-access


def test_finetuning_a_checkpoint_of_another_network_is_one_clear_error(tmp_path):
  config = ml_collections.ConfigDict({'model': {'name': 'reid_resnet'}})
  checkpoints.save_model_checkpoint(tmp_path / 'reid', {'w': np.zeros(2)}, {}, config)
  with pytest.raises(InputError, match='reid: not a propagation \\(MP2S\\) checkpoint'):
    FinetunedVSReID.from_checkpoint(tmp_path / 'reid', make_config(), num_steps=1)


def test_infer_finetunes_on_each_davis_sequence(checkpoint_dir, tmp_path, capsys):
  root = make_davis2017(tmp_path / 'davis', {'bear': moving_squares(4, height=40, width=56)})
  run = infer.main(['--davis-root', str(root), '--output', str(tmp_path / 'out'),
                    '--propagation-checkpoint', str(checkpoint_dir), '--finetune-steps', '1',
                    '--no-flip', '--process-index', '0', '--process-count', '1',
                    '--flow-preset', 'ultrafast'])
  assert run.segmented == ('bear',)
  assert run.timings['finetune'] > 0 and run.timings['network'] > 0
  assert len(list((tmp_path / 'out' / 'bear').glob('*.png'))) == 4
  assert 'finetune' in capsys.readouterr().out
