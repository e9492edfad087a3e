"""Pillow's BOX and BILINEAR resizes for uint8 images, bit-exact, in JAX (pixelate; the other
-P sets' resized crops and motion-blur frames).

Pillow (``ImagingResample``, Pillow 12.3) resizes in two separable passes, horizontal first,
each rounding to uint8.  Per output index ``xx`` of an axis of ``n_in -> n_out`` it uses
``scale = n_in / n_out``, ``filterscale = max(scale, 1)``, ``support = filter support *
filterscale`` (BOX 0.5, BILINEAR 1), ``center = (xx + 0.5) * scale``, taps ``x`` in
``[int(center - support + 0.5), int(center + support + 0.5))`` clipped to the image, weights
``filter((x - center + 0.5) * (1 / filterscale))`` with ``box(t) = 1 if -0.5 < t <= 0.5``,
``bilinear(t) = max(1 - |t|, 0)``, normalised to sum 1 in double, then converted to 22-bit
fixed point (``int(w * 2**22 + 0.5)``).  A pixel is ``clip8((2**21 + sum_k w_k * in[x_k]) >>
22)``.  The coefficient tables are host constants computed here in float64 exactly that way.
"""
from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np

PRECISION_BITS = 32 - 8 - 2  # Pillow's 8-bit fixed-point weights


def _box(t: float) -> float:
  return 1.0 if -0.5 < t <= 0.5 else 0.0


def _bilinear(t: float) -> float:
  t = abs(t)
  return 1.0 - t if t < 1.0 else 0.0


def pil_coefficients(n_in: int, n_out: int, kernel, kernel_support: float
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Pillow's fixed-point coefficients of filter ``kernel`` (support ``kernel_support``) for one
  axis ``n_in -> n_out`` (``precompute_coeffs`` and ``normalize_coeffs_8bpc``, in float64).

  Returns:
    (weights int32 [n_out, ksize], first tap int32 [n_out]); taps past the image have weight 0.
  """
  scale = n_in / n_out
  filterscale = max(scale, 1.0)
  support = kernel_support * filterscale
  ksize = int(math.ceil(support)) * 2 + 1
  weights = np.zeros((n_out, ksize), np.int64)
  first = np.zeros((n_out,), np.int64)
  for xx in range(n_out):
    center = (xx + 0.5) * scale
    xmin = max(int(center - support + 0.5), 0)
    xmax = min(int(center + support + 0.5), n_in) - xmin
    w = np.array([kernel((x + xmin - center + 0.5) * (1.0 / filterscale)) for x in range(xmax)])
    total = w.sum()
    if total != 0.0:
      w = w / total
    weights[xx, :xmax] = np.where(w < 0, w * (1 << PRECISION_BITS) - 0.5,
                                  w * (1 << PRECISION_BITS) + 0.5).astype(np.int64)
    first[xx] = xmin
  return weights.astype(np.int32), first.astype(np.int32)


def box_coefficients(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
  """Pillow's fixed-point BOX coefficients for one axis ``n_in -> n_out`` (``pil_coefficients``)."""
  return pil_coefficients(n_in, n_out, _box, 0.5)


@functools.lru_cache(maxsize=None)
def pil_bilinear_coefficients(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
  """Pillow's fixed-point BILINEAR coefficients for one axis ``n_in -> n_out``
  (``pil_coefficients``)."""
  return pil_coefficients(n_in, n_out, _bilinear, 1.0)


def resample_axis(x: jnp.ndarray, weights, first, axis: int) -> jnp.ndarray:
  """One Pillow pass along ``axis`` of uint8 ``x`` with fixed-point ``weights`` [n_out, k].

  ``weights``/``first`` may be traced (selected per severity); taps are clipped into the axis
  (their weights are 0 there).  Returns uint8 with ``axis`` of length n_out.  The taps are
  summed one at a time: gathering all k at once into an int32 [n_out, k, ...] array cost
  XLA:CPU 3-5x the time (31 resizes 560x373 -> 299x299: 0.10 s -> 0.02-0.03 s).
  """
  x = jnp.moveaxis(jnp.asarray(x), axis, 0)
  n = x.shape[0]
  weights = jnp.asarray(weights, jnp.int32)
  first = jnp.asarray(first, jnp.int32)
  acc = jnp.int32(1 << (PRECISION_BITS - 1))
  for k in range(weights.shape[1]):
    tap = jnp.take(x, jnp.minimum(first + k, n - 1), axis=0, mode="clip").astype(jnp.int32)
    acc = acc + tap * jnp.reshape(weights[:, k], (-1,) + (1,) * (x.ndim - 1))
  out = jnp.clip(acc >> PRECISION_BITS, 0, 255).astype(jnp.uint8)
  return jnp.moveaxis(out, 0, axis)


def pil_resize(image, size_hw: tuple[int, int], coefficients) -> jnp.ndarray:
  """Pillow's two passes of uint8 [H, W, C] (or [H, W]) to ``size_hw`` (static): the horizontal
  first, each rounded to uint8, a pass skipped where its size does not change (as Pillow does);
  ``coefficients(n_in, n_out)`` gives each pass's tables."""
  height, width = size_hw
  h, w = image.shape[:2]
  out = jnp.asarray(image)
  if width != w:
    out = resample_axis(out, *coefficients(w, width), axis=1)
  if height != h:
    out = resample_axis(out, *coefficients(h, height), axis=0)
  return out


def pil_box_resize(image, size: tuple[int, int]) -> jnp.ndarray:
  """``PIL.Image.fromarray(image).resize(size, Image.BOX)`` for uint8 [H, W, C] (static size).

  Args:
    image: uint8 [H, W, C] or [H, W].
    size: (width, height), PIL's order.

  Returns:
    uint8 [height, width, C] (or [height, width]).
  """
  return pil_resize(image, size[::-1], box_coefficients)


def pil_bilinear_resize(image, size_hw: tuple[int, int]) -> jnp.ndarray:
  """``PIL.Image.fromarray(image).resize((w, h), BILINEAR)`` of uint8 [H, W, C] (static sizes)."""
  return pil_resize(image, size_hw, pil_bilinear_coefficients)


def stacked_box_coefficients(pairs) -> tuple[np.ndarray, np.ndarray]:
  """Coefficient tables of several ``(n_in, n_out)`` resizes, zero-padded to common shapes.

  For picking one resize with a traced index: the output axis is padded to the largest n_out
  (extra rows all-zero weights) and taps to the largest ksize.

  Returns:
    (weights int32 [len(pairs), max n_out, max k], first int32 [len(pairs), max n_out]).
  """
  tables = [box_coefficients(a, b) for a, b in pairs]
  n_out = max(w.shape[0] for w, _ in tables)
  k = max(w.shape[1] for w, _ in tables)
  weights = np.zeros((len(tables), n_out, k), np.int32)
  first = np.zeros((len(tables), n_out), np.int32)
  for i, (w, f) in enumerate(tables):
    weights[i, :w.shape[0], :w.shape[1]] = w
    first[i, :f.shape[0]] = f
  return weights, first

