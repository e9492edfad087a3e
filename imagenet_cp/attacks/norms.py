"""Distortion of adversarial examples in pixel units (0..255), per example.

Adversarial_Survey reports L0, L1, L2 and Linf of (adversarial - original) with
``numpy.linalg.norm`` over the flattened image; we do the same on the 0..255 scale, the unit of
the budgets at this package's API.  L0 counts the changed values (pixels x channels).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_cp.attacks import core


def perturbation_norms(adversarial: jax.Array, images: jax.Array,
                       l0_tolerance: float = 0.0) -> dict[str, jax.Array]:
  """-> {'l0', 'l1', 'l2', 'linf'}: float32 [N] each, of 255 * (adversarial - images).

  l0_tolerance (0..255 units): a value counts as changed when |delta| > l0_tolerance.
  """
  delta = (adversarial.astype(jnp.float32) - images.astype(jnp.float32)) * core.PIXEL
  flat = delta.reshape(delta.shape[0], -1)
  return {
      "l0": jnp.sum(jnp.abs(flat) > l0_tolerance, axis=1).astype(jnp.float32),
      "l1": core.flat_norm(flat, "l1"),
      "l2": core.flat_norm(flat, "l2"),
      "linf": core.flat_norm(flat, "linf"),
  }


def distortion(adversarial: jax.Array, images: jax.Array, norm: str,
               success: jax.Array | None = None) -> jax.Array:
  """float32 [N]: the ``norm`` ('l0', 'l1', 'l2', 'linf') distortion in 0..255 units; +inf where
  ``success`` is False (an attack that failed found no adversarial at any distortion)."""
  if norm not in ("l0", "l1", "l2", "linf"):
    raise ValueError(f"unknown norm {norm!r}; known: l0, l1, l2, linf")
  value = perturbation_norms(adversarial, images)[norm]
  if success is None:
    return value
  return jnp.where(success, value, jnp.inf)
