"""What every attack shares: the result type, input checks, units and the success rule.

Conventions (DESIGN.md): images are float32 [N, H, W, 3] pixels in [0, 1]; ``apply_fn(variables,
images) -> logits [N, C]``; budgets and step sizes are given at the API in /255 pixel units
(``eps=4`` means 4/255 in [0, 1] units, for Linf, L2 and L1 alike) and converted here once.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.keys import as_typed_keys
from imagenet_cp.ops.tracing import is_concrete

ApplyFn = Callable[[Any, jax.Array], jax.Array]
NORMS = ("linf", "l2", "l1")
PIXEL = 255.0  # /255 units at the API, [0, 1] units inside


class AttackResult(NamedTuple):
  """What an attack returns (a pytree; fields that an attack does not have are None).

  adversarial: float32 [N, H, W, 3] in [0, 1]; for an example the attack did not fool, the
    attack's last (or best-loss) iterate.
  success: bool [N]: the model's top-1 on ``adversarial`` is not the label (untargeted) or is
    the target (targeted).
  curve: bool [T + 1, N]: success by iteration t (t = 0 is the starting point), monotone in t;
    the accuracy-vs-iterations (or -queries) curve without callbacks.  For C&W / EAD, T is the
    number of binary-search steps.
  queries: int32 [N]: model evaluations the black-box attack spent on the example (it stops
    querying an example once it is fooled).
  """
  adversarial: jax.Array
  success: jax.Array
  curve: jax.Array | None = None
  queries: jax.Array | None = None


def check_images(images) -> jax.Array:
  """float32 [N, H, W, 3] in [0, 1] or ValueError (the range only when the values are known)."""
  dtype = getattr(images, "dtype", None)
  if dtype != jnp.float32:
    raise ValueError(f"images must be float32 pixels in [0, 1], got dtype {dtype}")
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"images must be [N, H, W, 3], got shape {tuple(images.shape)}")
  if is_concrete(images):
    lo, hi = float(jnp.min(images)), float(jnp.max(images))
    if not (0.0 <= lo and hi <= 1.0):
      raise ValueError(f"images must lie in [0, 1] (pixels / 255), got range [{lo}, {hi}]")
  return images


def check_labels(labels, n: int, name: str = "labels") -> jax.Array:
  """int [N] or ValueError."""
  if labels is None:
    raise ValueError(f"{name} are required")
  labels = jnp.asarray(labels)
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"{name} must be integer class ids, got dtype {labels.dtype}")
  if labels.shape != (n,):
    raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
  return labels.astype(jnp.int32)


def check_budget(value, n: int, name: str = "eps") -> jax.Array:
  """A budget in /255 units, scalar or [N], non-negative -> float32 [N] in [0, 1] units."""
  value = jnp.asarray(value, jnp.float32)
  if value.ndim not in (0, 1) or (value.ndim == 1 and value.shape != (n,)):
    raise ValueError(f"{name} must be a scalar or shape ({n},), got {tuple(value.shape)}")
  if is_concrete(value):
    if not bool(jnp.all(value >= 0)):
      raise ValueError(f"{name} must be non-negative (/255 units), got {np.asarray(value)}")
  return jnp.broadcast_to(value, (n,)) / PIXEL


def check_norm(norm: str, allowed=NORMS) -> str:
  if norm not in allowed:
    raise ValueError(f"unknown norm {norm!r}; known: {', '.join(allowed)}")
  return norm


def check_positive_int(value, name: str) -> int:
  if not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}")
  return int(value)


def check_inputs(images, labels, targets, eps=None, eps_name="eps"):
  """The common checks -> (images, labels, targets or None, eps in [0, 1] units [N] or None)."""
  images = check_images(images)
  n = images.shape[0]
  labels = check_labels(labels, n)
  if targets is not None:
    targets = check_labels(targets, n, "targets")
  budget = None if eps is None else check_budget(eps, n, eps_name)
  return images, labels, targets, budget


def per_example_keys(key, n: int) -> jax.Array:
  """One typed PRNG key per example of a batch of ``n``, [N].

  key: a single key (split into N by position in the batch) or N keys, one per example (then an
  example's random draws do not depend on its batch, DESIGN.md's rule; e.g. keys from
  ``imagenet_cp.example_keys``, derived from the file names).  Raw uint32 keys
  (``jax.random.PRNGKey``) are accepted too.
  """
  if key is None:
    raise ValueError("a PRNG key is required")
  key = as_typed_keys(key)
  if key.shape == ():
    return jax.random.split(key, n)
  if key.shape == (n,):
    return key
  raise ValueError(f"key must be a single PRNG key or {n} keys, got shape {tuple(key.shape)}")


def fold_keys(keys: jax.Array, i) -> jax.Array:
  """Each example's key folded with i (an iteration or sample index), [N]."""
  return jax.vmap(lambda k: jax.random.fold_in(k, i))(keys)


def draw(keys: jax.Array, sample, shape) -> jax.Array:
  """sample(key, shape) for each example's key -> [N, *shape]."""
  return jax.vmap(lambda k: sample(k, shape))(keys)


def is_success(logits: jax.Array, labels: jax.Array, targets: jax.Array | None) -> jax.Array:
  """bool [N]: top-1 differs from the label (untargeted) or equals the target (targeted)."""
  predictions = jnp.argmax(logits, axis=-1)
  if targets is None:
    return predictions != labels
  return predictions == targets


def per_example(v: jax.Array, x: jax.Array) -> jax.Array:
  """Broadcast a per-example [N] value against images [N, H, W, 3]."""
  return v.reshape((-1,) + (1,) * (x.ndim - 1))


def flat_norm(delta: jax.Array, norm: str) -> jax.Array:
  """Per-example norm [N] of delta [N, ...] (same units as delta)."""
  flat = delta.reshape(delta.shape[0], -1)
  if norm == "linf":
    return jnp.max(jnp.abs(flat), axis=1)
  if norm == "l2":
    return jnp.sqrt(jnp.sum(flat * flat, axis=1))
  return jnp.sum(jnp.abs(flat), axis=1)


def project(adv: jax.Array, images: jax.Array, eps: jax.Array, norm: str) -> jax.Array:
  """Nearest point of the eps-ball around images (Linf, L2) intersected with the [0, 1] box.

  eps: [N] in [0, 1] units.  For L2 the ball projection is a radial rescale; clipping to the box
  afterwards only moves coordinates towards ``images``, so the norm stays within eps.
  """
  delta = adv - images
  e = per_example(eps, images)
  if norm == "linf":
    delta = jnp.clip(delta, -e, e)
  elif norm == "l2":
    length = per_example(flat_norm(delta, "l2"), images)
    delta = delta * jnp.minimum(1.0, e / jnp.maximum(length, 1e-12))
  else:
    raise ValueError(f"projection onto the {norm} ball is not implemented (use linf or l2)")
  return jnp.clip(images + delta, 0.0, 1.0)


def normalized_step(grad: jax.Array, norm: str) -> jax.Array:
  """Steepest-ascent direction of unit norm: sign(g) for Linf, g / ||g||_2 for L2."""
  if norm == "linf":
    return jnp.sign(grad)
  length = per_example(flat_norm(grad, "l2"), grad)
  return grad / jnp.maximum(length, 1e-12)
