"""Training examples for the re-ID detector: frames with boxes, classes and identities.

Sources: DAVIS-layout folders (each annotated object of each sequence is one
identity, numbered over the whole split, so the same object in two frames of
a video shares its label), TFDS `youtube_vis` (each track of each video is an
identity) and TFDS `coco/2017` still images (boxes without identity, which
feed the OIM queue). An example is one frame resized to fit a fixed size
(aspect ratio kept) and padded at the bottom and right, with its boxes padded
to a fixed number. Examples are a pure function of their generator, as in
`propagation_data`, so `propagation_data.local_batch` builds batches.

Box classes follow a vocabulary: 'object' gives every box class 1 (a
class-agnostic detector); 'person' gives persons class 1 and every other
object class 2, which is what the VS-ReID person and object rounds need.
"""

import dataclasses

import numpy as np

from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.data.palette import VOID_LABEL
from vsreid_jax.errors import InputError
from vsreid_jax.models.oim import UNLABELLED
from vsreid_jax.reid.frame_detector import fit_frame
from vsreid_jax.reid.model import CLASS_VOCABULARIES, OBJECT_CLASS, OTHER_CLASS, PERSON_CLASS

COCO_DETECTION = 'coco/2017'
COCO_PERSON_LABEL = 0
YOUTUBE_VIS_PERSON_LABEL = 0
_MAX_TRIES = 20


def check_vocabulary(vocabulary):
  if vocabulary not in CLASS_VOCABULARIES:
    raise InputError(f'class vocabulary must be one of {sorted(CLASS_VOCABULARIES)}, '
                     f'got {vocabulary!r}')


def box_classes(is_person, vocabulary):
  """int32 classes of boxes, given whether each shows a person, in `vocabulary`."""
  check_vocabulary(vocabulary)
  is_person = np.asarray(is_person, bool)
  if vocabulary == 'object':
    return np.full(is_person.shape, OBJECT_CLASS, np.int32)
  return np.where(is_person, PERSON_CLASS, OTHER_CLASS).astype(np.int32)


def object_boxes(labels):
  """Object ids of a label map (void excluded) and their tight boxes, max exclusive."""
  ids = [int(k) for k in np.unique(labels) if 0 < k != VOID_LABEL]
  boxes = []
  for k in ids:
    ys, xs = np.nonzero(labels == k)
    boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
  return ids, np.asarray(boxes, np.float32).reshape(-1, 4)


def normalised_boxes_to_pixels(boxes, height, width):
  """TFDS boxes [N, 4] (ymin, xmin, ymax, xmax in 0..1) as (x0, y0, x1, y1) pixels."""
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
  return boxes[:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)


def check_sampler_settings(max_boxes, scale_range):
  """Raises an `InputError` for settings no sampler can use (see `pack_example`)."""
  if max_boxes < 1:
    raise InputError(f'max_boxes must be positive, got {max_boxes}')
  if not 0 < scale_range[0] <= scale_range[1] <= 1:
    raise InputError(f'scale_range must satisfy 0 < low <= high <= 1, got {scale_range}')


