"""Segmenting every sequence of a DAVIS split: shared among processes, resumable, timed, scored."""

import dataclasses
import json
import os
import pathlib
import time

import tqdm

from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.evaluation import davis_eval
from vsreid_jax.inference import driver

# Written into a sequence's output folder after its last PNG: its presence means the folder is complete.
DONE_MARKER = '.done'


@dataclasses.dataclass(frozen=True)
class DatasetRun:
  """What `segment_dataset` did in this process.

  Attributes:
    segmented: the sequences segmented by this call.
    skipped: this process's sequences that an earlier run had finished.
    timings: seconds per stage and 'frames', summed over `segmented`.
    report: the `EvaluationReport` when this call evaluated, else None.
  """
  segmented: tuple[str, ...]
  skipped: tuple[str, ...]
  timings: dict
  report: davis_eval.EvaluationReport | None = None

  def summary(self):
    """One line: sequences segmented and skipped, and the summed timings."""
    done = f'{len(self.segmented)} sequences segmented, {len(self.skipped)} skipped (finished earlier)'
    return f'{done}; {driver.format_timings(self.timings)}' if self.segmented else done


def current_process(process_index=None, process_count=None):
  """(index, count) of this process among those sharing the work; None asks JAX.

  Raises:
    InputError: the index does not lie in 0..count - 1.
  """
  if process_index is None or process_count is None:
    # Imported only here: flow-only runs with explicit indices need no JAX.
    import jax  # pylint: disable=g-import-not-at-top
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
  if process_count < 1 or not 0 <= process_index < process_count:
    raise InputError(f'process index {process_index} must lie in 0..{process_count - 1} for '
                     f'{process_count} processes')
  return process_index, process_count


def is_finished(sequence, output_dir):
  """Whether `output_dir/<sequence>` holds the done marker and a PNG for every frame."""
  folder = pathlib.Path(output_dir) / sequence.name
  return ((folder / DONE_MARKER).is_file()
          and all((folder / f'{name}.png').is_file() for name in sequence.frames.names))


def _mark_finished(folder, timings):
  partial = folder / f'{DONE_MARKER}.partial'
  partial.write_text(json.dumps(timings, indent=1) + '\n')
  os.replace(partial, folder / DONE_MARKER)


def _per_sequence(folder, name):
  return None if folder is None else pathlib.Path(folder) / name


def segment_dataset(davis_root, split, output_dir, segmenter=None, *, layout='auto',
                    flow_preset='medium', flow_dir=None, flow_cache_dir=None, overlay=False,
                    process_index=None, process_count=None, evaluate=False, show_progress=True,
                    log=tqdm.tqdm.write):
  """Segments this process's share of a DAVIS split into `output_dir/<sequence>/<frame>.png`.

  Process i of n takes sequences i, i + n, ... of the split. A sequence whose
  folder is complete (`is_finished`) is skipped, so an interrupted run resumes
  where it stopped; PNGs are written atomically and the done marker last.

  Args:
    davis_root: DAVIS folder, 2017 or 2016 layout.
    split: split name ('val', 'train', ...).
    output_dir: results folder; also receives `<sequence>.mp4` overlays and the
      evaluation CSVs.
    segmenter: `VSReID`, `FinetunedVSReID`, or None for flow-only propagation.
    layout: '2017', '2016' or 'auto'.
    flow_preset: OpenCV DIS preset.
    flow_dir: optional folder of pre-computed flow, `<flow_dir>/<sequence>/<frame>.flo`.
    flow_cache_dir: optional folder where DIS flow is kept, per sequence, for reruns.
    overlay: also write `<sequence>.mp4`, the masks blended over the frames.
    process_index: this process's index; None takes `jax.process_index()`.
    process_count: the number of processes; None takes `jax.process_count()`.
    evaluate: in process 0, after its share, score the finished sequences of the
      split (the DAVIS measures) and write the CSVs.
    show_progress: progress bars on stderr.
    log: callable for per-sequence lines.

  Returns:
    a `DatasetRun`.

  Raises:
    InputError: a bad DAVIS folder, split, sequence or process index.
  """
  output_dir = pathlib.Path(output_dir)
  dataset = DavisDataset(davis_root, split, layout)
  index, count = current_process(process_index, process_count)
  names = dataset.sequence_names[index::count]
  if count > 1:
    log(f'process {index} of {count}: {len(names)} of the {len(dataset)} sequences of {split}')
  segmented, skipped, totals = [], [], {}
  for name in tqdm.tqdm(names, desc=split, unit='sequence', disable=not show_progress):
    start = time.perf_counter()
    sequence = dataset.sequence(name)
    if is_finished(sequence, output_dir):
      skipped.append(name)
      log(f'{name}: skipped, finished by an earlier run')
      continue
    flows = driver.make_flow_source(sequence.frames, flow_preset, _per_sequence(flow_dir, name),
                                    _per_sequence(flow_cache_dir, name))
    timings = driver.segment_and_write(
        sequence.frames, sequence.first_mask(), flows, output_dir / name, segmenter,
        output_dir / f'{name}.mp4' if overlay else None, name, show_progress, log,
        {'read': time.perf_counter() - start})
    _mark_finished(output_dir / name, timings)
    log(f'{name}: {driver.format_timings(timings)}')
    for stage, value in timings.items():
      totals[stage] = totals.get(stage, 0) + value
    segmented.append(name)
  report = evaluate_finished(dataset, output_dir, log) if evaluate and index == 0 else None
  return DatasetRun(tuple(segmented), tuple(skipped), totals, report)


def evaluate_finished(dataset, output_dir, log=print):
  """Scores the finished sequences of `dataset` in `output_dir` and writes the CSVs there.

  Sequences that other processes have not finished yet are left out, with one line that says so.

  Returns:
    the `EvaluationReport`, or None when no sequence is finished.
  """
  finished = [name for name in dataset.sequence_names
              if is_finished(dataset.sequence(name), output_dir)]
  if len(finished) < len(dataset):
    log(f'evaluating {len(finished)} of {len(dataset)} sequences; the others are not finished yet '
        '(evaluate again once every process is done)')
  if not finished:
    return None
  report = davis_eval.evaluate(output_dir, dataset.root, dataset.split, dataset.layout, finished,
                               log=None)
  davis_eval.write_csvs(report, output_dir, dataset.split)
  return report
