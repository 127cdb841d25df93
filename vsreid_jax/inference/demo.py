"""The demo: segment a real DAVIS clip and a synthetic clip with a long occlusion, and score them.

The real clip ships with the repository (`demo_data/`); the synthetic one is
generated. Each clip is segmented by every method given, with palette PNGs and
an overlay video per clip and method, and scored with the DAVIS measures.
"""

import pathlib

from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.evaluation import davis_eval
from vsreid_jax.inference.driver import format_timings, segment_folder

DEMO_SPLIT = 'demo'
SYNTHETIC_SEQUENCE = 'synthetic-occlusion'
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
SHIPPED_DATA = REPOSITORY / 'demo_data' / 'DAVIS2016'
# The small propagation network trained by `configs/propagation.py:demo` (see the README).
SHIPPED_PROPAGATION = REPOSITORY / 'models' / 'propagation_demo'
FLOW_BASELINE = 'flow-only'
# Online fine-tuning steps on each clip's first frame (about 30 s per clip on 2 cores).
FINETUNE_STEPS = 100


def demo_datasets(output_dir, seed=0, log=print):
  """The demo clips as DAVIS datasets: (name, root) of the shipped real clip and the generated one."""
  if not (SHIPPED_DATA / 'ImageSets' / '480p' / f'{DEMO_SPLIT}.txt').is_file():
    raise InputError(f'{SHIPPED_DATA}: the demo clip is missing (run the demo from a checkout of '
                     'the repository)')
  synthetic_root = pathlib.Path(output_dir) / 'synthetic_data'
  config = synthetic.SyntheticVideoConfig(num_frames=48, height=240, width=427, seed=seed)
  clip = synthetic.generate_video(config)
  synthetic.write_davis(synthetic_root, {SYNTHETIC_SEQUENCE: clip}, DEMO_SPLIT)
  hidden = next(span for span in clip.events if span.object_id == clip.hidden_object_id)
  log(f'{SYNTHETIC_SEQUENCE}: {config.num_frames} frames, {config.num_objects} objects; object '
      f'{hidden.object_id} is hidden in frames {hidden.first_frame}-{hidden.end_frame - 1} '
      f'({clip.hide_by}) and reappears elsewhere')
  return [('davis', SHIPPED_DATA), ('synthetic', synthetic_root)]


def run_demo(output_dir, segmenters=None, seed=0, log=print):
  """Segments and scores the demo clips with each method.

  Args:
    output_dir: receives `<method>/<sequence>/*.png`, `<method>/<sequence>.mp4`
      overlays and `<method>/global_results-<clip>.csv` scores.
    segmenters: {method name: segmenter (`VSReID`-like) or None for flow-only
      propagation}; default the flow-only baseline alone.
    seed: seed of the synthetic clip.
    log: callable for progress and result lines.

  Returns:
    {(method, clip): `EvaluationReport`}.
  """
  output_dir = pathlib.Path(output_dir)
  segmenters = segmenters or {FLOW_BASELINE: None}
  reports = {}
  for clip, root in demo_datasets(output_dir, seed, log):
    dataset = DavisDataset(root, DEMO_SPLIT)
    for method, segmenter in segmenters.items():
      results = output_dir / method
      for sequence in dataset:
        timings = segment_folder(sequence.frames.paths[0].parent, sequence.annotation_paths[0],
                                 results / sequence.name, segmenter=segmenter, log=log,
                                 overlay_path=results / f'{sequence.name}.mp4')
        log(f'{method}, {sequence.name}: {format_timings(timings)}')
      reports[method, clip] = davis_eval.evaluate(results, root, DEMO_SPLIT, log=None,
                                                  sequences=dataset.sequence_names)
      davis_eval.write_csvs(reports[method, clip], results, f'{DEMO_SPLIT}-{clip}')
  log('')
  log(f'{"method":24} {"clip":10} {"J&F":>6} {"J":>6} {"F":>6}')
  for (method, clip), report in reports.items():
    scores = report.global_scores()
    log(f'{method:24} {clip:10} {scores["J&F-Mean"]:6.3f} {scores["J-Mean"]:6.3f} {scores["F-Mean"]:6.3f}')
  log(f'Masks and overlay videos in {output_dir}/<method>/')
  return reports
