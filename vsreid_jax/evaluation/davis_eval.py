"""Semi-supervised DAVIS evaluation of a results folder: per-object scores, global table, CSVs."""

import csv
import dataclasses
import pathlib
import time

import numpy as np

from vsreid_jax.data import palette
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.evaluation import metrics

GLOBAL_COLUMNS = ('J&F-Mean', 'J-Mean', 'J-Recall', 'J-Decay', 'F-Mean', 'F-Recall', 'F-Decay')
PER_SEQUENCE_COLUMNS = ('Sequence', 'J-Mean', 'F-Mean')


@dataclasses.dataclass(frozen=True)
class ObjectScores:
  """Per-frame J and F of one object (first and last frames excluded) and their statistics."""
  sequence: str
  object_id: int
  region: np.ndarray
  boundary: np.ndarray

  @property
  def name(self):
    return f'{self.sequence}_{self.object_id}'

  @property
  def region_statistics(self):
    return metrics.statistics(self.region)

  @property
  def boundary_statistics(self):
    return metrics.statistics(self.boundary)


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
  """Scores of every object of a split."""
  objects: list

  def global_scores(self):
    """The seven global measures, averaged over all objects (J&F = mean of J-Mean and F-Mean)."""
    region = np.array([o.region_statistics for o in self.objects])
    boundary = np.array([o.boundary_statistics for o in self.objects])
    region_mean, boundary_mean = region.mean(axis=0), boundary.mean(axis=0)
    values = [(region_mean[0] + boundary_mean[0]) / 2, *region_mean, *boundary_mean]
    return dict(zip(GLOBAL_COLUMNS, (float(v) for v in values)))

  def per_object_scores(self):
    """Rows (name, J-Mean, F-Mean), one per object."""
    return [(o.name, o.region_statistics[0], o.boundary_statistics[0]) for o in self.objects]


def read_result_masks(results_dir, sequence_name, frame_names, layout):
  """Reads a method's result PNGs for the given frames: uint8 [T, H, W] object ids."""
  masks = []
  for name in frame_names:
    path = pathlib.Path(results_dir) / sequence_name / f'{name}.png'
    labels = palette.read_label_png(path)
    if layout == '2016' and set(np.unique(labels).tolist()) <= {0, 255}:
      labels = (labels == 255).astype(np.uint8)
    masks.append(labels)
  return np.stack(masks)


def evaluate_sequence(sequence, results_dir):
  """Scores every object of one `DavisSequence` against `results_dir/<sequence>/<frame>.png`.

  As the official semi-supervised evaluation: the objects are the ids of the
  first annotation; the first and last annotated frames are excluded; ground
  truth pixels labelled 255 are void; a result without some object scores it
  as empty, a result with an id above the number of objects is an error.

  Returns:
    a list of `ObjectScores`, one per object.
  """
  num_objects = sequence.num_objects
  names = sequence.annotation_names[1:-1]
  if not names:
    raise InputError(
        f'sequence {sequence.name}: needs at least 3 annotated frames (the first and last are '
        f'not scored), has {len(sequence.annotation_paths)}')
  truth = np.stack([sequence.read_annotation(i) for i in range(1, len(sequence.annotation_paths) - 1)])
  void = truth == palette.VOID_LABEL
  results = read_result_masks(results_dir, sequence.name, names, sequence.layout)
  if results.shape != truth.shape:
    raise InputError(
        f'{pathlib.Path(results_dir) / sequence.name}: result masks are '
        f'{results.shape[2]}x{results.shape[1]}, ground truth is {truth.shape[2]}x{truth.shape[1]}')
  largest = int(results.max())
  if largest > num_objects:
    frame = names[int(np.argmax(results.reshape(len(names), -1).max(axis=1)))]
    raise InputError(
        f'{pathlib.Path(results_dir) / sequence.name / frame}.png: object id {largest} but sequence '
        f'{sequence.name} has {num_objects} object(s) in its ground truth')
  scores = []
  for object_id in range(1, num_objects + 1):
    true_masks, predicted_masks = truth == object_id, results == object_id
    scores.append(ObjectScores(
        sequence.name, object_id,
        region=metrics.region_similarity(true_masks, predicted_masks, void),
        boundary=metrics.boundary_f_measure(true_masks, predicted_masks, void)))
  return scores


def evaluate(results_dir, davis_root, split='val', layout='auto', sequences=None, log=print):
  """Evaluates a results folder on a DAVIS split.

  Args:
    results_dir: folder with `<sequence>/<frame>.png` result label maps.
    davis_root: DAVIS root (2017 or 2016 layout).
    split: split name ('val', 'train', ...).
    layout: '2017', '2016' or 'auto'.
    sequences: optional subset of sequence names; default all of the split.
    log: callable for progress lines (None for silence).

  Returns:
    an `EvaluationReport`.
  """
  results_dir = pathlib.Path(results_dir)
  if not results_dir.is_dir():
    raise InputError(f'{results_dir}: results folder not found')
  dataset = DavisDataset(davis_root, split, layout)
  names = dataset.sequence_names if sequences is None else list(sequences)
  objects = []
  for index, name in enumerate(names, 1):
    start = time.perf_counter()
    objects.extend(evaluate_sequence(dataset.sequence(name), results_dir))
    if log:
      log(f'[{index}/{len(names)}] {name}: {time.perf_counter() - start:.1f} s')
  return EvaluationReport(objects)


def write_csvs(report, output_dir, split):
  """Writes `global_results-<split>.csv` and `per-sequence_results-<split>.csv` (values as %.3f)."""
  output_dir = pathlib.Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  global_path = output_dir / f'global_results-{split}.csv'
  per_sequence_path = output_dir / f'per-sequence_results-{split}.csv'
  with open(global_path, 'w', newline='') as file:
    writer = csv.writer(file)
    writer.writerow(GLOBAL_COLUMNS)
    writer.writerow([f'{value:.3f}' for value in report.global_scores().values()])
  with open(per_sequence_path, 'w', newline='') as file:
    writer = csv.writer(file)
    writer.writerow(PER_SEQUENCE_COLUMNS)
    for name, region_mean, boundary_mean in report.per_object_scores():
      writer.writerow([name, f'{region_mean:.3f}', f'{boundary_mean:.3f}'])
  return global_path, per_sequence_path


def format_report(report):
  """The global and per-object tables as aligned text."""
  scores = report.global_scores()
  widths = [max(len(c), 8) for c in GLOBAL_COLUMNS]
  lines = ['  '.join(c.rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths)),
           '  '.join(f'{v:.3f}'.rjust(w) for v, w in zip(scores.values(), widths)), '']
  rows = report.per_object_scores()
  name_width = max([len('Sequence')] + [len(row[0]) for row in rows])
  lines.append(f'{"Sequence".ljust(name_width)}  {"J-Mean":>7}  {"F-Mean":>7}')
  lines.extend(f'{name.ljust(name_width)}  {j:7.3f}  {f:7.3f}' for name, j, f in rows)
  return '\n'.join(lines)
