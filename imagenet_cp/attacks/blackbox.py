"""Score-based black-box attacks: NES (Ilyas et al., ICML 2018) and SPSA (Uesato et al., ICML
2018), with exact per-example query counts.

Both estimate the gradient of the attack objective (``attacks.losses``, computed from the
model's scores only) by antithetic finite differences over ``samples`` random directions,

  NES:   g = 1 / (2 n sigma) sum_i [L(x + sigma u_i) - L(x - sigma u_i)] u_i,  u_i ~ N(0, I)
  SPSA:  g = 1 / (2 n delta) sum_i [L(x + delta v_i) - L(x - delta v_i)] v_i, v_i ~ Rademacher

then NES takes a projected signed (Linf) or normalised (L2) step, and SPSA an Adam step
projected onto the Linf ball.  Queries, per example: 1 for the starting image, then per
iteration 2 * samples for the estimate and 1 to score the new iterate; an example that is
fooled stops (it is neither moved nor charged any more).  So an example fooled after t
iterations cost exactly 1 + t (2 samples + 1) queries, and the accuracy-vs-queries curve is
``curve`` against ``queries_at(t)``.  The batch is still evaluated as a whole (masking is what
keeps the count honest), so wall time does not shrink as examples drop out.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from imagenet_cp.attacks import core, losses
from imagenet_cp.attacks.jit import jit as attack_jit


def queries_at(iteration, samples: int):
  """Queries an example has cost after ``iteration`` iterations (iteration 0: the start)."""
  return 1 + iteration * (2 * samples + 1)


def estimate_gradient(score, x, keys, samples: int, scale, kind: str):
  """Antithetic finite-difference gradient estimate, [N, H, W, 3]; 2 * samples queries.

  score: images -> objective [N]; keys: [N], one per example; scale: sigma / delta [N]
  ([0, 1] units).
  """
  s = core.per_example(scale, x)
  rademacher = functools.partial(jax.random.rademacher, dtype=jnp.float32)
  sample = jax.random.normal if kind == "nes" else rademacher

  def one(total, i):
    u = core.draw(core.fold_keys(keys, i), sample, x.shape[1:])
    # Queries stay valid images: the probes are clipped to the box.
    diff = score(jnp.clip(x + s * u, 0.0, 1.0)) - score(jnp.clip(x - s * u, 0.0, 1.0))
    return total + core.per_example(diff, x) * u, None

  total, _ = jax.lax.scan(one, jnp.zeros_like(x), jnp.arange(samples))
  return total / (2.0 * samples * s)


@attack_jit(static_argnames=("apply_fn", "steps", "samples", "norm", "loss",
                                             "kind"))
def _score_attack(apply_fn, variables, images, labels, targets, eps, step, scale, keys, *, steps,
                  samples, norm, loss, kind):
  n = images.shape[0]
  optimizer = optax.adam(1.0)  # SPSA: the learning rate is applied per example below

  def score(x):
    return losses.objective(loss, apply_fn(variables, x), labels, targets)

  def body(carry, t):
    x, opt_state, fooled, queries = carry
    active = ~fooled
    grad = estimate_gradient(score, x, core.fold_keys(keys, t), samples, scale, kind)
    if kind == "nes":
      moved = x + core.per_example(step, x) * core.normalized_step(grad, norm)
      new_state = opt_state
    else:
      updates, new_state = optimizer.update(-grad, opt_state, x)
      moved = x + core.per_example(step, x) * updates
    moved = core.project(moved, images, eps, norm)
    act = core.per_example(active, x)
    x = jnp.where(act, moved, x)
    opt_state = jax.tree_util.tree_map(
        lambda new, old: jnp.where(act, new, old) if new.shape == x.shape else new,
        new_state, opt_state)
    now = core.is_success(apply_fn(variables, x), labels, targets)
    queries = queries + jnp.where(active, 2 * samples + 1, 0)
    fooled = fooled | (active & now)
    return (x, opt_state, fooled, queries), fooled

  ok0 = core.is_success(apply_fn(variables, images), labels, targets)
  init = (images, optimizer.init(images), ok0, jnp.ones((n,), jnp.int32))
  (x, _, fooled, queries), curve = jax.lax.scan(body, init, jnp.arange(steps))
  curve = jnp.concatenate([ok0[None], curve], axis=0)
  return core.AttackResult(x, fooled, curve, queries)


def _run(kind, apply_fn, variables, images, labels, targets, eps, key, steps, samples, scale,
         scale_name, step_size, norm, loss):
  images, labels, targets, eps01 = core.check_inputs(images, labels, targets, eps)
  core.check_norm(norm, ("linf",) if kind == "spsa" else ("linf", "l2"))
  steps = core.check_positive_int(steps, "steps")
  samples = core.check_positive_int(samples, "samples")
  if loss not in ("ce", "margin"):
    raise ValueError(f"unknown black-box loss {loss!r}; known: ce, margin")
  if key is None:
    raise ValueError("a black-box attack needs a PRNG key")
  n = images.shape[0]
  scale01 = core.check_budget(scale, n, scale_name)
  if core.is_concrete(scale01) and not bool(jnp.all(scale01 > 0)):
    raise ValueError(f"{scale_name} must be positive")
  step01 = core.check_budget(step_size, n, "step_size")
  keys = core.per_example_keys(key, n)
  return _score_attack(apply_fn, variables, images, labels, targets, eps01, step01, scale01, keys,
                       steps=steps, samples=samples, norm=norm, loss=loss, kind=kind)


def nes(apply_fn, variables, images, labels, *, eps, key, steps=100, samples=50, sigma=0.25,
        step_size=None, targets=None, norm="linf", loss="ce"):
  """NES: Gaussian antithetic estimates (Ilyas et al.: 50 pairs, sigma = 0.001 = 0.25 / 255),
  then a projected signed step of ``step_size`` (/255; default eps / 10).  sigma in /255;
  key: one PRNG key, or [N] keys (one per example: results then do not depend on the batch)."""
  step_size = eps / 10.0 if step_size is None else step_size
  return _run("nes", apply_fn, variables, images, labels, targets, eps, key, steps, samples,
              sigma, "sigma", step_size, norm, loss)


def spsa(apply_fn, variables, images, labels, *, eps, key, steps=100, samples=32, delta=2.55,
         learning_rate=2.55, targets=None, loss="margin"):
  """SPSA (Linf): Rademacher estimates with perturbation ``delta`` and an Adam step of
  ``learning_rate`` (both /255; Uesato et al.: 0.01 on [0, 1] pixels), projected.  The default
  loss is their logit margin."""
  return _run("spsa", apply_fn, variables, images, labels, targets, eps, key, steps, samples,
              delta, "delta", learning_rate, "linf", loss)
