"""The VS-ReID inference decisions, with test doubles for the propagation and re-ID networks."""

import numpy as np
import pytest

from configs import inference as inference_config
from vsreid_jax.data import synthetic
from vsreid_jax.errors import InputError
from vsreid_jax.evaluation import metrics
from vsreid_jax.flow.provider import DisFlow
from vsreid_jax.inference import reid, truth_reid
from vsreid_jax.inference.propagation import NO_SOURCE, VideoState, propagate
from vsreid_jax.inference.vsreid import segment_video

# Frames for the oracle show instance k as grey level CODE * k.
CODE = 20


def coded_frames(instances):
  """RGB frames [T, H, W, 3] that show each instance id as its own grey level."""
  return np.repeat((np.asarray(instances) * CODE)[..., None], 3, axis=-1).astype(np.uint8)


class ColourOracle:
  """A propagation network that knows: every patch pixel of the instance the guidance covers most.

  With patches of 65 pixels, a rectangle survives the crop, resize and paste
  back pixel for pixel, so areas are exact.
  """
  patch_size = 65

  def __init__(self):
    self.batch_sizes = []

  def __call__(self, images, flows, guidance):
    self.batch_sizes.append(len(images))
    ids = np.rint(images[..., 0] / CODE).astype(np.int64)
    foreground = np.zeros(guidance.shape, np.float32)
    for patch, (patch_ids, patch_guidance) in enumerate(zip(ids, guidance)):
      covered = patch_ids[(patch_guidance > 0.5) & (patch_ids > 0)]
      if covered.size:
        foreground[patch] = patch_ids == np.bincount(covered).argmax()
    return foreground


class ZeroFlow:
  """No motion: the warp copies masks (but for the last row and column, which it rejects)."""

  def __init__(self, num_frames, height, width):
    self._num_frames, self._zeros = num_frames, np.zeros((height, width, 2), np.float32)

  def __len__(self):
    return self._num_frames

  def forward(self, index):
    return self._zeros

  def backward(self, index):
    return self._zeros


class TruthScorer(truth_reid.TruthReid):
  """Ground-truth re-ID (0.9 for an object's own instance, 0.05 for the others) that records
  its calls; objects in `persons` are persons."""

  def __init__(self, instances, num_objects, persons=()):
    super().__init__(instances, num_objects)
    self.persons = persons
    self.calls = []
    self.similarity_calls = []

  def person_scores(self):
    return np.array([0.9 if k in self.persons else 0.1 for k in range(self.num_objects)])

  def similarity(self, frame, boxes, valid):
    self.similarity_calls.append(frame)
    return super().similarity(frame, boxes, valid)

  def candidates(self, frame, kind, labels):
    self.calls.append((frame, kind))
    return super().candidates(frame, kind, labels)


def make_config(**overrides):
  config = inference_config.get_config()
  config.update(overrides)
  return config


def run(labels, scorer=None, frames=None, flows=None, **overrides):
  labels = np.asarray(labels)
  frames = coded_frames(labels) if frames is None else frames
  flows = ZeroFlow(*labels.shape) if flows is None else flows
  segmentation = segment_video(frames, labels[0], ColourOracle(), flows, make_config(**overrides),
                               scorer)
  return segmentation, np.stack(list(segmentation.label_maps()))


def teleporting_video():
  """Object 1 stays put; object 2 is hidden in frames 10-29 and shows up elsewhere from frame 30."""
  labels = np.zeros((40, 48, 64), np.uint8)
  labels[:, 5:15, 5:15] = 1
  labels[:10, 30:40, 5:15] = 2
  labels[30:, 30:40, 40:50] = 2
  return labels


