"""Keeping an intermediate result in memory on XLA:CPU.

XLA fuses elementwise producers into their consumers and recomputes them per consumer
element. For a gather that reads a computed array (bilinear taps of a warped image, pointer
maps), the whole producer is recomputed for every tap: measured 2-4x slower than computing it
once.  ``jax.lax.optimization_barrier`` did not stop this here (measured on glass_blur and
elastic_transform: same times, and the compiled HLO still fused across it).  Loop boundaries
do: a ``while`` loop's result lives in its own buffer.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def computed_apart(fn: Callable, severity, *args):
  """``fn(*args)``, computed inside a one-trip loop so its result is materialised.

  The trip count is ``min(severity, 1)`` = 1 for a severity in 1..5: taken from the traced
  severity so that XLA cannot prove the count and inline the loop away.  With a Python int
  severity (tests' eager ``apply``) the loop may be inlined: the result is the same, only the
  speed differs.
  """
  out = jax.eval_shape(fn, *args)
  init = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out)
  trips = jnp.minimum(jnp.asarray(severity, jnp.int32), 1)
  return jax.lax.fori_loop(0, trips, lambda i, _: fn(*args), init)
