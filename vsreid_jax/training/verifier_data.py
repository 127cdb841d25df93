"""Mask verifier training pairs: an instance's first-frame box against a later mask of the same
instance, or against the first-frame box of something else in the same video.

Pairs come from scenes (one video each), made once from synthetic videos (objects and their
look-alikes) or from DAVIS sequences (objects and boxes of their background, which stand for
the detector's non-object boxes of real video).
"""

import dataclasses

import cv2
import numpy as np

from vsreid_jax.data import palette, synthetic
from vsreid_jax.data.augment import mask_box
from vsreid_jax.errors import InputError
from vsreid_jax.reid.verification import crop

# Instances with fewer visible pixels give no template or query.
MIN_AREA = 30
# Standard deviations of the crop jitter: centre shift (fraction of the side), log zoom.
SHIFT_STD, LOG_ZOOM_STD = 0.05, 0.08
# A DAVIS background box holds at most this fraction of object pixels (as a non-object, see
# `inference.detector_reid.NON_OBJECT_MAX_FRACTION`); its sides are an object's box's times
# exp(N(0, BACKGROUND_LOG_SIZE_STD)), at least BACKGROUND_MIN_SIDE pixels.
BACKGROUND_MAX_FRACTION = 0.25
BACKGROUND_LOG_SIZE_STD = 0.5
BACKGROUND_MIN_SIDE = 16
BACKGROUND_TRIES = 50


@dataclasses.dataclass
class Scene:
  """The crops of one video: templates with their look-alike group, and queries each of one
  template's instance (`owners`, indices into `templates`)."""
  templates: list = dataclasses.field(default_factory=list)
  groups: list = dataclasses.field(default_factory=list)
  queries: list = dataclasses.field(default_factory=list)
  owners: list = dataclasses.field(default_factory=list)

  def add_template(self, template, group):
    self.templates.append(template)
    self.groups.append(group)
    return len(self.templates) - 1


def _jittered_mask(rng, mask):
  """The mask, or (a quarter of the time each) grown or shrunk by 1-3 pixels, as predicted masks
  spill over or fall short."""
  kind = rng.random()
  radius = int(rng.integers(1, 4))
  kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
  if kind < 0.25:
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0
  if kind < 0.5:
    shrunk = cv2.erode(mask.astype(np.uint8), kernel) > 0
    return shrunk if shrunk.sum() >= MIN_AREA else mask
  return mask


def _add_query(scene, rng, frame, mask, size, owner):
  mask = _jittered_mask(rng, mask)
  scene.queries.append(crop(frame, mask_box(mask), size, mask, shift=rng.normal(0.0, SHIFT_STD, 2),
                            zoom=float(np.exp(rng.normal(0.0, LOG_ZOOM_STD)))))
  scene.owners.append(owner)


def synthetic_scenes(video_config, seeds, crop_size, queries_per_instance, rng, progress=None):
  """Yields a `Scene` per synthetic video (seeds from `seeds`): each instance visible in frame 0
  (objects and look-alikes alike, grouped by the object they copy) gives a template and up to
  `queries_per_instance` queries from its later visible frames. `progress` is given (videos
  done, videos)."""
  for count, seed in enumerate(seeds):
    video = synthetic.generate_video(dataclasses.replace(video_config, seed=int(seed)))
    num_objects = video.config.num_objects
    groups = list(range(1, num_objects + 1)) + [int(g) for g in video.imitates]
    scene = Scene()
    for instance, group in enumerate(groups):
      if video.visible_area[0, instance] < MIN_AREA:
        continue
      template = scene.add_template(crop(video.frames[0], video.boxes[0, instance], crop_size),
                                    group)
      visible = np.flatnonzero(video.visible_area[1:, instance] >= MIN_AREA) + 1
      for frame in rng.permutation(visible)[:queries_per_instance]:
        _add_query(scene, rng, video.frames[frame], video.instances[frame] == instance + 1,
                   crop_size, template)
    if progress is not None:
      progress(count + 1, len(seeds))
    yield scene


def _background_box(rng, objects, object_box):
  """A box of about the size of `object_box` holding at most `BACKGROUND_MAX_FRACTION` object
  pixels of `objects` (bool [H, W]), or None when none is found."""
  height, width = objects.shape
  x_min, y_min, x_max, y_max = object_box
  for _ in range(BACKGROUND_TRIES):
    sides = np.array([x_max - x_min, y_max - y_min]) * np.exp(
        rng.normal(0.0, BACKGROUND_LOG_SIZE_STD, 2))
    box_width, box_height = np.clip(sides, BACKGROUND_MIN_SIDE, [width, height]).astype(int)
    left = int(rng.integers(0, width - box_width + 1))
    top = int(rng.integers(0, height - box_height + 1))
    if objects[top:top + box_height, left:left + box_width].mean() <= BACKGROUND_MAX_FRACTION:
      return left, top, left + box_width, top + box_height
  return None


