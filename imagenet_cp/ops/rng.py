"""Random draws for the corruptions: threefry2x32 bits at half the cost of ``jax.random``.

``jax.random.bits`` (with the default ``jax_threefry_partitionable``) hashes one 64-bit
counter per output word and XORs the two words threefry returns, and builds its counters with
64-bit arithmetic: on CPU that costs about the whole budget of a noise corruption.  Here one
threefry2x32 call yields two output words (counters ``0..n-1`` in two halves,
``jax.extend.random.threefry_2x32``, the Random123 use of the cipher), several times cheaper
(docs/speed.md).  Same keys (the per-image threefry2x32 keys of
``imagenet_cp.keys``), same statistical quality, different (but equally deterministic) values
than ``jax.random``; the float conversions below are ``jax.random``'s own.
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp
import numpy as np


def bits(key: jax.Array, shape) -> jax.Array:
  """uint32 random words of ``shape`` from one typed threefry2x32 key."""
  shape = tuple(shape)
  n = math.prod(shape)
  words = jex_random.threefry_2x32(jax.random.key_data(key), jnp.arange(n, dtype=jnp.uint32))
  return words.reshape(shape)


def uniform_from_bits(words: jax.Array, minval: float = 0.0, maxval: float = 1.0) -> jax.Array:
  """float32 uniforms in [minval, maxval) from the top 23 bits of each word (as
  ``jax.random.uniform``); the low 9 bits are left free for other uses."""
  mantissa = (words >> 9) | jnp.uint32(0x3F800000)
  u = jax.lax.bitcast_convert_type(mantissa, jnp.float32) - np.float32(1.0)
  lo, hi = np.float32(minval), np.float32(maxval)
  if (lo, hi) == (0.0, 1.0):
    return u
  return jnp.maximum(lo, u * (hi - lo) + lo)


def uniform(key: jax.Array, shape, minval: float = 0.0, maxval: float = 1.0) -> jax.Array:
  """float32 uniforms in [minval, maxval) (``jax.random.uniform``'s construction)."""
  return uniform_from_bits(bits(key, shape), minval, maxval)


def normal_from_bits(words: jax.Array, erf_inv: Callable = jax.lax.erf_inv) -> jax.Array:
  """float32 standard normals, ``sqrt(2) erf_inv(u)`` with u uniform in (-1, 1) from the top
  23 bits of each word (``jax.random.normal``'s mapping); ``erf_inv`` may be another float32
  inverse error function (ImageNet-P's noise uses its own)."""
  lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
  return np.float32(np.sqrt(2.0)) * erf_inv(uniform_from_bits(words, lo, 1.0))


def normal(key: jax.Array, shape) -> jax.Array:
  """float32 standard normals (``normal_from_bits`` of ``bits(key, shape)``)."""
  return normal_from_bits(bits(key, shape))