def test_hidden_object_is_lost_by_propagation_and_recovered_by_reid():
  labels = teleporting_video()
  _, alone = run(labels, TruthScorer(labels, 2), reid=False)
  np.testing.assert_array_equal(alone[:10], labels[:10])
  assert not np.any(alone[10:] == 2)

  scorer = TruthScorer(labels, 2)
  segmentation, predicted = run(labels, scorer)
  np.testing.assert_array_equal(predicted, labels)
  # Every frame's masks are compared with the templates, again only where the rounds changed
  # them (frames 29-39).
  asked = np.bincount(scorer.similarity_calls, minlength=40)
  np.testing.assert_array_equal(asked[:29], [0] + [1] * 28)
  assert np.all(asked[29:] == 2)
  [recovery] = segmentation.recoveries
  assert (recovery.round, recovery.frame, recovery.object_id) == ('object', 30, 2)
  assert recovery.score == 0.9
  assert recovery.box == (40.0, 30.0, 50.0, 40.0)
  # Back: frame 29 only (nothing there, so frame 28 fails the area rule); on: to the last frame.
  assert (recovery.backward_frames, recovery.forward_frames) == (1, 9)
  assert 'object 2 recovered in frame 30 (score 0.900' in recovery.describe()


@pytest.mark.parametrize('keep_threshold', [-1, 0.3])
def test_repropagation_stops_where_the_mask_no_longer_looks_like_the_object(keep_threshold):
  labels = teleporting_video()
  # Frames 25-29 show an unannotated occluder (instance 3) where object 2 appears at frame 30.
  instances = labels.copy()
  instances[25:30, 30:40, 40:50] = 3
  segmentation, predicted = run(labels, TruthScorer(instances, 2), coded_frames(instances),
                                reid_keep_threshold=keep_threshold)
  [recovery] = segmentation.recoveries
  assert recovery.frame == 30
  np.testing.assert_array_equal(predicted[30:], labels[30:])
  if keep_threshold == -1:
    # Back from frame 30 the oracle follows the occluder through frame 25 (the official way);
    # frame 24 comes out empty and ends the pass.
    assert recovery.backward_frames == 6
    assert np.all(predicted[25:30, 30:40, 40:50] == 2)
  else:
    # The occluder does not look like object 2: frame 29 loses the mask and the pass stops.
    assert recovery.backward_frames == 0
    assert not np.any(predicted[10:30] == 2)


def occluder_video():
  """(labels, instances): from frame 10 an unannotated occluder (instance 3) stands where
  object 2 was, and object 2 shows up elsewhere from frame 20. Propagation moves object 2's
  mask onto the occluder."""
  labels = np.zeros((40, 48, 64), np.uint8)
  labels[:, 5:15, 5:15] = 1
  labels[:10, 30:40, 5:15] = 2
  labels[20:, 30:40, 40:50] = 2
  instances = labels.copy()
  instances[10:, 30:40, 5:15] = 3
  return labels, instances


@pytest.mark.parametrize('keep_threshold', [-1, 0.3])
def test_object_whose_mask_moved_onto_an_occluder_is_looked_for_again(keep_threshold):
  labels, instances = occluder_video()
  segmentation, predicted = run(labels, TruthScorer(instances, 2), coded_frames(instances),
                                reid_keep_threshold=keep_threshold)
  on_occluder = predicted[10:, 30:40, 5:15] == 2
  if keep_threshold == -1:
    # The official rounds look only where an object has no mask: nothing is recovered.
    assert not segmentation.recoveries
    assert on_occluder.all()
    return
  # The mask on the occluder does not look like object 2 (0.05 < 0.3): the rounds look for it
  # there too, find it in frame 20, and re-propagation replaces the wrong masks after it.
  [recovery] = segmentation.recoveries
  assert (recovery.frame, recovery.object_id) == (20, 2)
  assert recovery.forward_frames == 19
  # Back from frame 20 the mask empties in frame 19, and the pass ends (area rule); the wrong
  # masks it left in frames 10-18 are dropped after the rounds.
  assert recovery.backward_frames == 1
  np.testing.assert_array_equal(predicted, labels)


class LabelRecordingScorer(TruthScorer):
  """`TruthScorer` that keeps the label map it is given for each frame it is asked about."""

  def __init__(self, instances, num_objects):
    super().__init__(instances, num_objects)
    self.seen_labels = {}

  def candidates(self, frame, kind, labels):
    self.seen_labels.setdefault(frame, np.array(labels(frame)))
    return super().candidates(frame, kind, labels)


