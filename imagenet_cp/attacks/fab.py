"""FAB, the Fast Adaptive Boundary attack (Croce & Hein, ICML 2020), Linf, L2 and L1.

A minimal-norm attack.  At each step the decision boundary between the label y and a class k is
linearised at the iterate x,  f_k(x) + w.(x' - x) = 0,  with f_k = z_k - z_y and
w = grad f_k; untargeted, k is the class whose linearised boundary is nearest,
argmin_k |f_k| / ||w_k||_q (q the dual norm), targeted it is the target.  Both the iterate and
the clean image x_0 are projected onto that hyperplane inside the [0, 1] box (the minimal-norm
step d, ``project``), and the next iterate is the biased mixture

  x <- clip((x + eta d_x)(1 - a) + (x_0 + eta d_0) a),   a = min(|d_x| / (|d_x| + |d_0|), a_max)

(eta = 1.05 overshoots the boundary; a_max = 0.1 pulls towards x_0).  Whenever the iterate is
adversarial its norm is compared with the best so far and it is pulled back towards x_0 by
beta = 0.9: x <- x_0 + beta (x - x_0).  Restart r > 0 starts from x_0 plus a random point at
radius eps / 2 (the authors' random start); the smallest-norm adversarial over all restarts is
kept.  ``fab_t`` is AutoAttack's FAB-T: one targeted run towards each of the 2nd .. (n + 1)-th
most likely clean classes, with the untargeted goal.

Reference: Croce & Hein, "Minimally distorted adversarial examples with a fast adaptive
boundary attack", ICML 2020; the authors' code (fra31/auto-attack, ``fab_pt.py``).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from imagenet_cp.attacks import core
from imagenet_cp.attacks.jit import jit as attack_jit

DUAL = {"linf": "l1", "l2": "l2", "l1": "linf"}
_MIN_STEP = 1e-8    # the authors' floor on a step's norm in the bias a
_TINY_W = 1e-8      # a weight below this is a zero coordinate (the authors' L2 and L1 cut-off)


# ----------------------------------------------------------------------------------------------
# Minimal-norm projection of points onto {x : w.x = b} inside the box [0, 1]^D.


def _oriented(t, w, b):
  """-> (w, c) with the sign flipped so that c = w.t - b >= 0: the step must lower w.x by c."""
  c = jnp.sum(w * t, axis=1) - b
  sign = jnp.where(c >= 0, 1.0, -1.0)
  return w * sign[:, None], c * sign


def _water_level(weight, cap, c):
  """lam >= 0 with sum_i weight_i min(lam, cap_i) = c per row (weight, cap >= 0, [M, D]);
  +inf where even lam = max(cap) does not reach c (the box stops the step first).

  The sum is piecewise linear and non-decreasing in lam.  The authors sort the breakpoints
  (cap); a sort of D = 150 528 values per row cost XLA:CPU ~0.3 s per FAB step at 224 px, so
  the segment holding lam is found by bisection over float32 bit patterns instead (monotone for
  values >= 0; 31 halvings reach adjacent floats), then lam is solved on that segment exactly as
  from the sorted breakpoints: (c - sum of weight * cap below it) / (weight above it)."""
  def level(lam):
    return jnp.sum(weight * jnp.minimum(lam[:, None], cap), axis=1)

  def halve(_, bounds):
    lo, hi = bounds
    mid = lo + (hi - lo) // 2
    under = level(jax.lax.bitcast_convert_type(mid, jnp.float32)) <= c
    return jnp.where(under, mid, lo), jnp.where(under, hi, mid)

  top = jnp.max(cap, axis=1)
  lo = jnp.zeros(c.shape, jnp.int32)  # level(0) = 0 <= c
  hi = jax.lax.bitcast_convert_type(top, jnp.int32)
  lo, _ = jax.lax.fori_loop(0, 31, halve, (lo, hi))
  below = cap <= jax.lax.bitcast_convert_type(lo, jnp.float32)[:, None]
  base = jnp.sum(jnp.where(below, weight * cap, 0.0), axis=1)
  slope = jnp.sum(jnp.where(below, 0.0, weight), axis=1)
  lam = (c - base) / jnp.where(slope > 0, slope, 1.0)
  reaches = (level(top) > c) & (slope > 0)
  return jnp.where(reaches, jnp.maximum(lam, 0.0), jnp.inf)


def _room(t, w):
  """How far each coordinate can move in the direction that lowers w.x before the box stops
  it: t where w > 0 (down to 0), 1 - t where w < 0 (up to 1)."""
  return jnp.where(w < 0, 1.0 - t, t)


def project_linf(t, w, b):
  """Minimal-Linf step d (t + d in the box, w.(t + d) = b where the box allows; else the box
  corner that lowers |w.x - b| most), [M, D]: d_i = -sign(w_i) min(lam, room_i)."""
  w, c = _oriented(t, w, b)
  room = _room(t, w)
  lam = _water_level(jnp.abs(w), room, c)
  return -jnp.sign(w) * jnp.minimum(lam[:, None], room)


def project_l2(t, w, b):
  """Minimal-L2 step: d_i = clip(-lam w_i, -t_i, 1 - t_i), the clipped gradient step, [M, D]."""
  w, c = _oriented(t, w, b)
  w = jnp.where(jnp.abs(w) < _TINY_W, 0.0, w)
  # lam at which coordinate i reaches the box: room_i / |w_i|.
  cap = jnp.where(w == 0, 0.0, _room(t, w) / jnp.where(w == 0, 1.0, jnp.abs(w)))
  lam = _water_level(w * w, cap, c)
  return -w * jnp.minimum(lam[:, None], cap)


def project_l1(t, w, b):
  """Minimal-L1 step: the coordinates of largest |w_i| go to the box one after another, the
  last one only as far as needed, [M, D]."""
  w, c = _oriented(t, w, b)
  w = jnp.where(jnp.abs(w) < _TINY_W, 0.0, w)
  full = -jnp.sign(w) * _room(t, w)              # a coordinate moved to the box
  gain = jnp.abs(w) * _room(t, w)                # how much that lowers w.x
  # Largest |w| first, ties by position (the authors sort 1 / |w| with a stable argsort).
  order = jnp.argsort(jnp.minimum(1.0 / jnp.maximum(jnp.abs(w), 1e-30), 1e12), axis=1)
  rank = jnp.argsort(order, axis=1)
  left = c[:, None] - jnp.cumsum(jnp.take_along_axis(gain, order, axis=1), axis=1)
  left = jnp.concatenate([c[:, None], left], axis=1)  # left[k]: still to go after k moves
  feasible = left[:, -1] < 0
  k = jnp.maximum(jnp.sum(left[:, :-1] > 0, axis=1) - 1, 0)
  rest = jnp.take_along_axis(left, k[:, None], axis=1)
  last_w = jnp.take_along_axis(jnp.take_along_axis(w, order, axis=1), k[:, None], axis=1)
  partial = -jnp.sign(last_w) * rest / jnp.where(last_w == 0, 1.0, jnp.abs(last_w))
  step = jnp.where(rank < k[:, None], full, jnp.where(rank == k[:, None], partial, 0.0))
  return jnp.where(feasible[:, None], step, full)


PROJECT = {"linf": project_linf, "l2": project_l2, "l1": project_l1}


# ----------------------------------------------------------------------------------------------
# The attack.


def _boundary(apply_fn, variables, x, labels, targets, norm):
  """The linearised boundary FAB steps to at x -> (logits [N, C], f [N], w [N, D]).

  Targeted: f = z_t - z_y.  Untargeted: the class k != y whose boundary is nearest,
  argmin_k |z_k - z_y| / ||grad (z_k - z_y)||_dual (first k on ties, as the authors' argmin);
  one backward pass per class, keeping only the best gradient."""
  logits, vjp = jax.vjp(lambda v: apply_fn(variables, v), x)
  n, classes = logits.shape
  y_hot = jax.nn.one_hot(labels, classes, dtype=logits.dtype)
  z_y = jnp.sum(logits * y_hot, axis=1)

  def towards(k_hot):
    (grad,) = vjp(k_hot - y_hot)
    return jnp.sum(logits * k_hot, axis=1) - z_y, grad.reshape(n, -1)

  if targets is not None:
    f, w = towards(jax.nn.one_hot(targets, classes, dtype=logits.dtype))
    return logits, f, w

  def one(carry, k):
    best, f_best, w_best = carry
    f, w = towards(jnp.broadcast_to(jax.nn.one_hot(k, classes, dtype=logits.dtype), y_hot.shape))
    dist = jnp.abs(f) / (1e-12 + core.flat_norm(w, DUAL[norm]))
    better = (dist < best) & (k != labels)
    return (jnp.where(better, dist, best), jnp.where(better, f, f_best),
            jnp.where(better[:, None], w, w_best)), None

  init = (jnp.full((n,), jnp.inf), jnp.zeros((n,)), jnp.zeros((n, x[0].size)))
  (_, f, w), _ = jax.lax.scan(one, init, jnp.arange(classes))
  return logits, f, w


def _random_start(key_rows, images, radius, norm):
  """x_0 plus a random point at ``radius`` [N] of the norm (Linf: uniform cube direction scaled
  to the radius; L2 / L1: Gaussian direction), boxed: the authors' start of restarts > 0."""
  if norm == "linf":
    t = core.draw(key_rows, jax.random.uniform, images.shape[1:]) * 2.0 - 1.0
  else:
    t = core.draw(key_rows, jax.random.normal, images.shape[1:])
  size = core.per_example(jnp.maximum(core.flat_norm(t, norm), 1e-12), t)
  return jnp.clip(images + core.per_example(radius, images) * t / size, 0.0, 1.0)


def _step(x1, x0, w, f, norm, alpha_max, eta):
  """One FAB step from x1 (flat [N, D]) given the boundary (w, f) linearised at x1."""
  n = x1.shape[0]
  b = jnp.sum(w * x1, axis=1) - f
  steps = PROJECT[norm](jnp.concatenate([x1, x0]), jnp.concatenate([w, w]),
                        jnp.concatenate([b, b]))
  d1, d0 = steps[:n], steps[n:]
  a1 = jnp.maximum(core.flat_norm(d1, norm), _MIN_STEP)
  a0 = jnp.maximum(core.flat_norm(d0, norm), _MIN_STEP)
  alpha = jnp.clip(a1 / (a1 + a0), 0.0, alpha_max)[:, None]
  return jnp.clip((x1 + eta * d1) * (1.0 - alpha) + (x0 + eta * d0) * alpha, 0.0, 1.0)


def _run(apply_fn, variables, images, labels, targets, goal, start, *, steps, norm, alpha_max,
         eta, beta):
  """One FAB run from ``start`` -> (best norm [N] ([0, 1] units, +inf: none), adversarial,
  found by iteration bool [steps, N])."""
  shape = images.shape
  x0 = images.reshape(shape[0], -1)

  def body(carry, _):
    x1, best, adv = carry
    _, f, w = _boundary(apply_fn, variables, x1.reshape(shape), labels, targets, norm)
    x1 = _step(x1, x0, w, f, norm, alpha_max, eta)
    ok = core.is_success(apply_fn(variables, x1.reshape(shape)), labels, goal)
    size = core.flat_norm(x1 - x0, norm)
    better = ok & (size < best)
    adv = jnp.where(better[:, None], x1, adv)
    best = jnp.where(better, size, best)
    # Back towards x_0 from every adversarial iterate, better or not.
    x1 = jnp.where(ok[:, None], x0 + (x1 - x0) * beta, x1)
    return (x1, best, adv), jnp.isfinite(best)

  init = (start.reshape(shape[0], -1), jnp.full((shape[0],), jnp.inf), x0)
  (_, best, adv), found = jax.lax.scan(body, init, None, length=steps)
  return best, adv.reshape(shape), found


@attack_jit(static_argnames=("apply_fn", "steps", "restarts", "norm",
                                             "alpha_max", "eta", "beta", "untargeted_goal"))
def _fab(apply_fn, variables, images, labels, targets, eps, keys, *, steps, restarts, norm,
         alpha_max, eta, beta, untargeted_goal=False):
  goal = None if untargeted_goal else targets
  ok0 = core.is_success(apply_fn(variables, images), labels, goal)
  run = functools.partial(_run, apply_fn, variables, images, labels, targets, goal, steps=steps,
                          norm=norm, alpha_max=alpha_max, eta=eta, beta=beta)

  def restart(carry, r):
    best, adv, found = carry
    start = jnp.where(r > 0, _random_start(core.fold_keys(keys, r), images, 0.5 * eps, norm),
                      images)
    size, x, now = run(start)
    better = size < best
    adv = jnp.where(core.per_example(better, adv), x, adv)
    return (jnp.minimum(size, best), adv, found | now[-1]), found[None] | now

  # A clean misclassified example is its own adversarial at distance 0.
  init = (jnp.where(ok0, 0.0, jnp.inf), images, ok0)
  (best, adv, found), curve = jax.lax.scan(restart, init, jnp.arange(restarts))
  curve = curve.reshape((restarts * steps,) + curve.shape[2:])
  return core.AttackResult(adv, found, jnp.concatenate([ok0[None], curve], axis=0)), best


def _check(images, labels, targets, eps, norm, steps, restarts, alpha_max, eta, beta):
  images, labels, targets, eps01 = core.check_inputs(images, labels, targets, eps)
  core.check_norm(norm)
  steps = core.check_positive_int(steps, "steps")
  restarts = core.check_positive_int(restarts, "restarts")
  if restarts > 1 and eps01 is None:
    raise ValueError("FAB's restarts start at a random point at radius eps / 2: give eps")
  if not 0.0 <= alpha_max <= 1.0 or eta <= 0 or not 0.0 < beta <= 1.0:
    raise ValueError(f"need 0 <= alpha_max <= 1, eta > 0, 0 < beta <= 1; got {alpha_max}, "
                     f"{eta}, {beta}")
  if eps01 is None:
    eps01 = jnp.zeros((images.shape[0],), jnp.float32)
  return images, labels, targets, eps01, steps, restarts


def fab(apply_fn, variables, images, labels, *, norm, key, targets=None, steps=100, restarts=1,
        eps=None, alpha_max=0.1, eta=1.05, beta=0.9, return_norms=False):
  """FAB: the smallest-norm adversarial it finds per example (norm 'linf', 'l2' or 'l1').

  key: one PRNG key or [N] keys (draws the starts of restarts > 0).  eps (/255, scalar or [N]):
  only the radius of those random starts (eps / 2, the authors'); FAB itself has no budget, a
  success at any distance counts (compare ``perturbation_norms`` with your budget).
  targets: int [N] for targeted FAB (success = top-1 is the target; ``fab_t`` is AutoAttack's
  FAB-T).  Defaults: the authors' alpha_max 0.1, eta 1.05, beta 0.9, and AutoAttack's 100 steps.

  Returns an ``AttackResult``: ``adversarial`` the smallest-norm success over all restarts (the
  clean image where none; distance 0 for an example misclassified clean), ``success`` whether
  one was found, ``curve`` [restarts * steps + 1, N] found by each iteration, the restarts one
  after another.  With ``return_norms`` also the norms of those adversarials, float32 [N] in
  /255 units (+inf where none).

  Cost per step: untargeted, one forward and C backward passes (the boundary of every class)
  plus one forward; targeted, one forward, one backward, one forward.
  """
  images, labels, targets, eps01, steps, restarts = _check(
      images, labels, targets, eps, norm, steps, restarts, alpha_max, eta, beta)
  keys = core.per_example_keys(key, images.shape[0])
  result, best = _fab(apply_fn, variables, images, labels, targets, eps01, keys, steps=steps,
                      restarts=restarts, norm=norm, alpha_max=float(alpha_max), eta=float(eta),
                      beta=float(beta))
  return (result, best * core.PIXEL) if return_norms else result


@attack_jit(static_argnames=("apply_fn", "steps", "restarts", "norm",
                                             "alpha_max", "eta", "beta", "n_target_classes"))
def _fab_t(apply_fn, variables, images, labels, eps, keys, *, steps, restarts, norm, alpha_max,
           eta, beta, n_target_classes):
  clean = apply_fn(variables, images)
  ranked = jnp.argsort(-clean, axis=1)
  ok0 = core.is_success(clean, labels, None)

  def run(carry, rank):
    best, adv, found = carry
    result, size = _fab(apply_fn, variables, images, labels, ranked[:, rank], eps,
                        core.fold_keys(keys, rank), steps=steps, restarts=restarts, norm=norm,
                        alpha_max=alpha_max, eta=eta, beta=beta, untargeted_goal=True)
    better = size < best
    adv = jnp.where(core.per_example(better, adv), result.adversarial, adv)
    return (jnp.minimum(size, best), adv, found | result.success), found[None] | result.curve[1:]

  init = (jnp.where(ok0, 0.0, jnp.inf), images, ok0)
  ranks = jnp.arange(1, n_target_classes + 1)
  (best, adv, found), curve = jax.lax.scan(run, init, ranks)
  curve = curve.reshape((-1,) + curve.shape[2:])
  return core.AttackResult(adv, found, jnp.concatenate([ok0[None], curve], axis=0)), best


def fab_t(apply_fn, variables, images, labels, *, norm, key, steps=100, restarts=1, eps=None,
          n_target_classes=9, alpha_max=0.1, eta=1.05, beta=0.9, return_norms=False):
  """AutoAttack's FAB-T: targeted FAB runs towards the 2nd .. (n_target_classes + 1)-th most
  likely clean classes (one backward pass per step instead of C), untargeted goal; keeps the
  smallest-norm adversarial over all runs.  Curve rows: the runs one after another.  Other
  arguments as ``fab``."""
  images, labels, _, eps01, steps, restarts = _check(
      images, labels, None, eps, norm, steps, restarts, alpha_max, eta, beta)
  n_target_classes = core.check_positive_int(n_target_classes, "n_target_classes")
  keys = core.per_example_keys(key, images.shape[0])
  classes = jax.eval_shape(apply_fn, variables, images[:1]).shape[-1]
  if n_target_classes > classes - 1:
    raise ValueError(f"n_target_classes={n_target_classes} needs more than {classes} classes")
  result, best = _fab_t(apply_fn, variables, images, labels, eps01, keys, steps=steps,
                        restarts=restarts, norm=norm, alpha_max=float(alpha_max), eta=float(eta),
                        beta=float(beta), n_target_classes=n_target_classes)
  return (result, best * core.PIXEL) if return_norms else result
