"""Re-identification for the VS-ReID rounds from the re-ID detector (`configs/reid.py` checkpoints).

Candidates in a frame are the detector's boxes (in the person round, its boxes
classed as persons); a box's score for an object is the cosine similarity of
its embedding with the object's first-frame template, the embedding of the
object's box in the first frame. An object's person score is the detector's
person probability of that box; a detector without a person class (trained
with `data.classes='object'`) gives 0, so every object goes to the object
round.

With `nearest_template`, a box scores only for the object whose template it is
most similar to, among the objects' templates and those of the first frame's
detections that show no object (non-objects: look-alikes, other people; see
`NON_OBJECT_MAX_FRACTION`); 0 for every other object. Look-alikes are also
followed from frame to frame through their detections (among those that overlap
the track's last box and look like it, the one most like the track's first box).
A track starts at each non-object of the first frame, imitating the object whose
template is nearest its own, and at each later detection that no track continues
and that looks most like an object whose mask in that frame lies wholly outside
the box (an object cannot be in two places; the rounds leave out masks that do
not look like their object), imitating that object. A detection that continues a
track scores 0 for every object, however much it looks like one, while it still
looks like the track's first box; once it no longer does (where a look-alike
crosses another object, its track can pass onto that object), only for the
object the track imitates. Likewise a first-frame non-object whose track a
detection continues is no candidate for the boxes apart from that one: they go
to their nearest among the other templates. The non-objects' tracks are followed
through the detections alone, so where they are in a frame (`look_alike_boxes`,
for the rounds to look past masks lying there) is known before any mask of that
frame; the later tracks, which start from the masks, are followed apart from
them.
With a mask verifier (`vsreid_jax.reid.verification`) as well, a mask looks more
like a non-object than like its object (`resembles_non_object`) when the verifier
finds it more like the first-frame box of some non-object than like its object's
(by more than `VERIFIER_MARGIN`). The official code has no such rules (its re-ID scores
come from files).
"""

import numpy as np

from vsreid_jax.data.palette import VOID_LABEL
from vsreid_jax.inference.boxes import object_boxes
from vsreid_jax.models.boxes import pairwise_iou
from vsreid_jax.reid import detection
from vsreid_jax.reid.frame_detector import FrameDetector
from vsreid_jax.reid.verification import Verifier, crop

# A first-frame detection is a non-object when at most this fraction of its box's pixels are
# object pixels and at most this fraction of each object's pixels lie in its box (a loose box
# about an object holds mostly background but is still a box on the object).
NON_OBJECT_MAX_FRACTION = 0.25
# A detection continues a non-object's track when its box overlaps the track's last one this
# much and its embedding's cosine similarity with the non-object's template is at least this.
TRACK_IOU = 0.3
TRACK_SIMILARITY = 0.5
# A track that no detection continues for more frames than this (its look-alike hidden or
# missed) ends.
TRACK_PATIENCE = 10
# A mask resembles a non-object when the verifier finds it likelier (by more than this) to lie
# on some non-object's first-frame box than on its object's: on ground-truth masks of
# synthetic seeds 1005-1008 the margin halves the false alarms on objects' masks (13% to 6%)
# while still catching 67% of look-alikes' masks (80% without).
VERIFIER_MARGIN = 0.1


