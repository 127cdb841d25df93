"""Training examples for the propagation network from video pairs in DAVIS-layout folders.

An example is a pair of nearby frames of one object: the later ("current")
frame's image and its flow to the earlier one (as the official inference feeds
the flow branch), the earlier frame's mask warped to the current frame by flow
and then deformed (the guidance), and the current mask (the target), all
cropped around the object and resized to the patch size. Every example is a
pure function of (seed, step, index in the global batch), so a resumed run
sees exactly the batches of an uninterrupted one, on any number of hosts.
"""

import dataclasses
import pathlib

import cv2
import numpy as np

from vsreid_jax.data import augment as augment_lib
from vsreid_jax.data import synthetic
from vsreid_jax.data.davis import DavisDataset
from vsreid_jax.errors import InputError
from vsreid_jax.flow import dis
from vsreid_jax.flow.provider import cached_flow
from vsreid_jax.flow.warp import warp_labels

_MAX_TRIES = 20


@dataclasses.dataclass
class VideoPairSampler:
  """Draws (image, flow, guidance, target) examples from a DAVIS-layout split.

  Attributes:
    dataset: the `DavisDataset` split.
    patch_size: side of the square patches.
    max_gap: largest frame distance between the two frames of a pair.
    flow_preset: OpenCV DIS preset.
    flow_cache_dir: where computed flows are kept (None: recompute every time).
    deformation: how the guidance is corrupted.
    augment: random crop scale, shift and horizontal flip (off for evaluation).
    neighbour_leak: chance that the guidance also covers the part of another object next to the
      object (within a random 10-60% of its box size), as a mask drifting onto a neighbour
      does; the target stays the object alone.
  """
  dataset: DavisDataset
  patch_size: int
  max_gap: int = 3
  flow_preset: str = 'fast'
  flow_cache_dir: pathlib.Path | None = None
  deformation: augment_lib.GuidanceDeformation = augment_lib.GuidanceDeformation()
  augment: bool = True
  neighbour_leak: float = 0.0

  def __post_init__(self):
    dis.check_preset(self.flow_preset)
    if self.max_gap < 1:
      raise ValueError(f'max_gap must be at least 1, got {self.max_gap}')
    if not 0 <= self.neighbour_leak <= 1:
      raise InputError(f'neighbour_leak must lie in [0, 1], got {self.neighbour_leak}')
    self._sequences = {}
    for name in self.dataset.sequence_names:
      sequence = self.dataset.sequence(name)
      if len(sequence.annotation_paths) != len(sequence.frames):
        raise InputError(f'sequence {name} of {self.dataset.split_file}: training needs an annotation '
                         f'for every frame ({len(sequence.annotation_paths)} of {len(sequence.frames)})')
      if len(sequence.frames) >= 2:
        self._sequences[name] = sequence
    if not self._sequences:
      raise InputError(f'{self.dataset.split_file}: no sequence with two or more frames to train on')
    self._names = sorted(self._sequences)

  def _flow(self, sequence, source, target):
    """Flow from frame `source` to frame `target`, from the cache when it is there."""
    path = None
    if self.flow_cache_dir is not None:
      path = pathlib.Path(self.flow_cache_dir) / sequence.name / f'{source:05d}_{target:05d}.flo'
    return cached_flow(path, lambda: dis.compute_flow(sequence.frames[source], sequence.frames[target],
                                                      self.flow_preset))

  def example(self, rng):
    """One example drawn with `rng`: dict of float32 image, flow, guidance and int32 target."""
    for _ in range(_MAX_TRIES):
      sequence = self._sequences[self._names[rng.integers(len(self._names))]]
      num_frames = len(sequence.frames)
      current = int(rng.integers(num_frames))
      gap = int(rng.integers(1, self.max_gap + 1))
      previous = current - gap if rng.random() < 0.5 else current + gap
      previous = int(np.clip(previous, 0, num_frames - 1))
      if previous == current:
        previous = current - 1 if current > 0 else current + 1
      previous_labels = sequence.read_annotation(previous)
      object_ids = [k for k in np.unique(previous_labels) if 0 < k < 255]
      if not object_ids:
        continue
      object_id = object_ids[rng.integers(len(object_ids))]
      current_mask = sequence.read_annotation(current) == object_id
      flow_to_previous = self._flow(sequence, current, previous)
      flow_to_current = self._flow(sequence, previous, current)
      warped_labels = warp_labels(previous_labels, flow_to_previous, flow_to_current)
      warped = (warped_labels == object_id).astype(np.uint8)
      box = augment_lib.mask_box(warped) or augment_lib.mask_box(current_mask)
      if box is None:
        continue
      leak = self.neighbour_leak and self.augment and warped.any()
      if leak and rng.random() < self.neighbour_leak:
        warped = _leak_onto_neighbour(warped, warped_labels, rng)
      return make_example(sequence.frames[current], flow_to_previous, warped, current_mask, box, rng,
                          self.patch_size, self.deformation, self.augment)
    raise InputError(f'{self.dataset.split_file}: found no frame pair with a visible object '
                     f'in {_MAX_TRIES} tries')


