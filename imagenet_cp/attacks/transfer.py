"""Transfer attacks (crafted on a surrogate, scored on other models): MI-FGSM with input
diversity (DI2-FGSM), translation invariance (TI-FGSM), scale invariance + Nesterov
(SI-NI-FGSM) and variance tuning (VMI-FGSM), Linf.

All five share MI-FGSM's loop (Dong et al. 2018), written as torchattacks 3.5.1 and the
authors' code write it (the gradient normalised by its per-example mean absolute value):

  g  = the method's gradient estimate at x_t
  m  = g / mean|g| + mu m
  x_{t+1} = Proj_{B_eps(x)}(x_t + alpha sign(m)), clipped to [0, 1]

  DI   (Xie et al. 2019):  g = grad_x J(T(x_t)), T: resize to r x r (r uniform in
                           [int(S rate), S)), zero-pad back to S x S at a random offset,
                           applied with probability p (else the identity)
  TI   (Dong et al. 2019): g = W * grad_x J(T(x_t)), W the Gaussian kernel (length, nsig),
                           depthwise, zero padding 'same'
  SI-NI (Lin et al. 2020): x_nes = x_t + mu alpha m;  g = 1/m sum_i grad_x J(x_nes / 2^i)
  VMI  (Wang & He 2021):   g = grad J(x_t) + v_t;  v_{t+1} = 1/N sum_j grad J(x_t + u_j) -
                           grad J(x_t), u_j ~ U(-beta eps, beta eps)^d

Randomness is drawn first and applied second: ``draw_diversity`` / ``draw_neighbours`` give
the draws of step t from ``step_keys(keys, t)`` (each example's key folded with t), and
``apply_diversity`` applies them, so tests can hand torchattacks the same draws.  One draw per
example per step (torchattacks draws one per batch; an example's result must not depend on
its batch).  The returned adversarial is the last iterate, as in the originals (a transfer
attack does not stop at the surrogate's first success); ``success`` describes it on the
surrogate and ``curve[t]`` says whether some iterate up to t fooled the surrogate.

References: torchattacks 3.5.1 DIFGSM, TIFGSM, SINIFGSM, VMIFGSM; ARES 2.0 ``dim``, ``tim``,
``si_ni_fgsm``, ``vmi_fgsm`` (their ImageNet defaults: eps 4/255, step 1/255, 20 steps, mu 1).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.attacks import core, losses
from imagenet_cp.attacks.jit import jit as attack_jit

METHODS = ("mi", "di", "ti", "si_ni", "vmi")
_TINY = 1e-12
HIGHEST = jax.lax.Precision.HIGHEST


# ----------------------------------------------------------------------------------------------
# Input diversity: draws, then the resize + pad they describe.


def diversity_range(side: int, resize_rate: float) -> tuple[int, int]:
  """torchattacks' range [low, high) of the resized side for images of ``side`` pixels."""
  return int(side * resize_rate), side


def step_keys(keys: jax.Array, t) -> jax.Array:
  """The keys of step t: each example's key folded with t, [N]."""
  return core.fold_keys(keys, t)


def draw_diversity(keys: jax.Array, side: int, resize_rate: float = 0.85,
                   diversity_prob: float = 0.7) -> dict:
  """One input-diversity draw per example (keys [N]) -> {'size', 'top', 'left': int32 [N],
  'apply': bool [N]}: size uniform in [int(side rate), side), offsets uniform in
  [0, side - size) (torchattacks' ``randint`` ranges), applied with probability p."""
  low, high = diversity_range(side, resize_rate)

  def one(key):
    k_size, k_top, k_left, k_apply = jax.random.split(key, 4)
    size = jax.random.randint(k_size, (), low, high, jnp.int32)
    top = jax.random.randint(k_top, (), 0, side - size, jnp.int32)
    left = jax.random.randint(k_left, (), 0, side - size, jnp.int32)
    return {"size": size, "top": top, "left": left,
            "apply": jax.random.uniform(k_apply, ()) < diversity_prob}

  return jax.vmap(one)(keys)


