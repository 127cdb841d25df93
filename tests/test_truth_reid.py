"""Ground-truth re-ID (`truth_reid`): scores from instance maps, found by the frames' folder."""

import functools

import numpy as np
import pytest

from configs import inference as inference_config
from vsreid_jax.data import synthetic, video
from vsreid_jax.errors import InputError
from vsreid_jax.inference import demo, truth_reid


class FixedScorer:
  """A stand-in real scorer: one box scoring 0.7 for every object, likeness 0.2, one
  look-alike box, and every mask resembling a non-object."""

  def __init__(self, num_objects):
    self.num_objects = num_objects

  def person_scores(self):
    return np.full(self.num_objects, 0.8)

  def similarity(self, frame, boxes, valid):
    return np.where(valid, 0.2, 0.0)

  def look_alike_boxes(self, frame):
    return np.array([[10.0, 10.0, 20.0, 20.0]])

  def resembles_non_object(self, frame, labels):
    return np.ones(self.num_objects, bool)

  def candidates(self, frame, kind, labels):
    return np.array([[1.0, 1.0, 5.0, 5.0]]), np.full((1, self.num_objects), 0.7)


@pytest.fixture(scope='module')
def written(tmp_path_factory):
  root = tmp_path_factory.mktemp('truth')
  config = synthetic.SyntheticVideoConfig(num_frames=30, height=64, width=96, num_objects=2,
                                          num_distractors=1, seed=3)
  videos = {'clip': synthetic.generate_video(config)}
  synthetic.write_davis(root, videos, 'val')
  return videos, video.read_frame_folder(root / 'JPEGImages' / '480p' / 'clip')


def test_truth_scores_each_visible_instance_for_its_own_object(written):
  videos, frames = written
  clip = videos['clip']
  scorer = truth_reid.truth_reid_factory(videos)(frames, clip.labels[0])
  boxes, scores = scorer.candidates(0, 'object', None)
  # Two objects and the look-alike, each scoring only for itself (the look-alike for none).
  assert len(boxes) == 3
  np.testing.assert_array_equal(scores, [[0.9, 0.05], [0.05, 0.9], [0.05, 0.05]])
  # An object's own box looks like it; its box given to the other object does not.
  own = boxes[:2].astype(np.float32)
  np.testing.assert_array_equal(scorer.similarity(0, own, np.array([True, True])), [0.9, 0.9])
  np.testing.assert_array_equal(scorer.similarity(0, own[::-1], np.array([True, False])),
                                [0.05, 0.0])
  np.testing.assert_array_equal(scorer.person_scores(), [0.0, 0.0])


def test_half_of_the_reid_from_truth(written):
  videos, frames = written
  first_mask = videos['clip'].labels[0]
  likeness = truth_reid.truth_reid_factory(videos, 'likeness', lambda f, m: FixedScorer(2))(
      frames, first_mask)
  boxes, _ = likeness.candidates(0, 'object', None)
  assert len(boxes) == 1 and likeness.person_scores()[0] == 0.8
  true_boxes, _ = truth_reid.TruthReid(videos['clip'].instances, 2).candidates(0, 'object', None)
  assert likeness.similarity(0, true_boxes[:2], np.array([True, True]))[0] == 0.9
  # The look-alike boxes belong to the likeness half.
  assert likeness.look_alike_boxes(5).shape == (0, 4)
  assert not likeness.resembles_non_object(5, None).any()
  candidates = truth_reid.truth_reid_factory(videos, 'candidates', lambda f, m: FixedScorer(2))(
      frames, first_mask)
  assert len(candidates.candidates(0, 'object', None)[0]) == 3
  assert candidates.similarity(0, true_boxes[:2], np.array([True, True]))[0] == 0.2
  assert candidates.look_alike_boxes(5).shape == (1, 4)
  assert candidates.resembles_non_object(5, None).all()


def test_truth_needs_a_known_sequence_and_part(written):
  videos, frames = written
  with pytest.raises(InputError, match="no instance ground truth for sequence 'clip'"):
    truth_reid.truth_reid_factory({})(frames, videos['clip'].labels[0])
  with pytest.raises(ValueError, match='part must be one of'):
    truth_reid.truth_reid_factory(videos, 'boxes')
  with pytest.raises(ValueError, match='needs the real scorer_factory'):
    truth_reid.truth_reid_factory(videos, 'likeness')


def test_shipped_segmenter_takes_the_likeness_from_truth(written):
  videos, frames = written
  first_mask = videos['clip'].labels[0]
  segmenter = demo.vsreid_segmenter(
      inference_config.get_config(), finetune_steps=0,
      wrap_reid=functools.partial(truth_reid.truth_reid_factory, videos, 'likeness'))
  scorer = segmenter.reid_factory(frames, first_mask)
  true_boxes, _ = truth_reid.TruthReid(videos['clip'].instances, 2).candidates(0, 'object', None)
  np.testing.assert_array_equal(scorer.similarity(0, true_boxes[:2], np.array([True, True])),
                                [0.9, 0.9])
  # The candidates come from the shipped detector: its cosine scores, not the truth's 0.9/0.05.
  _, scores = scorer.candidates(0, 'object', lambda frame: first_mask)
  assert scores.size and not np.isin(scores, [truth_reid.OWN_SCORE, truth_reid.OTHER_SCORE]).all()
