"""Every object's foreground probability in every frame, kept compactly as box crops."""

import numpy as np

from vsreid_jax.inference.boxes import box_area, object_boxes


class ObjectProbabilities:
  """Per-(frame, object) foreground probabilities of a video, as crops inside boxes.

  The official code keeps a float64 [H, W, 2N] (background, foreground) map
  per frame. Each object's background there is always 1 - foreground, and a
  network output is written into the object's box with the rest of the frame
  set to background, so a box and a crop of its foreground hold the same
  information. Crops are stored as `dtype` (float16 by default): a
  1,000-frame 480p video with 5 objects needs a few hundred MB, not 33 GB.

  Attributes:
    num_frames, height, width, num_objects: the video's dimensions.
  """

  def __init__(self, num_frames, height, width, num_objects, dtype=np.float16):
    self.num_frames, self.height, self.width = num_frames, height, width
    self.num_objects = num_objects
    self._dtype = np.dtype(dtype)
    # [frame][object] -> (box, crop) or None where the object has no probability.
    self._crops = [[None] * num_objects for _ in range(num_frames)]
    self._versions = np.zeros(num_frames, np.int64)
    # Each frame's object boxes, and the version of the frame they were computed at.
    self._boxes = np.zeros((num_frames, num_objects, 4), np.int64)
    self._boxes_versions = np.full(num_frames, -1, np.int64)

  def set(self, frame, index, box, foreground):
    """Sets object `index` to `foreground` inside `box` and to 0 elsewhere in `frame`.

    Args:
      frame: frame index.
      index: object index, 0-based (object id - 1).
      box: (x_min, y_min, x_max, y_max), max exclusive.
      foreground: [y_max - y_min, x_max - x_min] probabilities.
    """
    box = tuple(int(v) for v in box)
    self._crops[frame][index] = (box, np.asarray(foreground, self._dtype))
    self._changed(frame)

  def set_labels(self, frame, labels):
    """Sets every object to 1 on its pixels of `labels` and 0 elsewhere (the first frame)."""
    for index, box in enumerate(object_boxes(labels, self.num_objects)):
      x_min, y_min, x_max, y_max = box
      self.set(frame, index, box, labels[y_min:y_max, x_min:x_max] == index + 1)

  def clear(self, frame, index):
    """Removes object `index` from `frame` (foreground 0 everywhere)."""
    self._crops[frame][index] = None
    self._changed(frame)

  def foreground(self, frame, index):
    """float32 [H, W] foreground probability of object `index` in `frame`."""
    full = np.zeros((self.height, self.width), np.float32)
    if self._crops[frame][index] is not None:
      (x_min, y_min, x_max, y_max), crop = self._crops[frame][index]
      full[y_min:y_max, x_min:x_max] = crop
    return full

  def clear_where(self, frame, where, keep=None):
    """Sets every object but `keep` to background where the bool [H, W] `where` is True."""
    for index, entry in enumerate(self._crops[frame]):
      if entry is None or index == keep:
        continue
      (x_min, y_min, x_max, y_max), crop = entry
      crop = crop.copy()
      crop[where[y_min:y_max, x_min:x_max]] = 0
      self._crops[frame][index] = ((x_min, y_min, x_max, y_max), crop)
    self._changed(frame)

  def _changed(self, frame):
    self._versions[frame] += 1

  def version(self, frame):
    """A number that changes whenever anything in `frame` does (for caches of derived values)."""
    return int(self._versions[frame])

  def merged(self, frame):
    """The official merge of all objects of `frame`.

    Returns:
      float32 [H, W, N + 1]: channel 0 the product of the objects' background
      probabilities, channel k object k's foreground, normalised over channels.
    """
    merged = np.zeros((self.height, self.width, self.num_objects + 1), np.float32)
    for index in range(self.num_objects):
      merged[..., index + 1] = self.foreground(frame, index)
    merged[..., 0] = np.prod(1 - merged[..., 1:], axis=-1)
    # The sum is at least 1: the background is 1 unless some foreground is.
    return merged / merged.sum(axis=-1, keepdims=True)

  def labels(self, frame):
    """uint8 [H, W] label map of `frame`: argmax of the merged probabilities."""
    return np.argmax(self.merged(frame), axis=-1).astype(np.uint8)

  def boxes(self, frame):
    """int64 [N, 4]: `object_boxes` of the frame's label map, kept until the frame changes."""
    if self._boxes_versions[frame] != self._versions[frame]:
      self._boxes[frame] = object_boxes(self.labels(frame), self.num_objects)
      self._boxes_versions[frame] = self._versions[frame]
    return self._boxes[frame].copy()

  def appears_in(self, frame):
    """bool [N]: `appears()` of one frame."""
    return _appear(self.boxes(frame))

  def appears(self):
    """bool [T, N]: the object's box in the frame's label map has area > 1 (official `appear`)."""
    for frame in np.flatnonzero(self._boxes_versions != self._versions):
      self.boxes(frame)
    return _appear(self._boxes)

  def nbytes(self):
    """Bytes held by the stored crops."""
    return sum(entry[1].nbytes for row in self._crops for entry in row if entry is not None)


def _appear(boxes):
  """Whether boxes [..., 4] have area > 1 (the official `appear`)."""
  return box_area(np.moveaxis(boxes, -1, 0)) > 1
