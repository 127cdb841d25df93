"""Augmentations for training the propagation network: guidance deformations, crops, flips.

The guidance map given to the network in training is a corrupted version of
the object's mask, as MaskTrack trains it, so that the network learns to
repair the imperfect masks that propagation hands it at test time.
"""

import dataclasses

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class GuidanceDeformation:
  """How the guidance mask is corrupted.

  Attributes:
    scale: largest relative scale change of the affine part (0.05: +-5%).
    translation: largest shift of the affine part, as a fraction of the object's box size.
    thin_plate: standard deviation of the thin-plate control point displacements,
      as a fraction of the object's box size.
    thin_plate_points: control points per side of the thin-plate grid.
    morphology: largest dilation/erosion radius in pixels at a 100-pixel object; scaled with size.
    box_probability: chance that the guidance is the object's plain box instead.
    empty_probability: chance that the guidance is empty (the object is to be found unguided).
  """
  scale: float = 0.05
  translation: float = 0.1
  thin_plate: float = 0.04
  thin_plate_points: int = 4
  morphology: int = 8
  box_probability: float = 0.05
  empty_probability: float = 0.02

  def __post_init__(self):
    for name in ('scale', 'translation', 'thin_plate', 'box_probability', 'empty_probability'):
      value = getattr(self, name)
      if not 0 <= value <= 1:
        raise ValueError(f'guidance deformation {name} must lie in [0, 1], got {value}')
    if self.box_probability + self.empty_probability > 1:
      raise ValueError('guidance deformation box_probability + empty_probability must be at most 1')
    if self.thin_plate_points < 2 or self.morphology < 0:
      raise ValueError('guidance deformation needs thin_plate_points >= 2 and morphology >= 0')


def mask_box(mask):
  """(x0, y0, x1, y1) of a mask's nonzero pixels, x1/y1 exclusive; None for an empty mask."""
  rows = np.flatnonzero(mask.any(axis=1))
  if rows.size == 0:
    return None
  cols = np.flatnonzero(mask.any(axis=0))
  return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _thin_plate_kernel(squared_distance):
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(squared_distance > 0, squared_distance * np.log(squared_distance), 0.0)


def thin_plate_map(targets, sources, height, width):
  """Sampling maps of the thin-plate spline sending control points `targets` to `sources`.

  Args:
    targets: [K, 2] (x, y) control points in the output image.
    sources: [K, 2] (x, y) points they sample from in the input image.
    height, width: output size.

  Returns:
    (map_x, map_y) float32 [height, width] maps for `cv2.remap`.
  """
  num_points = len(targets)
  kernel = _thin_plate_kernel(((targets[:, None] - targets[None]) ** 2).sum(-1))
  affine = np.concatenate([np.ones((num_points, 1)), targets], axis=1)
  system = np.zeros((num_points + 3, num_points + 3))
  system[:num_points, :num_points] = kernel
  system[:num_points, num_points:] = affine
  system[num_points:, :num_points] = affine.T
  right = np.zeros((num_points + 3, 2))
  right[:num_points] = sources
  coefficients = np.linalg.lstsq(system, right, rcond=None)[0]
  ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
  grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
  radial = _thin_plate_kernel(((grid[:, None] - targets[None]) ** 2).sum(-1))
  mapped = radial @ coefficients[:num_points] + coefficients[num_points] + grid @ coefficients[num_points + 1:]
  return (mapped[:, 0].reshape(height, width).astype(np.float32),
          mapped[:, 1].reshape(height, width).astype(np.float32))


