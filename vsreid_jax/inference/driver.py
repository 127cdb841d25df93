"""Segmenting one video end to end: read, compute flow, propagate, write PNGs (and an overlay)."""

import pathlib
import time

import tqdm

from vsreid_jax.data import video
from vsreid_jax.errors import InputError
from vsreid_jax.flow import dis
from vsreid_jax.flow.provider import DisFlow, PrecomputedFlow
from vsreid_jax.inference import overlay
from vsreid_jax.inference.flow_baseline import propagate_by_flow

STAGES = ('read', 'finetune', 'flow', 'warp', 'network', 'reid', 'other', 'write')


def make_flow_source(frames, preset='medium', flow_dir=None, cache_dir=None):
  """Pre-computed `.flo`/`.rflo` files when `flow_dir` is given, else DIS flow (optionally cached)."""
  if flow_dir is not None:
    if not pathlib.Path(flow_dir).is_dir():
      raise InputError(f'{flow_dir}: flow folder not found')
    return PrecomputedFlow(flow_dir, frames.names)
  dis.check_preset(preset)
  return DisFlow(frames, preset=preset, cache_dir=cache_dir)


def segment_folder(sequence_dir, first_mask_path, output_dir, flow_preset='medium', flow_dir=None,
                   flow_cache_dir=None, show_progress=True, segmenter=None, log=None,
                   overlay_path=None, propagation_only_dir=None):
  """Segments every frame of a folder of frames, given the first frame's mask.

  Args:
    sequence_dir: folder of .jpg/.png frames (natural sort order).
    first_mask_path: mask of the first frame (palette, grayscale label or binary PNG).
    output_dir: where one palette PNG per frame is written, named as the frames.
    flow_preset: OpenCV DIS preset ('ultrafast', 'fast', 'medium').
    flow_dir: optional folder of pre-computed `<frame>.flo`/`<frame>.rflo` files.
    flow_cache_dir: optional folder where computed DIS flow is kept for reruns.
    show_progress: draw a progress bar on stderr.
    segmenter: see `segment_and_write`.
    log: optional callable for the segmenter's recovery lines.
    overlay_path: optional .mp4 file for the masks blended over the frames.
    propagation_only_dir: see `segment_and_write`.

  Returns:
    the timings of `segment_and_write`.
  """
  start = time.perf_counter()
  frames = video.read_frame_folder(sequence_dir)
  first_mask = video.read_first_mask(first_mask_path, frames)
  flow_source = make_flow_source(frames, flow_preset, flow_dir, flow_cache_dir)
  return segment_and_write(frames, first_mask, flow_source, output_dir, segmenter, overlay_path,
                           pathlib.Path(sequence_dir).name, show_progress, log,
                           {'read': time.perf_counter() - start}, propagation_only_dir)


def segment_and_write(frames, first_mask, flow_source, output_dir, segmenter=None,
                      overlay_path=None, name=None, show_progress=True, log=None, timings=None,
                      propagation_only_dir=None):
  """Segments a video and writes one palette PNG per frame (and optionally an overlay video).

  With a `segmenter` (`VSReID` or `FinetunedVSReID`), by the VS-ReID algorithm;
  without one, masks are propagated by optical flow alone (`propagate_by_flow`).

  Args:
    frames: the video's `FrameSequence`.
    first_mask: [H, W] object ids of frame 0.
    flow_source: from `make_flow_source`.
    output_dir: where the PNGs go, named as the frames.
    segmenter: a `VSReID`-like object with `segment`, or None for the flow-only baseline.
    overlay_path: optional .mp4 file for the masks blended over the frames.
    name: the video's name on its progress bar.
    show_progress: draw a progress bar on stderr.
    log: optional callable for recovery lines.
    timings: seconds already spent on the video, per stage (such as 'read').
    propagation_only_dir: optional folder that receives the segmenter's masks
      before its re-ID rounds (propagation only), for comparison.

  Returns:
    dict of seconds spent per stage ('read', 'flow', 'warp', 'write', 'total'; with a
    segmenter also 'network', 'reid' and 'other', and 'finetune' if it fine-tunes) and
    'frames'.
  """
  timings = dict(timings or {})
  start = time.perf_counter() - sum(timings.values())
  if segmenter is None:
    label_maps = propagate_by_flow(first_mask, flow_source, timings)
  else:
    propagation_only_writing = [0.0]

    def write_propagation_only(segmentation):
      begin = time.perf_counter()
      video.write_label_sequence(propagation_only_dir, frames.names, segmentation.label_maps())
      propagation_only_writing[0] = time.perf_counter() - begin

    segmentation = segmenter.segment(frames, first_mask, flow_source, log,
                                     write_propagation_only if propagation_only_dir else None)
    stages = {stage: seconds for stage, seconds in segmentation.timings.items() if stage != 'total'}
    # Writing the propagation-only masks counts as writing (the remainder below), not 'other'.
    timings.update(stages, other=segmentation.timings['total'] - sum(stages.values())
                   - propagation_only_writing[0])
    label_maps = segmentation.label_maps()
  bar = tqdm.tqdm(label_maps, total=len(frames), desc=name, unit='frame',
                  disable=not show_progress, leave=False)
  if overlay_path is None:
    written = video.write_label_sequence(output_dir, frames.names, bar)
  else:
    with overlay.OverlayVideo(overlay_path, log=log or print) as overlay_video:
      written = video.write_label_sequence(output_dir, frames.names,
                                           _added_to(overlay_video, frames, bar))
  timings['write'] = time.perf_counter() - start - sum(timings.values())
  timings['total'] = time.perf_counter() - start
  timings['frames'] = written
  return timings


def _added_to(overlay_video, frames, label_maps):
  """Passes `label_maps` on, adding each with its frame to `overlay_video` on the way."""
  for index, labels in enumerate(label_maps):
    overlay_video.add(frames[index], labels, frames.names[index])
    yield labels


def format_timings(timings):
  """One line: seconds per stage and frames per second."""
  stages = ', '.join(f'{name} {timings[name]:.1f} s' for name in STAGES if name in timings)
  rate = timings['frames'] / max(timings['total'], 1e-9)
  return f'{timings["frames"]} frames in {timings["total"]:.1f} s ({rate:.1f} frames/s): {stages}'
