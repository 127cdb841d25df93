"""The re-ID detector as the VS-ReID rounds' scorer, and infer.py with both checkpoints."""

import jax
import numpy as np
import pytest

import infer
from configs import reid as reid_configs
from conftest import save_random_reid_checkpoint, write_jpeg
from vsreid_jax.data import palette, synthetic
from vsreid_jax.errors import InputError
from vsreid_jax.inference import detector_reid
from vsreid_jax.reid import detection
from vsreid_jax.reid.frame_detector import Detections, FrameDetector, fit_frame


def _clip():
  return synthetic.generate_video(synthetic.SyntheticVideoConfig(
      num_frames=14, height=64, width=96, num_objects=2, hidden_frames=(3, 5), seed=3))


def test_scorer_scores_detections_against_first_frame_templates(reid_dir, monkeypatch):
  clip = _clip()
  scorer = detector_reid.detector_reid_factory(reid_dir)(clip.frames, clip.labels[0])
  assert scorer.person_scores().shape == (2,) and not scorer.person_scores().any()
  labels = clip.labels.__getitem__
  boxes, scores = scorer.candidates(0, 'person', labels)
  assert boxes.shape == (0, 4) and scores.shape == (0, 2)
  calls = []
  real_detect = detection.detect
  monkeypatch.setattr(detection, 'detect', lambda *args: calls.append(1) or real_detect(*args))
  boxes, scores = scorer.candidates(5, 'object', labels)
  again = scorer.candidates(5, 'object', labels)
  assert len(calls) == 1  # each frame is detected once
  assert boxes.shape[1] == 4 and scores.shape == (len(boxes), 2)
  assert np.all(np.abs(scores) <= 1 + 1e-5)
  np.testing.assert_array_equal(again[1], scores)
  # An object's first-frame box is its template; a box left out scores 0.
  first_boxes, _ = detection.boxes_from_masks(clip.labels[0], 2)
  np.testing.assert_allclose(scorer.similarity(0, first_boxes, np.array([True, False])), [1, 0],
                             atol=1e-5)


class PersonObjectDetector:
  """A stand-in `FrameDetector` with a person class: two templates, three detections."""
  person_class = 1

  def describe(self, frame, boxes, valid):
    del frame
    assert boxes.shape == (2, 4) and valid.all()
    return np.eye(2, dtype=np.float32), np.array([[0.1, 0.8, 0.1], [0.1, 0.2, 0.7]], np.float32)

  def detect(self, frame):
    del frame
    return Detections(np.arange(12, dtype=np.float32).reshape(3, 4), np.full(3, 0.9),
                      np.array([1, 2, 1]), np.array([[1, 0], [0, 1], [0.6, 0.8]], np.float32))


def test_person_round_takes_the_detectors_person_class():
  clip = _clip()
  scorer = detector_reid.DetectorReid(PersonObjectDetector(), clip.frames, clip.labels[0])
  # An object's person score is the person probability of its first-frame box.
  np.testing.assert_allclose(scorer.person_scores(), [0.8, 0.2])
  boxes, scores = scorer.candidates(4, 'person', clip.labels.__getitem__)
  np.testing.assert_array_equal(boxes, np.arange(12).reshape(3, 4)[[0, 2]])
  np.testing.assert_allclose(scores, [[1, 0], [0.6, 0.8]], atol=1e-6)
  boxes, scores = scorer.candidates(4, 'object', clip.labels.__getitem__)
  assert boxes.shape == (3, 4) and scores.shape == (3, 2)


