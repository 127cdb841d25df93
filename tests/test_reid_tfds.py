"""Re-ID training on TFDS sources under `tfds.testing.mock_data`: coco/2017 stills and youtube_vis
tracks, the person/object class vocabulary, and the trainer's checks of both."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import reid as reid_config
from vsreid_jax.data import synthetic
from vsreid_jax.errors import InputError
from vsreid_jax.models.oim import UNLABELLED
from vsreid_jax.reid.model import OTHER_CLASS, PERSON_CLASS
from vsreid_jax.training import propagation_data, reid_data, reid_trainer

HEIGHT, WIDTH = 96, 128
YOUTUBE_VIS = 'youtube_vis/480_640_only_frames_with_labels'


def _normalised(boxes):
  """Pixel boxes (x0, y0, x1, y1) as TFDS boxes (ymin, xmin, ymax, xmax) in 0..1."""
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
  return boxes[:, [1, 0, 3, 2]] / np.array([HEIGHT, WIDTH, HEIGHT, WIDTH], np.float32)


def _video(seed):
  return synthetic.generate_video(synthetic.SyntheticVideoConfig(
      num_frames=12, height=HEIGHT, width=WIDTH, num_objects=2, num_distractors=0,
      hidden_frames=(2, 3), seed=seed))


def coco_records():
  """Stills whose first object is a person (label 0), the second a crowd, the third a dog (16)."""
  records = []
  for seed in range(2):
    frame = _video(seed).frames[0]
    boxes = [[10, 20, 50, 60], [0, 0, 128, 96], [60, 30, 120, 90]]
    records.append({'image': frame, 'objects': {
        'bbox': _normalised(boxes), 'label': np.array([0, 0, 16]),
        'is_crowd': np.array([False, True, False])}})
  return records


def youtube_vis_records():
  """Two videos; in each, track 0 is a person seen in every even frame and track 1 a cat
  (label 13) seen in frames 0-3; video 1 has a crowd track 2 in frame 0."""
  records = []
  for seed in range(2):
    video = _video(seed)
    frames = [np.arange(0, 8, 2), np.arange(4)]
    categories, crowd = [0, 13], [False, False]
    if seed == 1:
      frames.append(np.array([0]))
      categories.append(13)
      crowd.append(True)
    bboxes = [_normalised(video.boxes[f, k % 2]) for k, f in enumerate(frames)]
    records.append({'video': video.frames[:8], 'tracks': {
        'bboxes': bboxes, 'frames': frames, 'category': np.array(categories),
        'is_crowd': np.array(crowd)}})
  return records


def _mock(sources):
  """Mocks `tfds.data_source`: the records of each dataset name (the builder's name)."""
  def data_source(builder, *args, **kwargs):
    del args, kwargs
    return sources[builder.name]
  return tfds.testing.mock_data(as_data_source_fn=data_source)


def test_coco_sampler_takes_non_crowd_boxes_without_identity():
  sampler = reid_data.CocoBoxSampler(coco_records(), (48, 64), max_boxes=4, augment=False,
                                     vocabulary='person')
  assert sampler.num_identities == 0
  example = sampler.example(np.random.default_rng(0))
  assert example['image'].shape == (48, 64, 3)
  np.testing.assert_array_equal(example['box_mask'], [True, True, False, False])
  # Fitted at half size: the person box and the dog box; the crowd box is left out.
  np.testing.assert_allclose(example['boxes'][:2], [[5, 10, 25, 30], [30, 15, 60, 45]], atol=1e-4)
  np.testing.assert_array_equal(example['classes'], [PERSON_CLASS, OTHER_CLASS, 0, 0])
  assert np.all(example['identities'][:2] == UNLABELLED)
  agnostic = reid_data.CocoBoxSampler(coco_records(), (48, 64), 4, augment=False)
  np.testing.assert_array_equal(agnostic.example(np.random.default_rng(0))['classes'],
                                [1, 1, 0, 0])


def test_youtube_vis_tracks_are_identities_across_frames_and_videos():
  records = youtube_vis_records()
  sampler = reid_data.YouTubeVisSampler(records, (HEIGHT, WIDTH), max_boxes=3, augment=False,
                                        vocabulary='person', max_tracks=4)
  assert sampler.num_identities == 2 * 4
  seen = {}
  for index in range(40):
    example = sampler.example(propagation_data.example_rng(0, 0, index))
    count = int(example['box_mask'].sum())
    for box, cls, identity in zip(example['boxes'][:count], example['classes'][:count],
                                  example['identities'][:count]):
      seen.setdefault(int(identity), set()).add(int(cls))
      assert box[2] > box[0] and box[3] > box[1]
  # Video v's track k is identity 4 v + k; the person track is class 1, the cat class 2;
  # the crowd track is unlabelled.
  assert seen == {0: {PERSON_CLASS}, 1: {OTHER_CLASS}, 4: {PERSON_CLASS}, 5: {OTHER_CLASS},
                  UNLABELLED: {OTHER_CLASS}}
  example = sampler.example(propagation_data.example_rng(0, 0, 3))
  np.testing.assert_array_equal(
      example['image'], sampler.example(propagation_data.example_rng(0, 0, 3))['image'])


def test_youtube_vis_box_matches_its_frame():
  records = youtube_vis_records()[:1]
  video = _video(0)
  sampler = reid_data.YouTubeVisSampler(records, (HEIGHT, WIDTH), 2, augment=False)
  for index in range(10):
    example = sampler.example(propagation_data.example_rng(0, 0, index))
    frame = next(t for t in range(8) if np.array_equal(example['image'], video.frames[t]))
    for box in example['boxes'][example['box_mask']]:
      assert np.abs(video.boxes[frame, :2] - box).max(axis=1).min() < 1e-3


def test_youtube_vis_labels_beyond_the_video_are_an_error():
  records = youtube_vis_records()[:1]
  records[0]['tracks']['frames'] = [np.array([20]), np.array([21])]
  sampler = reid_data.YouTubeVisSampler(records, (HEIGHT, WIDTH), 2, name='youtube_vis/x')
  with pytest.raises(InputError, match='youtube_vis/x record 0: a track is labelled in frame 2'):
    sampler.example(np.random.default_rng(0))


def _tfds_config():
  config = reid_config.get_config('smoke')
  config.num_train_steps = 2
  config.log_every_steps = 1
  config.checkpoint_every_steps = 2
  config.model.num_classes = 2
  config.data.source = 'youtube_vis'
  config.data.tfds_name = YOUTUBE_VIS
  config.data.classes = 'person'
  config.data.coco_fraction = 0.5
  config.data.image_height, config.data.image_width = HEIGHT, WIDTH
  return config


def test_youtube_vis_and_coco_train_a_person_detector(tmp_path):
  config = _tfds_config()
  with _mock({'youtube_vis': youtube_vis_records(), 'coco': coco_records()}):
    sampler = reid_trainer.make_sampler(config, tmp_path)
    assert sampler.num_identities == 2 * config.data.max_tracks_per_video
    classes = {int(c) for index in range(20) for c in sampler.example(
        propagation_data.example_rng(0, 0, index))['classes']}
    assert classes == {0, PERSON_CLASS, OTHER_CLASS}
    state = reid_trainer.train_and_evaluate(config, tmp_path / 'run')
  assert int(state.step) == 2
  assert state.params['class_scores']['kernel'].shape[-1] == 3  # background, person, other
  assert (tmp_path / 'run' / 'checkpoints' / '2').is_dir()


def test_main_source_takes_the_share_the_others_leave(tmp_path):
  config = reid_config.get_config('smoke')  # synthetic videos are the main source
  config.data.synthetic_fraction, config.data.coco_fraction = 0.3, 0.25
  with _mock({'coco': coco_records()}):
    sampler = reid_trainer.make_sampler(config, tmp_path)
  # No second synthetic sampler: the synthetic share belongs to the main source.
  assert [type(s).__name__ for s in sampler.samplers] == ['FrameBoxSampler', 'CocoBoxSampler']
  assert sampler.weights == pytest.approx([0.75, 0.25])


def test_tfds_sampler_settings_are_checked():
  with pytest.raises(InputError, match='max_boxes must be positive'):
    reid_data.CocoBoxSampler(coco_records(), (48, 64), max_boxes=0)
  with pytest.raises(InputError, match='scale_range'):
    reid_data.YouTubeVisSampler(youtube_vis_records(), (48, 64), 2, scale_range=(0.5, 2.0))
  with pytest.raises(InputError, match='class vocabulary must be one of'):
    reid_data.CocoBoxSampler(coco_records(), (48, 64), 2, vocabulary='animals')


def test_class_vocabulary_errors_name_the_field(tmp_path):
  for field, value, message in (
      ('classes', 'animals', 'config.data.classes must be one of'),
      ('coco_fraction', 1.0, 'synthetic_fraction \\+ config.data.coco_fraction'),
      ('num_classes', 1, 'config.model.num_classes must be 2')):
    config = _tfds_config()
    (config.model if field == 'num_classes' else config.data)[field] = value
    with pytest.raises(InputError, match=message):
      reid_trainer.train_and_evaluate(config, tmp_path)
  config = reid_config.get_config('smoke')
  config.model.num_classes = 2
  config.data.classes = 'person'
  config.data.source, config.data.root = 'davis', str(tmp_path)
  with pytest.raises(InputError, match='DAVIS objects have no category'):
    reid_trainer.train_and_evaluate(config, tmp_path)


def test_missing_tfds_data_is_one_clear_error(tmp_path):
  config = _tfds_config()
  config.data.tfds_data_dir = str(tmp_path / 'tfds')
  with pytest.raises(InputError, match=f'TFDS dataset {YOUTUBE_VIS} split .train. is not available'):
    reid_trainer.make_sampler(config, tmp_path)
