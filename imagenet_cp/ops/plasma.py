"""The diamond-square plasma fractal of ImageNet-C's fog, with replayable uniforms.

The original (``plasma_fractal`` in hendrycks/robustness ``make_imagenet_c.py``, after
FLHerne/mapgen) fills a ``mapsize x mapsize`` float64 map, toroidally (``np.roll``), level by
level for ``stepsize = mapsize, mapsize/2, ..., 2``:

- ``fillsquares``: each square centre = mean of its 4 corners + noise (one ``uniform`` call of
  shape ``(n, n)``, ``n = mapsize / stepsize``);
- ``filldiamonds``: the points between two corners on a corner row (one call ``(n, n)``), then
  those on a corner column (one call ``(n, n)``), each the mean of 2 corners and 2 centres +
  noise;

where noise is ``wibble * uniform(-wibble, wibble)`` (amplitude wibble**2), ``wibble`` starts at
100 and is divided by ``wibbledecay`` after each level.  The map is finally scaled to [0, 1] by
``(m - min) / max(m - min)``.  At mapsize 256 that is 3 * (1 + 4 + ... + 128**2) = 65,535 uniform
draws, consumed in exactly this order.

Here the map is built coarse to fine: the grid of one level (``n x n`` values at stride
``stepsize``) is interleaved with its centres and diamonds into the ``2n x 2n`` grid of the next
level.  The eight levels have different shapes, so they are unrolled (small ops, cheap to compile).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_cp.ops import rng

MAPSIZE = 256
WIBBLE0 = 100.0


def num_uniforms(mapsize: int = MAPSIZE) -> int:
  """Uniform draws the original consumes: 3 per point per level, sum over levels of 3 n**2."""
  total, n = 0, 1
  while n < mapsize:
    total += 3 * n * n
    n *= 2
  return total


def draw_uniforms(key: jax.Array, mapsize: int = MAPSIZE) -> jax.Array:
  """U[0, 1) float32 [num_uniforms(mapsize)], in the original's call order.

  The original's call ``uniform(-w, w, shape)`` is ``-w + 2 w u`` of these ``u`` (replay them
  with ``Replay(uniform=u, standard=('uniform',))``).
  """
  return rng.uniform(key, (num_uniforms(mapsize),))


def _wibbled_mean(total: jax.Array, u: jax.Array, wibble: jax.Array) -> jax.Array:
  """``total / 4 + wibble * uniform(-wibble, wibble)`` with ``uniform = -w + 2 w u``."""
  return total / 4 + wibble * (-wibble + 2 * wibble * u)


def _level(corners: jax.Array, u: jax.Array, wibble: jax.Array) -> jax.Array:
  """One diamond-square level: [n, n] corner grid -> [2n, 2n] grid of the next level.

  ``u`` holds the level's 3 n**2 uniforms: squares, then diamonds on corner rows, then diamonds
  on corner columns (the original's call order).
  """
  n = corners.shape[0]
  u_sq, u_row, u_col = jnp.reshape(u, (3, n, n))
  # fillsquares: corners (i, j), (i+1, j), (i, j+1), (i+1, j+1), wrapped.
  acc = corners + jnp.roll(corners, -1, axis=0)
  acc = acc + jnp.roll(acc, -1, axis=1)
  centres = _wibbled_mean(acc, u_sq, wibble)
  # filldiamonds, on corner rows: centres above/below + corners left/right.
  row_sum = (centres + jnp.roll(centres, 1, axis=0)) + (corners + jnp.roll(corners, -1, axis=1))
  on_rows = _wibbled_mean(row_sum, u_row, wibble)
  # on corner columns: centres left/right + corners above/below.
  col_sum = (centres + jnp.roll(centres, 1, axis=1)) + (corners + jnp.roll(corners, -1, axis=0))
  on_cols = _wibbled_mean(col_sum, u_col, wibble)
  # Interleave: [2i, 2j] corner, [2i, 2j+1] on_rows, [2i+1, 2j] on_cols, [2i+1, 2j+1] centre.
  even = jnp.stack([corners, on_rows], axis=-1).reshape(n, 2 * n)
  odd = jnp.stack([on_cols, centres], axis=-1).reshape(n, 2 * n)
  return jnp.stack([even, odd], axis=1).reshape(2 * n, 2 * n)


def plasma_fractal(uniforms: jax.Array, wibbledecay, mapsize: int = MAPSIZE) -> jax.Array:
  """The plasma map, float32 [mapsize, mapsize] in [0, 1].

  Args:
    uniforms: float32 [num_uniforms(mapsize)] in [0, 1), from ``draw_uniforms``.
    wibbledecay: scalar (may be traced), the original's ``wibbledecay``.
    mapsize: power of two (static).
  """
  if mapsize & (mapsize - 1):
    raise ValueError(f"mapsize must be a power of two, got {mapsize}")
  if uniforms.shape != (num_uniforms(mapsize),):
    raise ValueError(f"need {num_uniforms(mapsize)} uniforms, got shape {uniforms.shape}")
  grid = jnp.zeros((1, 1), jnp.float32)  # maparray[0, 0] = 0
  wibble = jnp.float32(WIBBLE0)
  decay = jnp.asarray(wibbledecay, jnp.float32)
  start = 0
  while grid.shape[0] < mapsize:
    n = grid.shape[0]
    # The barrier keeps XLA from fusing all levels into one deep expression (slow to compile).
    grid = jax.lax.optimization_barrier(_level(grid, uniforms[start:start + 3 * n * n], wibble))
    start += 3 * n * n
    wibble = wibble / decay
  grid = grid - jnp.min(grid)
  return grid / jnp.max(grid)
