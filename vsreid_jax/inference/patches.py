"""The propagation network on object boxes: crop, resize to the patch, predict, resize back."""

import cv2
import numpy as np


def _resize(array, width, height):
  # cv2 needs contiguous input; channel slices of a [H, W, C] map are not.
  return cv2.resize(np.ascontiguousarray(array, np.float32), (width, height),
                    interpolation=cv2.INTER_LINEAR)


def predict_in_boxes(predictor, image, flow, boxes, guidance_crops):
  """Foreground probability of each object inside its box, all objects in one network call.

  As the official code: the image, the flow and the guidance are cropped to
  the box and resized to the patch with bilinear interpolation; the flow's
  vectors keep their pixel units (they are not rescaled to the patch); the
  network's foreground probability is resized back to the box bilinearly.

  Args:
    predictor: a `PatchPredictor`.
    image: uint8 [H, W, 3] RGB frame.
    flow: float32 [H, W, 2] flow from this frame toward the frame whose masks
      guide it.
    boxes: (x_min, y_min, x_max, y_max) per object, max exclusive.
    guidance_crops: per object, a 2-D guidance map of any size, resized to the
      patch (usually the guidance cropped to the object's box).

  Returns:
    per object, float32 [y_max - y_min, x_max - x_min] foreground probabilities.
  """
  size = predictor.patch_size
  images, flows, guidance = [], [], []
  for (x_min, y_min, x_max, y_max), crop in zip(boxes, guidance_crops, strict=True):
    images.append(_resize(image[y_min:y_max, x_min:x_max], size, size))
    flows.append(_resize(flow[y_min:y_max, x_min:x_max], size, size))
    guidance.append(_resize(crop, size, size))
  foreground = predictor(np.stack(images), np.stack(flows), np.stack(guidance))
  return [_resize(patch, x_max - x_min, y_max - y_min)
          for patch, (x_min, y_min, x_max, y_max) in zip(foreground, boxes)]