def pack_example(frame, boxes, classes, identities, rng, image_size, max_boxes, augment,
                 scale_range):
  """One training example from a frame and its boxes.

  Args:
    frame: [H, W, 3] RGB frame.
    boxes: [N, 4] (x0, y0, x1, y1) boxes in frame pixels, N >= 1.
    classes: [N] int classes (1..C).
    identities: [N] int identities or `UNLABELLED`.
    rng: numpy Generator for the flip and zoom.
    image_size: (height, width) the frame is fitted into.
    max_boxes: boxes per example (padding beyond N; boxes beyond it dropped).
    augment: random horizontal flip and zoom.
    scale_range: (low, high) of the random zoom (its high end without `augment`).

  Returns:
    dict of float32 image [height, width, 3], boxes [G, 4], bool box_mask [G]
    and int32 classes [G] and identities [G], G = `max_boxes`.
  """
  boxes = np.array(boxes, np.float32).reshape(-1, 4)
  if augment and rng.random() < 0.5:
    frame = frame[:, ::-1]
    boxes[:, [0, 2]] = frame.shape[1] - boxes[:, [2, 0]]
  zoom = rng.uniform(*scale_range) if augment else scale_range[1]
  image, scale = fit_frame(np.ascontiguousarray(frame), *image_size, zoom)
  count = min(len(boxes), max_boxes)

  def padded(values, dtype):
    values = np.asarray(values, dtype)[:count]
    return np.pad(values, [(0, max_boxes - count)] + [(0, 0)] * (values.ndim - 1))

  return {'image': image, 'boxes': padded(boxes * scale, np.float32),
          'box_mask': padded(np.ones(count), bool), 'classes': padded(classes, np.int32),
          'identities': padded(identities, np.int32)}


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
    box_class: the class of every box (DAVIS objects have no category).
  """
  dataset: DavisDataset
  image_size: tuple[int, int]
  max_boxes: int
  augment: bool = True
  scale_range: tuple[float, float] = (1.0, 1.0)
  box_class: int = OBJECT_CLASS

  def __post_init__(self):
    check_sampler_settings(self.max_boxes, self.scale_range)
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
    """One example drawn with `rng` (see `pack_example`): the objects of one frame, each an
    identity (`UNLABELLED` beyond the objects of the first frame)."""
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
    ids = np.asarray(ids)
    identities = np.where(ids <= sequence.num_objects, self._first_identity[index] + ids - 1,
                          UNLABELLED)
    return pack_example(sequence.frames[frame_index], boxes, np.full(len(ids), self.box_class),
                        identities, rng, self.image_size, self.max_boxes, self.augment,
                        self.scale_range)


@dataclasses.dataclass
class TfdsBoxSampler:
  """What the samplers of TFDS records share.

  Attributes:
    source: random-access records (`tfds.data_source`).
    image_size, max_boxes, augment, scale_range: as for `FrameBoxSampler`.
    vocabulary: box-class vocabulary (see `CLASS_VOCABULARIES`).
  """
  source: object
  image_size: tuple[int, int]
  max_boxes: int
  augment: bool = True
  scale_range: tuple[float, float] = (1.0, 1.0)
  vocabulary: str = 'object'

  def __post_init__(self):
    check_sampler_settings(self.max_boxes, self.scale_range)
    check_vocabulary(self.vocabulary)


@dataclasses.dataclass
class CocoBoxSampler(TfdsBoxSampler):
  """Still-image examples from TFDS `coco/2017` records ('image', 'objects' with 'bbox',
  'label', 'is_crowd'): every non-crowd box, without identity.

  Attributes:
    min_size: boxes narrower or shorter than this many pixels are left out.
  """
  min_size: float = 2.0
  num_identities = 0

  def example(self, rng):
    """One example drawn with `rng` (see `pack_example`); every identity is `UNLABELLED`."""
    for _ in range(_MAX_TRIES):
      index = int(rng.integers(len(self.source)))
      record = self.source[index]
      image, objects = np.asarray(record['image']), record['objects']
      boxes = normalised_boxes_to_pixels(objects['bbox'], *image.shape[:2])
      keep = (~np.asarray(objects['is_crowd'], bool) &
              np.all(boxes[:, 2:] - boxes[:, :2] >= self.min_size, axis=-1))
      if keep.any():
        is_person = np.asarray(objects['label'])[keep] == COCO_PERSON_LABEL
        return pack_example(image, boxes[keep], box_classes(is_person, self.vocabulary),
                            np.full(keep.sum(), UNLABELLED), rng, self.image_size,
                            self.max_boxes, self.augment, self.scale_range)
    raise InputError(f'{COCO_DETECTION}: no image with a box of at least {self.min_size} pixels '
                     f'in {_MAX_TRIES} records')


@dataclasses.dataclass
class YouTubeVisSampler(TfdsBoxSampler):
  """Video-frame examples from TFDS `youtube_vis` records ('video', 'tracks' with 'bboxes',
  'frames', 'category', 'is_crowd'): each track of each video is an identity.

  Track k of video v is identity v * `max_tracks` + k; tracks beyond
  `max_tracks` and crowd tracks are unlabelled (they feed the queue).

  Attributes:
    max_tracks: identities reserved per video.
    name: the dataset's name, for messages.
  """
  max_tracks: int = 10
  name: str = 'youtube_vis'

  def __post_init__(self):
    super().__post_init__()
    if self.max_tracks < 1:
      raise InputError(f'max_tracks must be positive, got {self.max_tracks}')
    self.num_identities = len(self.source) * self.max_tracks

  def example(self, rng):
    """One example drawn with `rng` (see `pack_example`): the tracks labelled in one frame."""
    for _ in range(_MAX_TRIES):
      index = int(rng.integers(len(self.source)))
      found = self._frame_boxes(index, self.source[index], rng)
      if found is not None:
        frame, boxes, is_person, identities = found
        return pack_example(frame, boxes, box_classes(is_person, self.vocabulary), identities,
                            rng, self.image_size, self.max_boxes, self.augment,
                            self.scale_range)
    raise InputError(f'{self.name}: no video with a labelled, non-empty box in {_MAX_TRIES} '
                     'records')

  def _frame_boxes(self, index, record, rng):
    """(frame, boxes [N, 4], is_person [N], identities [N]) of a random labelled frame of
    video `index`, or None if it has no box."""
    tracks = record['tracks']
    track_frames = [np.asarray(f, np.int64).reshape(-1) for f in tracks['frames']]
    labelled = np.unique(np.concatenate(track_frames + [np.zeros(0, np.int64)]))
    if not labelled.size:
      return None
    frame_index = int(rng.choice(labelled))
    video = record['video']
    if frame_index >= len(video):
      raise InputError(f'{self.name} record {index}: a track is labelled in frame {frame_index} '
                       f'of a {len(video)}-frame video')
    frame = np.asarray(video[frame_index])
    boxes, is_person, identities = [], [], []
    for k, frames in enumerate(track_frames):
      where = np.flatnonzero(frames == frame_index)
      if not where.size:
        continue
      box = normalised_boxes_to_pixels(np.asarray(tracks['bboxes'][k])[where[0]],
                                       *frame.shape[:2])[0]
      if np.any(box[2:] <= box[:2]):
        continue
      boxes.append(box)
      is_person.append(int(tracks['category'][k]) == YOUTUBE_VIS_PERSON_LABEL)
      labelled_track = k < self.max_tracks and not bool(tracks['is_crowd'][k])
      identities.append(index * self.max_tracks + k if labelled_track else UNLABELLED)
    if not boxes:
      return None
    return frame, np.stack(boxes), is_person, identities


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
