"""Per-example attack losses on logits [N, C] -> float32 [N] (larger is better for the attacker).

* ``cross_entropy``: -log softmax(z)_y.
* ``margin``: the C&W f (Carlini & Wagner 2017, eq. f_6): max_{j != y} z_j - z_y.  Positive
  exactly when the example is misclassified.
* ``dlr``: Croce & Hein (2020) eq. 5, -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3).
* ``dlr_targeted``: their targeted version, -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2).

``objective(name, logits, labels, targets)`` gives what the gradient attacks ascend: the loss
itself untargeted, minus the loss towards the target when targeted (the DLR-targeted loss is
already targeted).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

LOSSES = ("ce", "margin", "dlr", "dlr_targeted")
_TINY = 1e-12


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]


def label_logit(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]


def best_other_logit(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """max_{j != y} z_j, [N]."""
  mask = jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
  return jnp.max(jnp.where(mask, -jnp.inf, logits), axis=-1)


def margin(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """max_{j != y} z_j - z_y: > 0 iff the top-1 is not y."""
  return best_other_logit(logits, labels) - label_logit(logits, labels)


def dlr(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Difference of logits ratio, untargeted (needs C >= 3)."""
  ordered = jnp.sort(logits, axis=-1)
  scale = ordered[:, -1] - ordered[:, -3]
  return margin(logits, labels) / (scale + _TINY)


def dlr_targeted(logits: jax.Array, labels: jax.Array, targets: jax.Array) -> jax.Array:
  """Targeted DLR (needs C >= 4): -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)."""
  ordered = jnp.sort(logits, axis=-1)
  scale = ordered[:, -1] - 0.5 * (ordered[:, -3] + ordered[:, -4])
  gap = label_logit(logits, labels) - label_logit(logits, targets)
  return -gap / (scale + _TINY)


def objective(name: str, logits: jax.Array, labels: jax.Array,
              targets: jax.Array | None) -> jax.Array:
  """What the attacker maximises, [N]."""
  if name == "dlr_targeted":
    if targets is None:
      raise ValueError("the dlr_targeted loss needs targets")
    return dlr_targeted(logits, labels, targets)
  fn = {"ce": cross_entropy, "margin": margin, "dlr": dlr}.get(name)
  if fn is None:
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")
  if targets is None:
    return fn(logits, labels)
  return -fn(logits, targets)
