"""The demo: segment a real DAVIS clip and a synthetic clip with a long occlusion, and score them.

The real clip ships with the repository (`demo_data/`); the synthetic one is
generated. Each clip is segmented by every method given, with palette PNGs and
an overlay video per clip and method, and scored with the DAVIS measures; a
method with re-ID rounds is also scored without them (its masks before the
rounds, `<method>-no-reid`). On the synthetic clip the demo also counts the
objects found again after being fully hidden, and draws the masks of every
method before, during and after the long occlusion (`synthetic-occlusion.png`).
"""

import dataclasses
import pathlib

import cv2

from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.evaluation import davis_eval, occlusion
from vsreid_jax.inference import overlay
from vsreid_jax.inference.driver import format_timings, segment_folder

DEMO_SPLIT = 'demo'
SYNTHETIC_SEQUENCE = 'synthetic-occlusion'
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
SHIPPED_DATA = REPOSITORY / 'demo_data' / 'DAVIS2016'
# The small networks trained by `configs/propagation.py:demo` and `configs/reid.py:demo`
# (see the README).
SHIPPED_PROPAGATION = REPOSITORY / 'models' / 'propagation_demo'
SHIPPED_REID = REPOSITORY / 'models' / 'reid_demo'
FLOW_BASELINE = 'flow-only'
NO_REID_SUFFIX = '-no-reid'
# Online fine-tuning steps of the shipped network on each video's first frame
# (about 30 s per clip on 2 cores).
FINETUNE_STEPS = 100


@dataclasses.dataclass(frozen=True)
class DemoClip:
  """A demo clip: its name, DAVIS root (split `DEMO_SPLIT`) and, if synthetic, its video."""
  name: str
  root: pathlib.Path
  video: synthetic.SyntheticVideo | None = None


def demo_clips(output_dir, seed=0, log=print):
  """The shipped real clip and the synthetic clip, generated into `output_dir`."""
  if not (SHIPPED_DATA / 'ImageSets' / '480p' / f'{DEMO_SPLIT}.txt').is_file():
    raise InputError(f'{SHIPPED_DATA}: the demo clip is missing (run the demo from a checkout of '
                     'the repository)')
  synthetic_root = pathlib.Path(output_dir) / 'synthetic_data'
  config = synthetic.SyntheticVideoConfig(num_frames=48, height=240, width=427, seed=seed)
  video = synthetic.generate_video(config)
  synthetic.write_davis(synthetic_root, {SYNTHETIC_SEQUENCE: video}, DEMO_SPLIT)
  hidden = next(span for span in video.events if span.object_id == video.hidden_object_id)
  log(f'{SYNTHETIC_SEQUENCE}: {config.num_frames} frames, {config.num_objects} objects; object '
      f'{hidden.object_id} is hidden in frames {hidden.first_frame}-{hidden.end_frame - 1} '
      f'({video.hide_by}) and reappears elsewhere')
  return [DemoClip('davis', SHIPPED_DATA), DemoClip('synthetic', synthetic_root, video)]


def has_reid(segmenter):
  """Whether `segmenter` (a `VSReID`-like object or None) runs re-ID rounds."""
  return (segmenter is not None and segmenter.config.reid
          and getattr(segmenter, 'reid_factory', None) is not None)


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
    {(method, clip name): `EvaluationReport`}, with the `-no-reid` variants.
  """
  output_dir = pathlib.Path(output_dir)
  segmenters = segmenters or {FLOW_BASELINE: None}
  reports, found_again, synthetic_masks = {}, {}, {}
  for clip in demo_clips(output_dir, seed, log):
    dataset = DavisDataset(clip.root, DEMO_SPLIT)
    for method, segmenter in segmenters.items():
      variants = [method] + ([method + NO_REID_SUFFIX] if has_reid(segmenter) else [])
      for sequence in dataset:
        timings = segment_folder(
            sequence.frames.paths[0].parent, sequence.annotation_paths[0],
            output_dir / method / sequence.name, segmenter=segmenter, log=log,
            overlay_path=output_dir / method / f'{sequence.name}.mp4',
            propagation_only_dir=(output_dir / variants[-1] / sequence.name
                                  if len(variants) > 1 else None))
        log(f'{method}, {sequence.name}: {format_timings(timings)}')
      for variant in variants:
        results = output_dir / variant
        reports[variant, clip.name] = davis_eval.evaluate(results, clip.root, DEMO_SPLIT, log=None,
                                                          sequences=dataset.sequence_names)
        davis_eval.write_csvs(reports[variant, clip.name], results, f'{DEMO_SPLIT}-{clip.name}')
        if clip.video is not None:
          predicted = davis_eval.read_result_masks(
              results, SYNTHETIC_SEQUENCE, dataset.sequence(SYNTHETIC_SEQUENCE).frames.names,
              dataset.layout)
          found_again[variant] = occlusion.count_found_again(occlusion.reappearance_scores(
              predicted, clip.video.labels, clip.video.events))
          synthetic_masks[variant] = predicted
    if clip.video is not None:
      figure = occlusion_figure(clip.video, synthetic_masks)
      cv2.imwrite(str(output_dir / f'{SYNTHETIC_SEQUENCE}.png'), figure[..., ::-1])
  log('')
  log(f'{"method":28} {"clip":10} {"J&F":>6} {"J":>6} {"F":>6}  hidden objects found again')
  for (method, clip), report in reports.items():
    scores = report.global_scores()
    found = (f'  {found_again[method][0]} of {found_again[method][1]}'
             if clip == 'synthetic' and method in found_again else '')
    log(f'{method:28} {clip:10} {scores["J&F-Mean"]:6.3f} {scores["J-Mean"]:6.3f} '
        f'{scores["F-Mean"]:6.3f}{found}')
  log(f'Masks and overlay videos in {output_dir}/<method>/; the long occlusion drawn in '
      f'{output_dir / SYNTHETIC_SEQUENCE}.png')
  return reports


def occlusion_figure(video, masks):
  """Masks of each method (and the ground truth) before, during and after the long occlusion.

  Args:
    video: the synthetic `SyntheticVideo`.
    masks: {method: [T, H, W] predicted object ids}.

  Returns:
    uint8 RGB montage, one row per method.
  """
  span = max((s for s in video.events if s.object_id == video.hidden_object_id),
             key=lambda s: s.length)
  last = len(video.frames) - 1
  columns = [max(span.first_frame - 1, 0), (span.first_frame + span.end_frame) // 2,
             min(span.end_frame, last), min((span.end_frame + last + 1) // 2, last), last]
  titles = [f'frame {t}' + (' (hidden)' if span.first_frame <= t < span.end_frame else '')
            for t in columns]
  rows = [('ground truth', video.labels)] + list(masks.items())
  return overlay.montage([(name, [overlay.blend_labels(video.frames[t], labels[t])
                                  for t in columns]) for name, labels in rows], titles)
