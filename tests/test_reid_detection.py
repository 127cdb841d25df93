"""Re-ID detector inference: post-processing by hand, detect/embed shapes and padding, factory."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import reid as reid_config
from vsreid_jax.errors import InputError
from vsreid_jax.models import detector
from vsreid_jax.reid import detection
from vsreid_jax.reid.model import DetectionSettings, build_detection_settings, build_detector

# Proposal 1 overlaps proposal 0 (IoU 90 / 110); proposal 3 is padding with the best scores.
PROPOSALS = jnp.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]],
                      jnp.float32)
PROPOSAL_MASK = jnp.array([True, True, True, False])
LOGITS = jnp.array([[0, 3, 0], [0, 2, 0], [0, 0.5, 2], [0, 9, 9]], jnp.float32)


def _softmax(x):
  x = np.exp(np.asarray(x))
  return x / x.sum(-1, keepdims=True)


def _postprocess(deltas, **settings):
  return jax.jit(detection.postprocess_detections, static_argnames=('image_size', 'settings'))(
      PROPOSALS, PROPOSAL_MASK, LOGITS, deltas, (40, 40), DetectionSettings(**settings))


def test_per_class_nms_by_hand():
  out = _postprocess(jnp.zeros((4, 3, 4)), max_detections=5)
  p = _softmax(LOGITS)
  # Class 1: proposal 0 suppresses 1; class 2: proposal 0 (p < 0.05) is dropped.
  expected = [(0, 1), (2, 2), (2, 1), (1, 2)]
  np.testing.assert_array_equal(out['valid'], [True] * 4 + [False])
  np.testing.assert_array_equal(out['labels'], [c for _, c in expected] + [0])
  np.testing.assert_array_equal(out['sources'], [s for s, _ in expected] + [0])
  np.testing.assert_allclose(out['scores'], [p[s, c] for s, c in expected] + [0], rtol=1e-6)
  boxes = np.asarray(PROPOSALS)[[s for s, _ in expected]]
  np.testing.assert_allclose(out['boxes'], np.concatenate([boxes, np.zeros((1, 4))]), atol=1e-4)


def test_class_agnostic_nms_and_decoded_clipped_boxes():
  # Class-agnostic regression moves every box right by one width (dx = 1, weighted by 10).
  deltas = jnp.tile(jnp.array([[[10.0, 0, 0, 0]]]), (4, 1, 1))
  out = _postprocess(deltas, max_detections=3, class_agnostic_nms=True)
  np.testing.assert_array_equal(out['valid'], [True, True, False])
  np.testing.assert_array_equal(out['labels'], [1, 2, 0])
  np.testing.assert_allclose(out['boxes'][:2], [[10, 0, 20, 10], [30, 20, 40, 30]], atol=1e-4)
  # A box pushed out of the frame is clipped to zero width, and dropped.
  far = jnp.tile(jnp.array([[[100.0, 0, 0, 0]]]), (4, 1, 1))
  assert not _postprocess(far, max_detections=3)['valid'].any()


@pytest.fixture(name='tiny', scope='module')
def fixture_tiny():
  model = detector.FasterRCNNTiny(num_classes=2)
  frames = np.random.default_rng(0).integers(0, 255, (2, 64, 96, 3), dtype=np.uint8)
  return model, jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 64, 96, 3))), frames


def test_detect_shapes_and_padding(tiny):
  model, variables, frames = tiny
  out = detection.detect(model, variables, frames, DetectionSettings(max_detections=6,
                                                                     score_threshold=0.0))
  assert {k: v.shape for k, v in out.items()} == {
      'boxes': (2, 6, 4), 'scores': (2, 6), 'labels': (2, 6), 'class_probabilities': (2, 6, 3),
      'embeddings': (2, 6, 256), 'valid': (2, 6)}
  valid = np.asarray(out['valid'])
  assert valid.any()
  np.testing.assert_allclose(np.linalg.norm(out['embeddings'], axis=-1)[valid], 1, rtol=1e-5)
  np.testing.assert_allclose(np.sum(out['class_probabilities'], -1)[valid], 1, rtol=1e-5)
  assert np.all(np.diff(np.where(valid, out['scores'], -1), axis=1) <= 0)
  for key in ('boxes', 'scores', 'labels', 'embeddings'):
    assert not np.asarray(out[key])[~valid].any()


def test_embed_given_boxes(tiny):
  model, variables, frames = tiny
  boxes = jnp.array([[[0, 0, 96, 64], [10, 10, 10, 10], [-50, -50, -10, -10]]] * 2, jnp.float32)
  valid = jnp.array([[True, True, True], [True, False, True]])
  embeddings = detection.embed(model, variables, frames, boxes, valid)
  assert embeddings.shape == (2, 3, 256) and np.isfinite(embeddings).all()
  np.testing.assert_allclose(np.linalg.norm(embeddings[0], axis=-1), 1, rtol=1e-5)
  assert not np.asarray(embeddings[1, 1]).any()
  # Boxes are independent: a box's embedding does not depend on its neighbours.
  alone = detection.embed(model, variables, frames, boxes[:, :1], valid[:, :1])
  np.testing.assert_allclose(alone[:, 0], embeddings[:, 0], atol=1e-5)
  assert detection.embed(model, variables, frames, jnp.zeros((2, 0, 4)),
                         jnp.zeros((2, 0), bool)).shape == (2, 0, 256)
  with pytest.raises(InputError, match='boxes must be'):
    detection.embed(model, variables, frames, boxes[0], valid[0])
  with pytest.raises(InputError, match='frames must be'):
    detection.embed(model, variables, frames[..., 0], boxes, valid)


def test_frames_smaller_than_a_feature_cell(tiny):
  model, variables, _ = tiny
  out = detection.detect(model, variables, jnp.full((1, 8, 12, 3), 128.0))
  assert all(np.isfinite(v).all() for v in out.values())


def test_boxes_from_masks_and_reid_scores():
  labels = np.zeros((2, 6, 8), np.uint8)
  labels[0, 1:3, 2:5] = 1
  labels[0, 5, 7] = 3
  labels[0, 0, 0] = 255
  labels[1, 2:6, 0:8] = 2
  boxes, present = detection.boxes_from_masks(labels, 3)
  np.testing.assert_array_equal(present, [[True, False, True], [False, True, False]])
  np.testing.assert_array_equal(boxes, [[[2, 1, 5, 3], [0, 0, 0, 0], [7, 5, 8, 6]],
                                        [[0, 0, 0, 0], [0, 2, 8, 6], [0, 0, 0, 0]]])
  scores = detection.reid_scores(jnp.array([[3.0, 4.0], [0.0, 1.0]]),
                                 jnp.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
  np.testing.assert_allclose(scores, [[0.6, 0.8, 0.0], [0.0, 1.0, 0.0]], atol=1e-6)


def test_build_detector_from_config():
  config = reid_config.get_config('smoke')
  model = build_detector(config.model)
  assert model.post_nms_top_k == config.model.post_nms_top_k and not model.frozen_bn
  assert build_detection_settings(config.detection).max_detections == 8
  for field, value in (('name', 'Mask'), ('num_classes', 0), ('anchor_scales', ()),
                       ('rpn_nms_threshold', 1.5), ('dtype', 'int8')):
    bad = reid_config.get_config('smoke')
    bad.model[field] = value
    with pytest.raises(InputError, match=f'config.model.{field}'):
      build_detector(bad.model)
  bad = reid_config.get_config()
  bad.detection.max_detections = 0
  with pytest.raises(ValueError, match='config.detection.max_detections'):
    build_detection_settings(bad.detection)
  with pytest.raises(ValueError, match='unknown re-ID config'):
    reid_config.get_config('huge')