class LookAlikeDetector:
  """A stand-in `FrameDetector` without a person class. In the first frame it finds object 1
  and a box of background (the non-object); in each later frame, on object 1's first box:
  object 1, a look-alike nearer the non-object than object 1, object 2, and a box nearer
  object 1 than object 2; and, one pixel further along each frame, the non-object, which
  looks exactly like object 1."""
  person_class = None
  templates = np.eye(3, dtype=np.float32)[:2]
  non_object = np.array([0.8, 0, 0.6], np.float32)
  later = np.array([[1, 0, 0], [0.6, 0, 0.8], [0, 1, 0], [0.8, 0.6, 0], [1, 0, 0]], np.float32)

  def __init__(self, frames, labels):
    self.frames = frames
    ys, xs = np.nonzero(labels == 1)
    self.object_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    self.background_box = next(
        np.array([x, y, x + 8, y + 8], np.float32)
        for y in range(0, labels.shape[0] - 16) for x in range(0, labels.shape[1] - 16)
        if not labels[y:y + 16, x:x + 16].any()
        and (x + 16 <= self.object_box[0] or x >= self.object_box[2]
             or y + 16 <= self.object_box[1] or y >= self.object_box[3]))

  def describe(self, frame, boxes, valid):
    del frame, boxes, valid
    return self.templates, np.zeros((2, 2), np.float32)

  def detect(self, frame):
    index = next(i for i in range(len(self.frames)) if np.array_equal(frame, self.frames[i]))
    if index == 0:
      boxes = np.stack([self.object_box, self.background_box])
      embeddings = np.stack([self.templates[0], self.non_object])
    else:
      boxes = np.stack([self.object_box] * 4 + [self.background_box + index])
      embeddings = self.later
    return Detections(boxes, np.full(len(boxes), 0.9), np.ones(len(boxes), int), embeddings)


def test_nearest_template_scores_a_box_for_its_nearest_first_frame_template_only():
  clip = _clip()
  detector = LookAlikeDetector(clip.frames, clip.labels[0])
  plain = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0])
  # Object 1 stays where it was in the first frame; object 2 is hidden.
  labels = lambda frame: (clip.labels[0] == 1).astype(np.uint8)
  np.testing.assert_allclose(plain.candidates(4, 'object', labels)[1],
                             [[1, 0], [0.6, 0], [0, 1], [0.8, 0.6], [1, 0]], atol=1e-6)
  nearest = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0],
                                       nearest_template=True)
  # The first-frame box on object 1 is no non-object, so object 1 keeps its own box; the
  # look-alike is nearest the non-object, but that one is seen apart from it (the last box
  # continues its track), so it goes to object 1; the fourth box is object 1's, not object 2's.
  np.testing.assert_allclose(nearest.candidates(4, 'object', labels)[1],
                             [[1, 0], [0.6, 0], [0, 1], [0.8, 0], [0, 0]], atol=1e-6)


class CountingDetector(LookAlikeDetector):
  """`LookAlikeDetector` that counts the frames it is asked to detect."""

  def __init__(self, frames, labels):
    super().__init__(frames, labels)
    self.detected = []

  def detect(self, frame):
    self.detected.append(next(i for i in range(len(self.frames))
                              if np.array_equal(frame, self.frames[i])))
    return super().detect(frame)


def test_look_alike_boxes_are_where_the_first_frames_non_objects_are_followed():
  clip = _clip()
  detector = CountingDetector(clip.frames, clip.labels[0])
  scorer = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0],
                                      nearest_template=True)
  # The non-object moves one pixel a frame; no masks are needed to follow it.
  np.testing.assert_allclose(scorer.look_alike_boxes(5), [detector.background_box + 5])
  np.testing.assert_allclose(scorer.look_alike_boxes(2), [detector.background_box + 2])
  np.testing.assert_allclose(scorer.look_alike_boxes(0), [detector.background_box])
  labels = lambda frame: (clip.labels[0] == 1).astype(np.uint8)
  scorer.candidates(6, 'object', labels)
  assert detector.detected == list(range(7))  # each frame once
  plain = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0])
  assert plain.look_alike_boxes(5).shape == (0, 4)