def resize_pad_matrix(side: int, size, offset) -> jax.Array:
  """[side, side] float32 R with (R v)_i = bilinear sample of v (PyTorch's
  ``interpolate(align_corners=False)`` to ``size``) at output row i - offset, 0 outside
  [offset, offset + size): one axis of the resize + zero pad.  size, offset: traced ints."""
  i = jnp.arange(side)
  j = i - offset
  scale = jnp.float32(side) / size.astype(jnp.float32)
  # PyTorch's source index for align_corners=False, clamped at 0.
  src = jnp.maximum((j.astype(jnp.float32) + 0.5) * scale - 0.5, 0.0)
  i0 = jnp.floor(src).astype(jnp.int32)
  i1 = jnp.minimum(i0 + 1, side - 1)
  frac = src - i0.astype(jnp.float32)
  inside = ((j >= 0) & (j < size)).astype(jnp.float32)[:, None]
  cols = jnp.arange(side)[None, :]
  weights = (cols == i0[:, None]) * (1.0 - frac)[:, None] + (cols == i1[:, None]) * frac[:, None]
  return weights * inside


def apply_diversity(images: jax.Array, draws: dict) -> jax.Array:
  """The input-diversity transform of square images [N, S, S, 3] with given draws: resized to
  size x size, zero-padded at (top, left) back to S x S where ``apply``, else unchanged."""
  side = images.shape[1]

  def one(image, size, top, left, apply):
    rows = resize_pad_matrix(side, size, top)
    cols = resize_pad_matrix(side, size, left)
    out = jnp.einsum("ia,abc,jb->ijc", rows, image, cols, precision=HIGHEST)
    return jnp.where(apply, out, image)

  return jax.vmap(one)(images, draws["size"], draws["top"], draws["left"], draws["apply"])


# ----------------------------------------------------------------------------------------------
# Translation invariance: the Gaussian kernel and the depthwise smoothing.


def gaussian_kernel(length: int = 15, nsig: float = 3.0) -> np.ndarray:
  """float32 [length, length]: the outer product of the standard normal density at
  ``linspace(-nsig, nsig, length)``, normalised to sum 1 (TI-FGSM's ``gkern``)."""
  x = np.linspace(-nsig, nsig, length)
  density = np.exp(-x ** 2 / 2.0) / np.sqrt(2 * np.pi)
  raw = np.outer(density, density)
  return (raw / raw.sum()).astype(np.float32)


def smooth_gradient(grad: jax.Array, kernel) -> jax.Array:
  """grad [N, H, W, 3] convolved channel by channel with kernel [L, L], zero padding 'same'
  (PyTorch's: (L - 1) // 2 before, the rest after)."""
  length = kernel.shape[0]
  before = (length - 1) // 2
  pad = (before, length - 1 - before)
  weights = jnp.tile(jnp.asarray(kernel)[:, :, None, None], (1, 1, 1, 3))   # HWIO, 3 groups
  return jax.lax.conv_general_dilated(
      grad, weights, (1, 1), (pad, pad), dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=3, precision=HIGHEST)


# ----------------------------------------------------------------------------------------------
# VMI's neighbourhood.


def draw_neighbours(keys: jax.Array, samples: int, radius: jax.Array, shape) -> jax.Array:
  """[samples, N, *shape]: u_j ~ U(-radius, radius) per pixel (radius [N] = beta eps, [0, 1]
  units); sample j from each example's key folded with j."""
  uniform = functools.partial(jax.random.uniform, minval=-1.0, maxval=1.0)
  noise = jnp.stack([core.draw(core.fold_keys(keys, j), uniform, shape) for j in range(samples)])
  return noise * radius.reshape((1, -1) + (1,) * len(shape))


# ----------------------------------------------------------------------------------------------
# The shared loop.


def loss_grad(apply_fn, variables, x, labels, targets):
  """d CE-objective / dx [N, H, W, 3] (per example: the sum over the batch separates)."""
  def total(x):
    return jnp.sum(losses.objective("ce", apply_fn(variables, x), labels, targets))
  return jax.grad(total)(x)


def mean_abs_normalized(g: jax.Array) -> jax.Array:
  """g / mean|g| per example (torchattacks' and the authors' normalisation)."""
  scale = jnp.mean(jnp.abs(g), axis=(1, 2, 3), keepdims=True)
  return g / jnp.maximum(scale, _TINY)


