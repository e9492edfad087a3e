"""ImageMagick 6's ``MotionBlurImage`` (what the original reaches through Wand) in JAX.

ImageMagick 6.9 (``magick/effect.c``, ``MotionBlurImageChannel``):

- width ``w = 2 * ceil(radius) + 1`` taps (``GetOptimalKernelWidth1D`` for radius > 0);
- one-sided half-Gaussian ``k_i = exp(-i^2 / (2 sigma^2))``, i = 0..w-1, normalised to sum 1;
- tap i reads the pixel at column ``x + ceil(i cos(a) - 0.5)``, row ``y + ceil(i sin(a) - 0.5)``
  (angle ``a`` in degrees, clockwise on screen because rows grow downwards); pixels outside
  the image are the nearest edge pixel (the default 'edge' virtual-pixel method);
- the weighted sum is taken on Q16 values (8-bit input scaled by 257) and stored with
  ``ClampToQuantum`` (round half up); the 8-bit PNG that Wand hands back then holds
  ``q // 257`` (a truncation: *measured* on ImageMagick 6.9.11-60 Q16 through Wand, it matches
  all but ~1e-5 of the values, where rounding ``q / 257`` would be off by one on ~47% of them).

The taps are a sparse 2-D correlation whose offsets depend on a per-image (traced) angle, so
the sum is computed as one FFT correlation of the edge-padded image with the tap kernel: its
cost does not depend on the angle or the width, and it vectorises over a batch of angles.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def kernel_width(radius) -> int:
  """``GetOptimalKernelWidth1D(radius, sigma)`` for a static radius > 0: ``2 ceil(r) + 1``."""
  return int(2 * np.ceil(float(radius)) + 1)


def tap_weights(radius, sigma, max_width: int) -> jax.Array:
  """Normalised half-Gaussian weights, float32 [max_width] (zero beyond ``2 ceil(radius)+1``).

  ``radius`` and ``sigma`` may be traced (selected by a severity index).
  """
  i = jnp.arange(max_width, dtype=jnp.float32)
  width = 2.0 * jnp.ceil(jnp.asarray(radius, jnp.float32)) + 1.0
  sigma = jnp.maximum(jnp.asarray(sigma, jnp.float32), 1e-12)
  k = jnp.where(i < width, jnp.exp(-(i * i) / (2.0 * sigma * sigma)), 0.0)
  return k / jnp.sum(k)


def magick_tap_offsets(angle_degrees: float, width: int, max_width: int) -> tuple[np.ndarray, ...]:
  """Host float64 offsets exactly as ImageMagick computes them, int32 [max_width] each.

  ``p = width (sin a, cos a)``; tap i: row ``ceil(i p_x / |p| - .5)``, column
  ``ceil(i p_y / |p| - .5)``.  At angles where ``i sin a`` or ``i cos a`` is a half integer
  (e.g. -30, -60, -120, -150 degrees) the ceil depends on the last bit of the double.
  """
  a = np.pi * float(angle_degrees) / 180.0
  px, py = width * np.sin(a), width * np.cos(a)
  norm = np.hypot(px, py)
  i = np.arange(max_width, dtype=np.float64)
  dy = np.ceil(i * px / norm - 0.5).astype(np.int32)
  dx = np.ceil(i * py / norm - 0.5).astype(np.int32)
  return dy, dx


def _python_numbers(*values) -> bool:
  """Whether all ``values`` are Python/NumPy numbers (static: host float64 math applies)."""
  return all(isinstance(v, (int, float, np.integer, np.floating)) for v in values)


def tap_offsets(angle_degrees, max_width: int) -> tuple[jax.Array, jax.Array]:
  """Row and column offsets, int32 [max_width]: ``ceil(i sin a - .5)``, ``ceil(i cos a - .5)``.

  float32 from a (possibly traced) angle: equal to ImageMagick's float64 offsets except at
  angles where a tap lands exactly on a half integer (``magick_tap_offsets``; ``motion_blur``
  uses it for Python-number angles).  A uniformly drawn angle hits those with probability ~0.
  """
  a = jnp.asarray(angle_degrees, jnp.float32) * np.float32(np.pi / 180.0)
  i = jnp.arange(max_width, dtype=jnp.float32)
  dy = jnp.ceil(i * jnp.sin(a) - 0.5).astype(jnp.int32)
  dx = jnp.ceil(i * jnp.cos(a) - 0.5).astype(jnp.int32)
  return dy, dx


def motion_blur(image, radius, sigma, angle_degrees, *, max_radius=None) -> jax.Array:
  """The unquantised weighted sum of ImageMagick's motion blur (same units as ``image``).

  Args:
    image: [H, W] or [H, W, C], any real dtype (computed in float32).
    radius, sigma: the ImageMagick arguments; may be traced if ``max_radius`` is given.
    angle_degrees: scalar, may be traced; a Python/NumPy number (with a static radius) gets
      ImageMagick's exact float64 tap offsets.
    max_radius: static bound on ``radius`` (defaults to ``radius``, then it must be static).

  Returns:
    float32, the shape of ``image``.
  """
  x = jnp.asarray(image, jnp.float32)
  squeeze = x.ndim == 2
  if squeeze:
    x = x[..., None]
  max_width = kernel_width(radius if max_radius is None else max_radius)
  pad = max_width - 1
  h, w, _ = x.shape
  padded = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
  n_h, n_w = h + 2 * pad, w + 2 * pad
  weights = tap_weights(radius, sigma, max_width)
  if _python_numbers(angle_degrees, radius):
    dy, dx = magick_tap_offsets(angle_degrees, kernel_width(radius), max_width)
  else:
    dy, dx = tap_offsets(angle_degrees, max_width)
  # Circular correlation with the tap kernel: out[n] = sum_i k_i * padded[n + d_i].  The
  # wrap-around never reaches the centre crop because |d_i| <= pad.
  taps = jnp.zeros((n_h, n_w), jnp.float32).at[dy % n_h, dx % n_w].add(weights)
  spectrum = jnp.fft.rfft2(padded, axes=(0, 1)) * jnp.conj(jnp.fft.rfft2(taps))[..., None]
  out = jnp.fft.irfft2(spectrum, s=(n_h, n_w), axes=(0, 1))[pad:pad + h, pad:pad + w]
  return out[..., 0] if squeeze else out


def quantize_q16_to_uint8(value_8bit_units) -> jax.Array:
  """ImageMagick Q16 storage then 8-bit PNG output of a float in 0..255 units -> uint8.

  ``q = ClampToQuantum(257 v)`` (round half up, clamp to 0..65535), then ``q // 257`` (what
  the 8-bit PNG round trip through Wand gives, measured; see the module docstring).  The
  division runs in float32 as ``floor((q + 0.5) / 257)``: ``q + 0.5`` lies at least 0.5 away
  from every multiple of 257, far beyond float32's error, so the floor is ``q // 257`` exactly
  (checked for all 65536 q in tests/test_ops_motion_blur.py), and cheaper than an int32 floor
  division, to which jnp's ``//`` adds sign fix-ups.
  """
  v = jnp.asarray(value_8bit_units, jnp.float32) * 257.0
  q = jnp.floor(jnp.clip(v, 0.0, 65535.0) + 0.5)
  return jnp.floor((q + 0.5) * np.float32(1.0 / 257.0)).astype(jnp.uint8)


def motion_blur_uint8(image, radius, sigma, angle_degrees, *, max_radius=None) -> jax.Array:
  """The original's ``MotionImage.motion_blur`` on an 8-bit PNG, decoded again: uint8 out.

  Args:
    image: uint8 [H, W] or [H, W, C] (the PNG the original writes: RGB, or 'L' for snow).
    radius, sigma, angle_degrees, max_radius: as ``motion_blur``.

  Returns:
    uint8, the shape of ``image``.
  """
  return quantize_q16_to_uint8(
      motion_blur(image, radius, sigma, angle_degrees, max_radius=max_radius))
