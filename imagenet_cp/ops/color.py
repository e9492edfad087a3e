"""Colour-space conversions: scikit-image's HSV and OpenCV's RGB->gray, in JAX.

All functions work on channels-last arrays with any leading axes and compute in float32 (the
originals compute HSV in float64; the float32 round trip differs by a few ulps, far below one grey
level after scaling by 255, see docs/fidelity/digital.md).
"""
from __future__ import annotations

import jax.numpy as jnp

# cv2.COLOR_RGB2GRAY weights (ITU-R BT.601): float path, and the uint8 fixed-point path.
# OpenCV 5 scales the uint8 weights by 2**15 (9798, 19235, 3735; OpenCV 3/4 used 2**14 with
# 4899, 9617, 1868): checked equal to cv2 5.0 on all 2**24 RGB triples.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
_GRAY_FIXED = (9798, 19235, 3735)
_GRAY_SHIFT = 15


def rgb2hsv(rgb: jnp.ndarray) -> jnp.ndarray:
  """skimage.color.rgb2hsv: float [..., 3] RGB in [0, 1] -> float32 [..., 3] HSV.

  Original (skimage 0.26): V = max, delta = ptp, S = delta / V (0 where delta == 0); H from the
  channel equal to V, where blue beats green beats red on ties (later assignments win):
  red: (G-B)/delta, green: 2 + (B-R)/delta, blue: 4 + (R-G)/delta; H = (H/6) mod 1, 0 where
  delta == 0.
  """
  rgb = jnp.asarray(rgb, jnp.float32)
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  v = jnp.max(rgb, axis=-1)
  delta = v - jnp.min(rgb, axis=-1)
  flat = delta == 0.0
  safe_delta = jnp.where(flat, 1.0, delta)
  safe_v = jnp.where(v == 0.0, 1.0, v)
  s = jnp.where(flat, 0.0, delta / safe_v)
  h = jnp.where(
      b == v, 4.0 + (r - g) / safe_delta,
      jnp.where(g == v, 2.0 + (b - r) / safe_delta, (g - b) / safe_delta))
  h = jnp.mod(h / 6.0, 1.0)
  h = jnp.where(flat, 0.0, h)
  return jnp.stack([h, s, v], axis=-1)


def hsv2rgb(hsv: jnp.ndarray) -> jnp.ndarray:
  """skimage.color.hsv2rgb: float [..., 3] HSV -> float32 [..., 3] RGB.

  Original: hi = floor(6H), f = 6H - hi, p = V(1-S), q = V(1-fS), t = V(1-(1-f)S);
  sector hi mod 6 picks (v,t,p), (q,v,p), (p,v,t), (p,q,v), (t,p,v), (v,p,q).
  """
  hsv = jnp.asarray(hsv, jnp.float32)
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  hi = jnp.floor(h * 6.0)
  f = h * 6.0 - hi
  p = v * (1.0 - s)
  q = v * (1.0 - f * s)
  t = v * (1.0 - (1.0 - f) * s)
  # skimage casts hi to uint8 before "% 6"; hi is in 0..6 for H in [0, 1].
  sector = jnp.mod(hi.astype(jnp.int32), 6)
  # One select chain per channel (a take_along_axis over the six stacked choices was a gather:
  # ~1.3x the CPU of brightness / saturate, same values).
  return jnp.stack([_by_sector(sector, choices) for choices in (
      (v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q))], axis=-1)


def _by_sector(sector, choices) -> jnp.ndarray:
  """``choices[sector]`` elementwise for int32 ``sector`` in 0..5."""
  out = choices[5]
  for i in range(4, -1, -1):
    out = jnp.where(sector == i, choices[i], out)
  return out


def rgb2gray(rgb: jnp.ndarray) -> jnp.ndarray:
  """cv2.cvtColor(x, COLOR_RGB2GRAY) for float input: float32 [..., 3] -> float32 [...].

  0.299 R + 0.587 G + 0.114 B (no rounding, float arithmetic as OpenCV's float path).
  """
  rgb = jnp.asarray(rgb, jnp.float32)
  wr, wg, wb = GRAY_WEIGHTS
  return rgb[..., 0] * wr + rgb[..., 1] * wg + rgb[..., 2] * wb


def rgb2gray_uint8(rgb: jnp.ndarray) -> jnp.ndarray:
  """cv2.cvtColor(x, COLOR_RGB2GRAY) for uint8 input: uint8 [..., 3] -> uint8 [...].

  OpenCV 5's fixed point: (9798 R + 19235 G + 3735 B + 2**14) >> 15.
  """
  rgb = jnp.asarray(rgb).astype(jnp.int32)
  wr, wg, wb = _GRAY_FIXED
  acc = rgb[..., 0] * wr + rgb[..., 1] * wg + rgb[..., 2] * wb + (1 << (_GRAY_SHIFT - 1))
  return (acc >> _GRAY_SHIFT).astype(jnp.uint8)
