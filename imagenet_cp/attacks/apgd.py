"""AutoAttack's APGD (Croce & Hein, ICML 2020): APGD-CE and APGD-T (targeted DLR loss).

Algorithm 1 of the paper, Linf and L2, eps in /255 at the API:

  x_1 = P(x_0 + eta grad f(x_0)),  eta_0 = 2 eps
  z_{k+1} = P(x_k + eta_k s(grad f(x_k)))             s = sign (Linf) or g / ||g||_2 (L2)
  x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1})),   alpha = 0.75

At each checkpoint w_j the step halves (and the iterate restarts from the best point so far,
x_max) when (1) the loss increased in fewer than rho = 0.75 of the steps since w_{j-1}, or
(2) the step was not halved at w_{j-1} and the best loss has not improved since.  The
checkpoints are p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06) as
fractions of the iterations; ``checkpoints(n_iter)`` gives them in integer form (the authors'
code: first interval floor(0.22 N), each later one 3% of N shorter, at least 6% of N), which
for N = 100 is 0, 22, 41, 57, 70, 80, 87, 93, 99 as in the paper.

Randomised models (AutoAttack's ``rand`` version): with ``model_key`` the model is
``apply_fn(variables, images, key)`` and every gradient is EOT's, the mean of ``eot_iter``
gradients, each with a fresh draw of the model's randomness (keys folded from ``model_key``
and the iteration); the loss and the success test use the last draw's logits, as the authors'
code does.  Without ``model_key`` the model is deterministic and one gradient is the EOT mean.

``apgd_t`` is AutoAttack's untargeted APGD-T: one targeted-DLR run per target class ranked
2 .. n_target_classes + 1 by the clean logits, keeping the first success.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.attacks import core, losses
from imagenet_cp.attacks.gradient import objective_and_grad
from imagenet_cp.attacks.jit import jit as attack_jit

RHO = 0.75
ALPHA = 0.75


def checkpoints(n_iter: int) -> list[int]:
  """The iterations w_j (0 first) at which the step-size conditions are checked."""
  n_iter = core.check_positive_int(n_iter, "n_iter")
  interval = max(int(0.22 * n_iter), 1)
  shrink = max(int(0.03 * n_iter), 1)
  floor = max(int(0.06 * n_iter), 1)
  points = [0]
  while points[-1] + interval <= n_iter:
    points.append(points[-1] + interval)
    interval = max(interval - shrink, floor)
  return points


def checkpoint_table(n_iter: int) -> tuple[np.ndarray, np.ndarray]:
  """-> (is_checkpoint bool [n_iter], interval length since the previous checkpoint int [n_iter]),
  indexed by the number of completed iterations minus one."""
  points = checkpoints(n_iter)
  is_check = np.zeros(n_iter, bool)
  length = np.zeros(n_iter, np.int32)
  for prev, point in zip(points[:-1], points[1:]):
    is_check[point - 1] = True
    length[point - 1] = point - prev
  return is_check, length


def random_start(keys, images, eps, norm):
  """The authors' APGD start, boxed: x + eps t / ||t||_inf with t uniform in [-1, 1] (Linf),
  x + eps t / (||t||_2 + 1e-12) with t standard normal (L2); eps [N] in [0, 1] units.

  Both put the start on the sphere of radius eps (not uniform in the ball, as PGD's start is).
  keys: [N], one per example."""
  e = core.per_example(eps, images)
  if norm == "linf":
    uniform = functools.partial(jax.random.uniform, minval=-1.0, maxval=1.0)
    t = core.draw(keys, uniform, images.shape[1:])
    length = core.flat_norm(t, "linf")
  else:
    t = core.draw(keys, jax.random.normal, images.shape[1:])
    length = core.flat_norm(t, "l2") + 1e-12
  return jnp.clip(images + e * t / core.per_example(length, images), 0.0, 1.0)


def eot_objective_and_grad(apply_fn, variables, x, labels, targets, loss, model_key, eot_iter):
  """(logits, d objective / dx) of the randomised ``apply_fn(variables, x, key)``: the mean of
  ``eot_iter`` gradients over keys split from ``model_key``, and the last draw's logits."""
  def one(total, key):
    logits, grad = objective_and_grad(lambda v, x: apply_fn(v, x, key), variables, x, labels,
                                      targets, loss)
    return total + grad, logits
  total, logits = jax.lax.scan(one, jnp.zeros_like(x), jax.random.split(model_key, eot_iter))
  return logits[-1], total / eot_iter


@attack_jit(static_argnames=("apply_fn", "n_iter", "norm", "loss", "start",
                                             "untargeted_goal", "eot_iter"))
def _apgd(apply_fn, variables, images, labels, targets, eps, keys, *, n_iter, norm, loss, start,
          untargeted_goal=False, model_key=None, eot_iter=1):
  """Returns (AttackResult, step sizes [n_iter, N] used by iterations 1..n_iter).

  untargeted_goal: success means any class but the label even though ``targets`` steer the loss
  (APGD-T inside AutoAttack).  model_key: the model is randomised, ``apply_fn(variables, x,
  key)``; each gradient is the EOT mean over ``eot_iter`` draws.
  """
  n = images.shape[0]
  x0 = random_start(keys, images, eps, norm) if start else images
  is_check, length = checkpoint_table(n_iter)

  def evaluate(x, step):
    if model_key is None:
      logits, grad = objective_and_grad(apply_fn, variables, x, labels, targets, loss)
    else:
      logits, grad = eot_objective_and_grad(apply_fn, variables, x, labels, targets, loss,
                                            jax.random.fold_in(model_key, step), eot_iter)
    goal = None if untargeted_goal else targets
    return (losses.objective(loss, logits, labels, targets),
            core.is_success(logits, labels, goal), grad)

  f0, ok0, g0 = evaluate(x0, 0)
  eta0 = 2.0 * eps

  def body(carry, inputs):
    check, interval, k = inputs
    (x, x_prev, grad, f_prev, eta, f_max, x_max, g_max, increases, f_max_last, halved_last,
     adv, fooled) = carry
    e = core.per_example(eta, x)
    z = core.project(x + e * core.normalized_step(grad, norm), images, eps, norm)
    a = jnp.where(k == 0, 1.0, ALPHA)
    x_next = core.project(x + a * (z - x) + (1.0 - a) * (x - x_prev), images, eps, norm)
    f, ok, g = evaluate(x_next, k + 1)
    adv = jnp.where(core.per_example(ok & ~fooled, x), x_next, adv)
    fooled = fooled | ok
    increases = increases + (f > f_prev).astype(jnp.int32)
    better = f > f_max
    f_max = jnp.where(better, f, f_max)
    x_max = jnp.where(core.per_example(better, x), x_next, x_max)
    g_max = jnp.where(core.per_example(better, x), g, g_max)
    # Checkpoint conditions (1) and (2) of Algorithm 1.
    oscillating = increases < RHO * interval
    stalled = ~halved_last & (f_max <= f_max_last)
    halve = check & (oscillating | stalled)
    h = core.per_example(halve, x)
    used = eta
    eta = jnp.where(halve, 0.5 * eta, eta)
    x_prev = jnp.where(h, x_max, x_next)
    x_next = jnp.where(h, x_max, x_next)
    g = jnp.where(h, g_max, g)
    increases = jnp.where(check, 0, increases)
    f_max_last = jnp.where(check, f_max, f_max_last)
    halved_last = jnp.where(check, halve, halved_last)
    carry = (x_next, x_prev, g, f, eta, f_max, x_max, g_max, increases, f_max_last, halved_last,
             adv, fooled)
    return carry, (fooled, used)

  init = (x0, x0, g0, f0, eta0, f0, x0, g0, jnp.zeros((n,), jnp.int32), f0,
          jnp.ones((n,), bool), x0, ok0)
  xs = (jnp.asarray(is_check), jnp.asarray(length, jnp.float32), jnp.arange(n_iter))
  carry, (curve, etas) = jax.lax.scan(body, init, xs)
  x_max, adv, fooled = carry[6], carry[11], carry[12]
  adversarial = jnp.where(core.per_example(fooled, x_max), adv, x_max)
  curve = jnp.concatenate([ok0[None], curve], axis=0)
  return core.AttackResult(adversarial, fooled, curve), etas


def _check(images, labels, targets, eps, n_iter, norm):
  images, labels, targets, eps01 = core.check_inputs(images, labels, targets, eps)
  core.check_norm(norm, ("linf", "l2"))
  return images, labels, targets, eps01, core.check_positive_int(n_iter, "n_iter")


def apgd(apply_fn, variables, images, labels, *, eps, key=None, n_iter=100, norm="linf",
         loss="ce", targets=None, random_start=True, return_step_sizes=False, model_key=None,
         eot_iter=1):
  """APGD with ``loss`` 'ce' (APGD-CE), 'dlr', or 'dlr_targeted' (needs ``targets``).

  AutoAttack's defaults: 100 iterations, random start.  key: one PRNG key or [N] (per
  example).  With ``targets`` the attack is
  targeted: success means the top-1 is the target.  With ``return_step_sizes`` also returns
  the step size (/255) each iteration used, float32 [n_iter, N].  model_key: a randomised model
  ``apply_fn(variables, images, key)``, attacked with EOT over ``eot_iter`` gradients per step
  (the result's success is then that of one draw).
  """
  images, labels, targets, eps01, n_iter = _check(images, labels, targets, eps, n_iter, norm)
  if loss not in ("ce", "dlr", "dlr_targeted"):
    raise ValueError(f"unknown APGD loss {loss!r}; known: ce, dlr, dlr_targeted")
  if loss == "dlr_targeted" and targets is None:
    raise ValueError("the dlr_targeted loss needs targets")
  if random_start and key is None:
    raise ValueError("a random start needs a PRNG key")
  keys = core.per_example_keys(jax.random.key(0) if key is None else key, images.shape[0])
  eot_iter = check_eot(model_key, eot_iter)
  result, etas = _apgd(apply_fn, variables, images, labels, targets, eps01, keys, n_iter=n_iter,
                       norm=norm, loss=loss, start=random_start, model_key=model_key,
                       eot_iter=eot_iter)
  return (result, etas * core.PIXEL) if return_step_sizes else result


def check_eot(model_key, eot_iter) -> int:
  """eot_iter checked; 1 for a deterministic model (no ``model_key``: one gradient is the mean)."""
  eot_iter = core.check_positive_int(eot_iter, "eot_iter")
  typed = model_key is not None and jax.dtypes.issubdtype(
      getattr(model_key, "dtype", None), jax.dtypes.prng_key)
  if model_key is not None and np.shape(model_key) != (() if typed else (2,)):
    raise ValueError(f"model_key must be one PRNG key (jax.random.key) for the model's "
                     f"randomness, got shape {np.shape(model_key)}")
  return 1 if model_key is None else eot_iter


def apgd_t(apply_fn, variables, images, labels, *, eps, key, n_iter=100, norm="linf",
           n_target_classes=9):
  """AutoAttack's APGD-T (untargeted goal): targeted-DLR runs towards the 2nd .. (n+1)-th most
  likely clean classes, in that order; an example keeps its first successful adversarial.
  Curve rows: success after each iteration, counted over the runs one after another (row
  r * n_iter + k: after k iterations of the (r + 1)-th run; row 0: clean)."""
  images, labels, _, eps01, n_iter = _check(images, labels, None, eps, n_iter, norm)
  n_target_classes = core.check_positive_int(n_target_classes, "n_target_classes")
  keys = core.per_example_keys(key, images.shape[0])
  return _apgd_t(apply_fn, variables, images, labels, eps01, keys, n_iter=n_iter, norm=norm,
                 n_target_classes=n_target_classes)


@attack_jit(static_argnames=("apply_fn", "n_iter", "norm", "n_target_classes"))
def _apgd_t(apply_fn, variables, images, labels, eps, keys, *, n_iter, norm, n_target_classes):
  clean = apply_fn(variables, images)
  if clean.shape[-1] < 4:
    raise ValueError(f"APGD-T's targeted DLR loss needs at least 4 classes, got {clean.shape[-1]}")
  ranked = jnp.argsort(-clean, axis=1)
  ok0 = core.is_success(clean, labels, None)
  n_target_classes = min(n_target_classes, clean.shape[-1] - 1)

  def run(carry, rank):
    adv, fooled = carry
    targets = ranked[:, rank]
    result, _ = _apgd(apply_fn, variables, images, labels, targets, eps,
                      core.fold_keys(keys, rank), n_iter=n_iter, norm=norm,
                      loss="dlr_targeted", start=True, untargeted_goal=True)
    ok = result.success
    adv = jnp.where(core.per_example(ok & ~fooled, adv), result.adversarial, adv)
    # Success by each iteration of this run, counting the earlier runs' successes.
    return (adv, fooled | ok), fooled[None] | result.curve[1:]

  ranks = jnp.arange(1, n_target_classes + 1)
  (adv, fooled), curve = jax.lax.scan(run, (images, ok0), ranks)
  curve = curve.reshape((n_target_classes * n_iter,) + curve.shape[2:])
  return core.AttackResult(adv, fooled, jnp.concatenate([ok0[None], curve], axis=0))