def test_scorers_are_given_the_label_maps_without_the_doubtful_masks():
  labels, instances = occluder_video()
  scorer = LabelRecordingScorer(instances, 2)
  run(labels, scorer, coded_frames(instances), reid_keep_threshold=0.3)
  # Frame 15, before any recovery: object 1's mask looks like it; object 2's, on the
  # occluder, does not (0.05 < 0.3) and is left out.
  seen = scorer.seen_labels[15]
  assert np.all(seen[5:15, 5:15] == 1)
  assert not np.any(seen == 2)


class FooledScorer(TruthScorer):
  """Every mask looks like its object (0.9), but the occluder of `occluder_video` is reported
  as a look-alike from frame 10 on."""

  def similarity(self, frame, boxes, valid):
    return np.where(valid, 0.9, 0.0)

  def look_alike_boxes(self, frame):
    return np.array([[5, 30, 15, 40]] * (frame >= 10), np.float32).reshape(-1, 4)


def run_occluder_video(scorer_class, shows_up, **scorer_args):
  """`occluder_video` (object 2 not showing up again if not `shows_up`) segmented with a
  `scorer_class` scorer: (labels, segmentation, predicted)."""
  labels, instances = occluder_video()
  if not shows_up:
    labels[20:, 30:40, 40:50] = 0
    instances[20:, 30:40, 40:50] = 0
  return labels, *run(labels, scorer_class(instances, 2, **scorer_args), coded_frames(instances),
                      reid_keep_threshold=0.3)


@pytest.mark.parametrize('shows_up', [True, False])
def test_a_mask_on_a_look_alike_is_looked_past_and_kept_unless_replaced(shows_up):
  labels, segmentation, predicted = run_occluder_video(FooledScorer, shows_up)
  on_look_alike = predicted[10:, 30:40, 5:15] == 2
  if not shows_up:
    # Nothing else is object 2: its mask stays on the look-alike (the look-alike's track may
    # have passed onto the object), where a doubtful mask would be dropped.
    assert not segmentation.recoveries
    assert on_look_alike.all()
    return
  # Object 2 is looked for in the frames where its mask lies on the look-alike, and found in
  # frame 20; re-propagation replaces its masks from there on.
  [recovery] = segmentation.recoveries
  assert (recovery.frame, recovery.object_id) == (20, 2)
  np.testing.assert_array_equal(predicted[20:], labels[20:])
  # Back from frame 20 the mask empties in frame 19 and the pass ends; before it the masks on
  # the look-alike are kept.
  assert recovery.backward_frames == 1
  assert on_look_alike[:9].all()


class VerifiedScorer(FooledScorer):
  """As `FooledScorer`, and object 2's mask resembles a non-object wherever it lies on the
  occluder from frame 10 on; with `boxes` False, no look-alike box is reported."""

  def __init__(self, instances, num_objects, boxes=True):
    super().__init__(instances, num_objects)
    self.boxes = boxes

  def look_alike_boxes(self, frame):
    return super().look_alike_boxes(frame) if self.boxes else np.zeros((0, 4), np.float32)

  def resembles_non_object(self, frame, labels):
    return np.array([False, frame >= 10 and np.any(labels[30:40, 5:15] == 2)])


@pytest.mark.parametrize('shows_up', [True, False])
def test_a_mask_on_a_look_alike_that_resembles_a_non_object_does_not_look_like_its_object(
    shows_up):
  labels, segmentation, predicted = run_occluder_video(VerifiedScorer, shows_up)
  # Object 2's masks on the occluder are doubtful: dropped after the rounds.
  assert not np.any(predicted[10:20] == 2)
  if shows_up:
    [recovery] = segmentation.recoveries
    assert (recovery.frame, recovery.object_id) == (20, 2)
    np.testing.assert_array_equal(predicted[20:], labels[20:])
  else:
    assert not segmentation.recoveries
    assert not np.any(predicted[10:] == 2)
  # Resembling a non-object alone, off any look-alike box, changes nothing.
  _, _, kept = run_occluder_video(VerifiedScorer, shows_up, boxes=False)
  assert np.all(kept[10:, 30:40, 5:15] == 2)


