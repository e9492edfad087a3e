"""``scipy.ndimage.zoom(order=1)`` and the original ImageNet-C ``clipped_zoom`` in JAX.

SciPy's defaults (grid_mode=False, mode='constant') sample output index ``i`` of an axis at
input coordinate ``i * (n_in - 1) / (n_out - 1)`` (corner-aligned, so the effective factor
is not exactly ``z``), with linear weights.  The sample positions only depend on the sizes,
so they are computed on the host (float64, as SciPy does) as two-tap tables
``out[i] = (1 - frac[i]) * x[lo[i]] + frac[i] * x[lo[i] + 1]`` and applied in JAX with two
gathers per axis.  Tables for several factors can be stacked and picked with a traced index
(``clipped_zoom_tables`` + ``resample_axes``), which is how a traced severity selects its zoom.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def zoom_output_size(n_in: int, z: float) -> int:
  """SciPy's output length ``int(round(n_in * z))`` (Python round: half to even)."""
  return int(round(n_in * float(z)))


def linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
  """Two-tap table of ``scipy.ndimage.zoom(order=1, grid_mode=False)`` along one axis.

  Returns ``lo`` int32 [n_out] and ``frac`` float32 [n_out]: output i reads
  ``(1 - frac) * x[lo] + frac * x[min(lo + 1, n_in - 1)]``.
  """
  ratio = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
  coord = np.arange(n_out, dtype=np.float64) * ratio
  coord = np.clip(coord, 0.0, n_in - 1)
  lo = np.minimum(np.floor(coord), max(n_in - 2, 0)).astype(np.int64)
  frac = coord - lo
  if n_in == 1:
    lo, frac = np.zeros(n_out, np.int64), np.zeros(n_out)
  return lo.astype(np.int32), frac.astype(np.float32)


def clipped_zoom_taps(h: int, z: float) -> tuple[np.ndarray, np.ndarray]:
  """The original's ``clipped_zoom`` along one axis of length ``h`` as a two-tap table.

  ``ch = ceil(h / z)``, ``top = (h - ch) // 2``, crop ``[top, top + ch)``, zoom to
  ``round(ch * z)`` samples, keep ``h`` of them from ``trim = (n_out - h) // 2``.
  Returns ``lo`` int32 [h] (indices into the full axis) and ``frac`` float32 [h].
  """
  ch = int(np.ceil(h / float(z)))
  top = (h - ch) // 2
  n_out = zoom_output_size(ch, z)
  if n_out < h:
    raise ValueError(f"clipped_zoom({z}) of {h} gives only {n_out} samples")
  trim = (n_out - h) // 2
  lo, frac = linear_taps(ch, n_out)
  lo, frac = lo[trim:trim + h] + top, frac[trim:trim + h]
  return lo.astype(np.int32), frac


def clipped_zoom_tables(h: int, zs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
  """Stacked ``clipped_zoom_taps`` for several factors: int32 [len(zs), h], float32 [len(zs), h]."""
  taps = [clipped_zoom_taps(h, z) for z in zs]
  return np.stack([t[0] for t in taps]), np.stack([t[1] for t in taps])


def _resample_axis(x: jax.Array, lo, frac, axis: int) -> jax.Array:
  n = x.shape[axis]
  shape = [-1 if a == axis else 1 for a in range(x.ndim)]
  a = jnp.take(x, lo, axis=axis)
  b = jnp.take(x, jnp.minimum(lo + 1, n - 1), axis=axis)
  f = jnp.reshape(frac, shape)
  return a + f * (b - a)


def resample_axes(x, lo, frac, lo_w=None, frac_w=None) -> jax.Array:
  """Applies two-tap tables along axis 0 (``lo``, ``frac``) and axis 1 (the same unless given).

  Args:
    x: [H, W] or [H, W, C]; computed in float32.
    lo, frac: int32 / float32 [H_out] (may be traced, e.g. a row of a stacked table).

  Returns:
    float32 [H_out, W_out, ...].
  """
  x = jnp.asarray(x, jnp.float32)
  lo_w = lo if lo_w is None else lo_w
  frac_w = frac if frac_w is None else frac_w
  return _resample_axis(_resample_axis(x, lo, frac, 0), lo_w, frac_w, 1)


def zoom_linear(x, out_hw: tuple[int, int]) -> jax.Array:
  """``scipy.ndimage.zoom(x, (out_h/H, out_w/W[, 1]), order=1)`` with output size ``out_hw``."""
  h, w = x.shape[:2]
  lo_h, f_h = linear_taps(h, out_hw[0])
  lo_w, f_w = linear_taps(w, out_hw[1])
  return resample_axes(x, lo_h, f_h, lo_w, f_w)


def clipped_zoom(img, z: float) -> jax.Array:
  """The original ``clipped_zoom(img, z)`` for a static factor ``z`` on a square image.

  Args:
    img: [H, H] or [H, H, C] (float32 in the original's zoom_blur and snow).
    z: zoom factor >= 1 (Python float).

  Returns:
    float32, the shape of ``img``.
  """
  h = img.shape[0]
  if img.shape[1] != h:
    raise ValueError(f"clipped_zoom expects a square image, got {img.shape}")
  lo, frac = clipped_zoom_taps(h, z)
  return resample_axes(img, lo, frac)


def clipped_zoom_indexed(img, tables: tuple[np.ndarray, np.ndarray], index) -> jax.Array:
  """``clipped_zoom(img, zs[index])`` for a traced ``index`` into ``clipped_zoom_tables(h, zs)``."""
  lo, frac = tables
  lo = jnp.asarray(lo)[index]
  frac = jnp.asarray(frac)[index]
  return resample_axes(img, lo, frac)