def test_a_box_on_an_object_is_no_non_object_however_loose():
  labels = np.zeros((60, 80), np.uint8)
  labels[20:30, 20:30] = 1
  labels[40:50, 60:70] = 2
  is_non_object = lambda box: detector_reid._is_non_object(labels, np.array([100, 100]), box)  # pylint: disable=protected-access
  assert is_non_object((40, 0, 80, 30))  # background only
  assert is_non_object((28, 0, 40, 40))  # a fifth of object 1, a twenty-fourth of the box
  assert not is_non_object((20, 20, 30, 30))  # the object itself
  # Few object pixels for its size, but all of object 1 / two fifths of object 2: a loose box
  # about an object, as detectors give on real video.
  assert not is_non_object((0, 0, 60, 60))
  assert not is_non_object((66, 30, 80, 60))


class LooseBoxDetector(LookAlikeDetector):
  """`LookAlikeDetector` whose first frame also shows a loose box about object 1 (few object
  pixels for its size)."""

  def detect(self, frame):
    found = super().detect(frame)
    if not np.array_equal(frame, self.frames[0]):
      return found
    loose = self.object_box + np.array([-12, -12, 12, 12], np.float32)
    return Detections(np.concatenate([found.boxes, loose[None]]), np.full(3, 0.9),
                      np.ones(3, int), np.concatenate([found.embeddings, self.non_object[None]]))


def test_only_boxes_off_the_objects_start_look_alike_tracks():
  clip = _clip()
  detector = LooseBoxDetector(clip.frames, clip.labels[0])
  loose = detector.object_box + np.array([-12, -12, 12, 12])
  assert detector_reid._object_fraction(clip.labels[0], loose) <= (  # pylint: disable=protected-access
      detector_reid.NON_OBJECT_MAX_FRACTION)
  scorer = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0],
                                      nearest_template=True)
  np.testing.assert_allclose(scorer.look_alike_boxes(0), [detector.background_box])


class NonObjectElsewhereDetector(LookAlikeDetector):
  """`LookAlikeDetector` whose later frames show the look-alike box (nearest the non-object)
  and, unless `non_object_seen` is False, the non-object, at `non_object_offset` from the
  look-alike."""

  def __init__(self, frames, labels, non_object_seen, non_object_offset):
    super().__init__(frames, labels)
    self.non_object_seen, self.non_object_offset = non_object_seen, non_object_offset

  def detect(self, frame):
    index = next(i for i in range(len(self.frames)) if np.array_equal(frame, self.frames[i]))
    if index == 0:
      return super().detect(frame)
    # The non-object moves one pixel a frame, so its track continues.
    non_object = self.background_box + index
    boxes = np.stack([non_object - self.non_object_offset, non_object])
    embeddings = np.stack([self.later[1], self.non_object])
    count = 2 if self.non_object_seen else 1
    return Detections(boxes[:count], np.full(count, 0.9), np.ones(count, int),
                      embeddings[:count])


@pytest.mark.parametrize('non_object_seen, non_object_offset, object_1_score', [
    (True, 30, 0.6),  # seen apart: the look-alike box may be object 1
    (False, 30, 0.0),  # unseen: it may be the non-object
    (True, 6, 0.0),  # seen overlapping it (too little to continue its track): it may be it
])
def test_a_box_goes_to_its_nearest_non_object_unless_that_one_is_seen_apart_from_it(
    non_object_seen, non_object_offset, object_1_score):
  clip = _clip()
  detector = NonObjectElsewhereDetector(clip.frames, clip.labels[0], non_object_seen,
                                        np.array([non_object_offset, 0] * 2, np.float32))
  scorer = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0],
                                      nearest_template=True)
  hidden = lambda frame: clip.labels[0] * (frame == 0)  # both objects out of sight after frame 0
  np.testing.assert_allclose(scorer.candidates(4, 'object', hidden)[1][0], [object_1_score, 0],
                             atol=1e-6)


