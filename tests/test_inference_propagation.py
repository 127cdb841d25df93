"""Parts of the propagation step: official boxes, the merge, patches, the bucketed predictor."""

import importlib.util
import pathlib
import subprocess

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_inference_algorithm import ZeroFlow, coded_frames, make_config
from vsreid_jax.inference.boxes import EMPTY_BOX, box_overlap, object_boxes
from vsreid_jax.inference.object_store import ObjectProbabilities
from vsreid_jax.inference.patches import predict_in_boxes
from vsreid_jax.inference.predictor import BucketedPredictor
from vsreid_jax.inference.vsreid import segment_video

OFFICIAL_REPO = pathlib.Path('/work/.mirror/lxx1991+VS-ReID/repo')


def test_object_boxes_by_hand():
  labels = np.zeros((48, 64), np.uint8)
  labels[5:15, 20:30] = 1  # 10 x 10: 1.5 px more per side, truncated
  labels[0:4, 0:10] = 2  # clipped at the top-left corner
  labels[47, 63] = 3  # one pixel in the bottom-right corner
  boxes = object_boxes(labels, 4, enlarge=0.15)
  np.testing.assert_array_equal(boxes,
                                [[18, 3, 31, 16], [0, 0, 11, 4], [62, 46, 64, 48], EMPTY_BOX])
  np.testing.assert_array_equal(object_boxes(labels, 2), [[20, 5, 30, 15], [0, 0, 10, 4]])


def test_robust_box_ignores_stray_pixels():
  labels = np.zeros((48, 64), np.uint8)
  labels[5:25, 5:25] = 1
  labels[40, 60] = labels[45, 2] = 1  # 2 of 402 pixels: outside the 1%-99% range
  np.testing.assert_array_equal(object_boxes(labels, 1, quantile=0.99), [[5, 5, 25, 25]])
  np.testing.assert_array_equal(object_boxes(labels, 1), [[2, 5, 61, 46]])


def test_box_overlap_is_the_official_formula():
  assert box_overlap((0, 0, 10, 10), (0, 0, 10, 10)) == 121 / 100  # max corners count as inside
  assert box_overlap((0, 0, 10, 10), (10, 0, 20, 10)) == 11 / 200  # touching boxes overlap
  assert box_overlap((0, 0, 10, 10), (11, 0, 20, 10)) == 0.0


def _official_bbox_module(tmp_path):
  if not OFFICIAL_REPO.is_dir():
    pytest.skip(f'official VS-ReID repository not found at {OFFICIAL_REPO}')
  source = subprocess.run(['git', '-C', str(OFFICIAL_REPO), 'show', 'HEAD:core/utils/bbox.py'],
                          capture_output=True, text=True, check=True).stdout
  path = tmp_path / 'official_bbox.py'
  path.write_text(source)
  spec = importlib.util.spec_from_file_location('official_bbox', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_boxes_overlap_and_merge_match_the_official_code(tmp_path):
  official = _official_bbox_module(tmp_path)
  rng = np.random.default_rng(0)
  for _ in range(20):
    height, width, count = rng.integers(8, 40), rng.integers(8, 40), rng.integers(1, 5)
    labels = rng.integers(0, count + 1, (height, width)) * (rng.random((height, width)) < 0.3)
    for enlarge, quantile in ((False, 1.0), (True, 1.0), (False, 0.99)):
      np.testing.assert_array_equal(object_boxes(labels, count, 0.15 if enlarge else 0.0, quantile),
                                    official.gen_bbox(labels, range(count), enlarge, quantile))
    box_a, box_b = rng.integers(0, 30, 4), rng.integers(0, 30, 4)
    box_a[2:] += box_a[:2] + 1
    box_b[2:] += box_b[:2] + 1
    assert box_overlap(box_a, box_b) == official.IoU(box_a, box_b)
    store = ObjectProbabilities(1, height, width, count, np.float32)
    foreground = rng.random((count, height, width)).astype(np.float32)
    for index in range(count):
      store.set(0, index, (0, 0, width, height), foreground[index])
    prob = np.stack([1 - foreground, foreground], axis=-1).transpose(1, 2, 0, 3)
    prob = prob.reshape(height, width, -1)
    np.testing.assert_allclose(store.merged(0), official.combine_prob(prob), rtol=1e-5, atol=1e-6)


def test_merge_by_hand():
  store = ObjectProbabilities(1, 4, 4, 2)
  store.set(0, 0, (0, 0, 2, 1), [[0.6, 0.6]])
  store.set(0, 1, (1, 0, 3, 1), [[0.3, 0.4]])
  merged = store.merged(0)
  # Pixel (0, 1): background 0.4 x 0.7 = 0.28, foregrounds 0.6 and 0.3, normalised by 1.18.
  np.testing.assert_allclose(merged[0, 1], np.array([0.28, 0.6, 0.3]) / 1.18, rtol=1e-3)
  np.testing.assert_allclose(merged[0, 2], [0.6, 0, 0.4], rtol=1e-3)  # object 2 alone below 0.5
  np.testing.assert_array_equal(merged[3, 3], [1, 0, 0])
  np.testing.assert_array_equal(store.labels(0)[0], [1, 1, 0, 0])
  np.testing.assert_array_equal(store.appears(), [[True, False]])  # object 2 has no pixel
  store.clear_where(0, store.foreground(0, 1) > 0.25, keep=1)
  np.testing.assert_array_equal(store.foreground(0, 0)[0], np.float16([0.6, 0, 0, 0]))
  np.testing.assert_array_equal(store.foreground(0, 1)[0], np.float16([0, 0.3, 0.4, 0]))


def test_version_changes_with_every_change_of_its_frame_only():
  store = ObjectProbabilities(2, 4, 4, 1)
  versions = [store.version(0)]
  for change in (lambda: store.set(0, 0, (0, 0, 2, 2), np.ones((2, 2))),
                 lambda: store.clear_where(0, np.ones((4, 4), bool)),
                 lambda: store.clear(0, 0)):
    change()
    versions.append(store.version(0))
  assert len(set(versions)) == 4
  assert store.version(1) == 0
  store.merged(0), store.labels(0), store.appears()
  assert store.version(0) == versions[-1]  # reading changes nothing


def test_boxes_and_appears_follow_every_change():
  store = ObjectProbabilities(2, 6, 6, 2)
  np.testing.assert_array_equal(store.appears(), np.zeros((2, 2), bool))
  store.set(1, 1, (1, 2, 4, 5), np.ones((3, 3)))
  np.testing.assert_array_equal(store.boxes(1), [EMPTY_BOX, (1, 2, 4, 5)])
  np.testing.assert_array_equal(store.appears(), [[False, False], [False, True]])
  np.testing.assert_array_equal(store.appears_in(1), [False, True])
  store.clear_where(1, np.arange(36).reshape(6, 6) % 6 >= 3)  # columns 3-5
  np.testing.assert_array_equal(store.boxes(1), [EMPTY_BOX, (1, 2, 3, 5)])
  store.clear(1, 1)
  np.testing.assert_array_equal(store.appears(), np.zeros((2, 2), bool))


class _Recorder:
  patch_size = 9

  def __init__(self):
    self.inputs = None

  def __call__(self, images, flows, guidance):
    self.inputs = images, flows, guidance
    return guidance


def test_patches_keep_flow_in_pixels_and_paste_back_into_the_box():
  image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8)
  flow = np.broadcast_to(np.float32([3.0, -2.0]), (20, 30, 2))
  guidance = [np.ones((4, 6), np.float32), np.eye(10, dtype=np.float32)]
  recorder = _Recorder()
  masks = predict_in_boxes(recorder, image, flow, [(2, 3, 8, 7), (10, 0, 30, 20)], guidance)
  images, flows, patches = recorder.inputs
  assert images.shape == (2, 9, 9, 3) and patches.shape == (2, 9, 9)
  np.testing.assert_allclose(flows, np.broadcast_to(np.float32([3.0, -2.0]), (2, 9, 9, 2)))
  np.testing.assert_allclose(images[0], cv2.resize(image[3:7, 2:8].astype(np.float32), (9, 9)))
  assert masks[0].shape == (4, 6) and masks[1].shape == (20, 20)
  np.testing.assert_allclose(masks[0], 1.0)


