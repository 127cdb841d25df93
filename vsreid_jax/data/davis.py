"""DAVIS datasets on disk: the 2017 layout and the original 2016 layout, read lazily."""

import dataclasses
import os
import pathlib
import re

import cv2
import numpy as np

from vsreid_jax.data import palette
from vsreid_jax.data.video import FrameSequence, natural_sort_key
from vsreid_jax.errors import InputError

LAYOUTS = ('auto', '2017', '2016')


@dataclasses.dataclass(frozen=True)
class DavisSequence:
  """One sequence: lazy frames and the paths of its annotations.

  Attributes:
    name: sequence name ('bear').
    frames: the video, read on demand.
    annotation_paths: annotation PNGs in frame order (test sets have only the first).
    layout: '2017' (indexed PNGs, 255 = void) or '2016' (binary 0/255 masks).
  """
  name: str
  frames: FrameSequence
  annotation_paths: tuple
  layout: str

  @property
  def annotation_names(self):
    return [path.stem for path in self.annotation_paths]

  def read_annotation(self, index):
    """Object ids of annotation `index`: uint8 [H, W], 0 background, 255 void (2017)."""
    path = self.annotation_paths[index]
    labels = palette.read_label_png(path)
    if self.layout == '2016':
      labels = (labels > 127).astype(np.uint8)
    if labels.shape != self.frames.size:
      raise InputError(
          f'{path}: mask size {labels.shape[1]}x{labels.shape[0]} differs from the frame size '
          f'{self.frames.width}x{self.frames.height}')
    return labels

  def first_mask(self):
    """The first frame's object ids, checked to contain at least one object."""
    if not self.annotation_paths:
      raise InputError(f'sequence {self.name}: no annotation for the first frame')
    labels = self.read_annotation(0)
    if not np.any((labels > 0) & (labels != palette.VOID_LABEL)):
      raise InputError(f'{self.annotation_paths[0]}: the first-frame mask contains no object')
    return labels

  @property
  def num_objects(self):
    """Objects of the sequence: the largest id in the first annotation, as the official code."""
    labels = self.first_mask()
    return int(labels[labels != palette.VOID_LABEL].max())


class DavisDataset:
  """A DAVIS root folder and one of its splits.

  2017 layout: `ImageSets/2017/<split>.txt` lists sequence names; frames are
  `JPEGImages/<resolution>/<seq>/*.jpg` and annotations
  `Annotations/<resolution>/<seq>/*.png` (indexed palette PNGs).
  2016 layout: `ImageSets/<resolution>/<split>.txt` lists one
  `/JPEGImages/... /Annotations/...` pair per frame; masks are binary 0/255 and
  read as object 1.

  Args:
    root: the DAVIS folder.
    split: 'train', 'val', 'test-dev', ... (the name of the split file).
    layout: '2017', '2016', or 'auto' to recognise it from the split files.
    resolution: '480p' or 'Full-Resolution'.
  """

  def __init__(self, root, split='val', layout='auto', resolution='480p'):
    self.root = pathlib.Path(root)
    self.split = split
    self.resolution = resolution
    if layout not in LAYOUTS:
      raise InputError(f'layout must be one of {LAYOUTS}, got {layout!r}')
    if not self.root.is_dir():
      raise InputError(f'{self.root}: DAVIS folder not found')
    split_files = {
        '2017': self.root / 'ImageSets' / '2017' / f'{split}.txt',
        '2016': self.root / 'ImageSets' / resolution / f'{split}.txt',
    }
    if layout == 'auto':
      layout = next((year for year, path in split_files.items() if path.is_file()), None)
      if layout is None:
        raise InputError(
            f'{self.root}: split file not found for split {split!r} '
            f'(looked for {split_files["2017"]} and {split_files["2016"]})')
    elif not split_files[layout].is_file():
      raise InputError(f'{split_files[layout]}: split file not found')
    self.layout = layout
    self.split_file = split_files[layout]
    if layout == '2017':
      self._frame_lists = self._read_2017_split()
    else:
      self._frame_lists = self._read_2016_split()
    if not self._frame_lists:
      raise InputError(f'{self.split_file}: lists no sequence')

  def _read_2017_split(self):
    names = [line.strip() for line in self.split_file.read_text().splitlines() if line.strip()]
    frame_lists = {}
    for name in names:
      frame_dir = self.root / 'JPEGImages' / self.resolution / name
      if not frame_dir.is_dir():
        raise InputError(f'{frame_dir}: frame folder of sequence {name} not found')
      frames = sorted(frame_dir.glob('*.jpg'), key=lambda p: natural_sort_key(p.name))
      if not frames:
        raise InputError(f'{frame_dir}: no .jpg frames for sequence {name}')
      annotations = sorted((self.root / 'Annotations' / self.resolution / name).glob('*.png'),
                           key=lambda p: natural_sort_key(p.name))
      frame_lists[name] = (frames, annotations)
    return frame_lists

  def _read_2016_split(self):
    frame_lists = {}
    for line_number, line in enumerate(self.split_file.read_text().splitlines(), 1):
      if not line.strip():
        continue
      parts = line.split()
      if len(parts) != 2:
        raise InputError(f'{self.split_file}:{line_number}: expected "<frame> <annotation>" paths')
      frame, annotation = (self.root / part.lstrip('/') for part in parts)
      frames, annotations = frame_lists.setdefault(frame.parent.name, ([], []))
      frames.append(frame)
      if annotation.is_file():
        annotations.append(annotation)
    for name, (frames, _) in frame_lists.items():
      missing = [f for f in frames if not f.is_file()]
      if missing:
        raise InputError(f'{missing[0]}: frame of sequence {name} not found')
    return frame_lists

  @property
  def sequence_names(self):
    return list(self._frame_lists)

  def sequence(self, name):
    """The `DavisSequence` called `name`; frames are checked for a common size."""
    if name not in self._frame_lists:
      raise InputError(f'sequence {name!r} is not in {self.split_file}')
    frames, annotations = self._frame_lists[name]
    return DavisSequence(name, FrameSequence(frames), tuple(annotations), self.layout)

  def __iter__(self):
    return (self.sequence(name) for name in self.sequence_names)

  def __len__(self):
    return len(self._frame_lists)


