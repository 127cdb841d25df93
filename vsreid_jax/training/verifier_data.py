"""Mask verifier training pairs from synthetic videos: an instance's first-frame box against a later
mask of the same instance, of a look-alike of it, or of another instance of the video."""

import dataclasses

import cv2
import numpy as np

from vsreid_jax.data import synthetic
from vsreid_jax.data.augment import mask_box
from vsreid_jax.reid.verification import crop

# Instances with fewer visible pixels give no template or query.
MIN_AREA = 30
# Standard deviations of the crop jitter: centre shift (fraction of the side), log zoom.
SHIFT_STD, LOG_ZOOM_STD = 0.05, 0.08


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


def _query(rng, frame, mask, size):
  return crop(frame, mask_box(mask), size, mask,
              shift=rng.normal(0.0, SHIFT_STD, 2), zoom=float(np.exp(rng.normal(0.0, LOG_ZOOM_STD))))


class VerifierPairs:
  """Pairs drawn from crops made once, when built, from generated synthetic videos.

  Each instance visible in frame 0 (objects and look-alikes alike) gives a template; up to
  `queries_per_instance` of its later visible frames give queries (masks jittered). A pair is
  positive with probability `positive_fraction`; a negative's template is, with probability
  `look_alike_fraction`, an instance of the query's look-alike group (an object and the
  look-alikes copying it), otherwise any other instance of the video.
  """

  def __init__(self, video_config, seeds, crop_size, queries_per_instance, rng,
               positive_fraction=0.5, look_alike_fraction=0.75, progress=None):
    """Args:
      video_config: `SyntheticVideoConfig`; each video takes its seed from `seeds`.
      seeds: the videos' seeds.
      crop_size: side of the crops.
      queries_per_instance: later frames cropped per instance.
      rng: NumPy generator of the frames picked and the jitter.
      positive_fraction, look_alike_fraction: see above.
      progress: optional callable given (videos done, videos).
    """
    self.positive_fraction, self.look_alike_fraction = positive_fraction, look_alike_fraction
    templates, queries, owners = [], [], []
    # Per template: its video, and its look-alike group within the video.
    self._video_of, self._group_of = [], []
    for count, seed in enumerate(seeds):
      video = synthetic.generate_video(dataclasses.replace(video_config, seed=int(seed)))
      num_objects = video.config.num_objects
      groups = list(range(1, num_objects + 1)) + [int(g) for g in video.imitates]
      for instance, group in enumerate(groups):
        if video.visible_area[0, instance] < MIN_AREA:
          continue
        template = len(templates)
        templates.append(crop(video.frames[0], video.boxes[0, instance], crop_size))
        self._video_of.append(count)
        self._group_of.append(group)
        visible = np.flatnonzero(video.visible_area[1:, instance] >= MIN_AREA) + 1
        for frame in rng.permutation(visible)[:queries_per_instance]:
          mask = _jittered_mask(rng, video.instances[frame] == instance + 1)
          queries.append(_query(rng, video.frames[frame], mask, crop_size))
          owners.append(template)
      if progress is not None:
        progress(count + 1, len(seeds))
    if not queries:
      raise ValueError('the synthetic videos gave no verifier pairs (every instance too small?)')
    self._templates = np.stack(templates).astype(np.float16)
    self._queries = np.stack(queries).astype(np.float16)
    self._owners = np.asarray(owners)
    self._video_of, self._group_of = np.asarray(self._video_of), np.asarray(self._group_of)

  def __len__(self):
    return len(self._queries)

  def example(self, rng):
    """{'template', 'query': float32 [S, S, 4], 'label': float32 1 (same instance) or 0}."""
    query = int(rng.integers(len(self._queries)))
    owner = self._owners[query]
    template, label = owner, 1.0
    if rng.random() >= self.positive_fraction:
      others = np.flatnonzero((self._video_of == self._video_of[owner])
                              & (np.arange(len(self._video_of)) != owner))
      look_alikes = others[self._group_of[others] == self._group_of[owner]]
      pool = look_alikes if len(look_alikes) and rng.random() < self.look_alike_fraction else others
      if len(pool):
        template, label = int(rng.choice(pool)), 0.0
    crop_of_query = self._queries[query].astype(np.float32)
    if rng.random() < 0.5:
      crop_of_query = crop_of_query[:, ::-1]  # a mirrored instance is still itself
    return {'template': self._templates[template].astype(np.float32),
            'query': np.ascontiguousarray(crop_of_query), 'label': np.float32(label)}
