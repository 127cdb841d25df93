"""Tests for the synthetic video generator and its DAVIS writer."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from vsreid_jax.data import synthetic
from vsreid_jax.data.palette import read_label_png
from vsreid_jax.errors import InputError

SMALL = synthetic.SyntheticVideoConfig(num_frames=24, height=96, width=160, num_objects=3,
                                       num_distractors=2, hidden_frames=(6, 9))


def _generate(**changes):
  return synthetic.generate_video(dataclasses.replace(SMALL, **changes))


def _long_span(video):
  return max((span for span in video.events if span.object_id == video.hidden_object_id),
             key=lambda span: span.length)


def test_same_seed_gives_identical_video():
  first, second = _generate(seed=3), _generate(seed=3)
  for field in ('frames', 'labels', 'instances', 'boxes', 'visible_area', 'unoccluded_area',
                'imitates'):
    np.testing.assert_array_equal(getattr(first, field), getattr(second, field), err_msg=field)
  assert first.events == second.events
  assert first.hidden_object_id == second.hidden_object_id


def test_different_seeds_give_different_videos():
  first, second = _generate(seed=3), _generate(seed=4)
  assert not np.array_equal(first.frames, second.frames)
  assert not np.array_equal(first.labels, second.labels)


@pytest.mark.parametrize('height, width', [(96, 160), (120, 64), (48, 48)])
def test_custom_frame_sizes(height, width):
  video = _generate(height=height, width=width, num_frames=20, hidden_frames=(4, 6))
  num_frames, num_instances = 20, SMALL.num_objects + SMALL.num_distractors
  assert video.frames.shape == (num_frames, height, width, 3) and video.frames.dtype == np.uint8
  assert video.labels.shape == video.instances.shape == (num_frames, height, width)
  assert video.labels.dtype == video.instances.dtype == np.uint8
  assert video.boxes.shape == (num_frames, num_instances, 4)
  assert video.visible_area.shape == video.unoccluded_area.shape == (num_frames, num_instances)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_labels_boxes_and_areas_agree(seed):
  video = _generate(seed=seed)
  num_objects = SMALL.num_objects
  np.testing.assert_array_equal(video.labels,
                                np.where(video.instances <= num_objects, video.instances, 0))
  assert set(np.unique(video.instances)) <= set(range(num_objects + SMALL.num_distractors + 1))
  assert (video.visible_area <= video.unoccluded_area).all()
  for t in range(SMALL.num_frames):
    for k in range(num_objects + SMALL.num_distractors):
      ys, xs = np.nonzero(video.instances[t] == k + 1)
      assert len(xs) == video.visible_area[t, k]
      expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0]
      np.testing.assert_array_equal(video.boxes[t, k], expected)


@pytest.mark.parametrize('seed', range(4))
def test_every_object_shows_in_the_first_frame(seed):
  video = _generate(seed=seed)
  assert set(np.unique(video.labels[0])) == set(range(SMALL.num_objects + 1))


@pytest.mark.parametrize('hide_by, cause', [('occluder', 'occluded'), ('exit', 'left_frame')])
@pytest.mark.parametrize('seed', range(3))
def test_hidden_object_disappears_and_reappears_elsewhere(hide_by, cause, seed):
  video = _generate(hide_by=hide_by, seed=seed)
  assert video.hide_by == hide_by
  span = _long_span(video)
  assert (span.first_frame, span.end_frame) == video.hidden_window
  assert SMALL.hidden_frames[0] <= span.length <= SMALL.hidden_frames[1]
  assert span.cause == cause
  hidden = video.labels[span.first_frame:span.end_frame] == video.hidden_object_id
  assert not hidden.any()
  assert (video.labels[span.first_frame - 1] == video.hidden_object_id).any()
  assert (video.labels[span.end_frame] == video.hidden_object_id).any()
  assert (video.labels[:span.first_frame] == video.hidden_object_id).any(axis=(1, 2)).all()
  distance = np.hypot(*np.subtract(span.reappear_centroid, span.disappear_centroid))
  assert distance > 0.25 * SMALL.width


def test_random_hide_mode_uses_both():
  assert {_generate(seed=seed).hide_by for seed in range(12)} == {'occluder', 'exit'}


@pytest.mark.parametrize('seed', range(3))
def test_objects_partially_occlude_each_other(seed):
  # Without the pillar, anything that covers part of an object in view is another instance.
  video = _generate(hide_by='exit', seed=seed)
  visible = video.visible_area[:, :SMALL.num_objects]
  unoccluded = video.unoccluded_area[:, :SMALL.num_objects]
  assert ((visible > 0) & (visible < 0.9 * unoccluded)).any()


@pytest.mark.parametrize('seed', range(3))
def test_distractors_look_like_the_object_they_imitate(seed):
  video = _generate(num_objects=3, num_distractors=3, seed=seed)
  mean_colours = np.array([video.frames[video.instances == k].mean(0) for k in range(1, 7)])
  assert sorted(video.imitates.tolist()) == [1, 2, 3]
  assert video.imitates[0] == video.hidden_object_id
  assert not np.isin(video.labels, [4, 5, 6]).any()
  for j, original in enumerate(video.imitates):
    distances = np.linalg.norm(mean_colours[:3] - mean_colours[3 + j], axis=1)
    assert distances[original - 1] < 0.5 * np.delete(distances, original - 1).min()


@pytest.mark.parametrize('seed', range(3))
def test_objects_move_and_change_scale(seed):
  video = _generate(seed=seed)
  centres = (video.boxes[..., :2] + video.boxes[..., 2:]) / 2
  for k in range(SMALL.num_objects):
    seen = video.visible_area[:, k] > 0
    assert np.ptp(centres[seen, k], axis=0).max() > 0.1 * SMALL.width
    areas = video.unoccluded_area[video.unoccluded_area[:, k] > 0, k]
    assert areas.max() > 1.2 * areas.min()


@pytest.mark.parametrize('seed', range(6))
def test_object_leaves_the_frame_at_an_ordinary_speed(seed):
  config = dataclasses.replace(SMALL, num_frames=40, height=120, width=214, hidden_frames=(10, 20),
                               hide_by='exit', camera_pan=0.0, seed=seed)
  video = synthetic.generate_video(config)
  target, first = video.hidden_object_id - 1, video.hidden_window[0]
  boxes = video.boxes[:first, target]
  centres = (boxes[:, :2] + boxes[:, 2:]) / 2
  whole = video.visible_area[:first, target] == video.unoccluded_area[:first, target]
  speeds = np.linalg.norm(np.diff(centres, axis=0), axis=-1)[whole[1:] & whole[:-1]]
  assert speeds.max() < 3 * config.max_speed * config.height


def test_background_pans():
  video = _generate(num_objects=1, num_distractors=0, hide_by='exit', camera_pan=0.5, noise_std=0.0)
  background = video.instances == 0
  steady = background[0] & background[-1]
  difference = np.abs(video.frames[0].astype(int) - video.frames[-1].astype(int)).mean(-1)
  assert difference[steady].mean() > 10


def test_write_davis_round_trip(tmp_path):
  train = {'alpha': _generate(seed=1), 'beta': _generate(seed=2)}
  synthetic.write_davis(tmp_path, train, 'train')
  synthetic.write_davis(tmp_path, {'gamma': _generate(seed=3)}, 'val')
  synthetic.write_davis(tmp_path, {'delta': _generate(seed=4)}, 'train')
  image_sets = tmp_path / 'ImageSets' / '2017'
  assert (image_sets / 'train.txt').read_text().split() == ['alpha', 'beta', 'delta']
  assert (image_sets / 'val.txt').read_text().split() == ['gamma']
  video = train['beta']
  frames = sorted((tmp_path / 'JPEGImages' / '480p' / 'beta').iterdir())
  labels = sorted((tmp_path / 'Annotations' / '480p' / 'beta').iterdir())
  assert [path.name for path in frames] == [f'{t:05d}.jpg' for t in range(SMALL.num_frames)]
  assert [path.name for path in labels] == [f'{t:05d}.png' for t in range(SMALL.num_frames)]
  for t in (0, SMALL.num_frames - 1):
    with Image.open(frames[t]) as image:
      assert image.format == 'JPEG' and image.size == (SMALL.width, SMALL.height)
      # A channel swap would move the mean far more than JPEG loss does.
      assert np.abs(np.asarray(image.convert('RGB'), float) - video.frames[t]).mean() < 6
    with Image.open(labels[t]) as image:
      assert image.mode == 'P'
    np.testing.assert_array_equal(read_label_png(labels[t]), video.labels[t])


def test_write_davis_can_annotate_the_distractors(tmp_path):
  video = _generate(seed=1)
  synthetic.write_davis(tmp_path, {'seq': video}, 'train', annotation='instances')
  first = read_label_png(tmp_path / 'Annotations' / '480p' / 'seq' / '00000.png')
  np.testing.assert_array_equal(first, video.instances[0])
  assert first.max() > SMALL.num_objects  # distractors are objects N+1.. here
  with pytest.raises(ValueError, match="annotation must be one of .*'boxes'"):
    synthetic.write_davis(tmp_path, {'seq': video}, 'train', annotation='boxes')


def test_write_davis_replaces_a_sequence(tmp_path):
  synthetic.write_davis(tmp_path, {'seq': _generate()}, 'train')
  shorter = _generate(num_frames=16, hidden_frames=(4, 6))
  synthetic.write_davis(tmp_path, {'seq': shorter}, 'train')
  assert len(list((tmp_path / 'JPEGImages' / '480p' / 'seq').iterdir())) == 16
  assert len(list((tmp_path / 'Annotations' / '480p' / 'seq').iterdir())) == 16
  assert (tmp_path / 'ImageSets' / '2017' / 'train.txt').read_text().split() == ['seq']


@pytest.mark.parametrize('name, split', [('../escape', 'train'), ('', 'train'), ('seq', 'a/b')])
def test_write_davis_rejects_bad_names(tmp_path, name, split):
  with pytest.raises(InputError):
    synthetic.write_davis(tmp_path, {name: _generate()}, split)


def test_generate_davis_writes_distinct_videos_per_split(tmp_path):
  config = dataclasses.replace(SMALL, num_frames=16, hidden_frames=(4, 6))
  train = synthetic.generate_davis(tmp_path, 2, 'train', config, seed=5)
  val = synthetic.generate_davis(tmp_path, 1, 'val', config, seed=5)
  assert train == ['synthetic-train-0000', 'synthetic-train-0001'] and val == ['synthetic-val-0000']
  assert (tmp_path / 'ImageSets' / '2017' / 'train.txt').read_text().split() == train
  annotations = tmp_path / 'Annotations' / '480p'
  first_labels = [read_label_png(annotations / name / '00000.png') for name in train + val]
  assert not np.array_equal(first_labels[0], first_labels[1])
  assert not np.array_equal(first_labels[0], first_labels[2])
  again = synthetic.generate_davis(tmp_path / 'again', 1, 'train', config, seed=5)
  again_labels = read_label_png(tmp_path / 'again' / 'Annotations' / '480p' / again[0] / '00000.png')
  np.testing.assert_array_equal(again_labels, first_labels[0])


def test_shortest_video_still_shows_the_hidden_object_before_and_after():
  shortest = synthetic.min_num_frames((9, 9))
  with pytest.raises(InputError, match=f'at least hidden_frames\\[1\\] \\+ 8 = {shortest}'):
    dataclasses.replace(SMALL, num_frames=shortest - 1, hidden_frames=(9, 9))
  video = _generate(num_frames=shortest, hidden_frames=(9, 9), hide_by='occluder')
  span = video.hidden_window
  assert span[1] - span[0] == 9 and span[0] >= 1 and span[1] < shortest


@pytest.mark.parametrize('changes, field', [
    ({'num_frames': 0}, 'num_frames'),
    ({'num_frames': 16}, 'num_frames'),
    ({'height': 16}, 'height'),
    ({'width': 64.0}, 'width'),
    ({'num_objects': 0}, 'num_objects'),
    ({'num_distractors': -1}, 'num_distractors'),
    ({'hidden_frames': (9, 6)}, 'hidden_frames'),
    ({'hidden_frames': 6}, 'hidden_frames'),
    ({'hide_by': 'teleport'}, 'hide_by'),
    ({'object_size': (0.1, 0.5)}, 'object_size'),
    ({'object_size': (0.01, 0.1)}, 'object_size'),
    ({'max_speed': 0}, 'max_speed'),
    ({'camera_pan': float('nan')}, 'camera_pan'),
    ({'noise_std': -1}, 'noise_std'),
    ({'seed': -1}, 'seed'),
    ({'seed': True}, 'seed'),
])
def test_bad_config_raises_input_error_naming_the_field(changes, field):
  with pytest.raises(InputError, match=f'SyntheticVideoConfig.{field}'):
    dataclasses.replace(SMALL, **changes)