def test_person_checkpoint_gives_person_candidates_only_in_the_person_round(tmp_path):
  config = reid_configs.get_config('smoke')
  config.model.num_classes, config.data.classes = 2, 'person'
  config.detection.score_threshold = 0.1
  config.detection.max_detections = config.detection.pre_nms_top_k = 64  # room for both classes
  loaded = FrameDetector.from_checkpoint(save_random_reid_checkpoint(tmp_path, config))
  assert loaded.person_class == 1
  # Random weights saturate the scores. Heads that ignore their input: proposals are the
  # anchors, boxes the proposals, and (background, person, other) probabilities (0.2, 0.6,
  # 0.2), so every box is detected as both classes.
  params = jax.tree.map(np.zeros_like, loaded.variables['params'])
  params['class_scores']['bias'] = np.log(np.array([1, 3, 1], np.float32))
  for name in ('backbone', 'box_head', 'embedding'):
    params[name] = loaded.variables['params'][name]
  variables = {**loaded.variables, 'params': params}
  detector = FrameDetector(loaded.model, variables, loaded.settings, loaded.input_size,
                           loaded.person_class)
  clip = _clip()
  scorer = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0])
  np.testing.assert_allclose(scorer.person_scores(), [0.6, 0.6], rtol=1e-5)
  found = detector.detect(clip.frames[5])
  assert set(found.labels) == {1, 2}
  labels = clip.labels.__getitem__
  person_boxes, person_scores = scorer.candidates(5, 'person', labels)
  np.testing.assert_array_equal(person_boxes, found.boxes[found.labels == 1])
  assert 0 < len(person_boxes) < len(found.boxes)
  assert person_scores.shape == (len(person_boxes), 2)
  assert len(scorer.candidates(5, 'object', labels)[0]) == len(found.boxes)


def test_wrong_or_missing_reid_checkpoint_is_one_clear_error(checkpoint_dir, tmp_path):
  with pytest.raises(InputError, match='not a re-ID checkpoint'):
    detector_reid.detector_reid_factory(checkpoint_dir)  # an MP2S checkpoint
  with pytest.raises(InputError, match='checkpoint directory not found'):
    detector_reid.detector_reid_factory(tmp_path / 'none')


def test_infer_runs_with_propagation_and_reid_checkpoints(checkpoint_dir, reid_dir, tmp_path):
  clip = _clip()
  for index, frame in enumerate(clip.frames):
    write_jpeg(tmp_path / 'frames' / f'{index:05d}.jpg', frame)
  palette.write_label_png(tmp_path / 'first.png', clip.labels[0])
  infer.main(['--sequence', str(tmp_path / 'frames'), '--first-mask', str(tmp_path / 'first.png'),
              '--output', str(tmp_path / 'out'), '--propagation-checkpoint', str(checkpoint_dir),
              '--reid-checkpoint', str(reid_dir)])
  written = sorted((tmp_path / 'out').glob('*.png'))
  assert len(written) == 14
  assert palette.read_label_png(written[-1]).max() <= 2


def test_reid_checkpoint_is_refused_with_flow_only(reid_dir, tmp_path, capsys):
  with pytest.raises(SystemExit):
    infer.main(['--sequence', str(tmp_path), '--first-mask', str(tmp_path / 'm.png'), '--output',
                str(tmp_path / 'o'), '--reid-checkpoint', str(reid_dir), '--flow-only'])
  assert '--reid-checkpoint cannot be used with --flow-only' in capsys.readouterr().err


def test_frame_detector_fits_frames_into_its_input_size_and_returns_frame_pixels(reid_dir):
  detector = FrameDetector.from_checkpoint(reid_dir)
  config = reid_configs.get_config('smoke')
  assert detector.input_size == (config.data.image_height, config.data.image_width)
  clip = _clip()  # 64x96 frames: fitted at scale 2 into 128x224, padded on the right
  image, scale = fit_frame(clip.frames[5], *detector.input_size)
  assert scale == 2 and not image[:, 192:].any()
  direct = detection.detect(detector.model, detector.variables, image[None], detector.settings)
  boxes, scores, labels, embeddings = detector.detect(clip.frames[5])
  valid = np.asarray(direct['valid'][0])
  # In frame pixels, and inside the frame although the padding may hold detections.
  np.testing.assert_allclose(boxes, np.clip(np.asarray(direct['boxes'][0])[valid] / 2, 0,
                                            [96, 64, 96, 64]))
  np.testing.assert_allclose(scores, np.asarray(direct['scores'][0])[valid])
  np.testing.assert_array_equal(labels, np.asarray(direct['labels'][0])[valid])
  assert embeddings.shape == (len(boxes), config.model.embedding_features)
  templates = np.array([[10, 5, 40, 30], [50, 20, 90, 60]], np.float32)
  embeddings, probabilities = detector.describe(clip.frames[5], templates, [True, False])
  np.testing.assert_allclose(
      embeddings, np.asarray(detection.embed(detector.model, detector.variables, image[None],
                                             templates[None] * 2, np.array([[True, False]]))[0]),
      atol=1e-6)
  np.testing.assert_array_equal(detector.embed(clip.frames[5], templates, [True, False]),
                                embeddings)
  assert probabilities.shape == (2, config.model.num_classes + 1)
  np.testing.assert_allclose(probabilities[0].sum(), 1, rtol=1e-5)
  assert not probabilities[1].any()
  with pytest.raises(InputError, match='RGB'):
    detector.detect(clip.frames[5][..., 0])


