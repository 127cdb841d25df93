"""Synthetic videos with exact ground truth: moving textured objects, look-alikes, occlusions."""

import colorsys
import dataclasses
import zlib

import cv2
import numpy as np

from vsreid_jax.data import davis
from vsreid_jax.errors import InputError

_SHAPES = ('ellipse', 'polygon', 'blob')
_TEXTURES = ('stripes', 'checker', 'rings', 'noise', 'gradient')
_HIDE_MODES = ('occluder', 'exit', 'random')
# Pixels between a hidden object's outline and the edge that hides it: anti-aliasing and
# bilinear warping spread a drawn outline by up to two pixels.
_MARGIN = 3.0


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
    if self.num_frames < self.hidden_frames[1] + 8:
      raise InputError(f'SyntheticVideoConfig.num_frames must be at least hidden_frames[1] + 8 = '
                       f'{self.hidden_frames[1] + 8} (visible frames before and after), '
                       f'got {self.num_frames}')
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


@dataclasses.dataclass(frozen=True)
class _Look:
  """How an instance looks: outline family and parameter, radius, texture and colour ramp."""
  shape: str
  detail: float  # ellipse aspect ratio or polygon vertex count
  radius: float
  texture: str
  colours: np.ndarray
  period: float
  angle: float


@dataclasses.dataclass(frozen=True)
class _Sprite:
  rgba: np.ndarray  # [S, S, 4] float32, colour premultiplied by alpha
  outline: np.ndarray  # [P, 2] outline vertices relative to the sprite centre
  radius: float


def _hsv(hue, saturation, value):
  return np.array(colorsys.hsv_to_rgb(hue % 1.0, saturation, value), np.float32) * 255


def _ramp(level, colours):
  """Maps levels in [0, 1] onto the ramp colours[0] -> colours[1] -> colours[2]."""
  level = 2 * np.clip(level, 0, 1)[..., None]
  low = colours[0] + (colours[1] - colours[0]) * level
  high = colours[1] + (colours[2] - colours[1]) * (level - 1)
  return np.where(level < 1, low, high).astype(np.float32)


def _muted_colours(rng):
  hue = rng.random()
  return np.stack([
      _hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.05, 0.35), rng.uniform(0.25, 0.8))
      for _ in range(3)])


def _smooth_noise(rng, height, width, cell_y, cell_x):
  """[height, width] float32 values in [0, 1] that vary over about cell_y by cell_x pixels."""
  cell_y, cell_x = max(cell_y, 1.0), max(cell_x, 1.0)
  rows, cols = int(height / cell_y) + 4, int(width / cell_x) + 4
  grid = rng.random((rows, cols), dtype=np.float32)
  field = cv2.resize(grid, (int(cols * cell_x), int(rows * cell_y)), interpolation=cv2.INTER_CUBIC)
  field = field[int(cell_y):int(cell_y) + height, int(cell_x):int(cell_x) + width]
  return (field - field.min()) / max(field.max() - field.min(), 1e-6)


def _object_looks(rng, num_objects, radius_range):
  """Looks of the annotated objects, each with its own hue so that colour tells them apart."""
  hues = rng.random() + np.arange(num_objects) / num_objects + rng.uniform(-0.03, 0.03, num_objects)
  shapes = np.resize(rng.permutation(_SHAPES), num_objects)
  textures = np.resize(rng.permutation(_TEXTURES), num_objects)
  looks = []
  for hue, shape, texture in zip(hues, shapes, textures):
    radius = rng.uniform(*radius_range)
    colours = np.stack([
        _hsv(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.5, 1.0), rng.uniform(0.15, 0.45)),
        _hsv(hue, rng.uniform(0.6, 1.0), rng.uniform(0.75, 1.0)),
        _hsv(hue + rng.choice([-1, 1]) * rng.uniform(0.06, 0.12), rng.uniform(0.15, 0.45),
             rng.uniform(0.85, 1.0))])
    if shape == 'ellipse':
      detail = rng.uniform(0.45, 0.85)
    else:
      detail = rng.integers(3, 8) if shape == 'polygon' else 0
    looks.append(_Look(str(shape), float(detail), radius, str(texture), colours,
                       rng.uniform(0.2, 0.5) * radius, rng.uniform(0, np.pi)))
  return looks


