"""EAD: elastic-net attack (Chen et al., AAAI 2018), L1 decision rule, binary search over c.

For each constant c it minimises  c * f(x') + ||x' - x||_2^2 + beta * ||x' - x||_1  over the
[0, 1] box with FISTA (the paper's eq. 7-8):

  x_{k+1} = S_beta(y_k - a_k grad g(y_k)),   g = c f + ||. - x||_2^2,
  y_{k+1} = Proj_[0,1](x_{k+1} + k / (k + 3) (x_{k+1} - x_k)),
  a_k = lr * (1 - k / K)^(1/2)  (polynomial decay),

where the projected shrinkage S_beta moves each value towards the clean one by beta and snaps
it to the clean value when closer than beta, then clips to the box.  f is C&W's hinge (see
``attacks.cw``).  The L1 decision rule keeps, over all iterates and constants, the successful
iterate x_k with the smallest L1 distortion.  beta and lr act on [0, 1] pixels (the width of
Adversarial_Survey's [-0.5, 0.5] scale, so its settings carry over).
"""
from __future__ import annotations


import jax
import jax.numpy as jnp

from imagenet_cp.attacks import core
from imagenet_cp.attacks.cw import attack_margin, search_c, succeeds
from imagenet_cp.attacks.jit import jit as attack_jit


def shrink(z, images, beta):
  """The projected shrinkage-thresholding operator S_beta of EAD, onto the [0, 1] box."""
  diff = z - images
  moved = jnp.where(diff > beta, z - beta, jnp.where(diff < -beta, z + beta, images))
  return jnp.clip(moved, 0.0, 1.0)


@attack_jit(static_argnames=("apply_fn", "steps", "binary_search_steps"))
def _ead(apply_fn, variables, images, labels, targets, beta, confidence, learning_rate,
         initial_const, *, steps, binary_search_steps):
  n = images.shape[0]

  def smooth(y, const):
    logits = apply_fn(variables, y)
    dist = jnp.sum(jnp.square(y - images).reshape(n, -1), axis=1)
    f = jnp.maximum(-attack_margin(logits, labels, targets), -confidence)
    return jnp.sum(const * f + dist)

  def inner(const):
    def step(carry, k):
      x, y, found, best_l1, best_adv = carry
      rate = learning_rate * jnp.sqrt(1.0 - k / steps)
      x_next = shrink(y - rate * jax.grad(smooth)(y, const), images, beta)
      y = jnp.clip(x_next + k / (k + 3.0) * (x_next - x), 0.0, 1.0)
      ok = succeeds(apply_fn(variables, x_next), labels, targets, confidence)
      l1 = core.flat_norm(x_next - images, "l1")
      better = ok & (l1 < best_l1)
      best_l1 = jnp.where(better, l1, best_l1)
      best_adv = jnp.where(core.per_example(better, x_next), x_next, best_adv)
      return (x_next, y, found | ok, best_l1, best_adv), None

    init = (images, images, jnp.zeros((n,), bool), jnp.full((n,), jnp.inf), images)
    ks = jnp.arange(steps, dtype=jnp.float32)
    (_, _, found, best_l1, best_adv), _ = jax.lax.scan(step, init, ks)
    return found, best_l1, best_adv

  return search_c(inner, images, initial_const, binary_search_steps)


def ead(apply_fn, variables, images, labels, *, targets=None, beta=1e-3, confidence=0.0,
        learning_rate=0.01, steps=1000, binary_search_steps=9, initial_const=1e-3):
  """EAD with the L1 decision rule.  Defaults: the paper's (beta 1e-3, lr 1e-2, 1000 iterations,
  9 search steps, c0 = 1e-3, kappa 0).  Returns an ``AttackResult`` (smallest-L1 successful
  adversarial; the clean image where none succeeded; curve over search steps)."""
  images, labels, targets, _ = core.check_inputs(images, labels, targets)
  steps = core.check_positive_int(steps, "steps")
  binary_search_steps = core.check_positive_int(binary_search_steps, "binary_search_steps")
  if beta < 0 or confidence < 0 or learning_rate <= 0 or initial_const <= 0:
    raise ValueError("beta and confidence must be >= 0, learning_rate and initial_const > 0")
  return _ead(apply_fn, variables, images, labels, targets, jnp.float32(beta),
              jnp.float32(confidence), jnp.float32(learning_rate), jnp.float32(initial_const),
              steps=steps, binary_search_steps=binary_search_steps)