class NeverAlikeScorer(TruthScorer):
  """Finds every instance, but no mask ever looks like its object (0.05)."""

  def similarity(self, frame, boxes, valid):
    return np.where(valid, 0.05, 0.0)


def test_recovered_masks_that_stay_doubtful_are_not_recovered_again():
  labels = np.zeros((8, 48, 64), np.uint8)
  labels[:, 5:15, 5:15] = 1
  recoveries = []

  def log(line):
    recoveries.append(line)
    assert len(recoveries) <= 6, 'a frame was recovered twice'

  segmentation = segment_video(coded_frames(labels), labels[0], ColourOracle(),
                               ZeroFlow(*labels.shape), make_config(), NeverAlikeScorer(labels, 1),
                               log)
  # Every frame but the first and last is recovered once, earliest first; each recovered mask
  # is doubtful too, so re-propagation never gets past its neighbours' recoveries.
  assert [r.frame for r in segmentation.recoveries] == [1, 2, 3, 4, 5, 6]
  # ... and the doubtful masks are dropped after the rounds.
  assert not any(segmentation.label_map(frame).any() for frame in range(1, 8))


def test_doubtful_object_is_a_candidate_and_its_own_pixels_do_not_occlude():
  labels = np.zeros((40, 60), np.uint8)
  labels[5:25, 5:25] = 1  # object 1's (doubtful) mask lies under the re-ID box
  appears = np.ones((3, 1), bool)
  doubtful = np.array([[False], [True], [False]])
  select = lambda doubtful: reid.best_candidate(
      lambda frame: (np.array([[10, 10, 30, 30]], float), np.array([[0.8]])),
      lambda frame: labels, appears, np.zeros((3, 1), int), [0], make_config(), doubtful)
  assert select(None) is None  # official: object 1 appears everywhere
  found = select(doubtful)
  assert (found.frame, found.index, found.score) == (1, 0, 0.8)


@pytest.mark.parametrize('box, taken', [([10, 10, 30, 30], False), ([30, 5, 50, 25], True)])
def test_an_object_whose_mask_lies_on_a_look_alike_is_looked_for_elsewhere(box, taken):
  labels = np.zeros((40, 60), np.uint8)
  labels[5:25, 5:25] = 1  # object 1's mask, on a look-alike in frame 1
  on_look_alike = np.array([[False], [True], [False]])
  found = reid.best_candidate(
      lambda frame: (np.array([box], float), np.array([[0.8]])), lambda frame: labels,
      np.ones((3, 1), bool), np.zeros((3, 1), int), [0], make_config(), None, on_look_alike)
  # A box holding pixels of the mask (the look-alike, or the object under its mask) is not
  # taken; one apart from it is.
  assert (found is not None) == taken
  if taken:
    assert (found.frame, found.index) == (1, 0)


def test_after_propagation_sees_the_masks_before_the_reid_rounds():
  labels = teleporting_video()
  _, alone = run(labels, TruthScorer(labels, 2), reid=False)
  seen = []
  segmentation = segment_video(
      coded_frames(labels), labels[0], ColourOracle(), ZeroFlow(*labels.shape), make_config(),
      TruthScorer(labels, 2),
      after_propagation=lambda first_pass: seen.append(np.stack(list(first_pass.label_maps()))))
  np.testing.assert_array_equal(seen[0], alone)
  np.testing.assert_array_equal(np.stack(list(segmentation.label_maps())), labels)


def test_person_round_comes_first_for_persons():
  labels = teleporting_video()
  scorer = TruthScorer(labels, 2, persons=(1,))
  segmentation, _ = run(labels, scorer)
  assert [(r.round, r.object_id) for r in segmentation.recoveries] == [('person', 2)]
  # Candidates are asked for once per frame and round, only where an object is missing.
  assert len(scorer.calls) == len(set(scorer.calls))
  assert {frame for frame, _ in scorer.calls} == set(range(10, 39))


