"""Keeping an intermediate result in memory on XLA:CPU (the ``computed_apart`` workaround).

XLA fuses elementwise producers into their consumers and recomputes them per consumer
element. For a gather that reads a computed array (bilinear taps of a warped image, pointer
maps), the whole producer is recomputed for every tap, several times slower than computing it
once.  ``jax.lax.optimization_barrier`` does not stop this on CPU; a loop boundary does: a
``while`` loop's result lives in its own buffer.  Timings: docs/speed.md, "CPU workarounds".

The helpers compute exactly what the plain expression computes.  They use the loop only where
``imagenet_cp.workarounds`` has ``computed_apart`` on (by default on XLA:CPU only); elsewhere,
or with the workaround off, they are the plain expression.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from imagenet_cp import workarounds

WORKAROUND = "computed_apart"


def computed_apart(fn: Callable, severity, *args):
  """``fn(*args)``; with the workaround on, computed inside a one-trip loop so that its result
  is materialised.

  The trip count is ``min(severity, 1)`` = 1 for a severity in 1..5: taken from the traced
  severity so that XLA cannot prove the count and inline the loop away.  With a Python int
  severity (tests' eager ``apply``) the loop may be inlined: the result is the same, only the
  speed differs.
  """
  if not workarounds.enabled(WORKAROUND, severity, *args):
    return fn(*args)
  out = jax.eval_shape(fn, *args)
  init = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out)
  trips = jnp.minimum(jnp.asarray(severity, jnp.int32), 1)
  return jax.lax.fori_loop(0, trips, lambda i, _: fn(*args), init)


def applied_if(pred, fn: Callable, x):
  """``fn(x)`` where the traced bool ``pred`` holds, else ``x`` (``fn(x)`` has x's shape and dtype).

  With the workaround on: a loop of ``int(pred)`` trips, whose result is kept in memory; plain:
  a select, which lets XLA fuse ``fn`` and its producers into every consumer of the result.
  """
  if not workarounds.enabled(WORKAROUND, pred, x):
    return jnp.where(pred, fn(x), x)
  return jax.lax.fori_loop(0, jnp.asarray(pred).astype(jnp.int32), lambda i, y: fn(y), x)


def carried_apart(fn: Callable, x: jax.Array, *params) -> jax.Array:
  """``fn(x, *params)`` (of x's shape); with the workaround on, the body of a one-trip loop that
  carries ``x``, so that its result is materialised for consumers that read it several times
  (ConvNeXt's LayerNorm reads its depthwise conv three times: 3 x 49 taps fused).

  Unlike ``computed_apart`` the body reads the carry, so XLA cannot hoist it out of the loop
  and copy its result in; and it is differentiable: a loop of traced trip count has no
  reverse-mode derivative, so the gradient is ``fn``'s own, with respect to ``x`` and ``params``
  alike (attacks and training differentiate through models that use it).
  """
  if not workarounds.enabled(WORKAROUND, x):
    return fn(x, *params)
  if jax.eval_shape(fn, x, *params).shape != x.shape:
    raise ValueError(f"carried_apart: fn maps {x.shape} to another shape")

  @jax.custom_vjp
  def looped(x, params):
    return jax.lax.fori_loop(0, one_trip(x), lambda i, v: fn(v, *params), x)

  def forward(x, params):
    return looped(x, params), (x, params)

  def backward(residuals, g):
    _, vjp = jax.vjp(lambda x, params: fn(x, *params), *residuals)
    return vjp(g)

  looped.defvjp(forward, backward)
  return looped(x, params)


def one_trip(x: jax.Array) -> jax.Array:
  """A traced int32 1 that XLA cannot fold to a constant (it depends on float32 ``x``'s first
  element), so that it keeps a loop of that trip count: ``min(u >> 1 | 1, 1)`` of the element's
  bits ``u`` is 1 for every input, NaN and inf included."""
  bits = jax.lax.bitcast_convert_type(x.reshape(-1)[0], jnp.uint32)
  return jnp.minimum(((bits >> 1) | 1).astype(jnp.int32), 1)
