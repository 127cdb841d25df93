"""The networks that ship in models/: within the size budget, restorable, and doing their job."""

import dataclasses

import numpy as np
import pytest

from configs import inference as inference_config
from vsreid_jax import checkpoints
from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.evaluation import metrics
from vsreid_jax.inference import demo
from vsreid_jax.inference.vsreid import VSReID
from vsreid_jax.reid.evaluation import ReidCounts, score_video
from vsreid_jax.reid.frame_detector import FrameDetector

SIZE_BUDGET = 25 * 2**20


def _size(directory):
  return sum(path.stat().st_size for path in directory.rglob('*') if path.is_file())


def test_shipped_checkpoints_fit_the_budget_and_say_what_they_are():
  assert _size(demo.SHIPPED_PROPAGATION) + _size(demo.SHIPPED_REID) <= SIZE_BUDGET
  for directory, task in ((demo.SHIPPED_PROPAGATION, 'propagation'), (demo.SHIPPED_REID, 'reid')):
    _, config = checkpoints.restore_model_checkpoint(directory)
    assert config.task == task


def test_shipped_detector_finds_and_retrieves_held_out_synthetic_objects():
  trained = FrameDetector.from_checkpoint(demo.SHIPPED_REID)
  counts = ReidCounts()
  for seed in (2000, 2001):  # seeds no training or benchmark uses
    video = synthetic.generate_video(dataclasses.replace(demo.SYNTHETIC_CLIP, seed=seed))
    queries = np.arange(video.boxes.shape[1]) < video.config.num_objects
    counts.add(score_video(trained, video.frames[::4], video.boxes[::4],
                           video.visible_area[::4] >= 100, queries))
  recall, top1, hits, chance = counts.rates()
  own, other = counts.mean_scores()
  print(f'recall {recall:.3f}, top-1 {top1:.3f} (chance {chance:.3f}), re-ID hits {hits:.3f}, '
        f'scores {own:.3f} / {other:.3f}')
  assert recall > 0.8
  assert top1 > 2.5 * chance
  assert hits > 0.4
  assert own > other


@pytest.mark.skipif(not (demo.SHIPPED_DATA / 'JPEGImages').is_dir(), reason='no demo clip')
def test_shipped_propagation_network_follows_the_demo_car():
  sequence = DavisDataset(demo.SHIPPED_DATA, demo.DEMO_SPLIT).sequence('car-shadow')
  frames = np.stack([sequence.frames[t] for t in range(10)])
  truth = np.stack([sequence.read_annotation(t) for t in range(10)])
  config = inference_config.get_config()
  config.flip, config.reid = False, False
  segmentation = VSReID.from_checkpoint(demo.SHIPPED_PROPAGATION, config).segment(frames, truth[0])
  region = metrics.region_similarity(truth == 1, np.stack(list(segmentation.label_maps())) == 1)
  print(f'J per frame {np.round(region, 3)}')
  assert region[1:].mean() > 0.7
