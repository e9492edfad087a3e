"""NAttack (Li et al., ICML 2019): a score-based black-box attack that learns a Gaussian search
distribution N(mu, sigma^2 I) over perturbations, with exact per-example query counts.

A sample z ~ N(mu, sigma^2 I) lives on a low-resolution grid (``resolution`` x ``resolution`` x 3;
the authors' ImageNet code: 32 x 32, bilinearly upsampled to the image, half-pixel centres as
cv2's INTER_LINEAR) and is added to the image in arctanh space, mapped back by tanh and clipped
to the eps-ball around the input in image space:

  w = arctanh((2 x - 1)(1 - 1e-6)),  x(z) = x + clip_eps(0.5 (tanh(w + up(z)) + 1) - x)

Per iteration ``population`` samples z_i = mu + sigma e_i are scored with the authors' reward
(``clipped_margin``: 0.5 min(0, max_{j != y} z_j - z_y), their log-softmax margin clipped at
the boundary, as logits), standardised over the population (A = (R - mean R) / (std R + 1e-7)),
and mu moves by lr / (population sigma) sum_i A_i e_i.  The mean x(mu) is then scored: an
example it fools stops (neither moved nor charged any more).

Queries, per example: 1 for the starting image, then per iteration ``population`` for the
samples and 1 for x(mu) (ARES charges the population only), so an example fooled after t
iterations cost exactly ``queries_at(t, population)``; ``max_queries`` allows
``steps_for(max_queries, population)`` iterations and is never exceeded.

References: Li, Li, Wang, Zhang, Gong, "NATTACK: Learning the Distributions of Adversarial
Examples for an Improved Black-Box Attack on Deep Neural Networks", ICML 2019
(Cold-Winter/Nattack); ARES ``ares/attack/nattack.py``.
"""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.attacks import core, losses
from imagenet_cp.attacks.jit import jit as attack_jit

INIT_SCALE = 0.001        # std of mu's random start (the authors' and ARES's)
TANH_BOUND = 1.0 - 1e-6   # keeps arctanh finite at the box faces (the authors' torch_arctanh)
REWARDS = ("clipped_margin", "margin", "ce")
_HIGHEST = jax.lax.Precision.HIGHEST


def queries_at(iteration, population: int):
  """Queries an example has cost after ``iteration`` iterations (iteration 0: the start)."""
  return 1 + iteration * (population + 1)


