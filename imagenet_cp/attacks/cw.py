"""Carlini & Wagner's L2 attack (IEEE S&P 2017), with the binary search over the constant c.

For each example and constant c it solves, by Adam in tanh space (x' = (tanh(w) + 1) / 2
keeps the [0, 1] box without clipping),

  minimise_w  ||x' - x||_2^2 + c * f(x'),   f(x') = max(z_y - max_{j != y} z_j, -kappa)
                                            (targeted: max(max_{j != t} z_j - z_t, -kappa))

restarting from the clean image for every c.  The binary search (``search_c``) halves the
interval around the smallest c that succeeds, multiplying c by 10 while no c has succeeded
yet.  Of all successful iterates the one with the smallest L2 is returned: C&W's optimised
(approximately minimal) L2 distortion.  Everything runs in two nested ``lax.scan`` loops.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import optax

from imagenet_cp.attacks import core, losses
from imagenet_cp.attacks.jit import jit as attack_jit

_BIG = 1e10


def attack_margin(logits, labels, targets):
  """[N]: how far the example is past the decision boundary (> 0 iff the attack succeeds)."""
  if targets is None:
    return losses.margin(logits, labels)
  return -losses.margin(logits, targets)


def succeeds(logits, labels, targets, confidence):
  """[N] bool: the top-1 rule, and at least ``confidence`` logits past the boundary."""
  return core.is_success(logits, labels, targets) & (
      attack_margin(logits, labels, targets) >= confidence)


def update_const(const, lower, upper, found):
  """C&W's binary search step on c [N] given whether this c succeeded [N]."""
  upper = jnp.where(found, jnp.minimum(upper, const), upper)
  lower = jnp.where(found, lower, jnp.maximum(lower, const))
  const = jnp.where(upper < _BIG, 0.5 * (lower + upper), const * 10.0)
  return const, lower, upper


def search_c(inner, images, initial_const, binary_search_steps):
  """Runs ``inner(const) -> (found [N], best_dist [N], best_adv)`` over the c search.

  Keeps, per example, the adversarial with the smallest distance over all constants.
  Returns an AttackResult whose curve row b is success after b binary-search steps.
  """
  n = images.shape[0]

  def body(carry, _):
    const, lower, upper, best_dist, best_adv = carry
    found, dist, adv = inner(const)
    better = found & (dist < best_dist)
    best_dist = jnp.where(better, dist, best_dist)
    best_adv = jnp.where(core.per_example(better, images), adv, best_adv)
    const, lower, upper = update_const(const, lower, upper, found)
    return (const, lower, upper, best_dist, best_adv), jnp.isfinite(best_dist)

  init = (jnp.full((n,), initial_const, jnp.float32), jnp.zeros((n,), jnp.float32),
          jnp.full((n,), _BIG, jnp.float32), jnp.full((n,), jnp.inf, jnp.float32), images)
  (_, _, _, best_dist, best_adv), curve = jax.lax.scan(body, init, None,
                                                       length=binary_search_steps)
  success = jnp.isfinite(best_dist)
  curve = jnp.concatenate([jnp.zeros((1, n), bool), curve], axis=0)
  return core.AttackResult(best_adv, success, curve)


def to_tanh_space(images):
  # Shrunk slightly so that arctanh stays finite at pixels 0 and 1.
  return jnp.arctanh((2.0 * images - 1.0) * (1.0 - 1e-6))


def from_tanh_space(w):
  return 0.5 * (jnp.tanh(w) + 1.0)


@attack_jit(static_argnames=("apply_fn", "steps", "binary_search_steps"))
def _cw(apply_fn, variables, images, labels, targets, confidence, learning_rate, initial_const,
        *, steps, binary_search_steps):
  w0 = to_tanh_space(images)
  optimizer = optax.adam(learning_rate)

  def penalised(w, const):
    adv = from_tanh_space(w)
    logits = apply_fn(variables, adv)
    dist = jnp.sum(jnp.square(adv - images).reshape(adv.shape[0], -1), axis=1)
    f = jnp.maximum(-attack_margin(logits, labels, targets), -confidence)
    return jnp.sum(dist + const * f), (logits, dist, adv)

  def inner(const):
    def step(carry, _):
      w, opt_state, found, best_dist, best_adv = carry
      grad, (logits, dist, adv) = jax.grad(penalised, has_aux=True)(w, const)
      ok = succeeds(logits, labels, targets, confidence)
      better = ok & (dist < best_dist)
      best_dist = jnp.where(better, dist, best_dist)
      best_adv = jnp.where(core.per_example(better, adv), adv, best_adv)
      updates, opt_state = optimizer.update(grad, opt_state, w)
      return (optax.apply_updates(w, updates), opt_state, found | ok, best_dist, best_adv), None

    n = images.shape[0]
    init = (w0, optimizer.init(w0), jnp.zeros((n,), bool), jnp.full((n,), jnp.inf), images)
    (_, _, found, best_dist, best_adv), _ = jax.lax.scan(step, init, None, length=steps)
    return found, best_dist, best_adv

  return search_c(inner, images, initial_const, binary_search_steps)


def cw_l2(apply_fn, variables, images, labels, *, targets=None, confidence=0.0,
          learning_rate=0.01, steps=1000, binary_search_steps=9, initial_const=0.01):
  """C&W L2.  Defaults: Carlini's (lr 1e-2, 1000 iterations, 9 search steps, c0 = 1e-2; kappa 0).

  confidence (kappa) is in logit units.  Returns an ``AttackResult``: the smallest-L2 successful
  adversarial per example (the clean image where none succeeded), curve over search steps.
  The optimised distortion is ``attacks.norms.distortion(result.adversarial, images, 'l2',
  result.success)``.
  """
  images, labels, targets, _ = core.check_inputs(images, labels, targets)
  steps = core.check_positive_int(steps, "steps")
  binary_search_steps = core.check_positive_int(binary_search_steps, "binary_search_steps")
  if confidence < 0 or learning_rate <= 0 or initial_const <= 0:
    raise ValueError("confidence must be >= 0, learning_rate and initial_const > 0")
  return _cw(apply_fn, variables, images, labels, targets, jnp.float32(confidence),
             jnp.float32(learning_rate), jnp.float32(initial_const), steps=steps,
             binary_search_steps=binary_search_steps)
