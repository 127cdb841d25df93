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
from vsreid_jax.inference.detector_reid import detector_reid_factory
from vsreid_jax.inference.driver import format_timings, segment_folder
from vsreid_jax.inference.finetuned import FinetunedVSReID
from vsreid_jax.inference.vsreid import VSReID

DEMO_SPLIT = 'demo'
SYNTHETIC_SEQUENCE = 'synthetic-occlusion'
REPOSITORY = pathlib.Path(__file__).resolve().parents[2]
SHIPPED_DATA = REPOSITORY / 'demo_data' / 'DAVIS2016'
# The small networks trained by `configs/propagation.py:demo` and `configs/reid.py:demo`
# (see the README).
SHIPPED_PROPAGATION = REPOSITORY / 'models' / 'propagation_demo'
SHIPPED_REID = REPOSITORY / 'models' / 'reid_demo'
SHIPPED_VERIFIER = REPOSITORY / 'models' / 'verifier_demo'
FLOW_BASELINE = 'flow-only'
NO_REID_SUFFIX = '-no-reid'
# Online fine-tuning steps of the shipped network on each video's first frame
# (about 30 s per clip on 2 cores).
FINETUNE_STEPS = 100
# Held-out synthetic videos (demo clip, quality benchmarks): as the demo configs' training
# videos but twice as long; their seeds are never used in training.
SYNTHETIC_CLIP = synthetic.SyntheticVideoConfig(num_frames=48, height=240, width=427)


@dataclasses.dataclass(frozen=True)
class Clip:
  """DAVIS-layout sequences to segment and score together.

  Attributes:
    name: the clip's name in tables and CSV names.
    root: its DAVIS root.
    split: its split there.
    videos: for synthetic sequences, {sequence name: `SyntheticVideo`}, whose
      hidden spans give the count of objects found again.
  """
  name: str
  root: pathlib.Path
  split: str = DEMO_SPLIT
  videos: dict = dataclasses.field(default_factory=dict)


def demo_clips(output_dir, seed=0, log=print):
  """The shipped real clip and the synthetic clip, generated into `output_dir`."""
  if not (SHIPPED_DATA / 'ImageSets' / '480p' / f'{DEMO_SPLIT}.txt').is_file():
    raise InputError(f'{SHIPPED_DATA}: the demo clip is missing (run the demo from a checkout of '
                     'the repository)')
  synthetic_root = pathlib.Path(output_dir) / 'synthetic_data'
  config = dataclasses.replace(SYNTHETIC_CLIP, seed=seed)
  video = synthetic.generate_video(config)
  synthetic.write_davis(synthetic_root, {SYNTHETIC_SEQUENCE: video}, DEMO_SPLIT)
  hidden = next(span for span in video.events if span.object_id == video.hidden_object_id)
  log(f'{SYNTHETIC_SEQUENCE}: {config.num_frames} frames, {config.num_objects} objects; object '
      f'{hidden.object_id} is hidden in frames {hidden.first_frame}-{hidden.end_frame - 1} '
      f'({video.hide_by}) and reappears elsewhere')
  return [Clip('davis', SHIPPED_DATA),
          Clip('synthetic', synthetic_root, videos={SYNTHETIC_SEQUENCE: video})]


def vsreid_segmenter(config, propagation_dir=SHIPPED_PROPAGATION, reid_dir=SHIPPED_REID,
                     finetune_steps=FINETUNE_STEPS, wrap_reid=None,
                     verifier_dir=SHIPPED_VERIFIER):
  """VS-ReID with the given networks (default the shipped ones).

  Args:
    config: the inference config.
    propagation_dir: the propagation network's checkpoint.
    reid_dir: the re-ID detector's checkpoint, or None for no re-ID rounds.
    finetune_steps: online fine-tuning steps on each video's first frame (0: none).
    wrap_reid: optional callable turning the detector's re-ID factory (None without
      `reid_dir`) into the one to use, such as a `truth_reid.truth_reid_factory`.
    verifier_dir: the mask verifier's checkpoint (used with `reid_dir` and
      `config.reid_nearest_template`), or None for none.

  Returns:
    a `FinetunedVSReID` if `finetune_steps`, else a `VSReID`.

  Raises:
    InputError: a checkpoint is missing or holds another network.
  """
  reid_factory = (None if reid_dir is None
                  else detector_reid_factory(reid_dir, config.reid_nearest_template,
                                             verifier_dir))
  if wrap_reid is not None:
    reid_factory = wrap_reid(reid_factory)
  if finetune_steps:
    return FinetunedVSReID.from_checkpoint(propagation_dir, config, finetune_steps, reid_factory)
  return VSReID.from_checkpoint(propagation_dir, config, reid_factory)


def demo_segmenters(config):
  """The demo's methods: flow-only propagation and, when it ships, VS-ReID with the shipped
  networks (the propagation network fine-tuned on each clip's first frame), run with the
  inference `config`."""
  segmenters = {FLOW_BASELINE: None}
  if SHIPPED_PROPAGATION.is_dir():
    segmenters['vs-reid'] = vsreid_segmenter(
        config, reid_dir=SHIPPED_REID if SHIPPED_REID.is_dir() else None,
        verifier_dir=SHIPPED_VERIFIER if SHIPPED_VERIFIER.is_dir() else None)
  return segmenters


