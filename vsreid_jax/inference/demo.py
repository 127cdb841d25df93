"""The demo: segment shipped or generated clips, write PNGs, and score them against the ground truth."""

import pathlib

from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.evaluation import davis_eval
from vsreid_jax.inference.driver import format_timings, segment_folder

DEMO_SPLIT = 'demo'
DEMO_SEQUENCE = 'synthetic-occlusion'


def run_demo(output_dir, seed=0, log=print):
  """Generates a synthetic clip with a long occlusion, segments it and evaluates it.

  Args:
    output_dir: receives `data/` (the clip in DAVIS layout), `results/` (palette
      PNGs) and the evaluation CSVs.
    seed: seed of the synthetic clip.
    log: callable for progress and result lines.

  Returns:
    the `EvaluationReport`.
  """
  output_dir = pathlib.Path(output_dir)
  data_root, results_dir = output_dir / 'data', output_dir / 'results'
  config = synthetic.SyntheticVideoConfig(num_frames=48, height=240, width=427, seed=seed)
  clip = synthetic.generate_video(config)
  synthetic.write_davis(data_root, {DEMO_SEQUENCE: clip}, DEMO_SPLIT)
  hidden = next(span for span in clip.events if span.object_id == clip.hidden_object_id)
  log(f'{DEMO_SEQUENCE}: {config.num_frames} frames, {config.num_objects} objects; object '
      f'{hidden.object_id} is hidden in frames {hidden.first_frame}-{hidden.end_frame - 1} ({clip.hide_by})')
  for sequence in DavisDataset(data_root, DEMO_SPLIT):
    timings = segment_folder(sequence.frames.paths[0].parent, sequence.annotation_paths[0],
                             results_dir / sequence.name)
    log(f'{sequence.name}: {format_timings(timings)}')
  report = davis_eval.evaluate(results_dir, data_root, DEMO_SPLIT, log=None)
  davis_eval.write_csvs(report, output_dir, DEMO_SPLIT)
  log('Propagation by optical flow alone (the network-free baseline):')
  log(davis_eval.format_report(report))
  log(f'Masks in {results_dir}, scores in {output_dir}')
  return report
