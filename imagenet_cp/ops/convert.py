"""Float -> uint8 as the originals save their images: ``np.uint8`` of a float is a truncation.

Two scales, one function each:

- ``uint8_clipped(x255)``: a float in 0..255 units, clipped to [0, 255], then truncated
  (``np.uint8(np.clip(x, 0, 255))``, ``tensor.byte()`` of a clamped tensor).
- ``uint8_from_unit(x01)``: a float in [0, 1] units, clipped to [0, 1], times 255, then
  truncated (``np.uint8(np.clip(x, 0, 1) * 255)``, the ImageNet-C save).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def uint8_clipped(x255) -> jax.Array:
  """``np.uint8(np.clip(x, 0, 255))`` for a float in 0..255 units: clip, then truncate."""
  return jnp.clip(x255, 0.0, 255.0).astype(jnp.uint8)


def uint8_from_unit(x01) -> jax.Array:
  """``np.uint8(np.clip(x, 0, 1) * 255)`` for a float in [0, 1] units."""
  return (jnp.clip(x01, 0.0, 1.0) * 255.0).astype(jnp.uint8)
