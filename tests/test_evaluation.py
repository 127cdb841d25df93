"""J and F against hand-computed cases and a brute-force reference; the DAVIS evaluation end to end."""

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

from conftest import make_davis2016, make_davis2017, moving_squares
from vsreid_jax.data import palette
from vsreid_jax.errors import InputError
from vsreid_jax.evaluation import davis_eval, metrics, occlusion
from vsreid_jax.data.synthetic import HiddenSpan


def reference_boundary(mask):
  """Boundary pixels by the official rule, one pixel at a time."""
  height, width = mask.shape
  boundary = np.zeros_like(mask, bool)
  for y in range(height):
    for x in range(width):
      east = mask[y, x + 1] if x + 1 < width else False
      south = mask[y + 1, x] if y + 1 < height else False
      south_east = mask[y + 1, x + 1] if x + 1 < width and y + 1 < height else False
      if y == height - 1 and x == width - 1:
        boundary[y, x] = False
      elif y == height - 1:
        boundary[y, x] = mask[y, x] != east
      elif x == width - 1:
        boundary[y, x] = mask[y, x] != south
      else:
        boundary[y, x] = mask[y, x] != east or mask[y, x] != south or mask[y, x] != south_east
  return boundary


def reference_f(true_mask, predicted_mask):
  """F by explicit nearest-boundary search within a Euclidean radius."""
  radius = math.ceil(0.008 * math.sqrt(true_mask.shape[0] ** 2 + true_mask.shape[1] ** 2))
  true_points = np.argwhere(reference_boundary(true_mask))
  predicted_points = np.argwhere(reference_boundary(predicted_mask))

  def matched(points, others):
    return sum(any((p - o) @ (p - o) <= radius ** 2 for o in others) for p in points)

  if len(predicted_points) == 0 and len(true_points) == 0:
    return 1.0
  if len(predicted_points) == 0:
    return 0.0  # precision 1, recall 0
  if len(true_points) == 0:
    return 0.0  # precision 0, recall 1
  precision = matched(predicted_points, true_points) / len(predicted_points)
  recall = matched(true_points, predicted_points) / len(true_points)
  return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def test_region_similarity_hand_computed():
  truth = np.zeros((4, 6), bool)
  truth[1:3, 1:3] = True
  predicted = np.zeros((4, 6), bool)
  predicted[1:3, 1:4] = True
  assert metrics.region_similarity(truth, predicted) == pytest.approx(4 / 6)
  empty = np.zeros_like(truth)
  assert metrics.region_similarity(empty, empty) == 1.0
  assert metrics.region_similarity(truth, empty) == 0.0
  assert metrics.region_similarity(empty, predicted) == 0.0
  void = np.zeros_like(truth)
  void[:, 3] = True  # the extra predicted column is ignored
  assert metrics.region_similarity(truth, predicted, void) == 1.0
  stacked = metrics.region_similarity(np.stack([truth, empty]), np.stack([predicted, empty]))
  np.testing.assert_allclose(stacked, [4 / 6, 1.0])


def test_boundary_map_hand_computed():
  single = np.zeros((4, 4), bool)
  single[1, 1] = True
  expected = np.zeros((4, 4), bool)
  expected[0:2, 0:2] = True  # the boundary sits half a pixel towards the origin
  np.testing.assert_array_equal(metrics.boundary_map(single), expected)
  # A mask filling the image has no boundary: image borders are not contours.
  assert not metrics.boundary_map(np.ones((5, 7), bool)).any()
  bottom_right = np.zeros((3, 3), bool)
  bottom_right[2, 2] = True
  expected = np.zeros((3, 3), bool)
  expected[1, 1] = expected[1, 2] = expected[2, 1] = True
  np.testing.assert_array_equal(metrics.boundary_map(bottom_right), expected)


@pytest.mark.parametrize('seed', range(4))
def test_boundary_map_and_f_match_brute_force_reference(seed):
  rng = np.random.default_rng(seed)
  shape = (37, 53)
  truth = rng.random(shape) < 0.3
  truth[10:25, 10:30] = True
  predicted = np.roll(truth, rng.integers(-3, 4, 2), axis=(0, 1)) ^ (rng.random(shape) < 0.05)
  np.testing.assert_array_equal(metrics.boundary_map(truth), reference_boundary(truth))
  assert metrics.boundary_f_measure(truth, predicted) == pytest.approx(reference_f(truth, predicted), abs=1e-12)


def test_boundary_f_edge_cases():
  square = np.zeros((40, 40), bool)
  square[10:20, 10:20] = True
  empty = np.zeros_like(square)
  assert metrics.boundary_f_measure(empty, empty) == 1.0
  assert metrics.boundary_f_measure(square, empty) == 0.0  # precision 1, recall 0
  assert metrics.boundary_f_measure(empty, square) == 0.0  # precision 0, recall 1
  assert metrics.boundary_f_measure(square, square) == 1.0
  # Tolerance ceil(0.008 * hypot(40, 40)) = 1 px: a 1-px shift still matches, a 3-px one
  # matches nowhere on the moving sides.
  assert metrics.boundary_tolerance(40, 40) == 1
  assert metrics.boundary_f_measure(square, np.roll(square, 1, axis=1)) == 1.0
  far = np.zeros_like(square)
  far[25:35, 25:35] = True
  assert metrics.boundary_f_measure(square, far) == 0.0  # both present, nothing matches
  assert metrics.boundary_tolerance(480, 854) == 8


