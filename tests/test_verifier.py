"""The mask verifier: crops, network, training pairs, trainer and checkpoint, and the re-ID scorer's
use of it."""

import jax
import numpy as np
import pytest

from configs import verifier as verifier_config
from vsreid_jax import convert
from vsreid_jax.data import synthetic
from vsreid_jax.errors import InputError
from vsreid_jax.inference import detector_reid
from vsreid_jax.models.verifier import MaskVerifier
from vsreid_jax.reid.frame_detector import Detections
from vsreid_jax.reid.verification import Verifier, crop
from vsreid_jax.training import verifier_trainer
from vsreid_jax.training.verifier_data import VerifierPairs

RED, BLUE = (200, 10, 10), (10, 10, 200)


def test_crop_centres_the_box_and_marks_the_box_or_the_mask():
  frame = np.zeros((60, 80, 3), np.uint8)
  frame[20:40, 30:50] = RED
  box = (30, 20, 50, 40)
  # Side 1.3 x 20 = 26: one crop pixel per frame pixel; crop (r, c) is frame (17 + r, 27 + c).
  boxed = crop(frame, box, 26)
  assert boxed.shape == (26, 26, 4) and boxed.dtype == np.float32
  np.testing.assert_allclose(boxed[13, 13, :3], np.array(RED) / 255 - 0.5, atol=1e-6)
  np.testing.assert_allclose(boxed[0, 0], [-0.5, -0.5, -0.5, 0.0], atol=1e-6)
  assert boxed[5, 5, 3] == 1.0  # inside the box
  mask = np.zeros((60, 80), bool)
  mask[25:35, 35:45] = True
  masked = crop(frame, box, 26, mask)
  np.testing.assert_array_equal(masked[..., :3], boxed[..., :3])
  assert masked[13, 13, 3] == 1.0 and masked[5, 5, 3] == 0.0  # in the box, not in the mask


def test_network_compares_pairs_through_one_tower():
  model = MaskVerifier(widths=(4, 8), strides=(2, 2), head_features=6)
  crops = jax.random.normal(jax.random.key(0), (3, 16, 16, 4))
  variables = model.init(jax.random.key(1), crops, crops)
  assert set(variables['params']) == {'conv0', 'conv1', 'norm0', 'norm1', 'hidden', 'logit'}
  logits = model.apply(variables, crops, crops[::-1])
  assert logits.shape == (3,)
  features = model.apply(variables, crops, method=MaskVerifier.describe)
  assert features.shape == (3, 16)
  np.testing.assert_allclose(
      model.apply(variables, features, features[::-1], method=MaskVerifier.compare), logits,
      rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match='2 widths but 1 strides'):
    MaskVerifier(widths=(4, 8), strides=(2,)).init(jax.random.key(1), crops, crops)


def _row(table, image):
  """The index of `image` in `table` (crops stored in float16), mirrored or not."""
  for candidate in (image, image[:, ::-1]):
    rows = np.flatnonzero(np.all(table.astype(np.float32) == candidate, axis=(1, 2, 3)))
    if len(rows):
      return int(rows[0])
  raise AssertionError('crop not found')


def test_pairs_are_same_instance_or_a_look_alike_of_the_same_video():
  video = synthetic.SyntheticVideoConfig(num_frames=28, height=64, width=96, num_objects=2,
                                         num_distractors=2, hidden_frames=(3, 5))
  done = []
  pairs = VerifierPairs(video, [1, 2], 16, 3, np.random.default_rng(0), positive_fraction=0.5,
                        look_alike_fraction=1.0, progress=lambda *args: done.append(args))
  assert done == [(1, 2), (2, 2)]
  rng = np.random.default_rng(1)
  labels = []
  for _ in range(120):
    example = pairs.example(rng)
    assert example['template'].shape == example['query'].shape == (16, 16, 4)
    template = _row(pairs._templates, example['template'])
    owner = pairs._owners[_row(pairs._queries, example['query'])]
    labels.append(example['label'])
    if example['label'] == 1:
      assert template == owner
    else:
      assert template != owner and pairs._video_of[template] == pairs._video_of[owner]
      # Every object here has a look-alike, and negatives are drawn from look-alike groups only.
      assert pairs._group_of[template] == pairs._group_of[owner]
  assert 0.3 < np.mean(labels) < 0.7


def test_config_errors_name_the_field():
  config = verifier_config.get_config('smoke')
  config.model.crop_size = 8
  with pytest.raises(InputError, match='config.model.crop_size'):
    verifier_trainer.validate_config(config, 1)
  config = verifier_config.get_config('smoke')
  config.data.look_alike_fraction = 1.5
  with pytest.raises(InputError, match='config.data.look_alike_fraction'):
    verifier_trainer.validate_config(config, 1)
  with pytest.raises(ValueError, match='unknown verifier config'):
    verifier_config.get_config('demo')


@pytest.fixture(name='verifier_dir', scope='module')
def fixture_verifier_dir(tmp_path_factory):
  """A verifier trained by the smoke config and exported."""
  workdir = tmp_path_factory.mktemp('verifier')
  state = verifier_trainer.train_and_evaluate(verifier_config.get_config('smoke'),
                                              workdir / 'run')
  assert int(state.step) == 10
  convert.export_training_checkpoint(workdir / 'run' / 'checkpoints', workdir / 'exported')
  return workdir / 'exported'


