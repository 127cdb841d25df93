"""Training data from TensorFlow Datasets: COCO instance masks on still images, DAVIS videos.

Both are read by random access (`tfds.data_source`), so examples stay a pure
function of (seed, step, index) as with the folder sources. Prepare a dataset
once with `tfds build NAME --file_format=array_record`.

TFDS `coco/2017` holds boxes only; instance masks come from `coco/2017_panoptic`
(its "thing" segments, crowds excluded). TFDS `davis/480p` is exported once to a
DAVIS-layout folder, after which the folder pipeline (lazy frames, cached flow)
takes over.
"""

import dataclasses
import pathlib

import numpy as np

from vsreid_jax.data import augment as augment_lib
from vsreid_jax.data import davis
from vsreid_jax.errors import InputError
from vsreid_jax.training.propagation_data import make_example

COCO_PANOPTIC = 'coco/2017_panoptic'
# Panoptic labels 0..79 are the COCO "thing" classes, the rest "stuff".
NUM_THING_CLASSES = 80
_MAX_TRIES = 50


def open_data_source(name, split, data_dir=None):
  """`tfds.data_source(name, split)` of a prepared dataset, with TensorFlow kept off the GPUs and
  a clear error; it never starts a download (COCO alone is tens of gigabytes)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')  # JAX owns the accelerators
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as error:  # TFDS raises several types for a missing or unprepared dataset.
    raise InputError(
        f'TFDS dataset {name} split {split!r} is not available'
        f'{"" if data_dir is None else f" in {data_dir}"}; prepare it with `tfds build {name} '
        f'--file_format=array_record` ({type(error).__name__}: {str(error).splitlines()[0][:200]})') from None


def panoptic_ids(panoptic_image):
  """Segment ids of a COCO panoptic PNG: R + 256 G + 256^2 B."""
  rgb = panoptic_image.astype(np.int64)
  return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


@dataclasses.dataclass
class CocoInstanceSampler:
  """Still-image examples: one COCO object, its mask deformed into the guidance, zero flow.

  Attributes:
    source: random-access records of `coco/2017_panoptic`.
    patch_size: side of the square patches.
    min_area: smallest object area in pixels worth training on.
    deformation: how the guidance is corrupted.
    augment: random crop, deformation and flip (off for evaluation).
  """
  source: object
  patch_size: int
  min_area: int = 400
  deformation: augment_lib.GuidanceDeformation = augment_lib.GuidanceDeformation()
  augment: bool = True

  def example(self, rng):
    """One example drawn with `rng` (see `make_example`)."""
    for _ in range(_MAX_TRIES):
      index = int(rng.integers(len(self.source)))
      record = self.source[index]
      image, segments = np.asarray(record['image']), panoptic_ids(np.asarray(record['panoptic_image']))
      if image.shape[:2] != segments.shape:
        raise InputError(f'{COCO_PANOPTIC} record {index}: panoptic map {segments.shape} differs from '
                         f'the image {image.shape[:2]}')
      objects = record['panoptic_objects']
      candidates = [k for k in range(len(objects['id']))
                    if not objects['is_crowd'][k] and objects['label'][k] < NUM_THING_CLASSES
                    and objects['area'][k] >= self.min_area]
      if not candidates:
        continue
      mask = segments == objects['id'][candidates[rng.integers(len(candidates))]]
      box = augment_lib.mask_box(mask)
      if box is None:
        continue
      flow = np.zeros(mask.shape + (2,), np.float32)
      return make_example(image, flow, mask, mask, box, rng, self.patch_size, self.deformation,
                          self.augment)
    raise InputError(f'{COCO_PANOPTIC}: no object of at least {self.min_area} pixels in {_MAX_TRIES} records')


def export_tfds_videos(source, root, split, name='davis/480p'):
  """Writes the videos of a TFDS `davis` split to a DAVIS-layout folder, once.

  Args:
    source: random-access records with 'video' {'frames', 'segmentations'} and
      'metadata' {'video_name'}.
    root: destination DAVIS root; a split already listed there is left as it is.
    split: split name to write (the image-set file name).
    name: dataset name, for messages.

  Returns:
    `root` as a path.
  """
  root = pathlib.Path(root)
  if (root / 'ImageSets' / '2017' / f'{split}.txt').is_file():
    return root
  for index in range(len(source)):
    record = source[index]
    video_name = record['metadata']['video_name']
    video_name = video_name.decode() if isinstance(video_name, bytes) else str(video_name)
    frames = np.asarray(record['video']['frames'])
    labels = np.asarray(record['video']['segmentations'])[..., 0]
    if frames.shape[:3] != labels.shape:
      raise InputError(f'{name} video {video_name!r}: segmentations {labels.shape} do not match '
                       f'the frames {frames.shape[:3]}')
    davis.write_davis_sequences(root, {video_name: (frames, labels)}, split)
  return root