def test_recovers_the_hidden_object_of_a_synthetic_video():
  config = synthetic.SyntheticVideoConfig(num_frames=36, height=72, width=128, num_objects=2,
                                          num_distractors=0, hidden_frames=(20, 20),
                                          hide_by='occluder', noise_std=0.0, seed=4)
  clip = synthetic.generate_video(config)
  [span] = [s for s in clip.events if s.object_id == clip.hidden_object_id]
  frames, flows = coded_frames(clip.instances), DisFlow(clip.frames, preset='medium')
  scorer = TruthScorer(clip.instances, config.num_objects)
  hidden = clip.labels == clip.hidden_object_id
  after = slice(span.end_frame, None)

  _, alone = run(clip.labels, scorer, frames, flows, reid=False)
  assert metrics.region_similarity(hidden[after], alone[after] == clip.hidden_object_id).max() == 0

  segmentation, predicted = run(clip.labels, scorer, frames, flows)
  recovered = metrics.region_similarity(hidden[after], predicted[after] == clip.hidden_object_id)
  assert recovered.mean() > 0.9, recovered
  assert any(r.object_id == clip.hidden_object_id and r.frame >= span.end_frame
             for r in segmentation.recoveries)
  # Probabilities are kept as float16 crops: far less than one full map per object and frame.
  assert segmentation.probabilities.nbytes() < predicted.size * config.num_objects * 2 / 4


def test_area_rule_stops_propagating_a_shrinking_object():
  # Areas 180, 36, 18, 15, 15, 15: frame 3 still propagates (180 <= 10 x 18), frame 4 does not
  # (180 > 10 x 15), and the pass ends there.
  labels = np.zeros((6, 32, 32), np.uint8)
  for frame, (height, width) in enumerate([(12, 15), (6, 6), (3, 6), (3, 5), (3, 5), (3, 5)]):
    labels[frame, 8:8 + height, 8:8 + width] = 1
  _, predicted = run(labels)
  np.testing.assert_array_equal(predicted[:4], labels[:4])
  assert not predicted[4:].any()
  _, predicted = run(labels, max_area_shrink=12)
  np.testing.assert_array_equal(predicted, labels)


def _static_state(labels, predictor, **overrides):
  labels = np.asarray(labels)
  config = make_config(**overrides)
  return VideoState(coded_frames(labels), labels[0], ZeroFlow(*labels.shape), predictor, config,
                    int(labels.max()))


def test_only_a_strictly_closer_source_overwrites_a_mask():
  labels = np.zeros((12, 32, 48), np.uint8)
  labels[:, 4:12, 4:12] = 1
  state = _static_state(labels, ColourOracle())
  assert propagate(state, 1, 12, 1, [0]) == list(range(1, 12))
  assert list(state.sources[:, 0]) == [0] * 12
  state.sources[8, 0] = 8  # as if recovered there
  # Frames 7, 6, 5 are closer to 8 than to 0; frame 4 is as close to both, so the pass stops.
  assert propagate(state, 7, 0, -1, [0]) == [7, 6, 5]
  assert propagate(state, 9, 12, 1, [0]) == [9, 10, 11]
  assert list(state.sources[:, 0]) == [0] * 5 + [8] * 7
  # A second pass from the same source changes nothing.
  assert propagate(state, 9, 12, 1, [0]) == []


def test_objects_touching_a_propagated_object_are_resegmented_keeping_their_source():
  labels = np.zeros((3, 40, 64), np.uint8)
  labels[:, 4:12, 4:12] = 1
  labels[:, 4:12, 13:21] = 2  # its enlarged box touches object 1's
  labels[:, 28:36, 48:56] = 3  # far away
  oracle = ColourOracle()
  state = _static_state(labels, oracle)
  state.sources[2] = 2
  assert propagate(state, 1, 3, 1, [0]) == [1]  # frame 2 is its own source
  assert oracle.batch_sizes == [2]
  assert list(state.sources[1]) == [0, NO_SOURCE, NO_SOURCE]
  np.testing.assert_array_equal(state.probabilities.labels(1),
                                np.where(labels[1] == 3, 0, labels[1]))