def _look_alike(rng, look):
  """Same shape family, texture and colours; its own outline, a slightly different texture scale."""
  detail = look.detail
  if look.shape == 'ellipse':
    detail = float(np.clip(detail + rng.uniform(-0.08, 0.08), 0.4, 0.9))
  return dataclasses.replace(look, detail=detail, radius=look.radius * rng.uniform(0.9, 1.1),
                             period=look.period * rng.uniform(0.85, 1.15),
                             angle=look.angle + rng.uniform(-0.3, 0.3))


def _outline(rng, look):
  """Vertices of a random outline, star-shaped about the origin, reaching out to `look.radius`."""
  if look.shape == 'polygon':
    count = int(look.detail)
    # Gaps between vertex angles stay under pi, so the polygon contains its centre.
    angles = 2 * np.pi * (np.arange(count) + rng.uniform(-0.2, 0.2, count)) / count
    radii = rng.uniform(0.7, 1.0, count)
  else:
    angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    if look.shape == 'ellipse':
      radii = look.detail / np.hypot(look.detail * np.cos(angles), np.sin(angles))
    else:
      orders = np.arange(2, 6)[:, None]
      amplitudes = rng.uniform(0, 0.35, (4, 1)) / (orders - 1)
      radii = 1 + (amplitudes * np.cos(orders * angles + rng.uniform(0, 2 * np.pi, (4, 1)))).sum(0)
      radii = np.maximum(radii, 0.35)
  points = radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], -1)
  return points * look.radius / np.hypot(*points.T).max()


def _texture_level(rng, look, size):
  """[size, size] texture pattern as positions on the colour ramp, about the sprite centre."""
  coords = np.arange(size, dtype=np.float32) - (size - 1) / 2
  x, y = np.meshgrid(coords, coords)
  u = x * np.cos(look.angle) + y * np.sin(look.angle)
  v = y * np.cos(look.angle) - x * np.sin(look.angle)
  phase = rng.uniform(0, 2 * np.pi)
  if look.texture == 'stripes':
    level = 0.5 + 0.5 * np.tanh(3 * np.sin(2 * np.pi * u / look.period + phase))
  elif look.texture == 'checker':
    level = (np.floor(u / look.period + phase) + np.floor(v / look.period)) % 2
  elif look.texture == 'rings':
    level = 0.5 + 0.5 * np.sin(2 * np.pi * np.hypot(x, y) / look.period + phase)
  elif look.texture == 'noise':
    level = _smooth_noise(rng, size, size, look.period, look.period)
  else:
    level = u / size + 0.3 * _smooth_noise(rng, size, size, look.period, look.period)
  return level


def _sprite(rng, look):
  """The instance at full scale: textured, darker towards its outline, anti-aliased alpha."""
  outline = _outline(rng, look)
  size = 2 * int(np.ceil(look.radius)) + 5
  mask = np.zeros((size, size), np.uint8)
  vertices = np.round((outline + (size - 1) / 2) * 16).astype(np.int32)
  cv2.fillPoly(mask, [vertices], 255, cv2.LINE_AA, shift=4)
  alpha = mask.astype(np.float32)[..., None] / 255
  inside = mask >= 128
  depth = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
  shade = 0.7 + 0.3 * np.minimum(depth / (0.35 * look.radius), 1)
  level = _texture_level(rng, look, size)
  # Centred on the outline, so that look-alikes share colour statistics and not only colours.
  level += 0.5 - level[inside].mean()
  rgb = _ramp(level, look.colours) * shade[..., None]
  radius = float(np.hypot(*outline.T).max())
  return _Sprite(np.concatenate([rgb * alpha, alpha], -1), outline, radius)


def _warp(sprite, centre, angle, scale, origin, size):
  """The sprite rotated, scaled and centred on `centre`, cut to the (w, h) window at `origin`."""
  a, b = scale * np.cos(angle), scale * np.sin(angle)
  middle = (sprite.rgba.shape[0] - 1) / 2
  matrix = np.array([[a, -b, centre[0] - origin[0] - (a - b) * middle],
                     [b, a, centre[1] - origin[1] - (a + b) * middle]])
  return cv2.warpAffine(sprite.rgba, matrix, size, flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT)


def _extents(outline, angles, scales):
  """[T, 4] reach of the posed outline left, right, up and down of its centre."""
  cos, sin = (scales * np.cos(angles))[:, None], (scales * np.sin(angles))[:, None]
  x = cos * outline[:, 0] - sin * outline[:, 1]
  y = sin * outline[:, 0] + cos * outline[:, 1]
  return np.stack([-x.min(1), x.max(1), -y.min(1), y.max(1)], -1)