def test_disk_matches_skimage():
  morphology = pytest.importorskip('skimage.morphology')
  for radius in (1, 2, 5, 8, 13):
    np.testing.assert_array_equal(metrics.disk(radius), morphology.disk(radius).astype(np.uint8))


def test_boundary_f_vectorised_equals_per_frame():
  labels = moving_squares(num_frames=5, height=50, width=70)
  truth, predicted = labels == 1, np.roll(labels == 1, 3, axis=2)
  batched = metrics.boundary_f_measure(truth, predicted)
  one_by_one = [metrics.boundary_f_measure(t, p) for t, p in zip(truth, predicted)]
  np.testing.assert_allclose(batched, one_by_one)
  assert batched.shape == (5,)


def test_statistics_hand_computed():
  values = np.array([1, 1, 0.8, 0.6, 0.4, 0.4, 0.2, 0.0])
  mean, recall, decay = metrics.statistics(values)
  assert mean == pytest.approx(0.55)
  assert recall == pytest.approx(0.5)
  # Bin edges round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7]: 4.5 rounds up.
  assert decay == pytest.approx((1 + 1 + 0.8) / 3 - (0.4 + 0.2 + 0.0) / 3)
  assert metrics.statistics(np.array([0.7])) == pytest.approx((0.7, 1.0, 0.0))
  long = np.linspace(1, 0, 300)  # longer than the official code's uint8 bin edges allow
  assert metrics.statistics(long)[2] == pytest.approx(np.mean(long[:76]) - np.mean(long[224:]))
  with pytest.raises(ValueError):
    metrics.statistics(np.array([]))


def _results_from(labels, root, name):
  for t, frame_labels in enumerate(labels):
    palette.write_label_png(root / name / f'{t:05d}.png', frame_labels)


def test_evaluate_davis2017_known_scores_and_csv(tmp_path):
  truth = moving_squares(num_frames=6)
  make_davis2017(tmp_path / 'davis', {'squares': truth})
  predicted = truth.copy()
  predicted[predicted == 2] = 0  # object 2 missed everywhere
  _results_from(predicted, tmp_path / 'results', 'squares')
  report = davis_eval.evaluate(tmp_path / 'results', tmp_path / 'davis', 'val', log=None)
  assert [o.name for o in report.objects] == ['squares_1', 'squares_2']
  assert len(report.objects[0].region) == 4  # first and last frames excluded
  np.testing.assert_allclose(report.objects[0].region, 1.0)
  np.testing.assert_allclose(report.objects[1].region, 0.0)
  np.testing.assert_allclose(report.objects[1].boundary, 0.0)
  scores = report.global_scores()
  assert scores['J-Mean'] == pytest.approx(0.5)
  assert scores['J&F-Mean'] == pytest.approx(0.5)
  assert scores['J-Recall'] == pytest.approx(0.5)
  global_path, per_sequence_path = davis_eval.write_csvs(report, tmp_path / 'out', 'val')
  assert global_path.name == 'global_results-val.csv'
  rows = list(csv.reader(open(global_path)))
  assert rows == [list(davis_eval.GLOBAL_COLUMNS), ['0.500', '0.500', '0.500', '0.000', '0.500', '0.500', '0.000']]
  rows = list(csv.reader(open(per_sequence_path)))
  assert rows == [['Sequence', 'J-Mean', 'F-Mean'], ['squares_1', '1.000', '1.000'], ['squares_2', '0.000', '0.000']]


def test_void_pixels_are_ignored(tmp_path):
  truth = moving_squares(num_frames=4, num_objects=1)
  truth[:, 30:35, :] = palette.VOID_LABEL
  make_davis2017(tmp_path / 'davis', {'void': truth})
  predicted = truth.copy()
  predicted[truth == palette.VOID_LABEL] = 1  # predictions on void pixels cost nothing
  _results_from(predicted, tmp_path / 'results', 'void')
  report = davis_eval.evaluate(tmp_path / 'results', tmp_path / 'davis', log=None)
  np.testing.assert_allclose(report.objects[0].region, 1.0)
  np.testing.assert_allclose(report.objects[0].boundary, 1.0)