_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')


def check_name(name, what):
  """Raises `InputError` unless `name` is usable as a sequence or split name."""
  if not isinstance(name, str) or not _NAME.fullmatch(name):
    raise InputError(f'{what} {name!r} must be letters, digits, "_", "." or "-", '
                     'starting with a letter or digit')


def write_davis_sequences(root, sequences, split, jpeg_quality=95):
  """Writes videos in the DAVIS 2017 layout and adds their names to the split's image set.

  Frames go to JPEGImages/480p/<name>/00000.jpg, labels to Annotations/480p/<name>/00000.png
  (indexed PNGs with the DAVIS palette) whatever the frame size, as DAVIS names its folders. An
  existing sequence of the same name is replaced; ImageSets/2017/<split>.txt keeps the names it
  already lists, so several splits and several calls can share one root.

  Args:
    root: dataset root; created if missing.
    sequences: mapping from sequence name to (frames [T, H, W, 3] uint8 RGB, labels [T, H, W]).
    split: image-set name, such as 'train' or 'val'.
    jpeg_quality: JPEG quality, 1..100.

  Raises:
    InputError: a bad sequence name, split name or quality.
    OSError: a file could not be written.
  """
  check_name(split, 'split')
  for name in sequences:
    check_name(name, 'sequence name')
  if isinstance(jpeg_quality, bool) or not isinstance(jpeg_quality, int) or not 1 <= jpeg_quality <= 100:
    raise InputError(f'jpeg_quality must be an integer in 1..100, got {jpeg_quality!r}')
  root = pathlib.Path(root)
  for name, (frames, labels) in sequences.items():
    image_dir = root / 'JPEGImages' / '480p' / name
    label_dir = root / 'Annotations' / '480p' / name
    for directory, pattern in ((image_dir, '*.jpg'), (label_dir, '*.png')):
      directory.mkdir(parents=True, exist_ok=True)
      for stale in directory.glob(pattern):
        stale.unlink()
    for index, (frame, frame_labels) in enumerate(zip(frames, labels, strict=True)):
      path = image_dir / f'{index:05d}.jpg'
      if not cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                         [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
        raise OSError(f'{path}: could not write the JPEG file')
      palette.write_label_png(label_dir / f'{index:05d}.png', frame_labels)
  image_set = root / 'ImageSets' / '2017' / f'{split}.txt'
  names = set(sequences)
  if image_set.exists():
    names.update(image_set.read_text().split())
  image_set.parent.mkdir(parents=True, exist_ok=True)
  partial = image_set.with_name(f'.{image_set.name}.partial')
  partial.write_text(''.join(f'{name}\n' for name in sorted(names)))
  os.replace(partial, image_set)