@pytest.mark.parametrize('box, accepted', [((10, 10, 30, 30), False), ((22, 10, 42, 30), True)])
def test_reid_box_over_a_present_object_is_rejected(box, accepted):
  labels = np.zeros((40, 60), np.uint8)
  labels[5:25, 5:25] = 1  # object 1's robust box (5, 5, 25, 25)
  # Official overlap, max corners inside, over the hull whose min corner is min(a, b + 1):
  # (10, 10, 30, 30): 16 x 16 / (24 x 24) = 0.44 > 0.3; (22, 10, 42, 30): 4 x 16 / (36 x 24) = 0.07.
  appears = np.array([[True, True], [True, False], [True, True]])
  found = reid.best_candidate(lambda frame: (np.array([box], float), np.array([[0.1, 0.8]])),
                              lambda frame: labels, appears, np.zeros((3, 2), int), [0, 1],
                              make_config())
  assert (found is not None) == accepted
  if accepted:
    assert (found.frame, found.index, found.score) == (1, 1, 0.8)


def _select(scores, appears, sources=None, **overrides):
  """best_candidate over 4 frames whose every frame offers boxes A and B with `scores` [2, N]."""
  scores = np.asarray(scores, float)
  num_objects = scores.shape[1]
  boxes = np.array([[0, 0, 5, 5], [20, 20, 25, 25]], float)
  sources = np.zeros((4, num_objects), int) if sources is None else sources
  return reid.best_candidate(lambda frame: (boxes, scores),
                             lambda frame: np.zeros((30, 30), np.uint8),
                             np.asarray(appears), sources, list(range(num_objects)),
                             make_config(**overrides))


def test_reid_box_claimed_more_strongly_by_another_missing_object_is_rejected():
  scores = [[0.8, 0.9], [0.1, 0.6]]  # box A: 0.8 for object 0, 0.9 for object 1
  missing_both = [[True, True], [False, False], [False, False], [True, True]]
  found = _select(scores, missing_both)
  assert (found.frame, found.index, found.score) == (1, 1, 0.9)
  # As in the official code, a missing object still claims the box where it was recovered already.
  sources = np.array([[0, 0], [0, 1], [0, 2], [0, 0]])
  assert _select(scores, missing_both, sources) is None
  # A present object does not compete for the box.
  found = _select(scores, [[True, True], [False, True], [True, True], [True, True]])
  assert (found.frame, found.index) == (1, 0)


def test_reid_threshold_and_frames_considered():
  assert _select([[0.5]], [[True], [False], [False], [True]]) is None  # not above 0.5
  assert _select([[0.6]], [[True], [False], [False], [True]], reid_threshold=0.6) is None
  assert _select([[0.51]], [[True], [True], [True], [False]]) is None  # last frame never
  found = _select([[0.51]], [[False], [True], [False], [False]])
  assert found.frame == 2  # frame 0 never, frame 1 has the object


def test_first_mask_errors():
  labels = teleporting_video()[:3]
  message = r'first mask shape \(10, 10\) differs from the frame size \(48, 64\)'
  with pytest.raises(InputError, match=message):
    segment_video(coded_frames(labels), np.ones((10, 10), np.uint8), ColourOracle(),
                  ZeroFlow(*labels.shape), make_config())
  with pytest.raises(InputError, match='contains no object'):
    segment_video(coded_frames(labels), np.full((48, 64), 255, np.uint8), ColourOracle(),
                  ZeroFlow(*labels.shape), make_config())


def test_bad_config_value_is_named():
  labels = teleporting_video()[:3]
  with pytest.raises(ValueError, match='config.occlusion_threshold'):
    run(labels, occlusion_threshold=1.5)
  with pytest.raises(ValueError, match='config.reid_keep_threshold'):
    run(labels, reid_keep_threshold=-2.0)