def _place_pillar(rng, width, spread, window, radius):
  """Left edge per frame and width of the full-height pillar that hides an object.

  The pillar is wide enough to hide the object (of horizontal `spread` per frame) with room to
  travel behind it, and leaves `radius` pixels of frame on either side in every frame.
  """
  first, last = window
  frames = np.arange(len(spread))
  middle = (first + last) / 2
  reach = np.abs(frames - middle).max()
  base = spread[first:last + 1].max() + 2 * _MARGIN
  drift = rng.uniform(-0.1, 0.1) * width / len(spread)
  slack = width - 1 - 2 * radius - base - 2 * abs(drift) * reach
  if slack < 0:
    drift, slack = 0.0, max(width - 1 - 2 * radius - base, 0.0)
  travel = min(rng.uniform(0.15, 0.3) * width, slack)
  left = radius + abs(drift) * reach + rng.uniform(0, slack - travel)
  return left + drift * (frames - middle), base + travel


def _pillar_pins(rng, height, extents, window, pillar, from_left, radius):
  """(frame, centre) pins that take an object behind the pillar and out at its other side."""
  first, last = window
  pillar_left, pillar_width = pillar
  left, right = extents[:, 0], extents[:, 1]
  sliver = np.maximum(4, 0.25 * (left + right))
  # Centres at which `sliver` pixels of the object show left or right of the pillar.
  show_left = pillar_left + left - sliver
  show_right = pillar_left + pillar_width - right + sliver
  low = pillar_left + left + _MARGIN
  high = pillar_left + pillar_width - right - _MARGIN
  frames = np.arange(first, last + 1)
  progress = (frames - first) / max(last - first, 1)
  if not from_left:
    progress = 1 - progress
    show_left, show_right = show_right, show_left
  xs = low[frames] + (high - low)[frames] * progress
  y_in, y_out = rng.uniform(radius, height - 1 - radius, 2)
  ys = y_in + (y_out - y_in) * (frames - first + 1) / (last - first + 2)
  return ([(first - 1, np.array([show_left[first - 1], y_in]))]
          + [(int(t), np.array([x, y])) for t, x, y in zip(frames, xs, ys)]
          + [(last + 1, np.array([show_right[last + 1], y_out]))])


def _edge_centre(edge, along, inside, extent, height, width):
  """Centre that leaves `inside` pixels of the object in the frame past `edge` (negative: out)."""
  left, right, up, down = extent
  return np.array({'left': (inside - 1 - right, along),
                   'right': (width - inside + left, along),
                   'top': (along, inside - 1 - down),
                   'bottom': (along, height - inside + up)}[edge])


def _exit_pins(rng, height, width, extents, window, radius):
  """(frame, centre) pins that take an object out of the frame and back in far from its exit."""
  first, last = window
  edges = ('left', 'right', 'top', 'bottom')

  def border_point(edge, along):
    return np.array({'left': (0, along), 'right': (width - 1, along),
                     'top': (along, 0), 'bottom': (along, height - 1)}[edge])

  def random_along(edge):
    return rng.uniform(radius, (height if edge in ('left', 'right') else width) - 1 - radius)

  for _ in range(100):
    leave, enter = edges[rng.integers(4)], edges[rng.integers(4)]
    leave_at, enter_at = random_along(leave), random_along(enter)
    gap = border_point(leave, leave_at) - border_point(enter, enter_at)
    if np.linalg.norm(gap) >= 0.5 * max(height, width):
      break
  else:
    leave, enter = ('left', 'right') if width >= height else ('top', 'bottom')

  def pin(frame, edge, along, inside):
    return frame, _edge_centre(edge, along, inside, extents[frame], height, width)

  def sliver(frame, edge):
    left, right, up, down = extents[frame]
    return max(4.0, 0.25 * ((left + right) if edge in ('left', 'right') else (up + down)))

  middle = (first + last) / 2
  return ([pin(first - 1, leave, leave_at, sliver(first - 1, leave))]
          + [pin(t, leave, leave_at, -_MARGIN) if t < middle else pin(t, enter, enter_at, -_MARGIN)
             for t in range(first, last + 1)]
          + [pin(last + 1, enter, enter_at, sliver(last + 1, enter))])


