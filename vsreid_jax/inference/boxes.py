"""Object boxes and box overlap as the official VS-ReID code computes them (core/utils/bbox.py).

Boxes are (x_min, y_min, x_max, y_max) integer pixels with the max exclusive.
The quirks are kept on purpose, because they decide which objects get
re-segmented and which re-ID boxes are accepted.
"""

import numpy as np

# An object with no pixel gets this box (so its area is 1 and it does not "appear").
EMPTY_BOX = (0, 0, 1, 1)


def object_boxes(labels, num_objects, enlarge=0.0, quantile=1.0):
  """Boxes of objects 1..`num_objects` in a label map.

  The box spans the pixels' rows and columns from the (1 - quantile) to the
  quantile order statistic (taken at index int((n - 1) * q) of the n sorted
  coordinates), grows by `enlarge` x its size on each side, and is clipped to
  the image with at least one pixel of width and height; corners are then
  truncated to integers.

  Args:
    labels: [H, W] integer label map, 0 for background.
    num_objects: objects to box, ids 1..num_objects.
    enlarge: fraction of the box size added on each side (official 0.15).
    quantile: 1.0 for the full extent; 0.99 for the robust box of the re-ID
      occlusion check.

  Returns:
    int64 [num_objects, 4] boxes; `EMPTY_BOX` for an object without pixels.
  """
  height, width = labels.shape
  boxes = np.tile(np.array(EMPTY_BOX, np.int64), (num_objects, 1))
  for index in range(num_objects):
    rows, cols = np.nonzero(labels == index + 1)
    if rows.size == 0:
      continue
    last = rows.size - 1
    low, high = int(last * (1 - quantile)), int(last * quantile)
    rows = np.partition(rows, (low, high))
    cols = np.partition(cols, (low, high))
    x_min, x_max = int(cols[low]), int(cols[high]) + 1
    y_min, y_max = int(rows[low]), int(rows[high]) + 1
    grow_x, grow_y = enlarge * (x_max - x_min), enlarge * (y_max - y_min)
    boxes[index] = clip_box((x_min - grow_x, y_min - grow_y, x_max + grow_x, y_max + grow_y),
                            height, width)
  return boxes


def box_area(box):
  """Area of a max-exclusive box."""
  return (box[2] - box[0]) * (box[3] - box[1])


def box_overlap(box_a, box_b):
  """The official `IoU` of two boxes, which is not a true IoU.

  The intersection counts the max corners as inside (so boxes that merely
  touch overlap) and is divided by the area of the enclosing box, whose lower
  corner takes `min(a_min, b_min + 1)`. Official uses: `> 1e-6` to decide that
  two objects touch, `> 0.3` to reject a re-ID box that covers a present object.
  """
  a_x0, a_y0, a_x1, a_y1 = (float(v) for v in box_a)
  b_x0, b_y0, b_x1, b_y1 = (float(v) for v in box_b)
  inter = (max(0.0, min(a_y1, b_y1) - max(a_y0, b_y0) + 1)
           * max(0.0, min(a_x1, b_x1) - max(a_x0, b_x0) + 1))
  hull = (max(a_y1, b_y1) - min(a_y0, b_y0 + 1)) * (max(a_x1, b_x1) - min(a_x0, b_x0 + 1))
  return inter / hull


def clip_box(box, height, width):
  """A box clipped into the image with at least one pixel per side, corners truncated to ints.

  The max corner is clipped after the min corner, to at least min + 1.
  """
  x_min = float(np.clip(box[0], 0, width - 1))
  x_max = float(np.clip(box[2], x_min + 1, width))
  y_min = float(np.clip(box[1], 0, height - 1))
  y_max = float(np.clip(box[3], y_min + 1, height))
  return np.array([x_min, y_min, x_max, y_max]).astype(np.int64)