@attack_jit(static_argnames=(
    "apply_fn", "method", "steps", "resize_rate", "diversity_prob", "kernel_length", "nsig",
    "scales", "samples", "random_start"))
def _transfer(apply_fn, variables, images, labels, targets, eps, step, decay, beta, keys, *,
              method, steps, resize_rate, diversity_prob, kernel_length, nsig, scales, samples,
              random_start):
  from imagenet_cp.attacks import gradient  # pylint: disable=g-import-not-at-top
  side = images.shape[1]
  kernel = gaussian_kernel(kernel_length, nsig) if method == "ti" else None
  d = core.per_example(decay, images)
  s = core.per_example(step, images)
  grad_of = functools.partial(loss_grad, apply_fn, variables, labels=labels, targets=targets)
  x0 = gradient.random_start(core.fold_keys(keys, steps + 1), images, eps, "linf") \
      if random_start else images

  def estimate(x, momentum, variance, t):
    """-> (the method's gradient g, VMI's next variance)."""
    if method in ("di", "ti"):
      draws = draw_diversity(step_keys(keys, t), side, resize_rate, diversity_prob)
      g = jax.grad(lambda z: jnp.sum(losses.objective(
          "ce", apply_fn(variables, apply_diversity(z, draws)), labels, targets)))(x)
      return (smooth_gradient(g, kernel) if method == "ti" else g), variance
    if method == "si_ni":
      nes = x + d * s * momentum
      g = sum(jax.grad(lambda z, i=i: jnp.sum(losses.objective(
          "ce", apply_fn(variables, z / 2.0 ** i), labels, targets)))(nes) for i in range(scales))
      return g / scales, variance
    g = grad_of(x)
    if method == "mi":
      return g, variance
    noise = draw_neighbours(step_keys(keys, t), samples, beta * eps, images.shape[1:])
    neighbours = sum(grad_of(x + noise[j]) for j in range(samples)) / samples
    return g + variance, neighbours - g

  def body(carry, t):
    x, momentum, variance, fooled = carry
    g, variance = estimate(x, momentum, variance, t)
    momentum = mean_abs_normalized(g) + d * momentum
    x = core.project(x + s * jnp.sign(momentum), images, eps, "linf")
    fooled = fooled | core.is_success(apply_fn(variables, x), labels, targets)
    return (x, momentum, variance, fooled), fooled

  clean = core.is_success(apply_fn(variables, x0), labels, targets)
  init = (x0, jnp.zeros_like(images), jnp.zeros_like(images), clean)
  (x, _, _, _), curve = jax.lax.scan(body, init, jnp.arange(steps))
  success = core.is_success(apply_fn(variables, x), labels, targets)
  curve = jnp.concatenate([clean[None], curve], axis=0)
  return core.AttackResult(x, success, curve)


def _check_rate(resize_rate, diversity_prob):
  if not 0.0 < resize_rate < 1.0:
    raise ValueError("resize_rate must be in (0, 1) (the transform keeps the image size; "
                     f"torchattacks' shrink-and-pad form), got {resize_rate!r}")
  if not 0.0 <= diversity_prob <= 1.0:
    raise ValueError(f"diversity_prob must be in [0, 1], got {diversity_prob!r}")