def davis_scenes(dataset, crop_size, queries_per_object, background_boxes, rng, progress=None):
  """Yields a `Scene` per sequence of a `DavisDataset`: each object of the first annotation gives
  a template and up to `queries_per_object` queries from the later annotated frames; up to
  `background_boxes` boxes of the first frame away from the objects give templates of the
  same group as the objects (they are what a real video's non-objects look like).
  `progress` is given (sequences done, sequences).

  Raises:
    InputError: a sequence without an annotation for every frame.
  """
  for count, sequence in enumerate(dataset):
    if len(sequence.annotation_paths) != len(sequence.frames):
      raise InputError(f'sequence {sequence.name} of {dataset.split_file}: verifier pairs need an '
                       f'annotation for every frame ({len(sequence.annotation_paths)} of '
                       f'{len(sequence.frames)})')
    labels = sequence.first_mask()
    frame = sequence.frames[0]
    scene = Scene()
    objects = [k for k in range(1, sequence.num_objects + 1)
               if np.count_nonzero(labels == k) >= MIN_AREA]
    owners = {k: scene.add_template(crop(frame, mask_box(labels == k), crop_size), 0)
              for k in objects}
    for k in objects:
      for _ in range(background_boxes):
        box = _background_box(rng, (labels > 0) & (labels != palette.VOID_LABEL), mask_box(labels == k))
        if box is not None:
          scene.add_template(crop(frame, box, crop_size), 0)
    picked = {k: 0 for k in objects}
    for index in rng.permutation(np.arange(1, len(sequence.frames))):
      if all(n >= queries_per_object for n in picked.values()):
        break
      later = sequence.read_annotation(int(index))
      image = None
      for k in objects:
        if picked[k] < queries_per_object and np.count_nonzero(later == k) >= MIN_AREA:
          image = sequence.frames[int(index)] if image is None else image
          _add_query(scene, rng, image, later == k, crop_size, owners[k])
          picked[k] += 1
    if progress is not None:
      progress(count + 1, len(dataset))
    yield scene



class VerifierPairs:
  """Pairs drawn from the crops of scenes (`Scene`s).

  A pair's query is any scene's query; it is positive (the query's own template) with
  probability `positive_fraction`; a negative's template is, with probability
  `look_alike_fraction`, another template of the query's look-alike group in its scene,
  otherwise any other template of its scene.
  """

  def __init__(self, scenes, positive_fraction=0.5, look_alike_fraction=0.75):
    self.positive_fraction, self.look_alike_fraction = positive_fraction, look_alike_fraction
    templates, queries, owners, scene_of, group_of = [], [], [], [], []
    for count, scene in enumerate(scenes):
      owners.extend(len(templates) + np.asarray(scene.owners, int))
      templates.extend(scene.templates)
      queries.extend(scene.queries)
      scene_of.extend([count] * len(scene.templates))
      group_of.extend(scene.groups)
    if not queries:
      raise ValueError('the videos gave no verifier pairs (every instance too small?)')
    self._templates = np.stack(templates).astype(np.float16)
    self._queries = np.stack(queries).astype(np.float16)
    self._owners = np.asarray(owners)
    self._scene_of, self._group_of = np.asarray(scene_of), np.asarray(group_of)

  def __len__(self):
    return len(self._queries)

  def example(self, rng):
    """{'template', 'query': float32 [S, S, 4], 'label': float32 1 (same instance) or 0}."""
    query = int(rng.integers(len(self._queries)))
    owner = self._owners[query]
    template, label = owner, 1.0
    if rng.random() >= self.positive_fraction:
      others = np.flatnonzero((self._scene_of == self._scene_of[owner])
                              & (np.arange(len(self._scene_of)) != owner))
      look_alikes = others[self._group_of[others] == self._group_of[owner]]
      pool = look_alikes if len(look_alikes) and rng.random() < self.look_alike_fraction else others
      if len(pool):
        template, label = int(rng.choice(pool)), 0.0
    crop_of_query = self._queries[query].astype(np.float32)
    if rng.random() < 0.5:
      crop_of_query = crop_of_query[:, ::-1]  # a mirrored instance is still itself
    return {'template': self._templates[template].astype(np.float32),
            'query': np.ascontiguousarray(crop_of_query), 'label': np.float32(label)}
