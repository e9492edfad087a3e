"""DeepFool (Moosavi-Dezfooli et al., CVPR 2016), multi-class, L2 and Linf.

At x_i the model is linearised around the label y: for each candidate class k,
f_k = z_k - z_y and w_k = grad z_k - grad z_y.  The nearest linearised boundary is
l = argmin_k |f_k| / ||w_k||_q (q = 2 for L2, q = 1 for Linf, the dual norms) and the step is

  L2:    r_i = (|f_l| + 1e-4) / ||w_l||_2^2 * w_l
  Linf:  r_i = (|f_l| + 1e-4) / ||w_l||_1 * sign(w_l)

accumulated into r, with x_{i+1} = clip_[0,1](x + (1 + overshoot) r); an example stops moving
once it is misclassified.  For an affine classifier the first step lands on the nearest
boundary exactly (times 1 + overshoot).  Candidates are the ``candidates`` classes with the
highest clean logits (10 in the paper), so one iteration costs ``candidates`` backward passes.

Targeted mode (not in the paper): the single candidate is the target and the reference class is
the current top-1 among the others, so the step moves towards z_t = max_{j != t} z_j.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp

from imagenet_cp.attacks import core
from imagenet_cp.attacks.jit import jit as attack_jit


def logit_gradients(apply_fn, variables, x, classes):
  """-> (logits [N, C], gradients [K, N, H, W, 3] of z_{classes[:, k]} w.r.t. x)."""
  def picked(x):
    logits = apply_fn(variables, x)
    return jnp.take_along_axis(logits, classes, axis=1), logits

  chosen, vjp, logits = jax.vjp(picked, x, has_aux=True)
  basis = jnp.eye(classes.shape[1], dtype=chosen.dtype)
  cotangents = jnp.broadcast_to(basis[:, None, :], (classes.shape[1],) + chosen.shape)
  # One backward pass per candidate in sequence (lax.map, not vmap): memory stays that of one
  # backward pass, which matters for 10 candidates of an ImageNet batch.
  grads = jax.lax.map(lambda c: vjp(c)[0], cotangents)
  return logits, grads


def nearest_step(f, w, norm):
  """f [K, N] (<= 0 before the boundary), w [K, N, ...] -> the DeepFool step r_i [N, ...]."""
  dual = "l1" if norm == "linf" else "l2"
  lengths = jax.vmap(lambda g: core.flat_norm(g, dual))(w)  # [K, N]
  distance = jnp.abs(f) / jnp.maximum(lengths, 1e-12)
  best = jnp.argmin(distance, axis=0)  # [N]
  f_l = jnp.take_along_axis(f, best[None], axis=0)[0]
  w_l = jnp.take_along_axis(w, best.reshape((1, -1) + (1,) * (w.ndim - 2)), axis=0)[0]
  len_l = jnp.take_along_axis(lengths, best[None], axis=0)[0]
  scale = (jnp.abs(f_l) + 1e-4) / jnp.maximum(len_l, 1e-12)
  if norm == "l2":
    return core.per_example(scale / jnp.maximum(len_l, 1e-12), w_l) * w_l
  return core.per_example(scale, w_l) * jnp.sign(w_l)


@attack_jit(static_argnames=("apply_fn", "steps", "norm", "candidates"))
def _deepfool(apply_fn, variables, images, labels, targets, overshoot, *, steps, norm,
              candidates):
  clean = apply_fn(variables, images)
  num_classes = clean.shape[-1]
  k = min(candidates, num_classes)
  if targets is None:
    # The label first, then the most likely other classes.
    others = jnp.argsort(-jnp.where(jax.nn.one_hot(labels, num_classes, dtype=bool), -jnp.inf,
                                    clean), axis=1)[:, :k - 1]
    classes = jnp.concatenate([labels[:, None], others], axis=1).astype(jnp.int32)

  def step(carry, _):
    r, x, fooled = carry
    if targets is None:
      logits, grads = logit_gradients(apply_fn, variables, x, classes)
      picked = jnp.take_along_axis(logits, classes, axis=1).T  # [K, N]
      f, w = picked[1:] - picked[:1], grads[1:] - grads[:1]
    else:
      logits = apply_fn(variables, x)
      rivals = jnp.argmax(jnp.where(jax.nn.one_hot(targets, num_classes, dtype=bool), -jnp.inf,
                                    logits), axis=1).astype(jnp.int32)
      pair = jnp.stack([rivals, targets], axis=1)
      logits, grads = logit_gradients(apply_fn, variables, x, pair)
      picked = jnp.take_along_axis(logits, pair, axis=1).T
      f, w = picked[1:] - picked[:1], grads[1:] - grads[:1]
    now = core.is_success(logits, labels, targets)
    fooled = fooled | now
    r = jnp.where(core.per_example(fooled, r), r, r + nearest_step(f, w, norm))
    x_next = jnp.clip(images + (1.0 + overshoot) * r, 0.0, 1.0)
    x = jnp.where(core.per_example(fooled, x), x, x_next)
    return (r, x, fooled), fooled

  n = images.shape[0]
  init = (jnp.zeros_like(images), images, jnp.zeros((n,), bool))
  (_, x, fooled), curve = jax.lax.scan(step, init, None, length=steps)
  success = fooled | core.is_success(apply_fn(variables, x), labels, targets)
  return core.AttackResult(x, success, jnp.concatenate([curve, success[None]], axis=0))


def deepfool(apply_fn, variables, images, labels, *, targets=None, norm="l2", steps=50,
             overshoot=0.02, candidates=10):
  """DeepFool; defaults from the paper / ARES (overshoot 0.02, 10 candidate classes; ARES runs
  20 iterations, the original code 50).  Returns an ``AttackResult``; the optimised distortion
  is ``attacks.norms.distortion(result.adversarial, images, norm, result.success)``."""
  images, labels, targets, _ = core.check_inputs(images, labels, targets)
  core.check_norm(norm, ("linf", "l2"))
  steps = core.check_positive_int(steps, "steps")
  candidates = core.check_positive_int(candidates, "candidates")
  if candidates < 2:
    raise ValueError("DeepFool needs at least 2 candidate classes (the label and one other)")
  if overshoot < 0:
    raise ValueError(f"overshoot must be >= 0, got {overshoot}")
  return _deepfool(apply_fn, variables, images, labels, targets, jnp.float32(overshoot),
                   steps=steps, norm=norm, candidates=candidates)
