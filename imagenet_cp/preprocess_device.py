"""``preprocess`` on JAX arrays: Resize(256) + CenterCrop(224) inside a jitted program.

``imagenet_cp.preprocess`` runs PIL on the host.  ``preprocess_on_device`` computes the same
thing on the device from decoded pixels: Pillow's fixed-point BILINEAR resampling
(``ops.resize``: its coefficient tables, horizontal pass then vertical, each rounded to uint8),
evaluated only for the output rows and columns the centre crop keeps.  It equals the PIL path
bit for bit for uint8 RGB input (``tests/test_preprocess.py`` checks real photos of several
shapes), so the tolerance is zero; the PIL path stays the default of the loaders, which decode
JPEGs on the host anyway.  The input size is static (one compile per input shape).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from imagenet_cp.ops import resize
from imagenet_cp.preprocess import CROP, RESIZE, center_crop_offsets, short_side_size


def preprocess_on_device(images: ArrayLike, resize_to: int = RESIZE, crop: int = CROP
                         ) -> jax.Array:
  """uint8 [..., H, W, 3] (any leading batch axes) -> uint8 [..., crop, crop, 3].

  torchvision's ``Resize(resize_to)`` (shorter side, PIL bilinear with antialiasing) then
  ``CenterCrop(crop)``, as ``imagenet_cp.preprocess`` computes it with PIL.  Jittable.
  """
  images = jnp.asarray(images)
  if images.dtype != jnp.uint8 or images.ndim < 3 or images.shape[-1] != 3:
    raise ValueError(f"preprocess_on_device needs uint8 RGB [..., H, W, 3], got {images.dtype} "
                     f"{images.shape}")
  h, w = images.shape[-3:-1]
  if min(h, w) < 1:
    raise ValueError(f"preprocess_on_device got an empty image of shape {images.shape}")
  out_h, out_w = short_side_size(h, w, resize_to)
  top, left = center_crop_offsets(out_h, out_w, crop)
  flat = images.reshape((-1, h, w, 3))
  # Pillow resizes horizontally first; a pass whose size does not change is skipped.
  if out_w != w:
    flat = _resample(flat, w, out_w, left, crop, axis=2)
  else:
    flat = flat[:, :, left:left + crop]
  if out_h != h:
    flat = _resample(flat, h, out_h, top, crop, axis=1)
  else:
    flat = flat[:, top:top + crop]
  return flat.reshape(images.shape[:-3] + (crop, crop, 3))


def _resample(x, n_in: int, n_out: int, start: int, count: int, axis: int):
  """Output samples ``start .. start + count`` of Pillow's ``n_in -> n_out`` pass on ``axis``."""
  weights, first = resize.pil_bilinear_coefficients(n_in, n_out)
  window = slice(start, start + count)
  return resize.resample_axis(x, weights[window], first[window], axis=axis)