def steps_for(max_queries: int, population: int) -> int:
  """Whole iterations that fit in ``max_queries`` (the start's query included)."""
  return max(0, (int(max_queries) - 1) // (population + 1))


def bilinear_matrix(size_out: int, size_in: int) -> np.ndarray:
  """[size_out, size_in] weights of bilinear resizing with half-pixel centres and clamped edges
  (cv2 INTER_LINEAR, torch ``align_corners=False``)."""
  src = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
  low = np.floor(src).astype(np.int64)
  high = np.minimum(low + 1, size_in - 1)
  m = np.zeros((size_out, size_in), np.float32)
  np.add.at(m, (np.arange(size_out), low), 1.0 - (src - low))
  np.add.at(m, (np.arange(size_out), high), src - low)
  return m


def upsample(z: jax.Array, height: int, width: int) -> jax.Array:
  """[..., h, w, 3] -> [..., height, width, 3] bilinearly (identity at the same size)."""
  if z.shape[-3:-1] == (height, width):
    return z
  rows = jnp.asarray(bilinear_matrix(height, z.shape[-3]))
  cols = jnp.asarray(bilinear_matrix(width, z.shape[-2]))
  return jnp.einsum("Hh,...hwc,Ww->...HWc", rows, z, cols, precision=_HIGHEST)


def to_tanh_space(images: jax.Array) -> jax.Array:
  """w = arctanh of the pixels mapped to (-1, 1)."""
  return jnp.arctanh((2.0 * images - 1.0) * TANH_BOUND)


def candidate(images, w, z, eps, norm: str) -> jax.Array:
  """The image of perturbation z ([N, h, w, 3]): tanh map, then the eps-ball around images."""
  g = 0.5 * (jnp.tanh(w + upsample(z, *images.shape[1:3])) + 1.0)
  return core.project(g, images, eps, norm)


def reward(name: str, logits, labels, targets) -> jax.Array:
  """What the search distribution maximises, [N] (``REWARDS``)."""
  if name == "clipped_margin":
    # The authors' 0.5 * clip(log p_y - max log p_j, 0, 1000), negated: the margin of the
    # log-softmax equals the logits' margin, and the clip makes fooling samples tie at 0.
    return 0.5 * jnp.clip(losses.objective("margin", logits, labels, targets), -1000.0, 0.0)
  return losses.objective(name, logits, labels, targets)


def standardise(rewards: jax.Array) -> jax.Array:
  """(R - mean) / (std + 1e-7) over the population (axis 0, population std as np.std)."""
  mean = jnp.mean(rewards, axis=0)
  return (rewards - mean) / (jnp.std(rewards, axis=0) + 1e-7)


def draw_mean(keys, shape) -> jax.Array:
  """mu's random start [N, *shape]."""
  return INIT_SCALE * core.draw(core.fold_keys(keys, 0), jax.random.normal, shape)


def draw_population(keys, iteration, population: int, shape) -> jax.Array:
  """The standard normal samples e of one iteration, [N, population, *shape]."""
  step_keys = core.fold_keys(core.fold_keys(keys, 1), iteration)
  return core.draw(step_keys, jax.random.normal, (population,) + tuple(shape))


def update_mean(score, images, w, mu, noise, eps, sigma, lr, norm: str) -> jax.Array:
  """One NES step of mu ([N, h, w, 3]) from the samples ``noise`` [N, P, h, w, 3]."""
  population = noise.shape[1]

  def one(_, e):
    return None, score(candidate(images, w, mu + core.per_example(sigma, mu) * e, eps, norm))

  _, rewards = jax.lax.scan(one, None, jnp.moveaxis(noise, 1, 0))   # [P, N]
  a = standardise(rewards)
  step = jnp.einsum("pn,np...->n...", a, noise, precision=_HIGHEST)
  return mu + core.per_example(lr / (population * sigma), mu) * step


@attack_jit(static_argnames=("apply_fn", "steps", "population", "grid", "norm",
                                             "loss"))
def _nattack(apply_fn, variables, images, labels, targets, eps, sigma, lr, keys, *, steps,
             population, grid, norm, loss):
  n = images.shape[0]
  shape = grid + (images.shape[-1],)
  w = to_tanh_space(images)

  def score(x):
    return reward(loss, apply_fn(variables, x), labels, targets)

  def body(carry, t):
    mu, x, fooled, queries = carry
    active = ~fooled
    noise = draw_population(keys, t, population, shape)
    new_mu = update_mean(score, images, w, mu, noise, eps, sigma, lr, norm)
    new_x = candidate(images, w, new_mu, eps, norm)
    mu = jnp.where(core.per_example(active, mu), new_mu, mu)
    x = jnp.where(core.per_example(active, x), new_x, x)
    now = core.is_success(apply_fn(variables, x), labels, targets)
    queries = queries + jnp.where(active, population + 1, 0)
    fooled = fooled | (active & now)
    return (mu, x, fooled, queries), fooled

  ok0 = core.is_success(apply_fn(variables, images), labels, targets)
  init = (draw_mean(keys, shape), images, ok0, jnp.ones((n,), jnp.int32))
  (_, x, fooled, queries), curve = jax.lax.scan(body, init, jnp.arange(steps))
  curve = jnp.concatenate([ok0[None], curve], axis=0)
  return core.AttackResult(x, fooled, curve, queries)


def nattack(apply_fn, variables, images, labels, *, eps, key, max_queries=1000, population=100,
            sigma=0.1, learning_rate=0.02, resolution=32, targets=None, norm="linf",
            loss="clipped_margin"):
  """NAttack at budget ``eps`` (/255, Linf or L2) within ``max_queries`` queries per example.

  Defaults are ARES's (``Nattack``: 100 samples, sigma 0.1, lr 0.02, 1000 queries; sigma and
  learning_rate act in arctanh space, so they carry no /255 unit) with the authors' 32 x 32
  search grid (``resolution``; None or >= the image side: full resolution, as ARES).  loss:
  ``REWARDS`` ('margin' is ARES's unclipped one).  key: one PRNG key, or [N] keys.
  Returns an ``AttackResult``; ``adversarial`` is x(mu) (the clean image if fooled at the start).
  """
  images, labels, targets, eps01 = core.check_inputs(images, labels, targets, eps)
  core.check_norm(norm, ("linf", "l2"))
  population = core.check_positive_int(population, "population")
  max_queries = core.check_positive_int(max_queries, "max_queries")
  if loss not in REWARDS:
    raise ValueError(f"unknown NAttack loss {loss!r}; known: {', '.join(REWARDS)}")
  if not (float(sigma) > 0 and float(learning_rate) > 0):
    raise ValueError(f"sigma and learning_rate must be positive, got {sigma}, {learning_rate}")
  if resolution is not None:
    resolution = core.check_positive_int(resolution, "resolution")
  height, width = images.shape[1:3]
  grid = (height, width) if resolution is None else (min(resolution, height),
                                                      min(resolution, width))
  n = images.shape[0]
  return _nattack(apply_fn, variables, images, labels, targets, eps01,
                  jnp.full((n,), sigma, jnp.float32), jnp.full((n,), learning_rate, jnp.float32),
                  core.per_example_keys(key, n), steps=steps_for(max_queries, population),
                  population=population, grid=grid, norm=norm, loss=loss)
