"""Target classes for targeted attacks, as the seed papers define them.

Adversarial_Survey (Su et al. 2018, ``--target_type``) attacks correctly classified images with
three targets: *random* (uniform over the classes other than the true one), *least likely*
(the class with the lowest clean logit) and *top-2* (the second most likely class); ARES's
``t`` goal is the random target.  ``untargeted`` returns None (the attacks' untargeted mode).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_cp.attacks import core

TARGET_MODES = ("untargeted", "random", "least_likely", "second_most_likely")


def check_mode(mode: str) -> str:
  if mode not in TARGET_MODES:
    raise ValueError(f"unknown target mode {mode!r}; known: {', '.join(TARGET_MODES)}")
  return mode


def random_targets(key: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
  """int32 [N], uniform over the num_classes - 1 classes other than the label."""
  draw = jax.random.randint(key, labels.shape, 0, num_classes - 1, dtype=jnp.int32)
  return draw + (draw >= labels).astype(jnp.int32)


def least_likely_targets(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """int32 [N]: argmin of the clean logits, excluding the label (only matters for C = 1 ties)."""
  mask = jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
  return jnp.argmin(jnp.where(mask, jnp.inf, logits), axis=-1).astype(jnp.int32)


def second_most_likely_targets(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """int32 [N]: the most likely class other than the label (the top-2 of a correct example)."""
  mask = jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
  return jnp.argmax(jnp.where(mask, -jnp.inf, logits), axis=-1).astype(jnp.int32)


def select_targets(mode: str, logits: jax.Array, labels, key: jax.Array | None = None):
  """-> int32 [N] targets, or None for ``untargeted``.

  logits: the clean logits [N, C]; labels: int [N]; key: needed for ``random`` (one key for the
  batch; use ``random_targets`` per example with per-example keys where batches must not matter).
  """
  check_mode(mode)
  logits = jnp.asarray(logits)
  if logits.ndim != 2:
    raise ValueError(f"logits must be [N, C], got shape {tuple(logits.shape)}")
  labels = core.check_labels(labels, logits.shape[0])
  if mode == "untargeted":
    return None
  if mode == "random":
    if key is None:
      raise ValueError("the random target mode needs a PRNG key")
    return random_targets(key, labels, logits.shape[-1])
  if mode == "least_likely":
    return least_likely_targets(logits, labels)
  return second_most_likely_targets(logits, labels)