def _counting_logits(traces):
  """A jitted logits function that records each trace's batch size."""

  @jax.jit
  def logits_fn(image, flow, guidance):
    traces.append(image.shape[0])
    foreground = 4 * guidance[..., 0] - 2 + 0.1 * flow[..., 0] + 0 * image[..., 0]
    return jnp.stack([jnp.zeros_like(foreground), foreground], axis=-1)

  return logits_fn


def test_flip_averages_with_the_mirrored_patch_and_negated_flow():
  rng = np.random.default_rng(1)
  guidance = rng.random((3, 7, 7)).astype(np.float32)
  flows = rng.normal(0, 5, (3, 7, 7, 2)).astype(np.float32)
  images = rng.random((3, 7, 7, 3)).astype(np.float32)
  sigmoid = lambda x: 1 / (1 + np.exp(-x))
  plain = sigmoid(4 * guidance - 2 + 0.1 * flows[..., 0])
  mirrored = sigmoid(4 * guidance - 2 - 0.1 * flows[..., 0])
  for flip, expected in ((False, plain), (True, (plain + mirrored) / 2)):
    predictor = BucketedPredictor(_counting_logits([]), 7, flip=flip, buckets=(2, 4))
    np.testing.assert_allclose(predictor(images, flows, guidance), expected, rtol=1e-5, atol=1e-6)
    # Padding and batch neighbours do not change a patch's prediction.
    np.testing.assert_allclose(predictor(images[1:2], flows[1:2], guidance[1:2]), expected[1:2],
                               rtol=1e-5, atol=1e-6)


def test_network_compiles_once_per_bucket_across_frames_and_object_counts():
  traces = []
  logits_fn = _counting_logits(traces)
  predictor = BucketedPredictor(logits_fn, 17, buckets=(1, 2, 4))
  for num_objects in (1, 2, 3, 4, 6):
    labels = np.zeros((4, 40, 80), np.uint8)
    for index in range(num_objects):
      labels[:, 2 + 6 * (index % 2):8 + 6 * (index % 2), 2 + 12 * index:10 + 12 * index] = index + 1
    segment_video(coded_frames(labels), labels[0], predictor, ZeroFlow(*labels.shape),
                  make_config())
  # Flip doubles each bucket; 3 objects pad to 4, 6 run as 4 + 2.
  assert sorted(traces) == [2, 4, 8]
  assert logits_fn._cache_size() == 3


def test_bad_buckets_are_rejected():
  with pytest.raises(ValueError, match='buckets'):
    BucketedPredictor(_counting_logits([]), 9, buckets=(4, 2))