def deform_guidance(mask, rng, deformation=GuidanceDeformation()):
  """Corrupts a binary object mask into a training guidance map.

  Random affine (scale about the centre, shift), a thin-plate deformation with
  control points around the object, and a dilation or erosion; occasionally
  the object's box or an empty map instead.

  Args:
    mask: [H, W] binary mask (bool or 0/1).
    rng: `np.random.Generator`.
    deformation: a `GuidanceDeformation`.

  Returns:
    [H, W] float32 guidance in {0, 1}.
  """
  mask = np.asarray(mask) > 0
  height, width = mask.shape
  box = mask_box(mask)
  choice = rng.random()
  if box is None or choice < deformation.empty_probability:
    return np.zeros(mask.shape, np.float32)
  if choice < deformation.empty_probability + deformation.box_probability:
    boxed = np.zeros(mask.shape, np.float32)
    boxed[box[1]:box[3], box[0]:box[2]] = 1
    return boxed
  x0, y0, x1, y1 = box
  size = np.array([x1 - x0, y1 - y0], np.float64)
  centre = np.array([x0 + x1, y0 + y1], np.float64) / 2
  scale = 1 + rng.uniform(-deformation.scale, deformation.scale)
  shift = rng.uniform(-deformation.translation, deformation.translation, 2) * size
  steps = np.linspace(-0.6, 0.6, deformation.thin_plate_points)
  grid = np.stack(np.meshgrid(steps, steps), -1).reshape(-1, 2)
  targets = centre + grid * size
  jitter = rng.normal(0, deformation.thin_plate, targets.shape) * size
  # Output pixel x samples the mask at centre + (x - shift - centre) / scale + jitter.
  sources = centre + (targets - shift - centre) / scale + jitter
  map_x, map_y = thin_plate_map(targets, sources, height, width)
  deformed = cv2.remap(mask.astype(np.uint8), map_x, map_y, cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  radius = int(round(rng.uniform(0, 1) * deformation.morphology * min(size.max() / 100, 3)))
  if radius > 0:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    deformed = (cv2.dilate if rng.random() < 0.5 else cv2.erode)(deformed, kernel)
  return deformed.astype(np.float32)


def crop_box(box, height, width, rng=None, enlarge=0.15, jitter=0.0, scale_range=(1.0, 1.0)):
  """Square-free crop window around a box: enlarged per side, optionally jittered and rescaled.

  Args:
    box: (x0, y0, x1, y1), x1/y1 exclusive.
    height, width: image size; the window is clipped to it.
    rng: `np.random.Generator`, needed when `jitter` > 0 or `scale_range` is not (1, 1).
    enlarge: fraction of the box size added on each side (0.15 as at test time).
    jitter: largest random shift of the window, as a fraction of its size.
    scale_range: (min, max) random factor on the window size.

  Returns:
    (x0, y0, x1, y1) integer window inside the image, at least 1 pixel wide and high.
  """
  x0, y0, x1, y1 = (float(v) for v in box)
  w, h = x1 - x0, y1 - y0
  x0, x1, y0, y1 = x0 - enlarge * w, x1 + enlarge * w, y0 - enlarge * h, y1 + enlarge * h
  if rng is not None:
    factor = rng.uniform(*scale_range)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = (x1 - x0) * factor, (y1 - y0) * factor
    cx += rng.uniform(-jitter, jitter) * w
    cy += rng.uniform(-jitter, jitter) * h
    x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
  x0, y0 = int(np.clip(np.floor(x0), 0, width - 1)), int(np.clip(np.floor(y0), 0, height - 1))
  x1, y1 = int(np.clip(np.ceil(x1), x0 + 1, width)), int(np.clip(np.ceil(y1), y0 + 1, height))
  return x0, y0, x1, y1


def crop_and_resize(array, window, size, interpolation=cv2.INTER_LINEAR):
  """Crops `window` (x0, y0, x1, y1) from [H, W, ...] `array` and resizes it to size x size."""
  x0, y0, x1, y1 = window
  patch = np.ascontiguousarray(array[y0:y1, x0:x1])
  resized = cv2.resize(patch.astype(np.float32), (size, size), interpolation=interpolation)
  return resized.reshape((size, size) + array.shape[2:])


def flip_example(image, flow, guidance, target):
  """Mirrors an example left-right; the flow's x component is negated because motion mirrors too."""
  flow = flow[:, ::-1].copy()
  flow[..., 0] = -flow[..., 0]
  return image[:, ::-1].copy(), flow, guidance[:, ::-1].copy(), target[:, ::-1].copy()