class DetectorReid:
  """The `ReidScorer` of one video.

  Each frame is detected once, when first asked for (with `nearest_template`,
  it and every frame before it, in order, to follow the look-alikes); only its
  boxes, classes and scores are kept.
  """

  def __init__(self, detector, frames, first_mask, nearest_template=False, verifier=None):
    """Args:
      detector: a `FrameDetector`.
      frames: the video's frames (`len`, indexing).
      first_mask: [H, W] object ids of frame 0.
      nearest_template: a box scores only for the object whose template is nearest.
      verifier: an optional `Verifier`, used with `nearest_template` only.
    """
    labels = np.where(first_mask == VOID_LABEL, 0, first_mask)
    self._num_objects = int(labels.max())
    boxes, present = detection.boxes_from_masks(labels, self._num_objects)
    self._templates, probabilities = detector.describe(frames[0], boxes, present)
    person_class = detector.person_class
    self._person_scores = (np.zeros(self._num_objects) if person_class is None
                           else probabilities[:, person_class].astype(np.float64))
    self._detector, self._frames, self._first_labels = detector, frames, labels
    self._verifier = verifier if nearest_template else None
    if self._verifier is not None:
      # Verifier features of each object's first-frame box (zeros where it is absent).
      first_boxes = np.asarray(boxes)
      self._object_features = self._verifier.describe(
          [crop(frames[0], box, verifier.crop_size) for box in first_boxes])
      self._has_template = np.asarray(present)
      self._non_object_features = None
    self._detections = {}
    self._nearest_template = nearest_template
    # With `nearest_template`: frame 0's non-objects and their tracks, followed frame by frame
    # without the masks (`_follow`); per frame, where they were found (`look_alike_boxes`),
    # and until `_detect` takes them, the detections and what the tracks ruled out.
    self._non_objects = self._non_object_tracks = None
    self._located, self._followed = [], {}
    # Tracks started after frame 0, from the masks.
    self._later_tracks = None

  def person_scores(self):
    return self._person_scores

  def similarity(self, frame, boxes, valid):
    embeddings = self._detector.embed(self._frames[frame], boxes, valid)
    return np.sum(embeddings * self._templates, axis=1)

  def look_alike_boxes(self, frame):
    if not self._nearest_template:
      return np.zeros((0, 4), np.float32)
    self._follow(frame)
    return self._located[frame]

  def resembles_non_object(self, frame, labels):
    unlike = np.zeros(self._num_objects, bool)
    if self._verifier is None:
      return unlike
    self._follow(0)
    labels = np.asarray(labels)
    judged = [index for index in range(self._num_objects)
              if self._has_template[index] and np.any(labels == index + 1)]
    if not judged or not len(self._non_object_features):
      return unlike
    boxes = object_boxes(labels, self._num_objects)
    queries = self._verifier.describe([crop(self._frames[frame], boxes[index],
                                            self._verifier.crop_size, labels == index + 1)
                                       for index in judged])
    own = np.diagonal(self._verifier.probabilities(self._object_features[judged], queries))
    other = self._verifier.probabilities(self._non_object_features, queries).max(axis=0)
    unlike[judged] = other > own + VERIFIER_MARGIN
    return unlike

  def _follow(self, frame):
    """Detects every frame up to `frame` not yet detected, following frame 0's non-objects."""
    for index in range(len(self._located), frame + 1):
      found = self._detector.detect(self._frames[index])
      if index == 0:
        areas = np.bincount(self._first_labels.reshape(-1),
                            minlength=self._num_objects + 1)[1:self._num_objects + 1]
        keep = np.array([_is_non_object(self._first_labels, areas, box)
                         for box in found.boxes], bool).reshape(-1)
        self._non_objects = found.embeddings[keep]
        if self._verifier is not None:
          self._non_object_features = self._verifier.describe(
              [crop(self._frames[0], box, self._verifier.crop_size) for box in found.boxes[keep]])
        imitates = detection.reid_scores(found.embeddings[keep], self._templates)
        self._non_object_tracks = _Tracks(found.boxes[keep], found.embeddings[keep],
                                          np.argmax(imitates, axis=1), self._num_objects)
        self._later_tracks = _Tracks(np.zeros((0, 4)), found.embeddings[:0], [],
                                     self._num_objects)
        ruled_out = np.zeros((len(found.boxes), self._num_objects), bool)
      else:
        # Frames without detections count against the tracks too.
        ruled_out = self._non_object_tracks.follow(found.boxes, found.embeddings)
      seen, seen_boxes = self._non_object_tracks.located()
      self._located.append(seen_boxes.copy())
      self._followed[index] = (found, ruled_out, seen)

  def _nearest(self, scores, boxes, embeddings, seen, seen_boxes):
    """int [M]: each box's nearest template, an object's index or N + a non-object's, leaving
    out the non-objects (`seen`, found at `seen_boxes`) whose tracks this frame's detections
    continue apart from the box."""
    non_objects = np.array(detection.reid_scores(embeddings, self._non_objects))  # writable
    if len(seen) and len(boxes):
      apart = np.asarray(pairwise_iou(boxes, seen_boxes)) == 0
      non_objects[:, seen] = np.where(apart, -np.inf, non_objects[:, seen])
    return np.concatenate([scores, non_objects], axis=1).argmax(axis=1)

  def _detect(self, frame, labels):
    if not self._nearest_template:
      found = self._detector.detect(self._frames[frame])
      scores = detection.reid_scores(found.embeddings, self._templates)
      self._detections[frame] = (found.boxes, found.labels, np.asarray(scores))
      return
    self._follow(frame)
    found, ruled_out, seen = self._followed.pop(frame)
    scores = np.array(detection.reid_scores(found.embeddings, self._templates))  # writable
    if frame > 0:
      ruled_out = ruled_out | self._later_tracks.follow(found.boxes, found.embeddings)
      new = ~ruled_out.any(axis=1) & _look_alikes(found.boxes, scores, np.asarray(labels(frame)))
      self._later_tracks.start(found.boxes[new], found.embeddings[new],
                               scores[new].argmax(axis=1))
      nearest = self._nearest(scores, found.boxes, found.embeddings, seen, self._located[frame])
      scores = np.where(nearest[:, None] == np.arange(self._num_objects), scores, 0.0)
      scores[ruled_out] = 0.0
      scores[new] = 0.0
    self._detections[frame] = (found.boxes, found.labels, scores)

  def candidates(self, frame, kind, labels):
    if self._nearest_template:
      for earlier in range(len(self._detections), frame + 1):
        self._detect(earlier, labels)
    elif frame not in self._detections:
      self._detect(frame, labels)
    boxes, labels, scores = self._detections[frame]
    if kind == 'person':
      keep = labels == self._detector.person_class
      return boxes[keep], scores[keep]
    return boxes, scores


