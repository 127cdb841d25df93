"""TFDS training sources under `tfds.testing.mock_data`: COCO panoptic instances and DAVIS videos."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from test_training import tiny_config
from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.training import propagation_data, tfds_data, trainer


def coco_records(num_records=3):
  """Panoptic records made from synthetic frames: objects 1..N are things, plus one crowd and one stuff."""
  records = []
  for seed in range(num_records):
    clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
        num_frames=12, height=96, width=128, num_objects=3, hidden_frames=(2, 4), seed=seed))
    instances = clip.instances[0].astype(np.int64)
    segment_ids = np.where(instances > 0, 300 + instances, 0)  # ids above 255 use the G channel
    panoptic = np.stack([segment_ids % 256, segment_ids // 256 % 256, segment_ids // 65536], -1)
    ids = np.unique(segment_ids[segment_ids > 0])
    labels = np.array([5 if k - 300 <= 3 else 100 for k in ids])  # distractors become "stuff"
    crowd = np.zeros(len(ids), bool)
    crowd[0] = True
    records.append({'image': clip.frames[0], 'panoptic_image': panoptic.astype(np.uint8),
                    'panoptic_objects': {'id': ids, 'label': labels, 'is_crowd': crowd,
                                         'area': np.array([(segment_ids == k).sum() for k in ids])}})
  return records


def video_records():
  records = []
  for seed, name in ((0, 'cat'), (1, 'dog')):
    clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
        num_frames=12, height=96, width=128, num_objects=2, hidden_frames=(2, 4), seed=seed))
    records.append({'video': {'frames': clip.frames, 'segmentations': clip.labels[..., None]},
                    'metadata': {'video_name': name.encode(), 'num_frames': 12}})
  return records


def _mock(records):
  return tfds.testing.mock_data(as_data_source_fn=lambda *args, **kwargs: records)


def test_coco_panoptic_ids_decode():
  rgb = np.array([[[44, 1, 0], [0, 0, 1]]], np.uint8)
  np.testing.assert_array_equal(tfds_data.panoptic_ids(rgb), [[300, 65536]])


def test_coco_sampler_uses_thing_instances_only(monkeypatch):
  records = coco_records()
  with _mock(records):
    source = tfds_data.open_data_source(tfds_data.COCO_PANOPTIC, 'train')
  sampler = tfds_data.CocoInstanceSampler(source, patch_size=65, min_area=50)
  for seed in range(4):
    example = sampler.example(np.random.default_rng(seed))
    assert example['image'].shape == (65, 65, 3) and example['flow'].shape == (65, 65, 2)
    assert not example['flow'].any()  # stills have no motion
    assert example['target'].any()
  chosen = []
  real_make_example = tfds_data.make_example
  monkeypatch.setattr(tfds_data, 'make_example',
                      lambda image, flow, guidance, target, *args: chosen.append(target) or
                      real_make_example(image, flow, guidance, target, *args))
  for seed in range(20):
    sampler.example(np.random.default_rng(seed))
  allowed = [tfds_data.panoptic_ids(r['panoptic_image']) == k for r in records for k in (302, 303)]
  for mask in chosen:  # never the crowd (301) nor the distractors labelled as stuff
    assert any(mask.shape == a.shape and np.array_equal(mask, a) for a in allowed)
  assert len({m.tobytes() for m in chosen}) > 2


def test_coco_sampler_never_picks_crowds_or_stuff():
  records = coco_records(1)
  record = records[0]
  objects = record['panoptic_objects']
  objects['is_crowd'][:] = True
  with _mock(records):
    sampler = tfds_data.CocoInstanceSampler(tfds_data.open_data_source(tfds_data.COCO_PANOPTIC, 'train'), 65)
  with pytest.raises(InputError, match='no object of at least'):
    sampler.example(np.random.default_rng(0))


def test_tfds_videos_export_and_train_pairs(tmp_path):
  with _mock(video_records()):
    source = tfds_data.open_data_source('davis/480p', 'train')
  root = tfds_data.export_tfds_videos(source, tmp_path / 'videos', 'train')
  dataset = DavisDataset(root, 'train')
  assert dataset.sequence_names == ['cat', 'dog']
  np.testing.assert_array_equal(dataset.sequence('dog').read_annotation(3), video_records()[1]['video']['segmentations'][3, ..., 0])
  sampler = propagation_data.VideoPairSampler(dataset, patch_size=65, flow_preset='ultrafast')
  example = sampler.example(np.random.default_rng(0))
  assert example['target'].any() and example['guidance'].shape == (65, 65, 1)


def test_random_mock_videos_with_mismatched_shapes_are_reported(tmp_path):
  with tfds.testing.mock_data(num_examples=1):
    source = tfds_data.open_data_source('davis/480p', 'train')
    with pytest.raises(InputError, match='segmentations .* do not match the frames'):
      tfds_data.export_tfds_videos(source, tmp_path, 'train')


def test_unprepared_dataset_is_one_clear_error(tmp_path):
  with pytest.raises(InputError, match=r'coco/2017_panoptic split .train. is not available in .*tfds build'):
    tfds_data.open_data_source(tfds_data.COCO_PANOPTIC, 'train', data_dir=str(tmp_path))


@pytest.mark.slow
def test_static_stage_trains_on_mock_coco(tmp_path):
  config = tiny_config(num_steps=2)
  config.data.source = 'coco'
  config.data.eval_split = 'validation'
  config.trainable_branches = ('rgb',)
  with _mock(coco_records()):
    state = trainer.train_and_evaluate(config, tmp_path)
  assert int(state.step) == 2
