"""First-order white-box attacks: FGSM, BIM (I-FGSM), PGD (Linf / L2, random start) and MIM.

All four are one projected-ascent loop (``lax.scan`` over the iterations) on the objective of
``attacks.losses``:

  FGSM (Goodfellow et al. 2015):  x' = clip_[0,1](x + eps * sign(grad_x J(x, y)))
  BIM  (Kurakin et al. 2017):     x_{t+1} = Proj_{B_eps(x)}(x_t + alpha * sign(grad J(x_t)))
  PGD  (Madry et al. 2018):       BIM from a uniform random point of B_eps(x)
  MIM  (Dong et al. 2018):        g_{t+1} = mu g_t + grad / ||grad||_1,
                                  x_{t+1} = Proj(x_t + alpha * sign(g_{t+1}))

L2 versions step along grad / ||grad||_2 and project radially.  The success of every iterate
is read off the forward pass that the next gradient needs anyway, so the per-iteration curve
costs one extra forward pass in all; the returned adversarial of a fooled example is its first
successful iterate (so ``success`` always describes the returned images).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from imagenet_cp.attacks import core, losses
from imagenet_cp.attacks.jit import jit as attack_jit


def objective_and_grad(apply_fn, variables, x, labels, targets, loss):
  """-> (logits [N, C], d objective / dx [N, H, W, 3]) with one forward and one backward."""
  def total(x):
    logits = apply_fn(variables, x)
    return jnp.sum(losses.objective(loss, logits, labels, targets)), logits
  grad, logits = jax.grad(total, has_aux=True)(x)
  return logits, grad


def random_start(keys, images, eps, norm):
  """A uniform point of the Linf cube or the L2 ball of radius eps [N] ([0, 1] units), boxed.

  keys: [N], one per example."""
  e = core.per_example(eps, images)
  shape = images.shape[1:]
  if norm == "linf":
    uniform = functools.partial(jax.random.uniform, minval=-1.0, maxval=1.0)
    delta = core.draw(keys, uniform, shape) * e
  else:
    direction = core.draw(core.fold_keys(keys, 0), jax.random.normal, shape)
    direction = direction / core.per_example(
        jnp.maximum(core.flat_norm(direction, "l2"), 1e-12), images)
    dim = images[0].size
    radius = core.draw(core.fold_keys(keys, 1), jax.random.uniform, ()) ** (1.0 / dim)
    delta = direction * core.per_example(radius, images) * e
  return jnp.clip(images + delta, 0.0, 1.0)


@attack_jit(static_argnames=("apply_fn", "steps", "norm", "loss"))
def _ascent(apply_fn, variables, images, labels, targets, eps, step, keys, decay, start, *, steps,
            norm, loss):
  """The shared loop; eps, step: [N] in [0, 1] units; start: bool scalar (random start or not);
  decay [N]: MIM's mu.  With mu = 0 the momentum step is the plain BIM / PGD step (the L1
  normalisation does not change a sign or an L2 direction), so all four share one program."""
  x = jnp.where(start, random_start(keys, images, eps, norm), images)
  s = core.per_example(step, images)

  def body(carry, _):
    x, g_acc, first, fooled = carry
    logits, grad = objective_and_grad(apply_fn, variables, x, labels, targets, loss)
    now = core.is_success(logits, labels, targets)
    first = jnp.where(core.per_example(now & ~fooled, x), x, first)
    fooled = fooled | now
    l1 = core.per_example(jnp.maximum(core.flat_norm(grad, "l1"), 1e-12), grad)
    g_acc = core.per_example(decay, grad) * g_acc + grad / l1
    x_next = core.project(x + s * core.normalized_step(g_acc, norm), images, eps, norm)
    return (x_next, g_acc, first, fooled), fooled

  init = (x, jnp.zeros_like(images), images, jnp.zeros(images.shape[0], bool))
  (x, _, first, fooled), curve = jax.lax.scan(body, init, None, length=steps)
  last = core.is_success(apply_fn(variables, x), labels, targets)
  adversarial = jnp.where(core.per_example(fooled, x), first, x)
  success = fooled | last
  curve = jnp.concatenate([curve, success[None]], axis=0)
  return core.AttackResult(adversarial, success, curve)


def _run(apply_fn, variables, images, labels, targets, eps, step_size, default_ratio, *, steps,
         norm, loss, start, key, decay=0.0):
  images, labels, targets, eps01 = core.check_inputs(images, labels, targets, eps)
  core.check_norm(norm, ("linf", "l2"))
  steps = core.check_positive_int(steps, "steps")
  if loss not in losses.LOSSES:
    raise ValueError(f"unknown loss {loss!r}; known: {', '.join(losses.LOSSES)}")
  n = images.shape[0]
  if step_size is None:
    step01 = eps01 * default_ratio
  else:
    step01 = core.check_budget(step_size, n, "step_size")
  if start and key is None:
    raise ValueError("a random start needs a PRNG key")
  keys = core.per_example_keys(jax.random.key(0) if key is None else key, n)
  decay = jnp.broadcast_to(jnp.asarray(decay, jnp.float32), (n,))
  return _ascent(apply_fn, variables, images, labels, targets, eps01, step01, keys, decay,
                 jnp.asarray(bool(start)), steps=steps, norm=norm, loss=loss)


def fgsm(apply_fn, variables, images, labels, *, eps, targets=None, norm="linf", loss="ce"):
  """One step of size eps (/255) along sign(grad) (Linf) or grad / ||grad||_2 (L2), boxed.

  Targeted: a step down the loss towards ``targets``.  Returns an ``AttackResult`` with a
  two-row curve (clean, after the step).
  """
  return _run(apply_fn, variables, images, labels, targets, eps, eps, 1.0, steps=1, norm=norm,
              loss=loss, start=False, key=None)


def bim(apply_fn, variables, images, labels, *, eps, steps=20, step_size=None, targets=None,
        norm="linf", loss="ce"):
  """Basic iterative method / I-FGSM: ``steps`` steps of ``step_size`` (/255; default eps / steps,
  Adversarial_Survey's I-FGSM), projected onto the eps-ball and the box, from the clean image."""
  return _run(apply_fn, variables, images, labels, targets, eps, step_size, 1.0 / steps,
              steps=steps, norm=norm, loss=loss, start=False, key=None)


def pgd(apply_fn, variables, images, labels, *, eps, key, steps=20, step_size=None,
        targets=None, norm="linf", loss="ce", random_start=True):
  """PGD (Madry et al.) from a uniform random start in the eps-ball (Linf or L2, eps in /255).

  key: one PRNG key, or [N] keys (one per example: results then do not depend on the batch).

  step_size (/255) defaults to 2.5 * eps / steps (Madry et al.'s choice), which scales with eps
  (what the minimal-budget search needs).  ARES's ImageNet default is eps 4, step 1, 20 steps.
  """
  return _run(apply_fn, variables, images, labels, targets, eps, step_size, 2.5 / steps,
              steps=steps, norm=norm, loss=loss, start=random_start, key=key)


def mim(apply_fn, variables, images, labels, *, eps, steps=20, step_size=None, decay=1.0,
        targets=None, norm="linf", loss="ce"):
  """Momentum iterative method: decay mu (ARES default 1.0), step eps / steps by default."""
  return _run(apply_fn, variables, images, labels, targets, eps, step_size, 1.0 / steps,
              steps=steps, norm=norm, loss=loss, start=False, key=None, decay=decay)
