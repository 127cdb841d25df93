"""Synthetic videos with exact ground truth: moving textured objects, look-alikes, occlusions."""

import dataclasses
import zlib

import cv2
import numpy as np

from vsreid_jax.data import davis
from vsreid_jax.data import synthetic_appearance as appearance
from vsreid_jax.data import synthetic_motion as motion
from vsreid_jax.errors import InputError

_HIDE_MODES = ('occluder', 'exit', 'random')


def _check_number(value, name, low, high, integer):
  kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
  if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
    kind = 'an integer' if integer else 'a number'
    raise InputError(f'{name} must be {kind} in [{low}, {high}], got {value!r}')


def _check_range(value, name, low, high, integer):
  if not isinstance(value, (tuple, list)) or len(value) != 2:
    raise InputError(f'{name} must be a (min, max) pair, got {value!r}')
  for bound in value:
    _check_number(bound, name, low, high, integer)
  if value[0] > value[1]:
    raise InputError(f'{name}: min {value[0]} exceeds max {value[1]}')


@dataclasses.dataclass(frozen=True)
class SyntheticVideoConfig:
  """What a synthetic video holds. Object sizes and speeds are fractions of the shorter frame side.

  Attributes:
    num_frames: video length.
    height: frame height in pixels.
    width: frame width in pixels.
    num_objects: annotated objects, ids 1..num_objects.
    num_distractors: unannotated look-alikes, each copying one object's shape family, texture and
      colours with its own outline; the first copies the object that gets hidden.
    hidden_frames: (min, max) consecutive frames that one object spends fully hidden.
    hide_by: 'occluder' (it passes behind a full-height pillar and comes out the other side),
      'exit' (it leaves the frame and comes back through a distant part of the border), or
      'random' (either, drawn per video).
    object_size: (min, max) object radius at full scale.
    max_speed: typical largest object displacement per frame.
    camera_pan: largest background pan over the video, as a fraction of the frame width.
    noise_std: standard deviation of the per-pixel sensor noise, in grey levels.
    seed: seed of the generator; equal seeds give identical videos.
  """
  num_frames: int = 64
  height: int = 240
  width: int = 427
  num_objects: int = 3
  num_distractors: int = 2
  hidden_frames: tuple[int, int] = (10, 20)
  hide_by: str = 'random'
  object_size: tuple[float, float] = (0.12, 0.2)
  max_speed: float = 0.03
  camera_pan: float = 0.2
  noise_std: float = 2.0
  seed: int = 0

  def __post_init__(self):
    for field, low, high in (('num_frames', 1, 100_000), ('height', 32, 4096),
                             ('width', 32, 4096), ('num_objects', 1, 20),
                             ('num_distractors', 0, 20), ('seed', 0, 2**63 - 1)):
      _check_number(getattr(self, field), f'SyntheticVideoConfig.{field}', low, high, integer=True)
    _check_range(self.hidden_frames, 'SyntheticVideoConfig.hidden_frames', 1, 100_000, integer=True)
    if self.num_frames < min_num_frames(self.hidden_frames):
      raise InputError(f'SyntheticVideoConfig.num_frames must be at least hidden_frames[1] + '
                       f'{2 * motion.MIN_VISIBLE} = {min_num_frames(self.hidden_frames)} (visible '
                       f'frames before and after), got {self.num_frames}')
    if self.hide_by not in _HIDE_MODES:
      raise InputError(
          f'SyntheticVideoConfig.hide_by must be one of {_HIDE_MODES}, got {self.hide_by!r}')
    _check_range(self.object_size, 'SyntheticVideoConfig.object_size', 0.0, 0.2, integer=False)
    if self.object_size[0] * min(self.height, self.width) < 4:
      raise InputError(f'SyntheticVideoConfig.object_size: a radius of {self.object_size[0]} of '
                       f'{min(self.height, self.width)} pixels is under 4 pixels')
    _check_number(self.max_speed, 'SyntheticVideoConfig.max_speed', 1e-3, 0.2, integer=False)
    _check_number(self.camera_pan, 'SyntheticVideoConfig.camera_pan', 0.0, 1.0, integer=False)
    _check_number(self.noise_std, 'SyntheticVideoConfig.noise_std', 0.0, 50.0, integer=False)


