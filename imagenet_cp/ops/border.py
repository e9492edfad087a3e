"""Border modes: how an index outside ``[0, n)`` of an axis is brought back inside.

One vocabulary for every op in ``imagenet_cp.ops`` (``x = a b c d``, two values of border),
with the same mode's name in SciPy ``ndimage``, ``numpy.pad`` and OpenCV:

- ``'nearest'``     ``a a | a b c d | d d``  SciPy 'nearest', numpy 'edge', cv2.BORDER_REPLICATE
- ``'reflect'``     ``b a | a b c d | d c``  SciPy 'reflect' (half-sample symmetric), numpy
  'symmetric', cv2.BORDER_REFLECT
- ``'reflect101'``  ``c b | a b c d | c b``  SciPy 'mirror', numpy 'reflect',
  cv2.BORDER_REFLECT_101 (= BORDER_DEFAULT)
- ``'constant'``    ``0 0 | a b c d | 0 0``  SciPy 'constant' / 'grid-constant', numpy 'constant',
  cv2.BORDER_CONSTANT
- ``'wrap'``        ``c d | a b c d | a b``  SciPy 'wrap' / 'grid-wrap', numpy 'wrap',
  cv2.BORDER_WRAP

(skimage.filters.gaussian's default is 'nearest'; OpenCV's filters default to 'reflect101'.)
An index map keeps extending periodically however far outside it lands, as SciPy's
``NI_ExtendLine`` does for a kernel longer than the axis.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

BORDERS = ("nearest", "reflect", "reflect101", "constant", "wrap")
NUMPY_PAD = {"nearest": "edge", "reflect": "symmetric", "reflect101": "reflect",
             "constant": "constant", "wrap": "wrap"}


def check_border(mode: str) -> str:
  """``mode`` if it is one of ``BORDERS``, else ValueError naming the known modes."""
  if mode not in BORDERS:
    raise ValueError(f"unknown border mode {mode!r}; expected one of {BORDERS}")
  return mode


def border_index(k, n: int, mode: str):
  """Maps integer indices ``k`` (any shape) into ``0..n-1`` under ``mode``; -1 where
  'constant' reads outside the axis.

  Host numpy (int64, for filter matrices built at trace time) or JAX arrays (traced sample
  positions), whichever ``k`` is.
  """
  check_border(mode)
  xp = jnp if isinstance(k, jax.Array) else np
  k = k if xp is jnp else np.asarray(k, dtype=np.int64)
  if mode == "nearest":
    return xp.clip(k, 0, n - 1)
  if mode == "reflect":
    k = xp.mod(k, 2 * n)
    return xp.where(k >= n, 2 * n - 1 - k, k)
  if mode == "reflect101":
    if n == 1:
      return xp.zeros_like(k)
    k = xp.mod(k, 2 * n - 2)
    return xp.where(k >= n, 2 * n - 2 - k, k)
  if mode == "constant":
    return xp.where((k >= 0) & (k < n), k, -1)
  return xp.mod(k, n)  # wrap


def pad_axis(x: jax.Array, r: int, axis: int, mode: str) -> jax.Array:
  """Extends ``x`` by ``r < n`` values on both sides of ``axis`` under ``mode``."""
  widths = [(r, r) if a == axis else (0, 0) for a in range(x.ndim)]
  return jnp.pad(x, widths, mode=NUMPY_PAD[check_border(mode)])


def pad_spatial(x: jax.Array, r: int, mode: str) -> jax.Array:
  """Extends the two leading (spatial) axes of ``x`` by ``r`` values on both sides."""
  widths = ((r, r), (r, r)) + ((0, 0),) * (x.ndim - 2)
  return jnp.pad(x, widths, mode=NUMPY_PAD[check_border(mode)])
