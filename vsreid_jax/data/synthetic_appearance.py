"""How synthetic instances and scenery look: outlines, procedural textures, colours, posing."""

import colorsys
import dataclasses

import cv2
import numpy as np

_SHAPES = ('ellipse', 'polygon', 'blob')
_TEXTURES = ('stripes', 'checker', 'rings', 'noise', 'gradient')


@dataclasses.dataclass(frozen=True)
class Look:
  """How an instance looks: outline family and parameter, radius, texture and colour ramp."""
  shape: str
  detail: float  # ellipse aspect ratio or polygon vertex count
  radius: float
  texture: str
  colours: np.ndarray
  period: float
  angle: float


@dataclasses.dataclass(frozen=True)
class Sprite:
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


def object_looks(rng, num_objects, radius_range):
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
    looks.append(Look(str(shape), float(detail), radius, str(texture), colours,
                       rng.uniform(0.2, 0.5) * radius, rng.uniform(0, np.pi)))
  return looks


def look_alike(rng, look):
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


def make_sprite(rng, look):
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
  return Sprite(np.concatenate([rgb * alpha, alpha], -1), outline, radius)


def pose_sprite(sprite, centre, angle, scale, origin, size):
  """The sprite rotated, scaled and centred on `centre`, cut to the (w, h) window at `origin`."""
  a, b = scale * np.cos(angle), scale * np.sin(angle)
  middle = (sprite.rgba.shape[0] - 1) / 2
  matrix = np.array([[a, -b, centre[0] - origin[0] - (a - b) * middle],
                     [b, a, centre[1] - origin[1] - (a + b) * middle]])
  return cv2.warpAffine(sprite.rgba, matrix, size, flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT)


def background(rng, height, width, short_side):
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


def pillar_texture(rng, height, width, short_side):
  """A grained, rounded-looking pillar face of the given size."""
  level = (0.7 * _smooth_noise(rng, height, width, 0.3 * short_side, 0.02 * short_side)
           + 0.3 * _smooth_noise(rng, height, width, 0.05 * short_side, 0.05 * short_side))
  across = np.sin(np.pi * (np.arange(width) + 0.5) / width)
  shade = (0.55 + 0.45 * across)[None, :, None].astype(np.float32)
  return _ramp(level, _muted_colours(rng)) * shade