def test_non_object_tracks_follow_overlapping_look_alikes_and_end_after_frames_without_one():
  tracks = detector_reid._Tracks([[0, 0, 10, 10]], [[1, 0]], [1], 2)  # pylint: disable=protected-access
  near, far, alike, other = [1, 1, 11, 11], [50, 50, 60, 60], [1, 0], [0, 1]
  none = np.zeros((0, 4), np.float32), np.zeros((0, 2), np.float32)
  # An overlapping box that looks like something else does not continue the track; the one
  # that does, looking like its first box, is ruled out as every object.
  assert tracks.follow(np.array([near, far, near], np.float32),
                       np.array([other, alike, alike], np.float32)).tolist() == [
                           [False, False], [False, False], [True, True]]
  for _ in range(detector_reid.TRACK_PATIENCE):
    assert not tracks.follow(*none).any()
  assert tracks.follow(np.array([near], np.float32),
                       np.array([alike], np.float32)).tolist() == [[True, True]]
  for _ in range(detector_reid.TRACK_PATIENCE + 1):
    tracks.follow(*none)
  assert not tracks.follow(np.array([near], np.float32), np.array([alike], np.float32)).any()


def test_a_track_continues_into_duplicate_boxes_and_takes_the_look_of_its_last_box():
  tracks = detector_reid._Tracks([[0, 0, 10, 10]], [[1, 0]], [0], 2)  # pylint: disable=protected-access
  # Both boxes overlap the track and look like it: both continue it. It moves to the one more
  # like its first look, [1, 0], though the other overlaps it more (the look-alike, not
  # something beside it).
  assert tracks.follow(np.array([[2, 2, 12, 12], [1, 0, 11, 10]], np.float32),
                       np.array([[1, 0], [0.6, 0.8]], np.float32)).tolist() == [[True, True]] * 2
  np.testing.assert_allclose(tracks.boxes, [[2, 2, 12, 12]])
  assert tracks.follow(np.array([[2, 1, 12, 11]], np.float32),
                       np.array([[0.6, 0.8]], np.float32)).tolist() == [[True, True]]
  # [0, 1] looks nothing like the first look, but like the last one, [0.6, 0.8]: it continues
  # the track, and is ruled out only as the object the track imitates.
  assert tracks.follow(np.array([[1, 1, 11, 11]], np.float32),
                       np.array([[0, 1]], np.float32)).tolist() == [[True, False]]


class DriftingDetector(LookAlikeDetector):
  """`LookAlikeDetector` whose later frames show one box, one pixel further along each frame
  from the first box of the background, whose look turns from the non-object's (which
  imitates object 1) to `final_look` over four frames, as where a look-alike crosses an
  object and its detections pass onto the object."""

  def __init__(self, frames, labels, final_look):
    super().__init__(frames, labels)
    self.final_look = np.asarray(final_look, np.float32)

  def detect(self, frame):
    index = next(i for i in range(len(self.frames)) if np.array_equal(frame, self.frames[i]))
    if index == 0:
      return super().detect(frame)
    fraction = min(index / 4, 1.0)
    look = (1 - fraction) * self.non_object + fraction * self.final_look
    return Detections((self.background_box + index)[None], np.full(1, 0.9), np.ones(1, int),
                      (look / np.linalg.norm(look))[None])


