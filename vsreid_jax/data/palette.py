"""Label maps as PNG files: the DAVIS palette, reading every mask format, atomic writing."""

import os
import pathlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from vsreid_jax.errors import InputError


def _davis_palette():
  """The 256-colour palette of DAVIS annotations (the PASCAL VOC colour map).

  Label k spreads its bits over the colour channels: bit 3j (+1, +2) of k sets
  bit 7 - j of red (green, blue).
  """
  labels = np.arange(256)
  palette = np.zeros((256, 3), np.uint8)
  for j in range(8):
    for channel in range(3):
      bit = (labels >> (3 * j + channel)) & 1
      palette[:, channel] |= (bit << (7 - j)).astype(np.uint8)
  return palette


DAVIS_PALETTE = _davis_palette()
VOID_LABEL = 255


def write_label_png(path, labels):
  """Writes a label map as an indexed PNG with the DAVIS palette, atomically.

  The file appears complete or not at all: it is written next to `path` and
  renamed, so a crash never leaves a half-written PNG.

  Args:
    path: destination file.
    labels: [H, W] integer array with values 0..255.
  """
  labels = np.asarray(labels)
  if labels.ndim != 2:
    raise InputError(f'{path}: a label map must be 2-D, got shape {labels.shape}')
  if labels.size and (labels.min() < 0 or labels.max() > 255):
    raise InputError(f'{path}: labels must lie in 0..255, got {labels.min()}..{labels.max()}')
  image = Image.fromarray(labels.astype(np.uint8), mode='P')
  image.putpalette(DAVIS_PALETTE.ravel().tolist())
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  partial = path.with_name(f'.{path.name}.partial')
  image.save(partial, format='PNG')
  os.replace(partial, path)


def _open_image(path):
  try:
    image = Image.open(path)
    image.load()
  except FileNotFoundError:
    raise InputError(f'{path}: file not found') from None
  except (UnidentifiedImageError, OSError, SyntaxError) as error:
    raise InputError(f'{path}: unreadable image file ({error})') from None
  if image.mode == 'LA':
    # A grayscale mask saved with an alpha channel (one DAVIS 2016 annotation is): the alpha says nothing.
    image = image.getchannel('L')
  return image


def read_label_png(path):
  """Reads the raw indices of an indexed (or grayscale) label PNG, as DAVIS stores them.

  Returns:
    [H, W] uint8 array; 255 marks void pixels in DAVIS 2017 annotations.
  """
  image = _open_image(path)
  if image.mode not in ('P', 'L'):
    raise InputError(f'{path}: expected an indexed or grayscale PNG, got mode {image.mode}')
  return np.array(image, np.uint8)


def read_mask(path):
  """Reads an object mask in any of the accepted formats and returns labels.

  Accepted: an indexed PNG with the DAVIS palette (indices are object ids), a
  grayscale label PNG (values are object ids), a binary PNG (0 and 255, or mode
  '1': one object with id 1), or an RGB(A) PNG whose colours are DAVIS palette
  colours.

  Args:
    path: the PNG file.

  Returns:
    [H, W] uint8 array of object ids, 0 for background.

  Raises:
    InputError: unreadable file, or colours that are not in the DAVIS palette.
  """
  image = _open_image(path)
  if image.mode == '1':
    return np.array(image, np.uint8)
  if image.mode == 'P':
    return np.array(image, np.uint8)
  if image.mode in ('L', 'I', 'I;16'):
    values = np.array(image)
    present = np.unique(values)
    if set(present.tolist()) <= {0, 255} and len(present) == 2:
      return (values == 255).astype(np.uint8)
    if present.max() > 255:
      raise InputError(f'{path}: grayscale label values must be at most 255, found {present.max()}')
    return values.astype(np.uint8)
  if image.mode in ('RGB', 'RGBA'):
    return _colours_to_labels(np.array(image.convert('RGB')), path)
  raise InputError(f'{path}: unsupported PNG mode {image.mode}')


def _colours_to_labels(rgb, path):
  """Maps each pixel's colour to its DAVIS palette index."""
  codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
  palette_codes = ((DAVIS_PALETTE[:, 0].astype(np.int32) << 16)
                   | (DAVIS_PALETTE[:, 1].astype(np.int32) << 8) | DAVIS_PALETTE[:, 2])
  unique_codes, inverse = np.unique(codes, return_inverse=True)
  order = np.argsort(palette_codes, kind='stable')
  position = np.searchsorted(palette_codes[order], unique_codes)
  position = np.minimum(position, len(order) - 1)
  found = palette_codes[order][position] == unique_codes
  if not found.all():
    bad = unique_codes[~found][:3]
    colours = ', '.join(f'({c >> 16}, {(c >> 8) & 255}, {c & 255})' for c in bad)
    raise InputError(f'{path}: colours not in the DAVIS palette: {colours}')
  return order[position][inverse].reshape(rgb.shape[:2]).astype(np.uint8)