def min_num_frames(hidden_frames):
  """The shortest video that can hide an object for up to `hidden_frames[1]` frames."""
  return hidden_frames[1] + 2 * motion.MIN_VISIBLE


@dataclasses.dataclass(frozen=True)
class HiddenSpan:
  """Consecutive frames in which an annotated object has no visible pixel.

  Attributes:
    object_id: the object's label.
    first_frame: first frame without a visible pixel.
    end_frame: first frame in which it is visible again; num_frames if it never comes back.
    cause: 'left_frame' when it was entirely outside the frame throughout, otherwise 'occluded'.
    disappear_centroid: (x, y) centroid of its visible pixels in frame first_frame - 1.
    reappear_centroid: (x, y) centroid of its visible pixels in frame end_frame, or None.
  """
  object_id: int
  first_frame: int
  end_frame: int
  cause: str
  disappear_centroid: tuple[float, float] | None
  reappear_centroid: tuple[float, float] | None

  @property
  def length(self):
    return self.end_frame - self.first_frame


@dataclasses.dataclass(frozen=True, eq=False)
class SyntheticVideo:
  """A generated video and its ground truth.

  Instances are numbered 1..N for the annotated objects and N+1..N+D for the distractors; the
  instance number is also the identity for re-identification. Masks and boxes cover visible
  pixels only: whatever lies in front of an instance, or outside the frame, is not part of it.

  Attributes:
    config: the configuration it was generated from.
    frames: [T, H, W, 3] uint8 RGB frames.
    labels: [T, H, W] uint8 DAVIS-style annotation: 0 background (distractors and the pillar
      included), 1..N objects.
    instances: [T, H, W] uint8 like `labels`, with distractor j (from 0) as N + 1 + j.
    boxes: [T, N + D, 4] int32 (x_min, y_min, x_max, y_max) of each instance's visible pixels, max
      exclusive; zeros in frames where it is not visible.
    visible_area: [T, N + D] int32 visible pixels per instance.
    unoccluded_area: [T, N + D] int32 pixels each instance would cover inside the frame with nothing
      in front of it.
    imitates: [D] int32 object id that each distractor copies.
    hidden_object_id: the object hidden for `config.hidden_frames` frames.
    hidden_window: (first, end) frames, end exclusive, in which it was planned to be hidden; the
      matching span in `events` is measured from the rendered labels.
    hide_by: how it was hidden, 'occluder' or 'exit'.
    events: every span in which an annotated object is fully hidden, by object then time.
  """
  config: SyntheticVideoConfig
  frames: np.ndarray
  labels: np.ndarray
  instances: np.ndarray
  boxes: np.ndarray
  visible_area: np.ndarray
  unoccluded_area: np.ndarray
  imitates: np.ndarray
  hidden_object_id: int
  hidden_window: tuple[int, int]
  hide_by: str
  events: tuple[HiddenSpan, ...]