def _leak_onto_neighbour(mask, labels, rng):
  """`mask` [H, W] 0/1 plus the pixels of one other object of `labels` (ids 1..254, drawn at
  random among those there) that lie within a random 10-60% of the mask's box size of it."""
  x0, y0, x1, y1 = augment_lib.mask_box(mask)
  radius = max(1, int(rng.uniform(0.1, 0.6) * max(x1 - x0, y1 - y0)))
  near = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)) > 0
  neighbours = [k for k in np.unique(labels[near & (mask == 0)]) if 0 < k < 255]
  if not neighbours:
    return mask
  neighbour = neighbours[rng.integers(len(neighbours))]
  return (mask | (near & (labels == neighbour))).astype(np.uint8)


def make_example(image, flow, guidance_mask, target, box, rng, patch_size, deformation, augment):
  """Crops an example around `box`, resizes it to the patch size, and corrupts its guidance.

  Args:
    image: [H, W, 3] uint8 RGB frame.
    flow: [H, W, 2] flow from this frame to the one the guidance came from (zeros for stills).
    guidance_mask: [H, W] binary mask the guidance starts from (the warped previous mask).
    target: [H, W] binary mask of the object in this frame.
    box: (x0, y0, x1, y1) the crop is built around.
    rng: `np.random.Generator`.
    patch_size: side of the square patch.
    deformation: `augment_lib.GuidanceDeformation`.
    augment: random crop scale and shift, guidance deformation and horizontal flip.

  Returns:
    dict of float32 image [P, P, 3], flow [P, P, 2], guidance [P, P, 1] and int32 target [P, P].
  """
  height, width = target.shape
  if augment:
    window = augment_lib.crop_box(box, height, width, rng, jitter=0.1, scale_range=(0.8, 1.3))
  else:
    window = augment_lib.crop_box(box, height, width)
  # Flow vectors are not rescaled to the patch, as in the official inference.
  image = augment_lib.crop_and_resize(image, window, patch_size)
  flow = augment_lib.crop_and_resize(flow, window, patch_size)
  guidance = augment_lib.crop_and_resize(guidance_mask.astype(np.uint8), window, patch_size, cv2.INTER_NEAREST)
  target = augment_lib.crop_and_resize(target.astype(np.uint8), window, patch_size, cv2.INTER_NEAREST)
  if augment:
    guidance = augment_lib.deform_guidance(guidance, rng, deformation)
    if rng.random() < 0.5:
      image, flow, guidance, target = augment_lib.flip_example(image, flow, guidance, target)
  return {'image': image.astype(np.float32), 'flow': flow.astype(np.float32),
          'guidance': guidance.astype(np.float32)[..., None], 'target': target.astype(np.int32)}


@dataclasses.dataclass
class MixtureSampler:
  """Draws each example from one of several samplers, chosen at random with the given weights."""
  samplers: list
  weights: list

  def __post_init__(self):
    if len(self.samplers) != len(self.weights) or min(self.weights) < 0 or sum(self.weights) <= 0:
      raise ValueError(f'mixture weights must be non-negative, one per sampler, and not all 0: {self.weights}')
    self._probabilities = np.asarray(self.weights, np.float64) / sum(self.weights)

  def example(self, rng):
    return self.samplers[rng.choice(len(self.samplers), p=self._probabilities)].example(rng)


TRAIN_STREAM, EVAL_STREAM = 0, 1


def example_rng(seed, step, index, stream=TRAIN_STREAM):
  """The generator of example `index` of the batch of `step`: independent of hosts and restarts."""
  return np.random.default_rng([seed, stream, step, index])


def local_batch(sampler, seed, step, indices, stream=TRAIN_STREAM):
  """Stacks the examples `indices` (this host's share of the global batch) of `step`."""
  examples = [sampler.example(example_rng(seed, step, i, stream)) for i in indices]
  return {key: np.stack([e[key] for e in examples]) for key in examples[0]}


def prepare_synthetic_root(root, num_train_videos, num_eval_videos, video_config, seed,
                           annotation='labels'):
  """Writes synthetic train and eval splits to `root` unless they are already there.

  `annotation` is what the masks hold (see `synthetic.write_davis`).
  """
  root = pathlib.Path(root)
  for split, count in (('train', num_train_videos), ('eval', num_eval_videos)):
    if not (root / 'ImageSets' / '2017' / f'{split}.txt').is_file():
      synthetic.generate_davis(root, count, split, video_config, seed, annotation)
  return root