class _Tracks:
  """Boxes of look-alikes, followed through the detections of later frames."""

  def __init__(self, boxes, templates, imitates, num_objects):
    """Starts a track at each of the first frame's non-objects (`boxes` [M, 4], `templates`
    [M, E]; M may be 0), each imitating an object (`imitates` [M], indices below
    `num_objects`)."""
    self.num_objects = num_objects
    self.boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    self.templates = np.asarray(templates, np.float32).reshape(-1, np.shape(templates)[-1])
    self.imitates = np.asarray(imitates, int).reshape(-1)
    self.first_looks = self.templates.copy()
    self.missed = np.zeros(len(self.boxes), int)
    # Each track's first-frame non-object (its index), or -1 for a track started later.
    self.non_objects = np.arange(len(self.boxes))

  def start(self, boxes, templates, imitates):
    """Adds tracks at `boxes` [M, 4], each to be continued by detections like its template and
    imitating an object (`imitates` [M])."""
    templates = np.asarray(templates, np.float32).reshape(-1, self.templates.shape[1])
    self.boxes = np.concatenate([self.boxes, np.asarray(boxes, np.float32).reshape(-1, 4)])
    self.templates = np.concatenate([self.templates, templates])
    self.first_looks = np.concatenate([self.first_looks, templates])
    self.imitates = np.concatenate([self.imitates, np.asarray(imitates, int).reshape(-1)])
    self.missed = np.concatenate([self.missed, np.zeros(len(boxes), int)])
    self.non_objects = np.concatenate([self.non_objects, np.full(len(boxes), -1)])

  def located(self):
    """(indices [K], boxes [K, 4]) of the first-frame non-objects whose tracks the last `follow`
    continued, and where."""
    seen = (self.missed == 0) & (self.non_objects >= 0)
    return self.non_objects[seen], self.boxes[seen]

  def follow(self, boxes, embeddings):
    """bool [M, N]: for each of the next frame's detections (`boxes` [M, 4], `embeddings`
    [M, E]), the objects it is ruled out as by the tracks it continues (duplicate boxes of
    one look-alike all continue it): every object while it looks like the track's first box,
    else the one the track imitates. Each track moves to the detection continuing it that
    looks most like its first box, taking its look, and ends after `TRACK_PATIENCE` frames
    without one."""
    ruled_out = np.zeros((len(boxes), self.num_objects), bool)
    moved = np.zeros(len(self.boxes), bool)
    if len(self.boxes) and len(boxes):
      overlaps = np.asarray(pairwise_iou(self.boxes, np.asarray(boxes, np.float32)))
      similar = np.asarray(detection.reid_scores(self.templates, embeddings)) >= TRACK_SIMILARITY
      continues = (overlaps >= TRACK_IOU) & similar
      first_similarity = np.asarray(detection.reid_scores(self.first_looks, embeddings))
      as_first = first_similarity >= TRACK_SIMILARITY
      for track, box in zip(*np.nonzero(continues)):
        if as_first[track, box]:
          ruled_out[box] = True
        else:
          ruled_out[box, self.imitates[track]] = True
      taken = np.zeros(len(boxes), bool)
      for track, box in sorted(zip(*np.nonzero(continues)),
                               key=lambda pair: -first_similarity[pair]):
        if not (moved[track] or taken[box]):
          moved[track] = taken[box] = True
          self.boxes[track], self.templates[track] = boxes[box], embeddings[box]
    self.missed = np.where(moved, 0, self.missed + 1)
    alive = self.missed <= TRACK_PATIENCE
    self.boxes, self.templates, self.first_looks, self.imitates, self.missed, self.non_objects = (
        self.boxes[alive], self.templates[alive], self.first_looks[alive], self.imitates[alive],
        self.missed[alive], self.non_objects[alive])
    return ruled_out