def test_smoke_training_exports_a_verifier_that_restores(verifier_dir, reid_dir):
  verifier = Verifier.from_checkpoint(verifier_dir)
  assert verifier.crop_size == verifier_config.get_config('smoke').model.crop_size
  frame = np.random.default_rng(0).integers(0, 255, (40, 60, 3), np.uint8)
  crops = [crop(frame, (5, 5, 25, 30), verifier.crop_size),
           crop(frame, (30, 10, 50, 35), verifier.crop_size)]
  features = verifier.describe(crops)
  probabilities = verifier.probabilities(features[:1], features)
  assert probabilities.shape == (1, 2) and np.all((probabilities >= 0) & (probabilities <= 1))
  assert verifier.probabilities(features[:0], features).shape == (0, 2)
  with pytest.raises(InputError, match='not a mask verifier checkpoint'):
    Verifier.from_checkpoint(reid_dir)


class ColourVerifier:
  """A stand-in `Verifier`: a crop's feature is the mean colour under its mask channel, and a
  pair's probability falls with the distance between their colours."""
  crop_size = 12

  def describe(self, crops):
    crops = np.asarray(crops)
    weights = crops[..., 3:]
    return (crops[..., :3] * weights).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))

  def probabilities(self, templates, queries):
    distances = np.linalg.norm(templates[:, None] - queries[None], axis=-1)
    return np.exp(-10 * distances)


class RedAndBlueDetector:
  """A stand-in `FrameDetector`: it finds the red object 1 and the blue square (no object) in
  every frame."""
  person_class = None
  boxes = np.array([[5, 5, 15, 15], [40, 30, 50, 40]], np.float32)

  def describe(self, frame, boxes, valid):
    del frame, valid
    return np.eye(len(boxes), 3, dtype=np.float32), np.zeros((len(boxes), 2), np.float32)

  def detect(self, frame):
    del frame
    return Detections(self.boxes, np.full(2, 0.9), np.ones(2, int),
                      np.eye(2, 3, dtype=np.float32))


def test_a_mask_on_something_more_like_a_non_object_resembles_it():
  frames = np.full((3, 48, 64, 3), 128, np.uint8)
  frames[:, 5:15, 5:15] = RED
  frames[:, 30:40, 40:50] = BLUE
  first = np.zeros((48, 64), np.uint8)
  first[5:15, 5:15] = 1
  on_blue = np.zeros_like(first)
  on_blue[30:40, 40:50] = 1
  scorer = detector_reid.DetectorReid(RedAndBlueDetector(), frames, first, nearest_template=True,
                                      verifier=ColourVerifier())
  np.testing.assert_array_equal(scorer.resembles_non_object(1, first), [False])
  np.testing.assert_array_equal(scorer.resembles_non_object(2, on_blue), [True])
  np.testing.assert_array_equal(scorer.resembles_non_object(2, np.zeros_like(first)), [False])
  # The verifier needs the first frame's non-objects, which only the nearest-template rule finds.
  plain = detector_reid.DetectorReid(RedAndBlueDetector(), frames, first, verifier=ColourVerifier())
  np.testing.assert_array_equal(plain.resembles_non_object(2, on_blue), [False])


class TiltedVerifier(ColourVerifier):
  """A stand-in `Verifier` that finds every mask equally likely on the red template's instance
  (0.5) and `tilt` likelier on a blue template's."""

  def __init__(self, tilt):
    self.tilt = tilt

  def probabilities(self, templates, queries):
    blue = templates[:, 2] > templates[:, 0]
    return np.broadcast_to(0.5 + self.tilt * blue[:, None], (len(templates), len(queries)))


@pytest.mark.parametrize('tilt, resembles', [(0.5, False), (1.5, True)])
def test_a_non_object_must_fit_better_by_the_margin(tilt, resembles):
  frames = np.full((3, 48, 64, 3), 128, np.uint8)
  frames[:, 5:15, 5:15] = RED
  frames[:, 30:40, 40:50] = BLUE
  first = np.zeros((48, 64), np.uint8)
  first[5:15, 5:15] = 1
  verifier = TiltedVerifier(tilt * detector_reid.VERIFIER_MARGIN)
  scorer = detector_reid.DetectorReid(RedAndBlueDetector(), frames, first, nearest_template=True,
                                      verifier=verifier)
  np.testing.assert_array_equal(scorer.resembles_non_object(2, first), [resembles])


def test_detector_scorer_runs_the_real_verifier(reid_dir, verifier_dir):
  clip = synthetic.generate_video(synthetic.SyntheticVideoConfig(
      num_frames=14, height=64, width=96, num_objects=2, hidden_frames=(3, 5), seed=3))
  factory = detector_reid.detector_reid_factory(reid_dir, nearest_template=True,
                                                verifier_dir=verifier_dir)
  scorer = factory(clip.frames, clip.labels[0])
  unlike = scorer.resembles_non_object(4, clip.labels[4])
  assert unlike.shape == (2,) and unlike.dtype == bool
  with pytest.raises(InputError, match='not a mask verifier checkpoint'):
    detector_reid.detector_reid_factory(reid_dir, True, verifier_dir=reid_dir)