def _start_positions(rng, radii, low, high, pillar_band):
  """Frame-0 centres, apart from each other and off the pillar where the frame has room."""
  placed = []
  for radius, lo, hi in zip(radii, low, high):
    best, best_score = None, -np.inf
    for _ in range(50):
      point = rng.uniform(lo, hi)
      scores = [np.linalg.norm(point - other) / (radius + other_radius)
                for other, other_radius in zip(placed, radii)]
      if pillar_band is not None:
        scores.append(max(pillar_band[0] - point[0], point[0] - pillar_band[1]) / radius)
      score = min(scores, default=np.inf)
      if score > best_score:
        best, best_score = point, score
      if score >= 1:
        break
    placed.append(best)
  return placed


def _overlap_offset(rng, front, back, front_pose, back_pose):
  """Offset of the front centre from the back one at which the front hides a quarter of the back."""
  size = int(np.ceil(2 * (front.radius + back.radius))) + 9
  middle = (size - 1) / 2
  back_mask = _warp(back, (middle, middle), *back_pose, (0, 0), (size, size))[..., 3] >= 0.5
  heading = rng.uniform(0, 2 * np.pi)
  unit = np.array([np.cos(heading), np.sin(heading)])
  for distance in np.linspace(front.radius + back.radius, 0, 16):
    offset = distance * unit
    front_mask = _warp(front, middle + offset, *front_pose, (0, 0), (size, size))[..., 3] >= 0.5
    if np.count_nonzero(front_mask & back_mask) >= 0.25 * np.count_nonzero(back_mask):
      break
  return offset


def _trajectory(rng, pins, low, high, max_step, num_frames):
  """[T, 2] centres through the (frame, centre) pins, wandering in [low, high] between and after.

  Keyframes 5-10 frames apart follow a random walk with momentum that keeps within reach of the
  next pin, so that speeds stay near `max_step` per frame unless two pins force a faster move.
  """
  last_frame = num_frames - 1
  frame, point = pins[0]
  times, points = [frame], [point]
  heading = rng.uniform(0, 2 * np.pi)
  for end, finish in pins[1:] + [(None, None)]:
    while True:
      step = int(rng.integers(5, 11))
      if (frame >= last_frame) if end is None else (frame + step > end - 3):
        break
      frame += step
      heading += rng.normal(0, 0.6)
      direction = np.array([np.cos(heading), np.sin(heading)])
      goal = point + rng.uniform(0.4, 1.0) * max_step * step * direction
      if end is not None:
        reach, away = 0.8 * max_step * (end - frame), goal - finish
        if np.linalg.norm(away) > reach:
          goal = finish + away * reach / np.linalg.norm(away)
      row = min(frame, last_frame)
      inside = np.clip(goal, low[row], high[row])
      # Turn back towards the middle of the allowed region instead of sliding along its edge.
      clipped = not np.allclose(inside, goal)
      towards = (low[row] + high[row]) / 2 - inside if clipped else inside - point
      heading = np.arctan2(towards[1], towards[0]) + rng.normal(0, 0.3)
      point = inside
      times.append(frame)
      points.append(point)
    if end is not None:
      frame, point = end, finish
      times.append(frame)
      points.append(point)
  points = np.array(points)
  frames = np.arange(num_frames)
  return np.stack([np.interp(frames, times, points[:, axis]) for axis in (0, 1)], -1)