def _look_alikes(boxes, scores, labels):
  """bool [M]: boxes (`boxes` [M, 4]) that look most like an object (`scores` [M, N], at least
  `TRACK_SIMILARITY`) whose mask in `labels` lies wholly outside them."""
  def elsewhere(box, index):
    mask = labels == index + 1
    return mask.any() and not _object_fraction(mask, box)
  nearest = scores.argmax(axis=1)
  return np.array([scores[i, k] >= TRACK_SIMILARITY and elsewhere(boxes[i], k)
                   for i, k in enumerate(nearest)], bool).reshape(-1)


def _is_non_object(labels, areas, box):
  """Whether `box` is a non-object's in the frame of `labels`, whose objects 1..N have `areas`
  [N] pixels (see `NON_OBJECT_MAX_FRACTION`)."""
  inside = _in_box(labels, box)
  covered = np.bincount(inside.reshape(-1), minlength=len(areas) + 1)[1:len(areas) + 1]
  return bool(np.count_nonzero(inside) <= NON_OBJECT_MAX_FRACTION * inside.size
              and np.all(covered <= NON_OBJECT_MAX_FRACTION * areas))


def _in_box(labels, box):
  """The part of `labels` inside `box` (x_min, y_min, x_max, y_max)."""
  x_min, y_min, x_max, y_max = np.round(np.asarray(box)).astype(int)
  return labels[max(y_min, 0):y_max, max(x_min, 0):x_max]


def _object_fraction(labels, box):
  """Fraction of the pixels of `box` (x_min, y_min, x_max, y_max) that are non-zero in `labels`."""
  inside = _in_box(labels, box)
  return float(np.count_nonzero(inside)) / inside.size if inside.size else 0.0


def detector_reid_factory(checkpoint_dir, nearest_template=False, verifier_dir=None):
  """`(frames, first_mask) -> DetectorReid` from a re-ID checkpoint (and optionally a mask
  verifier checkpoint), the `reid_factory` of `VSReID`.

  Raises:
    InputError: a missing or unreadable checkpoint, or one of another network.
  """
  detector = FrameDetector.from_checkpoint(checkpoint_dir)
  verifier = None if verifier_dir is None else Verifier.from_checkpoint(verifier_dir)
  return lambda frames, first_mask: DetectorReid(detector, frames, first_mask,
                                                 nearest_template, verifier)
