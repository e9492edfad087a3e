"""Poisson counts by inverse CDF over host tables, with a guide table (ImageNet-C shot_noise and
ImageNet-P's shot_noise sequence).

A count is ``#{k : CDF(k) <= u}`` for a float32 uniform ``u`` on the 23-bit grid (multiples of
2^-23 in [0, 1)) and a CDF row tabulated on the host.  Instead of a binary search over the whole
row, the uniform's bucket gives the count at the bucket's smallest uniform (``guide_table``)
and a short binary search the rest.  Buckets: ``m = u 2^23`` by its distance ``mm`` to the
nearer end of [0, 1) (``mm = m``, or ``2^23 - 1 - m`` in the upper half): ``mm < 16`` exactly,
then 16 buckets per octave of ``mm``.  They shrink toward both tails, where the Poisson
quantiles spread, so a bucket's counts take few values (equal-width buckets left up to 34 even
at 2^14); the number of search steps is computed from the tables, so the search is exact by
construction.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

UNIFORM_BITS = 23
_HALF = 1 << (UNIFORM_BITS - 1)
_SUB_BITS = 4
_KEYS_PER_HALF = (1 << _SUB_BITS) * (UNIFORM_BITS - _SUB_BITS)
BUCKETS = 2 * _KEYS_PER_HALF


def bucket_bounds() -> tuple[np.ndarray, np.ndarray]:
  """The smallest and largest ``m`` of every bucket, int64 [BUCKETS] each."""
  n = 1 << _SUB_BITS
  lo, hi = list(range(n)), list(range(n))
  for octave in range(_SUB_BITS, UNIFORM_BITS - 1):
    for sub in range(n):
      lo.append((n + sub) << (octave - _SUB_BITS))
      hi.append(((n + sub + 1) << (octave - _SUB_BITS)) - 1)
  lo, hi = np.array(lo), np.array(hi)
  top = 2 * _HALF - 1
  return np.concatenate([lo, top - hi]), np.concatenate([hi, top - lo])


def uniform_bucket(u) -> jax.Array:
  """The bucket of float32 uniforms on the 23-bit grid, int32 in [0, BUCKETS)."""
  return bucket_and_position(u)[0]


def bucket_and_position(u) -> tuple[jax.Array, jax.Array]:
  """The bucket of float32 uniforms on the 23-bit grid and their position in it, int32 each.

  The position is ``m`` minus the bucket's smallest ``m``: every bucket with ``mm >= 16``
  covers the ``2^shift`` values of ``mm`` that share ``mm >> shift``, a block aligned on
  ``2^shift`` in ``m`` as well (the upper half's ``m = 2^23 - 1 - mm`` mirrors aligned blocks
  onto aligned blocks), so the position is ``m``'s low ``shift`` bits in both halves (0 in the
  one-value buckets).  ``m`` is read from the bits of ``u + 1``, which is exact on the grid and
  holds ``m`` as its mantissa (two integer operations where ``u 2^23`` and a saturating
  float-to-int conversion take several; the same ``m`` for all 2^23 uniforms).
  """
  m = jax.lax.bitcast_convert_type(u + np.float32(1.0), jnp.int32) - 0x3F800000
  upper = m >= _HALF
  mm = jnp.where(upper, 2 * _HALF - 1 - m, m)
  octave = (jax.lax.bitcast_convert_type(mm.astype(jnp.float32), jnp.int32) >> 23) - 127
  shift = jnp.maximum(octave - _SUB_BITS, 0)
  n = 1 << _SUB_BITS
  key = jnp.where(mm < n, mm, n + shift * n + ((mm >> shift) & (n - 1)))
  bucket = key + jnp.where(upper, _KEYS_PER_HALF, 0)
  return bucket, m & ((1 << shift) - 1)


def guide_table(cdf: np.ndarray, dtype) -> tuple[np.ndarray, int]:
  """For CDF rows float32 [..., K]: the count at every bucket's smallest uniform,
  ``dtype`` [..., BUCKETS], and the binary-search steps that every bucket's range of counts
  needs."""
  lo, hi = bucket_bounds()
  scale = np.float32(2.0 ** -UNIFORM_BITS)
  u_lo, u_hi = lo.astype(np.float32) * scale, hi.astype(np.float32) * scale
  rows = cdf.reshape(-1, cdf.shape[-1])
  start = np.empty((len(rows), BUCKETS), dtype)
  span = 0
  for i, row in enumerate(rows):
    first = np.searchsorted(row, u_lo, side="right")
    start[i] = first
    span = max(span, int((np.searchsorted(row, u_hi, side="right") - first).max()))
  return start.reshape(cdf.shape[:-1] + (BUCKETS,)), span.bit_length()


def guided_counts(cdf_rows, guide_rows, row, u, steps: int) -> jax.Array:
  """``#{k : cdf_rows[row, k] <= u}``, int32 of ``u``'s shape.

  cdf_rows float32 [R, K] and guide_rows [R, BUCKETS] (``guide_table`` of the same rows, with
  its ``steps``) as device arrays; ``row`` int32 indices into them, broadcast against ``u``.
  """
  width = cdf_rows.shape[-1]
  count = guide_rows.reshape(-1)[row * BUCKETS + uniform_bucket(u)].astype(jnp.int32)
  flat = cdf_rows.reshape(-1)
  for bit in reversed(range(steps)):
    # Invariant: the first `count` entries are <= u; probe entry count + step - 1.
    step = 1 << bit
    take = flat[row * width + jnp.minimum(count + step - 1, width - 1)] <= u
    count = count + jnp.where(take, step, 0)
  return count


# ``step_table``'s words: the position of the step in the low POSITION_BITS bits (a bucket
# holds at most 2^17 uniforms, so positions 0..2^17 fit), a payload above them.
POSITION_BITS = 18
PAYLOAD_BITS = 31 - POSITION_BITS


def step_table(cdf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Every bucket's count and where in the bucket it steps up by one, for CDF rows [..., K].

  Returns ``count`` (the count at the bucket's smallest uniform, as ``guide_table``) and
  ``position``: the position (``bucket_and_position``) of the bucket's first uniform whose
  count is ``count + 1``, or the bucket's size where there is none; int64 [..., BUCKETS] each.
  The count of a uniform at position ``p`` is then ``count + (p >= position)``, exactly, for
  tables whose buckets hold at most two counts (``guide_table``'s steps <= 1: the uniform
  steps past ``cdf[count]`` at ``m = ceil(cdf[count] 2^23)``, which float64 computes exactly).
  ValueError for tables whose buckets hold more.
  """
  lo, hi = bucket_bounds()
  scale = 2.0 ** UNIFORM_BITS
  u_lo = lo.astype(np.float32) * np.float32(1.0 / scale)
  u_hi = hi.astype(np.float32) * np.float32(1.0 / scale)
  rows = cdf.reshape(-1, cdf.shape[-1])
  count = np.empty((len(rows), BUCKETS), np.int64)
  position = np.empty((len(rows), BUCKETS), np.int64)
  for i, row in enumerate(rows):
    first = np.searchsorted(row, u_lo, side="right")
    step_m = np.ceil(row[np.minimum(first, len(row) - 1)].astype(np.float64) * scale)
    step_m = np.where(first < len(row), step_m, hi + 1)
    if np.any(np.searchsorted(row, u_hi, side="right") > first + 1):
      raise ValueError("a bucket holds more than two counts; use guided_counts")
    count[i] = first
    position[i] = np.clip(step_m, lo, hi + 1) - lo
  shape = cdf.shape[:-1] + (BUCKETS,)
  return count.reshape(shape), position.reshape(shape)


def pack_steps(payload: np.ndarray, position: np.ndarray) -> np.ndarray:
  """``payload`` (< 2^PAYLOAD_BITS, e.g. what the bucket's count stands for) and ``step_table``'s
  positions as one int32 word per bucket, for ``stepped_lookup``."""
  payload = np.asarray(payload, np.int64)
  if payload.min() < 0 or payload.max() >= 1 << PAYLOAD_BITS:
    raise ValueError(f"payload must lie in [0, 2^{PAYLOAD_BITS})")
  return ((payload << POSITION_BITS) | position).astype(np.int32)


def stepped_lookup(packed_rows, row, u) -> tuple[jax.Array, jax.Array]:
  """``(payload, stepped)`` of each uniform: its bucket's payload (``pack_steps``), and whether
  its count is one more than the bucket's (``step_table``).

  One gather per value, where ``guided_counts`` needs 1 + steps: packed_rows int32
  [R, BUCKETS] as a device array, ``row`` int32 indices into it, broadcast against ``u``.
  """
  bucket, position = bucket_and_position(u)
  word = packed_rows.reshape(-1)[row * BUCKETS + bucket]
  return word >> POSITION_BITS, position >= (word & ((1 << POSITION_BITS) - 1))