def _plan_centres(rng, config, sprites, angles, scales, target, depth_order, hide_by):
  """Centres [K, T, 2], the target's hidden window, and the pillar (left edges, width) or None.

  The target is fully hidden for a drawn number of frames and reappears elsewhere; the two
  instances of a pair of annotated objects are made to overlap partially at one frame.
  """
  num_frames, height, width = config.num_frames, config.height, config.width
  count = len(sprites)
  radii = np.array([sprite.radius for sprite in sprites])
  max_step = config.max_speed * min(height, width)
  length = int(rng.integers(config.hidden_frames[0], config.hidden_frames[1] + 1))
  before = max(4, (num_frames - length) // 4)
  first = int(rng.integers(before, num_frames - length - before + 1))
  last = first + length - 1
  extents = _extents(sprites[target].outline, angles[target], scales[target])

  low = np.broadcast_to(0.6 * radii[:, None, None], (count, num_frames, 2)).copy()
  high = np.array([width - 1, height - 1], float) - low
  pillar = None
  if hide_by == 'occluder':
    radius = radii[target]
    pillar = _place_pillar(rng, width, extents[:, 0] + extents[:, 1], (first, last), radius)
    from_left = bool(rng.random() < 0.5)
    target_pins = _pillar_pins(rng, height, extents, (first, last), pillar, from_left, radius)
    left_of_pillar = pillar[0] - 0.3 * radius
    right_of_pillar = pillar[0] + pillar[1] + 0.3 * radius
    # The target stays on its side of the pillar before and after it goes behind it.
    if from_left:
      high[target, :first, 0] = left_of_pillar[:first]
      low[target, last + 1:, 0] = right_of_pillar[last + 1:]
    else:
      low[target, :first, 0] = right_of_pillar[:first]
      high[target, last + 1:, 0] = left_of_pillar[last + 1:]
  else:
    target_pins = _exit_pins(rng, height, width, extents, (first, last), radii[target])
  _collapse_empty(low, high)

  start_low, start_high = low[:, 0] + 0.4 * radii[:, None], high[:, 0] - 0.4 * radii[:, None]
  _collapse_empty(start_low, start_high)
  band = None if pillar is None else (pillar[0][0], pillar[0][0] + pillar[1])
  starts = _start_positions(rng, radii, start_low, start_high, band)
  pins = [[(0, start)] for start in starts]
  pins[target] += target_pins

  others = [k for k in range(config.num_objects) if k != target]
  if len(others) >= 2:
    pair = [int(k) for k in rng.choice(others, 2, replace=False)]
    frames = list(range(max(2, num_frames // 4), num_frames - 1))
  elif others:
    pair = [target, others[0]]
    frames = [t for t in range(2, num_frames - 1) if t < first - 3 or t > last + 3]
  else:
    frames = []
  if frames:
    front, back = sorted(pair, key=depth_order.index, reverse=True)
    frame = int(rng.choice(frames))
    band = None if pillar is None else (pillar[0][frame], pillar[0][frame] + pillar[1])
    _pin_crossing(rng, sprites, angles[:, frame], scales[:, frame], front, back, frame, pins,
                  low[:, frame], high[:, frame], band, max_step)
  centres = np.stack([
      _trajectory(rng, sorted(p, key=lambda pin: pin[0]), low[k], high[k], max_step, num_frames)
      for k, p in enumerate(pins)])
  return centres, (first, last + 1), pillar


def _collapse_empty(low, high):
  """Where a region is empty (low > high), shrinks it to the midpoint, in place."""
  empty = low > high
  middle = (low + high) / 2
  low[empty] = high[empty] = middle[empty]


def _pin_crossing(rng, sprites, angles, scales, front, back, frame, pins, low, high, band,
                  max_step):
  """Adds pins that make `front` partially cover `back` at `frame`, in view and off the pillar."""
  offset = _overlap_offset(rng, sprites[front], sprites[back], (angles[front], scales[front]),
                           (angles[back], scales[back]))

  def speed(k, point):
    previous_frame, previous = max((pin for pin in pins[k] if pin[0] < frame),
                                   key=lambda pin: pin[0])
    return np.linalg.norm(point - previous) / (frame - previous_frame)

  def cost(k, point):
    outside = np.maximum(low[k] - point, 0).sum() + np.maximum(point - high[k], 0).sum()
    hidden = 0.0
    if band is not None:
      radius = sprites[k].radius
      hidden = max(0.0, min(point[0] + radius, band[1]) - max(point[0] - radius, band[0]))
    return 100 * (outside + hidden) + max(0.0, speed(k, point) - max_step)

  best, best_cost = None, np.inf
  for _ in range(50):
    point = rng.uniform(low[front], high[front])
    total = cost(front, point) + cost(back, point - offset)
    if total < best_cost:
      best, best_cost = point, total
  pins[front].append((frame, best))
  pins[back].append((frame, best - offset))


def _background(rng, height, width, short_side):
  """Procedural scenery: multi-scale coloured noise with muted, shaded patches of clutter."""
  level = sum(weight * _smooth_noise(rng, height, width, cell * short_side, cell * short_side)
              for weight, cell in ((0.5, 0.6), (0.3, 0.15), (0.2, 0.03)))
  canvas = _ramp(level, _muted_colours(rng))
  grain = 0.8 + 0.4 * _smooth_noise(rng, height, width, 0.02 * short_side, 0.02 * short_side)
  for _ in range(int(rng.integers(8, 16))):
    mask = np.zeros((height, width), np.uint8)
    centre = (rng.uniform(0, width), rng.uniform(0, height))
    sides = rng.uniform(0.05, 0.4, 2) * short_side
    corners = cv2.boxPoints((centre, tuple(sides), rng.uniform(0, 180)))
    if rng.random() < 0.5:
      cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 255, cv2.LINE_AA)
    else:
      cv2.ellipse(mask, (centre, tuple(sides), rng.uniform(0, 180)), 255, -1, cv2.LINE_AA)
    alpha = mask[..., None].astype(np.float32) / 255 * rng.uniform(0.4, 0.9)
    colour = _hsv(rng.random(), rng.uniform(0, 0.35), rng.uniform(0.25, 0.85))
    canvas = canvas * (1 - alpha) + colour * grain[..., None] * alpha
  return canvas


def _pillar_texture(rng, height, width, short_side):
  """A grained, rounded-looking pillar face of the given size."""
  level = (0.7 * _smooth_noise(rng, height, width, 0.3 * short_side, 0.02 * short_side)
           + 0.3 * _smooth_noise(rng, height, width, 0.05 * short_side, 0.05 * short_side))
  across = np.sin(np.pi * (np.arange(width) + 0.5) / width)
  shade = (0.55 + 0.45 * across)[None, :, None].astype(np.float32)
  return _ramp(level, _muted_colours(rng)) * shade


def _camera_path(rng, config):
  """[T, 2] non-negative (x, y) offset of the view into the background canvas, per frame."""
  frames = np.arange(config.num_frames)[:, None]
  pan = config.camera_pan * np.array([config.width * rng.choice([-1, 1]) * rng.uniform(0.3, 1.0),
                                      config.height * rng.uniform(-0.3, 0.3)])
  shake = rng.uniform(0, 1.5, 2) * np.sin(
      2 * np.pi * frames / rng.uniform(6, 14, 2) + rng.uniform(0, 2 * np.pi, 2))
  path = frames / max(config.num_frames - 1, 1) * pan + shake
  return path - path.min(0)


def _render(rng, config, sprites, centres, angles, scales, depth_order, pillar):
  """Composites background, instances back to front and pillar: frames, instances, areas."""
  num_frames, height, width = config.num_frames, config.height, config.width
  short_side = min(height, width)
  camera = _camera_path(rng, config)
  span = np.ceil(camera.max(0)).astype(int) + 2
  background = _background(rng, height + span[1], width + span[0], short_side)
  if pillar is not None:
    pillar_face = _pillar_texture(rng, height, int(np.ceil(pillar[1])) + 2, short_side)
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
      patch = _warp(sprites[k], (x, y), angles[k, t], scales[k, t], (x0, y0), (x1 - x0, y1 - y0))
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
  looks = _object_looks(rng, num_objects, np.array(config.object_size) * short_side)
  target = int(rng.integers(num_objects))
  others = [k for k in range(num_objects) if k != target]
  originals = [target] + [int(k) for k in rng.permutation(others)]
  imitates = np.array([originals[j % num_objects] for j in range(config.num_distractors)], np.int32)
  looks += [_look_alike(rng, looks[k]) for k in imitates]
  sprites = [_sprite(rng, look) for look in looks]
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

  centres, window, pillar = _plan_centres(rng, config, sprites, angles, scales, target,
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


def write_davis(root, videos, split, jpeg_quality=95):
  """Writes synthetic videos in the DAVIS 2017 layout and adds them to the split's image set.

  See `davis.write_davis_sequences`; `videos` maps sequence names to `SyntheticVideo`s.
  """
  davis.write_davis_sequences(
      root, {name: (video.frames, video.labels) for name, video in videos.items()}, split, jpeg_quality)


def generate_davis(root, num_videos, split, config=SyntheticVideoConfig(), seed=0):
  """Generates videos one at a time and writes them to a DAVIS 2017 root.

  Video i is named f'synthetic-{split}-{i:04d}' and generated from `config` with its seed drawn
  from (seed, split, i), so the splits differ even with one `seed`.

  Args:
    root: dataset root.
    num_videos: how many videos to write.
    split: image-set name, such as 'train' or 'val'.
    config: a `SyntheticVideoConfig`; its own seed is ignored.
    seed: non-negative integer.

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
    write_davis(root, {name: generate_video(dataclasses.replace(config, seed=video_seed))}, split)
    names.append(name)
  return names