def _run(method, apply_fn, variables, images, labels, *, eps, steps, step_size, decay, key,
         targets, resize_rate=0.85, diversity_prob=0.7, kernel_length=15, nsig=3.0, scales=5,
         samples=10, beta=1.5, random_start=False):
  images, labels, targets, eps01 = core.check_inputs(images, labels, targets, eps)
  steps = core.check_positive_int(steps, "steps")
  n = images.shape[0]
  # Default: ARES's ratio (step 1/255 at eps 4/255), so the step scales with eps.
  step01 = eps01 / 4.0 if step_size is None else core.check_budget(step_size, n, "step_size")
  if method in ("di", "ti"):
    _check_rate(resize_rate, diversity_prob)
    if images.shape[1] != images.shape[2]:
      raise ValueError(f"input diversity needs square images, got {tuple(images.shape[1:3])}")
  if method == "ti" and not (isinstance(kernel_length, int) and kernel_length >= 1 and nsig > 0):
    raise ValueError(f"kernel_length must be a positive int and nsig > 0, got "
                     f"{kernel_length!r}, {nsig!r}")
  scales = core.check_positive_int(scales, "scales")
  samples = core.check_positive_int(samples, "samples")
  random = method in ("di", "ti", "vmi") or random_start
  if random and key is None:
    raise ValueError(f"{method} needs a PRNG key (its random draws)")
  keys = core.per_example_keys(jax.random.key(0) if key is None else key, n)
  decay = jnp.broadcast_to(jnp.asarray(decay, jnp.float32), (n,))
  beta = jnp.broadcast_to(jnp.asarray(beta, jnp.float32), (n,))
  return _transfer(apply_fn, variables, images, labels, targets, eps01, step01, decay, beta, keys,
                   method=method, steps=steps, resize_rate=float(resize_rate),
                   diversity_prob=float(diversity_prob), kernel_length=int(kernel_length),
                   nsig=float(nsig), scales=scales, samples=samples,
                   random_start=bool(random_start))


def mi_fgsm(apply_fn, variables, images, labels, *, eps=4.0, steps=20, step_size=None,
            decay=1.0, targets=None, key=None, random_start=False):
  """MI-FGSM, the base of the others (Linf; eps, step_size in /255; step default eps / 4,
  ARES's 1/255 at eps 4), momentum mu = ``decay``; the last iterate, unlike ``attacks.mim``."""
  return _run("mi", apply_fn, variables, images, labels, eps=eps, steps=steps,
              step_size=step_size, decay=decay, key=key, targets=targets,
              random_start=random_start)


def di_fgsm(apply_fn, variables, images, labels, *, key, eps=4.0, steps=20, step_size=None,
            decay=1.0, resize_rate=0.85, diversity_prob=0.7, targets=None, random_start=False):
  """DI2-FGSM (M-DI2-FGSM with ``decay`` > 0): ARES's resize_rate 0.85 and p 0.7
  (torchattacks: 0.9, 0.5); square images; key: one or [N] keys."""
  return _run("di", apply_fn, variables, images, labels, eps=eps, steps=steps,
              step_size=step_size, decay=decay, key=key, targets=targets,
              resize_rate=resize_rate, diversity_prob=diversity_prob, random_start=random_start)


def ti_fgsm(apply_fn, variables, images, labels, *, key, eps=4.0, steps=20, step_size=None,
            decay=1.0, kernel_length=15, nsig=3.0, resize_rate=0.85, diversity_prob=0.7,
            targets=None, random_start=False):
  """TI-FGSM as ARES and torchattacks run it: Gaussian kernel (15, nsig 3) on the gradient of
  the input-diverse image (diversity_prob=0: TI-MI-FGSM alone)."""
  return _run("ti", apply_fn, variables, images, labels, eps=eps, steps=steps,
              step_size=step_size, decay=decay, key=key, targets=targets,
              resize_rate=resize_rate, diversity_prob=diversity_prob,
              kernel_length=kernel_length, nsig=nsig, random_start=random_start)


def si_ni_fgsm(apply_fn, variables, images, labels, *, eps=4.0, steps=20, step_size=None,
               decay=1.0, scales=5, targets=None, key=None, random_start=False):
  """SI-NI-FGSM: Nesterov look-ahead and ``scales`` copies x / 2^i (the paper's and
  torchattacks' m = 5; ARES defaults to 1, i.e. NI-FGSM alone)."""
  return _run("si_ni", apply_fn, variables, images, labels, eps=eps, steps=steps,
              step_size=step_size, decay=decay, key=key, targets=targets, scales=scales,
              random_start=random_start)


def vmi_fgsm(apply_fn, variables, images, labels, *, key, eps=4.0, steps=20, step_size=None,
             decay=1.0, samples=10, beta=1.5, targets=None, random_start=False):
  """VMI-FGSM: variance of ``samples`` gradients in the beta * eps cube (ARES: N = 10,
  beta 1.5; the paper's N = 20)."""
  return _run("vmi", apply_fn, variables, images, labels, eps=eps, steps=steps,
              step_size=step_size, decay=decay, key=key, targets=targets, samples=samples,
              beta=beta, random_start=random_start)
