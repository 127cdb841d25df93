"""Training examples for the re-ID detector: DAVIS-layout frames with boxes and identities.

Each annotated object of each sequence is one identity, numbered over the
whole split, so the same object in two frames of a video shares its label.
An example is one frame resized to fit a fixed size (aspect ratio kept) and
padded at the bottom and right, with its objects' boxes padded to a fixed
number. Examples are a pure function of their generator, as in
`propagation_data`, so `propagation_data.local_batch` builds batches.
"""

import dataclasses

import numpy as np

from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.data.palette import VOID_LABEL
from vsreid_jax.errors import InputError
from vsreid_jax.models.oim import UNLABELLED
from vsreid_jax.reid.frame_detector import fit_frame

OBJECT_CLASS = 1
"""Class of every box for now: a class-agnostic 'object'."""
_MAX_TRIES = 20


def object_boxes(labels):
  """Object ids of a label map (void excluded) and their tight boxes, max exclusive."""
  ids = [int(k) for k in np.unique(labels) if 0 < k != VOID_LABEL]
  boxes = []
  for k in ids:
    ys, xs = np.nonzero(labels == k)
    boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
  return ids, np.asarray(boxes, np.float32).reshape(-1, 4)


@dataclasses.dataclass
class FrameBoxSampler:
  """Draws (frame, boxes, classes, identities) examples from a DAVIS-layout split.

  Attributes:
    dataset: the `DavisDataset` split.
    image_size: (height, width) every frame is fitted into.
    max_boxes: boxes per example (padding beyond the objects; extra objects dropped).
    augment: random horizontal flip and zoom.
    scale_range: (low, high) range of the random zoom, at most 1: the frame is
      fitted into `image_size`, then scaled by it.
  """
  dataset: DavisDataset
  image_size: tuple[int, int]
  max_boxes: int
  augment: bool = True
  scale_range: tuple[float, float] = (1.0, 1.0)

  def __post_init__(self):
    if self.max_boxes < 1:
      raise InputError(f'max_boxes must be positive, got {self.max_boxes}')
    if not 0 < self.scale_range[0] <= self.scale_range[1] <= 1:
      raise InputError(f'scale_range must satisfy 0 < low <= high <= 1, got {self.scale_range}')
    self._sequences, self._first_identity = [], []
    self.num_identities = 0
    for name in sorted(self.dataset.sequence_names):
      sequence = self.dataset.sequence(name)
      if len(sequence.annotation_paths) != len(sequence.frames):
        raise InputError(f'sequence {name} of {self.dataset.split_file}: training needs an '
                         f'annotation for every frame ({len(sequence.annotation_paths)} of '
                         f'{len(sequence.frames)})')
      self._sequences.append(sequence)
      self._first_identity.append(self.num_identities)
      self.num_identities += sequence.num_objects

  def example(self, rng):
    """One example drawn with `rng`: dict of float32 image [H, W, 3], boxes [G, 4], bool
    box_mask [G] and int32 classes [G] and identities [G] (`UNLABELLED` beyond the objects
    of the first frame), G = `max_boxes`."""
    for _ in range(_MAX_TRIES):
      index = int(rng.integers(len(self._sequences)))
      sequence = self._sequences[index]
      frame_index = int(rng.integers(len(sequence.frames)))
      ids, boxes = object_boxes(sequence.read_annotation(frame_index))
      if ids:
        break
    else:
      raise InputError(f'{self.dataset.split_file}: found no frame with an object in '
                       f'{_MAX_TRIES} tries')
    frame = sequence.frames[frame_index]
    if self.augment and rng.random() < 0.5:
      frame = frame[:, ::-1]
      boxes[:, [0, 2]] = frame.shape[1] - boxes[:, [2, 0]]
    zoom = rng.uniform(*self.scale_range) if self.augment else self.scale_range[1]
    image, scale = fit_frame(np.ascontiguousarray(frame), *self.image_size, zoom)
    boxes = boxes * scale
    ids = np.asarray(ids[:self.max_boxes])
    count = len(ids)
    identities = np.where(ids <= sequence.num_objects, self._first_identity[index] + ids - 1,
                          UNLABELLED)
    padded = lambda x, dtype: np.pad(np.asarray(x, dtype), [(0, self.max_boxes - count)] +
                                     [(0, 0)] * (np.ndim(x) - 1))
    return {'image': image, 'boxes': padded(boxes[:count], np.float32),
            'box_mask': padded(np.ones(count), bool),
            'classes': padded(np.full(count, OBJECT_CLASS), np.int32),
            'identities': padded(identities, np.int32)}


@dataclasses.dataclass
class IdentityMixture:
  """Draws each example from one of several samplers, chosen at random with the given weights;
  identities are renumbered so the samplers' identities stay distinct."""
  samplers: list
  weights: list

  def __post_init__(self):
    if len(self.samplers) != len(self.weights) or min(self.weights) < 0 or sum(self.weights) <= 0:
      raise InputError(f'mixture weights must be non-negative, one per sampler, and not all 0: '
                       f'{self.weights}')
    self._probabilities = np.asarray(self.weights, np.float64) / sum(self.weights)
    self._offsets = np.cumsum([0] + [s.num_identities for s in self.samplers])
    self.num_identities = int(self._offsets[-1])

  def example(self, rng):
    index = rng.choice(len(self.samplers), p=self._probabilities)
    example = self.samplers[index].example(rng)
    identities = example['identities']
    example['identities'] = np.where(identities == UNLABELLED, UNLABELLED,
                                     identities + self._offsets[index]).astype(np.int32)
    return example