def has_reid(segmenter):
  """Whether `segmenter` (a `VSReID`-like object or None) runs re-ID rounds."""
  return (segmenter is not None and segmenter.config.reid
          and getattr(segmenter, 'reid_factory', None) is not None)


@dataclasses.dataclass
class Scores:
  """The DAVIS report of one method on one clip and, for synthetic clips, the hidden objects
  found again and the predicted masks of each synthetic sequence."""
  report: davis_eval.EvaluationReport
  found_again: tuple[int, int] | None = None
  masks: dict = dataclasses.field(default_factory=dict)


def segment_and_score(clips, segmenters, output_dir, log=print, overlays=True):
  """Segments every sequence of every clip with each method and scores the results.

  Args:
    clips: `Clip`s.
    segmenters: {method name: segmenter (`VSReID`-like) or None for flow-only
      propagation}. A method with re-ID rounds is also scored without them
      (its masks before the rounds), as `<method>-no-reid`.
    output_dir: receives `<method>/<sequence>/*.png`, `<method>/<sequence>.mp4`
      overlays and `<method>/global_results-<split>-<clip>.csv` scores.
    log: callable for progress lines.
    overlays: write the overlay videos.

  Returns:
    {(method, clip name): `Scores`}.
  """
  output_dir = pathlib.Path(output_dir)
  results = {}
  for clip in clips:
    dataset = DavisDataset(clip.root, clip.split)
    for method, segmenter in segmenters.items():
      variants = [method] + ([method + NO_REID_SUFFIX] if has_reid(segmenter) else [])
      for sequence in dataset:
        timings = segment_folder(
            sequence.frames.paths[0].parent, sequence.annotation_paths[0],
            output_dir / method / sequence.name, segmenter=segmenter, log=log,
            overlay_path=output_dir / method / f'{sequence.name}.mp4' if overlays else None,
            propagation_only_dir=(output_dir / variants[-1] / sequence.name
                                  if len(variants) > 1 else None))
        log(f'{method}, {sequence.name}: {format_timings(timings)}')
      for variant in variants:
        variant_dir = output_dir / variant
        scores = Scores(davis_eval.evaluate(variant_dir, clip.root, clip.split, log=None,
                                            sequences=dataset.sequence_names))
        davis_eval.write_csvs(scores.report, variant_dir, f'{clip.split}-{clip.name}')
        found, hidden = 0, 0
        for name, video in clip.videos.items():
          scores.masks[name] = davis_eval.read_result_masks(
              variant_dir, name, dataset.sequence(name).frames.names, dataset.layout)
          counts = occlusion.count_found_again(occlusion.reappearance_scores(
              scores.masks[name], video.labels, video.events))
          found, hidden = found + counts[0], hidden + counts[1]
        if clip.videos:
          scores.found_again = (found, hidden)
        results[variant, clip.name] = scores
  return results


def format_scores(results):
  """A Markdown table of `segment_and_score` results: J&F, J, F and hidden objects found again."""
  lines = ['| method | clip | J&F | J | F | hidden objects found again |', '|---|---|---|---|---|---|']
  for (method, clip), scores in results.items():
    values = scores.report.global_scores()
    found = f'{scores.found_again[0]} of {scores.found_again[1]}' if scores.found_again else ''
    lines.append(f'| {method} | {clip} | {values["J&F-Mean"]:.3f} | {values["J-Mean"]:.3f} | '
                 f'{values["F-Mean"]:.3f} | {found} |')
  return '\n'.join(lines)


def run_demo(output_dir, segmenters=None, seed=0, log=print):
  """Segments and scores the demo clips with each method (see `segment_and_score`) and draws
  the long occlusion of the synthetic clip.

  Args:
    output_dir: receives the masks, overlays and CSVs, and `synthetic-occlusion.png`.
    segmenters: {method name: segmenter or None for flow-only propagation};
      default the flow-only baseline alone.
    seed: seed of the synthetic clip.
    log: callable for progress and result lines.

  Returns:
    {(method, clip name): `Scores`}, with the `-no-reid` variants.
  """
  output_dir = pathlib.Path(output_dir)
  clips = demo_clips(output_dir, seed, log)
  results = segment_and_score(clips, segmenters or {FLOW_BASELINE: None}, output_dir, log)
  synthetic_clip = clips[-1]
  figure = occlusion_figure(synthetic_clip.videos[SYNTHETIC_SEQUENCE], {
      method: scores.masks[SYNTHETIC_SEQUENCE] for (method, clip), scores in results.items()
      if clip == synthetic_clip.name})
  figure_path = output_dir / f'{SYNTHETIC_SEQUENCE}.png'
  cv2.imwrite(str(figure_path), figure[..., ::-1])
  log('')
  log(format_scores(results))
  log(f'Masks and overlay videos in {output_dir}/<method>/; the long occlusion drawn in '
      f'{figure_path}')
  return results


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
