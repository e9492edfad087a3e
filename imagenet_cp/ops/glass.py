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

from imagenet_cp.ops import fusion


def pass_maps(offsets, d) -> tuple[jax.Array, jax.Array]:
  """The two maps of one shuffle pass, ``(J, T)``: int32 [size * size] each.

  Args:
    offsets: int [size, size, 2], the pair ``(dx, dy)`` drawn at loop position (h, w)
      (ignored outside the loop region d < h, w <= size - d).
    d: max_delta (int, may be traced).

  Returns:
    ``J(q) = src(q)`` where ``src(q)`` was visited before ``q``, else ``q``; ``T(q) = src(q)``
    on loop positions, else ``q`` (flat indices).
  """
  size = offsets.shape[0]
  h = jnp.arange(size, dtype=jnp.int32)[:, None]
  w = jnp.arange(size, dtype=jnp.int32)[None, :]

  def in_loop(v):
    return (v > d) & (v <= size - d)

  inside = in_loop(h) & in_loop(w)
  dx, dy = offsets[..., 0], offsets[..., 1]
  # Inside the loop region the source lies within the image (|offset| <= d): no clipping.
  src_h, src_w = h + dy, w + dx
  flat = h * size + w
  src = src_h * size + src_w
  # Visited earlier = later in raster order (reverse raster loop) and inside the loop region.
  later = (dy > 0) | ((dy == 0) & (dx > 0))
  visited_before = inside & in_loop(src_h) & in_loop(src_w) & later
  return (jnp.where(visited_before, src, flat).reshape(-1),
          jnp.where(inside, src, flat).reshape(-1))


def _chain_ends(jump) -> jax.Array:
  """``J*``, the fixed point of ``J`` by pointer jumping (``J <- J[J]`` until stable)."""

  # One gather per round: the body jumps and records whether anything moved (a cond that
  # re-gathered ``j[j]`` to test for the fixed point cost a second gather per round).
  def body(state):
    j, _ = state
    jj = j[j]
    return jj, jnp.any(jj != j)

  root, _ = jax.lax.while_loop(lambda state: state[1], body, (jump, jnp.bool_(True)))
  return root


def pass_index(offsets, d, trips=1) -> jax.Array:
  """Index map of one shuffle pass: ``new.flat = old.flat[index]``, int32 [size * size].

  ``offsets`` and ``d`` as in ``pass_maps``.  The maps are computed apart
  (``fusion.computed_apart``; ``trips`` is any traced count >= 1, e.g. the iterations):
  fused, ``T`` was recomputed from the offsets inside the gather ``T[J*]`` (docs/speed.md).
  """
  jump, terminal = fusion.computed_apart(lambda o: pass_maps(o, d), trips, offsets)
  return terminal[_chain_ends(jump)]


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
  # product) and recomputed them there (docs/speed.md).  The loop also
  # runs only the ``iterations`` passes the severity needs.
  def one_pass(i, index):
    # x_{i+1} = x_i[P_i]  =>  x_n = x_0[P_0[P_1[...]]]: compose on the right.
    pass_offsets = jax.lax.dynamic_index_in_dim(offsets, i, keepdims=False)
    return index[pass_index(pass_offsets, d, iterations)]

  index = jnp.arange(size * size, dtype=jnp.int32)
  return jax.lax.fori_loop(0, jnp.minimum(iterations, offsets.shape[0]), one_pass, index)


def transposed_index(index, height: int, width: int) -> jax.Array:
  """The index map of a [height, width] image's shuffle for its transpose: int32 [w * h] with
  ``shuffled.T.flat = image.T.flat[transposed_index(index)]`` when
  ``shuffled.flat = image.flat[index]``."""
  src = index.reshape(height, width).T
  return ((src % width) * height + src // width).reshape(-1)


def shuffle(image, offsets, d, iterations) -> jax.Array:
  """The original's pixel shuffle applied to ``image`` [size, size, C] (any dtype)."""
  size = image.shape[0]
  index = shuffle_index(offsets, d, iterations)
  flat = image.reshape(size * size, *image.shape[2:])
  return flat[index].reshape(image.shape)