def test_evaluate_davis2016_layout(tmp_path):
  masks = moving_squares(num_frames=5, num_objects=1)
  make_davis2016(tmp_path / 'davis', {'square': masks})
  results = tmp_path / 'results'
  _results_from(masks, results, 'square')
  report = davis_eval.evaluate(results, tmp_path / 'davis', 'val', log=None)
  assert report.global_scores()['J&F-Mean'] == 1.0
  # Binary 0/255 result PNGs are read as object 1 too.
  from PIL import Image
  for t, mask in enumerate(masks):
    Image.fromarray(mask * 255, mode='L').save(results / 'square' / f'{t:05d}.png')
  report = davis_eval.evaluate(results, tmp_path / 'davis', 'val', log=None)
  assert report.global_scores()['J&F-Mean'] == 1.0


def test_result_id_above_ground_truth_is_an_error(tmp_path):
  truth = moving_squares(num_frames=4, num_objects=1)
  make_davis2017(tmp_path / 'davis', {'one': truth})
  predicted = truth.copy()
  predicted[2, 0, 0] = 3
  _results_from(predicted, tmp_path / 'results', 'one')
  with pytest.raises(InputError, match=r'00002\.png: object id 3 .* 1 object'):
    davis_eval.evaluate(tmp_path / 'results', tmp_path / 'davis', log=None)


def test_missing_and_mis_sized_results_are_errors(tmp_path):
  truth = moving_squares(num_frames=4, num_objects=1)
  make_davis2017(tmp_path / 'davis', {'one': truth})
  with pytest.raises(InputError, match='results folder not found'):
    davis_eval.evaluate(tmp_path / 'nothing', tmp_path / 'davis', log=None)
  _results_from(truth[:2], tmp_path / 'results', 'one')
  with pytest.raises(InputError, match=r'00002\.png: file not found'):
    davis_eval.evaluate(tmp_path / 'results', tmp_path / 'davis', log=None)
  _results_from(truth[:, :20], tmp_path / 'results', 'one')
  with pytest.raises(InputError, match='result masks are 60x20, ground truth is 60x40'):
    davis_eval.evaluate(tmp_path / 'results', tmp_path / 'davis', log=None)


def test_cli_prints_table_and_reports_errors_in_one_line(tmp_path):
  truth = moving_squares(num_frames=5)
  make_davis2017(tmp_path / 'davis', {'squares': truth})
  _results_from(truth, tmp_path / 'results', 'squares')
  command = [sys.executable, '-m', 'vsreid_jax.evaluate', '--results', str(tmp_path / 'results'),
             '--davis-root', str(tmp_path / 'davis'), '--split', 'val']
  done = subprocess.run(command, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr
  assert 'J&F-Mean' in done.stdout and 'squares_2' in done.stdout
  assert (tmp_path / 'results' / 'per-sequence_results-val.csv').is_file()
  done = subprocess.run(command[:-1] + ['test-dev'], capture_output=True, text=True)
  assert done.returncode == 2
  assert done.stderr.count('\n') == 1 and 'split file not found' in done.stderr
  assert 'Traceback' not in done.stderr


def test_shared_davis2016_ground_truth_scores_one_and_erosion_less(shared_davis2016, tmp_path):
  import cv2
  from vsreid_jax.data.davis import DavisDataset
  sequence = DavisDataset(shared_davis2016, 'val').sequence('blackswan')
  for index, path in enumerate(sequence.annotation_paths):
    mask = sequence.read_annotation(index)
    palette.write_label_png(tmp_path / 'exact' / 'blackswan' / f'{path.stem}.png', mask)
    eroded = cv2.erode(mask, np.ones((9, 9), np.uint8))
    palette.write_label_png(tmp_path / 'eroded' / 'blackswan' / f'{path.stem}.png', eroded)
  exact = davis_eval.evaluate(tmp_path / 'exact', shared_davis2016, sequences=['blackswan'], log=None)
  assert exact.global_scores()['J&F-Mean'] == 1.0
  eroded = davis_eval.evaluate(tmp_path / 'eroded', shared_davis2016, sequences=['blackswan'], log=None)
  assert 0.3 < eroded.global_scores()['J-Mean'] < 0.99
  assert eroded.global_scores()['F-Mean'] < 1.0


def test_reappearance_scores_cover_the_frames_until_the_object_hides_again():
  truth = np.zeros((8, 4, 4), np.uint8)
  truth[[0, 3, 4, 7], :2, :2] = 1  # object 1: hidden in 1-2, back in 3-4, hidden again in 5-6
  predicted = truth.copy()
  predicted[4] = 0  # lost in frame 4: J 1 in frame 3, 0 in frame 4
  spans = (HiddenSpan(1, 1, 3, 'occluded', None, None), HiddenSpan(1, 5, 7, 'occluded', None, None),
           HiddenSpan(1, 7, 8, 'left_frame', None, None))
  scores = occlusion.reappearance_scores(predicted, truth, spans)
  assert [(span.first_frame, score) for span, score in scores] == [(1, 0.5), (5, 1.0)]
  assert occlusion.count_found_again(scores) == (2, 2)
  assert occlusion.count_found_again(scores, threshold=0.6) == (1, 2)
  with pytest.raises(ValueError, match='differ'):
    occlusion.reappearance_scores(predicted[:3], truth, spans)