@pytest.mark.parametrize('final_look, expected', [
    # It no longer looks like the non-object (cosine 0): it passed onto object 2, and is
    # still a candidate for it.
    ([0, 1, 0], [0, 1]),
    # Nearest object 2, but still like the non-object (cosine 0.58): ruled out as every object.
    ([0.35, 0.85, 0.6], [0, 0]),
    # Like the object the track imitates: never a candidate for it.
    ([1, 0, 0], [0, 0]),
])
def test_a_track_that_passed_onto_another_object_still_scores_for_it(final_look, expected):
  clip = _clip()
  detector = DriftingDetector(clip.frames, clip.labels[0], final_look)
  scorer = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0],
                                      nearest_template=True)
  hidden = lambda frame: clip.labels[0] * (frame == 0)
  np.testing.assert_allclose(scorer.candidates(8, 'object', hidden)[1], [expected], atol=1e-6)


class VanishingDetector(LookAlikeDetector):
  """`LookAlikeDetector` whose later frames show nothing until, in the last but one, a box
  that looks exactly like object 1 where the non-object was."""

  def detect(self, frame):
    index = next(i for i in range(len(self.frames)) if np.array_equal(frame, self.frames[i]))
    if 0 < index < len(self.frames) - 2:
      return Detections(np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0, int),
                        np.zeros((0, 3), np.float32))
    if index == 0:
      return super().detect(frame)
    return Detections(self.background_box[None], np.full(1, 0.9), np.ones(1, int),
                      self.later[:1])


def test_frames_without_detections_end_the_non_object_tracks():
  clip = _clip()
  assert len(clip.frames) - 3 > detector_reid.TRACK_PATIENCE
  detector = VanishingDetector(clip.frames, clip.labels[0])
  scorer = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0],
                                      nearest_template=True)
  hidden = lambda frame: np.zeros_like(clip.labels[0])  # the objects are never seen again
  np.testing.assert_allclose(scorer.candidates(len(clip.frames) - 2, 'object', hidden)[1],
                             [[1, 0]], atol=1e-6)


class TwinDetector(LookAlikeDetector):
  """`LookAlikeDetector` whose later frames show one box: a twin of object 1 beside the first
  box of the background, one pixel further along each frame; from frame 6 on, also a second,
  overlapping box of the twin."""

  def detect(self, frame):
    index = next(i for i in range(len(self.frames)) if np.array_equal(frame, self.frames[i]))
    if index == 0:
      return Detections(self.object_box[None], np.full(1, 0.9), np.ones(1, int),
                        self.templates[:1])
    twin = self.background_box + index
    boxes = np.stack([twin, twin + [0, 1, 0, 1]] if index >= 6 else [twin])
    return Detections(boxes, np.full(len(boxes), 0.9), np.ones(len(boxes), int),
                      np.repeat(self.templates[:1], len(boxes), axis=0))


@pytest.mark.parametrize('object_1_leaves_at', [1, 6])
def test_a_twin_seen_while_its_object_is_elsewhere_never_scores(object_1_leaves_at):
  clip = _clip()
  detector = TwinDetector(clip.frames, clip.labels[0])
  labels = lambda frame: clip.labels[0] * (frame < object_1_leaves_at)
  scorer = detector_reid.DetectorReid(detector, clip.frames, clip.labels[0],
                                      nearest_template=True)
  scores = scorer.candidates(8, 'object', labels)[1]
  if object_1_leaves_at == 1:
    # Never seen beside object 1: the twin (both boxes of it) may be object 1.
    np.testing.assert_allclose(scores, [[1, 0], [1, 0]], atol=1e-6)
  else:
    # Seen beside object 1 in frames 1-5, it is followed, and scores 0 for good.
    np.testing.assert_allclose(scores, np.zeros((2, 2)), atol=1e-6)
