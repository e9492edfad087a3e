"""glass_blur's local pixel shuffle, as an exact parallel gather.

The original (224 hard-coded, ``d`` = max_delta)::

  for h in range(224 - d, d, -1):
    for w in range(224 - d, d, -1):
      dx, dy = np.random.randint(-d, d, size=(2,))
      x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx], x[h, w]

Both sides of that "swap" are NumPy views, so it is the copy ``x[h, w] = x[h + dy, w + dx]``
(the source keeps its value).  The loop runs in reverse raster order and reads pixels it has
already overwritten in the same pass.  Each loop position is written exactly once per pass,
so when position ``p`` is visited its source ``s = src(p)`` holds

- ``s``'s own final value of this pass, if ``s`` is a loop position visited before ``p``
  (i.e. later in raster order and inside the loop region), else
- the value ``s`` had when the pass started.

Hence ``out[p] = in[T(J*(p))]``, with ``J(q) = src(q)`` when ``src(q)`` was visited before
``q`` and ``J(q) = q`` otherwise, ``J*`` its fixed point (each step strictly advances in raster
order, so chains end), and ``T(q) = src(q)`` on loop positions, ``q`` elsewhere.  ``J*`` is
computed by pointer jumping (``J <- J[J]`` until stable: O(log chain length) gathers of one
int32 index map); the passes compose into one index map, and the pixels are gathered once.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _loop_region(size: int, d) -> tuple[jax.Array, jax.Array]:
  """Row/column index grids [size, size] and the mask of visited positions d < h, w <= size-d."""
  h, w = jnp.meshgrid(jnp.arange(size), jnp.arange(size), indexing="ij")
  inside = (h > d) & (h <= size - d) & (w > d) & (w <= size - d)
  return (h, w), inside


def pass_index(offsets, d) -> jax.Array:
  """Index map of one shuffle pass: ``new.flat = old.flat[index]``.

  Args:
    offsets: int [size, size, 2], the pair ``(dx, dy)`` drawn at loop position (h, w)
      (ignored outside the loop region).
    d: max_delta (int, may be traced).

  Returns:
    int32 [size * size].
  """
  size = offsets.shape[0]
  (h, w), inside = _loop_region(size, d)
  dx, dy = offsets[..., 0], offsets[..., 1]
  src_h = jnp.clip(h + dy, 0, size - 1)
  src_w = jnp.clip(w + dx, 0, size - 1)
  flat = (h * size + w).reshape(-1)
  src = (src_h * size + src_w).reshape(-1)
  inside = inside.reshape(-1)
  src_inside = inside[src]
  # Visited earlier = later in raster order (reverse raster loop) and inside the loop region.
  visited_before = inside & src_inside & (src > flat)
  jump = jnp.where(visited_before, src, flat).astype(jnp.int32)
  terminal = jnp.where(inside, src, flat).astype(jnp.int32)

  # One gather per round: the body jumps and records whether anything moved (a cond that
  # re-gathered ``j[j]`` to test for the fixed point cost a second gather per round).
  def body(state):
    j, _ = state
    jj = j[j]
    return jj, jnp.any(jj != j)

  root, _ = jax.lax.while_loop(lambda state: state[1], body, (jump, jnp.bool_(True)))
  return terminal[root]


def shuffle_index(offsets, d, iterations) -> jax.Array:
  """Composed index map of ``iterations`` passes (a traced count <= offsets.shape[0]).

  Args:
    offsets: int [max_iterations, size, size, 2], pass i uses ``offsets[i]``.
    d: max_delta; iterations: number of passes (both may be traced).

  Returns:
    int32 [size * size]: ``out.flat = in.flat[index]``.
  """
  size = offsets.shape[1]

  # A loop, not unrolled passes: the loop's carry is a materialised index map.  Unrolled, XLA
  # fused the composing gathers, the offsets arithmetic and the pointer-jumping results into
  # every consumer of the shuffled pixels (3 channels, transposed for the Gaussian's matrix
  # product) and recomputed them there: the whole corruption took 2-3x longer.  The loop also
  # runs only the ``iterations`` passes the severity needs.
  def one_pass(i, index):
    # x_{i+1} = x_i[P_i]  =>  x_n = x_0[P_0[P_1[...]]]: compose on the right.
    return index[pass_index(jax.lax.dynamic_index_in_dim(offsets, i, keepdims=False), d)]

  index = jnp.arange(size * size, dtype=jnp.int32)
  return jax.lax.fori_loop(0, jnp.minimum(iterations, offsets.shape[0]), one_pass, index)


def shuffle(image, offsets, d, iterations) -> jax.Array:
  """The original's pixel shuffle applied to ``image`` [size, size, C] (any dtype)."""
  size = image.shape[0]
  index = shuffle_index(offsets, d, iterations)
  flat = image.reshape(size * size, *image.shape[2:])
  return flat[index].reshape(image.shape)
