"""RoIAlign against a loop-by-loop NumPy port of torchvision's CPU kernel, and its gradients."""

import functools
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vsreid_jax.models.roi_align import roi_align


def _bilinear(feature, y, x):
  """torchvision's `bilinear_interpolate` on one [H, W, C] map."""
  height, width, _ = feature.shape
  if y < -1.0 or y > height or x < -1.0 or x > width:
    return np.zeros(feature.shape[-1])
  y, x = max(y, 0.0), max(x, 0.0)
  y_low, x_low = int(y), int(x)
  if y_low >= height - 1:
    y_low = y_high = height - 1
    y = float(y_low)
  else:
    y_high = y_low + 1
  if x_low >= width - 1:
    x_low = x_high = width - 1
    x = float(x_low)
  else:
    x_high = x_low + 1
  ly, lx = y - y_low, x - x_low
  return ((1 - ly) * (1 - lx) * feature[y_low, x_low] + (1 - ly) * lx * feature[y_low, x_high] +
          ly * (1 - lx) * feature[y_high, x_low] + ly * lx * feature[y_high, x_high])


def _numpy_roi_align(features, boxes, output_size, spatial_scale, sampling_ratio, aligned):
  features = np.asarray(features, np.float64)
  out_h, out_w = output_size
  output = np.zeros(boxes.shape[:2] + (out_h, out_w, features.shape[-1]))
  offset = 0.5 if aligned else 0.0
  for b, k in np.ndindex(boxes.shape[:2]):
    x0, y0, x1, y1 = boxes[b, k].astype(np.float64) * spatial_scale - offset
    roi_w, roi_h = x1 - x0, y1 - y0
    if not aligned:
      roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    for ph, pw in np.ndindex(out_h, out_w):
      total = 0.0
      for iy, ix in np.ndindex(sampling_ratio, sampling_ratio):
        y = y0 + ph * bin_h + (iy + 0.5) * bin_h / sampling_ratio
        x = x0 + pw * bin_w + (ix + 0.5) * bin_w / sampling_ratio
        total = total + _bilinear(features[b], y, x)
      output[b, k, ph, pw] = total / sampling_ratio**2
  return output


def _inputs(seed=0, height=7, width=9, channels=3):
  rng = np.random.default_rng(seed)
  features = rng.normal(size=(2, height, width, channels)).astype(np.float32)
  image_h, image_w = 4 * height, 4 * width
  corners = rng.uniform(-8, [image_w + 8, image_h + 8], (2, 6, 2))
  sizes = rng.uniform(0, [image_w / 2, image_h / 2], (2, 6, 2))
  boxes = np.concatenate([corners, corners + sizes], axis=-1)
  boxes[0, 0] = [10, 10, 10, 10]  # Zero area.
  boxes[0, 1] = [12, 9, 5, 3]  # Inverted.
  boxes[1, 0] = [-30, -30, -10, -12]  # Fully outside.
  boxes[1, 1] = [0, 0, image_w, image_h]  # The whole image.
  return features, boxes.astype(np.float32)


@pytest.mark.parametrize('output_size, sampling_ratio, aligned', [
    ((3, 4), 1, False), ((3, 4), 2, True), ((2, 2), 3, False), ((5, 3), 2, False)])
def test_matches_numpy_reference(output_size, sampling_ratio, aligned):
  features, boxes = _inputs()
  pooled = jax.jit(functools.partial(roi_align, output_size=output_size, spatial_scale=1 / 4,
                                     sampling_ratio=sampling_ratio, aligned=aligned))(
                                         features, boxes)
  expected = _numpy_roi_align(features, boxes, output_size, 1 / 4, sampling_ratio, aligned)
  assert pooled.shape == (2, 6) + output_size + (3,)
  np.testing.assert_allclose(pooled, expected, atol=1e-5)


def test_box_outside_the_map_pools_zeros_and_unit_box_pools_its_cell():
  features, _ = _inputs()
  boxes = np.array([[[-40, -40, -20, -20], [8, 12, 12, 16]]] * 2, np.float32)
  pooled = roi_align(features, boxes, output_size=(1, 1), spatial_scale=1 / 4, sampling_ratio=1,
                     aligned=True)
  np.testing.assert_array_equal(pooled[:, 0], 0)
  # One cell centred on (2.5, 3.5) - 0.5: the single sample lands on cell (3, 2) exactly.
  np.testing.assert_allclose(pooled[:, 1, 0, 0], features[:, 3, 2], atol=1e-6)


def test_default_grid_and_stride():
  features, boxes = _inputs(height=5, width=6, channels=2)
  pooled = roi_align(features, boxes * 4)
  assert pooled.shape == (2, 6, 14, 14, 2)
  np.testing.assert_allclose(pooled, _numpy_roi_align(features, boxes * 4, (14, 14), 1 / 16, 2,
                                                      False), atol=1e-5)


def test_refuses_adaptive_sampling():
  features, boxes = _inputs()
  with pytest.raises(ValueError, match='sampling_ratio'):
    roi_align(features, boxes, sampling_ratio=0)


@pytest.mark.parametrize('aligned', [False, True])
def test_gradients_are_finite_and_adjoint(aligned):
  features, boxes = _inputs(seed=1)
  weights = np.random.default_rng(2).normal(size=(2, 6, 3, 3, 3)).astype(np.float32)

  def objective(features, boxes):
    pooled = roi_align(features, boxes, output_size=(3, 3), spatial_scale=1 / 4, aligned=aligned)
    return jnp.sum(pooled * weights)

  feature_grad, box_grad = jax.jit(jax.grad(objective, argnums=(0, 1)))(features, boxes)
  assert np.isfinite(feature_grad).all() and np.isfinite(box_grad).all()
  # RoIAlign is linear in the features, so <gradient, features> is the objective itself.
  np.testing.assert_allclose(np.sum(feature_grad * features), objective(features, boxes),
                             rtol=1e-4)
  # Samples of the fully outside box are all zeros, whatever its position.
  np.testing.assert_array_equal(box_grad[1, 0], 0)
