"""RoIAlign on NHWC features, with torchvision's `roi_align` sampling rules."""

import jax
import jax.numpy as jnp


def _interpolation_matrix(start, end, bins, sampling_ratio, size, aligned):
  """[K, bins, size] weights that average one axis's bilinear samples into each bin.

  Bilinear interpolation is separable, and so are torchvision's rules (a point
  beyond one pixel outside the map samples 0, one within is clamped to the
  border), so RoIAlign is `rows @ features @ columns^T` per box.
  """
  length = end - start
  if not aligned:
    length = jnp.maximum(length, 1.0)
  bin_size = length / bins
  offsets = (jnp.arange(bins)[:, None] + (jnp.arange(sampling_ratio)[None, :] + 0.5) /
             sampling_ratio)
  points = start[:, None, None] + offsets[None] * bin_size[:, None, None]
  inside = (points >= -1.0) & (points <= size)
  points = jnp.clip(points, 0.0, size - 1.0)
  low = jnp.floor(points)
  high_weight = points - low
  low = low.astype(jnp.int32)
  high = jnp.minimum(low + 1, size - 1)
  weights = ((1.0 - high_weight)[..., None] * jax.nn.one_hot(low, size) +
             high_weight[..., None] * jax.nn.one_hot(high, size))
  return jnp.sum(weights * inside[..., None], axis=2) / sampling_ratio


def roi_align(features, boxes, output_size=(14, 14), spatial_scale=1 / 16, sampling_ratio=2,
              aligned=False):
  """Features of each box pooled to a fixed grid by averaging bilinear samples, as torchvision.

  Each output bin averages `sampling_ratio`**2 regularly spaced bilinear
  samples. Without `aligned`, boxes map to the feature map as `box * scale`
  and are widened to at least one cell (the original Mask R-CNN); with it,
  as `box * scale - 0.5` (pixel centres), with no minimum size.

  Args:
    features: [B, H, W, C] feature maps.
    boxes: [B, K, 4] boxes (x0, y0, x1, y1) in image pixels, K fixed (padding
      boxes give finite, ignorable outputs).
    output_size: (height, width) of the output grid.
    spatial_scale: feature-map cells per image pixel (1/16 at stride 16).
    sampling_ratio: samples per bin along each axis; torchvision's adaptive
      choice (ceil of the bin size, <= 0) has no static shape and is refused.
    aligned: shift by half a pixel so that sample points fall on pixel centres.

  Returns:
    [B, K, output_height, output_width, C] pooled features.

  Raises:
    ValueError: `sampling_ratio` is not positive.
  """
  if sampling_ratio <= 0:
    raise ValueError(f'sampling_ratio must be positive for static shapes, got {sampling_ratio}')
  _, height, width, _ = features.shape
  offset = 0.5 if aligned else 0.0

  def pool(image_features, image_boxes):
    corners = image_boxes * spatial_scale - offset
    rows = _interpolation_matrix(corners[:, 1], corners[:, 3], output_size[0], sampling_ratio,
                                 height, aligned)
    columns = _interpolation_matrix(corners[:, 0], corners[:, 2], output_size[1],
                                    sampling_ratio, width, aligned)
    rows, columns = rows.astype(features.dtype), columns.astype(features.dtype)
    return jnp.einsum('kph,hwc,kqw->kpqc', rows, image_features, columns, optimize=True)

  return jax.vmap(pool)(features, boxes)