def _render(rng, config, sprites, centres, angles, scales, depth_order, pillar):
  """Composites background, instances back to front and pillar: frames, instances, areas."""
  num_frames, height, width = config.num_frames, config.height, config.width
  short_side = min(height, width)
  camera = motion.camera_path(rng, config)
  span = np.ceil(camera.max(0)).astype(int) + 2
  background = appearance.background(rng, height + span[1], width + span[0], short_side)
  if pillar is not None:
    pillar_face = appearance.pillar_texture(rng, height, int(np.ceil(pillar[1])) + 2, short_side)
  gain = 1 + 0.04 * np.sin(
      2 * np.pi * np.arange(num_frames) / rng.uniform(20, 60) + rng.uniform(0, 2 * np.pi))
  columns = np.arange(width, dtype=np.float32)

  frames = np.empty((num_frames, height, width, 3), np.uint8)
  instances = np.zeros((num_frames, height, width), np.uint8)
  unoccluded = np.zeros((num_frames, len(sprites)), np.int32)
  for t in range(num_frames):
    view = np.array([[1, 0, -camera[t, 0]], [0, 1, -camera[t, 1]]])
    frame = cv2.warpAffine(background, view, (width, height), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    labels = instances[t]
    for k in depth_order:
      x, y = centres[k, t]
      reach = sprites[k].radius * scales[k, t] + 2
      x0, y0 = max(int(x - reach), 0), max(int(y - reach), 0)
      x1, y1 = min(int(x + reach) + 2, width), min(int(y + reach) + 2, height)
      if x1 <= x0 or y1 <= y0:
        continue
      patch = appearance.pose_sprite(sprites[k], (x, y), angles[k, t], scales[k, t], (x0, y0), (x1 - x0, y1 - y0))
      window = frame[y0:y1, x0:x1]
      window *= 1 - patch[..., 3:]
      window += patch[..., :3]
      solid = patch[..., 3] >= 0.5
      labels[y0:y1, x0:x1][solid] = k + 1
      unoccluded[t, k] = np.count_nonzero(solid)
    if pillar is not None:
      left, right = pillar[0][t], pillar[0][t] + pillar[1]
      x0, x1 = max(int(left) - 1, 0), min(int(right) + 2, width)
      if x1 > x0:
        cover = np.clip(np.minimum(columns[x0:x1] - left, right - columns[x0:x1]) + 0.5, 0, 1)
        face = cv2.warpAffine(pillar_face, np.array([[1, 0, left - x0], [0, 1, 0]]),
                              (x1 - x0, height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        alpha = cover[None, :, None]
        frame[:, x0:x1] = frame[:, x0:x1] * (1 - alpha) + face * alpha
        labels[:, x0:x1][:, cover >= 0.5] = 0
    frame *= gain[t]
    if config.noise_std:
      # Uniform noise of the requested spread: a quarter of the cost of Gaussian samples.
      frame += (rng.random(frame.shape, np.float32) - 0.5) * (config.noise_std * np.sqrt(12))
    np.clip(frame + 0.5, 0, 255, out=frame)
    frames[t] = frame
  return frames, instances, unoccluded


def _boxes_and_areas(instances, count):
  """Tight boxes [T, count, 4] and visible areas [T, count] of instances 1..count."""
  num_frames, height, width = instances.shape
  boxes = np.zeros((num_frames, count, 4), np.int32)
  areas = np.zeros((num_frames, count), np.int32)
  for k in range(count):
    mask = instances == k + 1
    rows, cols = mask.any(2), mask.any(1)
    seen = rows.any(1)
    areas[:, k] = np.count_nonzero(mask, axis=(1, 2))
    boxes[seen, k, 0] = cols[seen].argmax(1)
    boxes[seen, k, 1] = rows[seen].argmax(1)
    boxes[seen, k, 2] = width - cols[seen][:, ::-1].argmax(1)
    boxes[seen, k, 3] = height - rows[seen][:, ::-1].argmax(1)
  return boxes, areas


def _centroid(instance_map, instance):
  ys, xs = np.nonzero(instance_map == instance)
  return float(xs.mean()), float(ys.mean())


def _hidden_spans(instances, visible_area, unoccluded_area, num_objects):
  """Every run of frames in which an annotated object has no visible pixel, from the rendering."""
  spans = []
  num_frames = len(visible_area)
  for k in range(num_objects):
    hidden = np.concatenate([[False], visible_area[:, k] == 0, [False]])
    changes = np.flatnonzero(hidden[1:] != hidden[:-1])
    for first, end in zip(changes[::2], changes[1::2]):
      spans.append(HiddenSpan(
          object_id=k + 1, first_frame=int(first), end_frame=int(end),
          cause='occluded' if unoccluded_area[first:end, k].any() else 'left_frame',
          disappear_centroid=_centroid(instances[first - 1], k + 1) if first > 0 else None,
          reappear_centroid=_centroid(instances[end], k + 1) if end < num_frames else None))
  return tuple(spans)


def generate_video(config):
  """Generates a synthetic video with exact ground truth, deterministically from `config.seed`.

  Textured objects (ellipses, polygons and blobs with stripes, checks, rings, noise or gradients)
  translate, rotate and change scale over a panning textured background, in front of and behind
  one another. Distractors copy an object's appearance and are left unannotated. One object, in
  front of the other instances, is fully hidden for `config.hidden_frames` frames, behind a pillar
  or outside the frame, and reappears at a different place; two other annotated objects (or that
  object and another, when there are only two) partially overlap in one frame. Objects start
  apart, so all of them show in frame 0 unless the frame is crowded.

  Args:
    config: a `SyntheticVideoConfig`.

  Returns:
    A `SyntheticVideo`.
  """
  rng = np.random.default_rng(config.seed)
  num_objects, short_side = config.num_objects, min(config.height, config.width)
  looks = appearance.object_looks(rng, num_objects, np.array(config.object_size) * short_side)
  target = int(rng.integers(num_objects))
  others = [k for k in range(num_objects) if k != target]
  originals = [target] + [int(k) for k in rng.permutation(others)]
  imitates = np.array([originals[j % num_objects] for j in range(config.num_distractors)], np.int32)
  looks += [appearance.look_alike(rng, looks[k]) for k in imitates]
  sprites = [appearance.make_sprite(rng, look) for look in looks]
  count = len(sprites)

  frames = np.arange(config.num_frames)
  angles = rng.uniform(0, 2 * np.pi, (count, 1)) + rng.uniform(-0.04, 0.04, (count, 1)) * frames
  periods = rng.uniform(0.5, 1.5, (count, 1)) * config.num_frames
  pulse = 0.5 + 0.5 * np.sin(2 * np.pi * frames / periods + rng.uniform(0, 2 * np.pi, (count, 1)))
  scales = 1 - rng.uniform(0.15, 0.4, (count, 1)) * pulse
  # Back to front; the target is in front so that nothing but its hider ever covers it.
  behind = [k for k in range(count) if k != target]
  depth_order = [int(k) for k in rng.permutation(behind)] + [target]
  hide_by = config.hide_by if config.hide_by != 'random' else ('occluder', 'exit')[rng.integers(2)]

  centres, window, pillar = motion.plan_centres(rng, config, sprites, angles, scales, target,
                                          depth_order, hide_by)
  video_frames, instances, unoccluded = _render(rng, config, sprites, centres, angles, scales,
                                                depth_order, pillar)
  boxes, visible = _boxes_and_areas(instances, count)
  return SyntheticVideo(
      config=config, frames=video_frames,
      labels=np.where(instances <= num_objects, instances, 0).astype(np.uint8), instances=instances,
      boxes=boxes, visible_area=visible, unoccluded_area=unoccluded, imitates=imitates + 1,
      hidden_object_id=target + 1, hidden_window=window, hide_by=hide_by,
      events=_hidden_spans(instances, visible, unoccluded, num_objects))


ANNOTATIONS = ('labels', 'instances')


def write_davis(root, videos, split, jpeg_quality=95, annotation='labels'):
  """Writes synthetic videos in the DAVIS 2017 layout and adds them to the split's image set.

  See `davis.write_davis_sequences`; `videos` maps sequence names to `SyntheticVideo`s.
  `annotation` 'labels' writes the objects alone (the segmentation ground truth);
  'instances' writes the distractors too, as objects N+1.. (re-ID training data).
  """
  if annotation not in ANNOTATIONS:
    raise ValueError(f'annotation must be one of {ANNOTATIONS}, got {annotation!r}')
  davis.write_davis_sequences(
      root, {name: (video.frames, getattr(video, annotation)) for name, video in videos.items()},
      split, jpeg_quality)


def generate_davis(root, num_videos, split, config=SyntheticVideoConfig(), seed=0,
                   annotation='labels'):
  """Generates videos one at a time and writes them to a DAVIS 2017 root.

  Video i is named f'synthetic-{split}-{i:04d}' and generated from `config` with its seed drawn
  from (seed, split, i), so the splits differ even with one `seed`.

  Args:
    root: dataset root.
    num_videos: how many videos to write.
    split: image-set name, such as 'train' or 'val'.
    config: a `SyntheticVideoConfig`; its own seed is ignored.
    seed: non-negative integer.
    annotation: what the masks hold, as in `write_davis`.

  Returns:
    The sequence names, in order.
  """
  _check_number(num_videos, 'num_videos', 1, 1_000_000, integer=True)
  _check_number(seed, 'seed', 0, 2**63 - 1, integer=True)
  davis.check_name(split, 'split')
  names = []
  for index in range(num_videos):
    entropy = [int(seed), zlib.crc32(split.encode()), index]
    video_seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
    name = f'synthetic-{split}-{index:04d}'
    write_davis(root, {name: generate_video(dataclasses.replace(config, seed=video_seed))}, split,
                annotation=annotation)
    names.append(name)
  return names
