"""Lazy reading of videos stored as folders of frames, and writing label maps per frame."""

import pathlib
import re

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from vsreid_jax.data import palette
from vsreid_jax.errors import InputError

FRAME_SUFFIXES = ('.jpg', '.jpeg', '.png')


def natural_sort_key(name):
  """Key that orders 'frame2' before 'frame10'."""
  return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def image_size(path):
  """(height, width) of an image file, read from its header only."""
  try:
    with Image.open(path) as image:
      width, height = image.size
  except FileNotFoundError:
    raise InputError(f'{path}: file not found') from None
  except (UnidentifiedImageError, OSError) as error:
    raise InputError(f'{path}: unreadable image file ({error})') from None
  return height, width


def read_rgb(path):
  """Decodes an image file to uint8 RGB [H, W, 3] (OpenCV's decoder, as the official code)."""
  image = cv2.imread(str(path), cv2.IMREAD_COLOR)
  if image is None:
    if not pathlib.Path(path).is_file():
      raise InputError(f'{path}: file not found')
    raise InputError(f'{path}: unreadable image file')
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FrameSequence:
  """The frames of one video, read from disk only when indexed.

  Frame sizes are checked from the file headers when the sequence is built, so
  a bad frame is reported before any work starts, yet no pixel data stays in
  memory: `frames[i]` decodes frame i on every call.

  Attributes:
    paths: frame files in temporal order.
    names: file stems ('00000'), used to name per-frame outputs.
    height, width: the common frame size.
  """

  def __init__(self, paths):
    self.paths = [pathlib.Path(p) for p in paths]
    if not self.paths:
      raise InputError('a video needs at least one frame')
    self.names = [p.stem for p in self.paths]
    self.height, self.width = image_size(self.paths[0])
    for path in self.paths[1:]:
      size = image_size(path)
      if size != (self.height, self.width):
        raise InputError(
            f'{path}: frame size {size[1]}x{size[0]} differs from the first frame '
            f'{self.paths[0].name} ({self.width}x{self.height})')

  def __len__(self):
    return len(self.paths)

  def __getitem__(self, index):
    if not -len(self) <= index < len(self):
      raise IndexError(f'frame {index} out of range for a {len(self)}-frame video')
    return read_rgb(self.paths[index])

  def __iter__(self):
    return (self[i] for i in range(len(self)))

  @property
  def size(self):
    return self.height, self.width


def read_frame_folder(folder):
  """A folder of .jpg/.jpeg/.png frames in natural sort order, as a lazy `FrameSequence`."""
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise InputError(f'{folder}: frame folder not found')
  paths = [p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()]
  if not paths:
    raise InputError(f'{folder}: no frames (.jpg, .jpeg or .png files) found')
  return FrameSequence(sorted(paths, key=lambda p: natural_sort_key(p.name)))


def davis_first_mask(sequence_dir):
  """The first annotation of a frame folder inside a DAVIS layout, or None.

  For `<root>/JPEGImages/<resolution>/<sequence>`, that is
  `<root>/Annotations/<resolution>/<sequence>/<first frame>.png` when it exists.
  """
  sequence_dir = pathlib.Path(sequence_dir)
  if sequence_dir.parent.parent.name != 'JPEGImages' or not sequence_dir.is_dir():
    return None
  annotations = sequence_dir.parent.parent.parent / 'Annotations' / sequence_dir.parent.name / sequence_dir.name
  frames = sorted((p for p in sequence_dir.iterdir() if p.suffix.lower() in FRAME_SUFFIXES),
                  key=lambda p: natural_sort_key(p.name))
  if not frames or not (annotations / f'{frames[0].stem}.png').is_file():
    return None
  return annotations / f'{frames[0].stem}.png'


def read_first_mask(path, frames):
  """Reads the first-frame mask of `frames` and checks it against the video.

  Args:
    path: indexed palette PNG, grayscale label PNG, or binary PNG.
    frames: the `FrameSequence` the mask belongs to.

  Returns:
    [H, W] uint8 object ids, 0 for background.

  Raises:
    InputError: size differs from the frames, or no object in the mask.
  """
  labels = palette.read_mask(path)
  if labels.shape != frames.size:
    raise InputError(
        f'{path}: mask size {labels.shape[1]}x{labels.shape[0]} differs from the frame size '
        f'{frames.width}x{frames.height}')
  if not np.any((labels > 0) & (labels != palette.VOID_LABEL)):
    raise InputError(f'{path}: the first-frame mask contains no object')
  return labels


def write_label_sequence(output_dir, names, label_maps):
  """Writes one DAVIS palette PNG per frame, named after the input frames.

  Args:
    output_dir: destination folder, created if needed.
    names: frame stems, as `FrameSequence.names`.
    label_maps: iterable of [H, W] label maps, one per name.
  """
  output_dir = pathlib.Path(output_dir)
  count = 0
  for name, labels in zip(names, label_maps, strict=True):
    palette.write_label_png(output_dir / f'{name}.png', labels)
    count += 1
  return count
