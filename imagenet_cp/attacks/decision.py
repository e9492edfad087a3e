"""Decision-based black-box attacks (L2): Boundary (Brendel et al. 2018) and Evolutionary
(Dong et al. 2019).  They see the model's top-1 label only and count every query.

Both start from foolbox's ``LinearSearchBlendedUniformNoiseAttack``: uniform noise images are
drawn (at most ``init_draws``, one query each) until one is adversarial, then the blends
(1 - e) x + e noise, e = 0, 1/s, ..., 1, are tried in order (one query each) and the first
adversarial one is the start.  Then, per step, while the example has queries left:

  Boundary (foolbox 3.3.4 ``BoundaryAttack``): an orthogonal (spherical) step of relative size
    ``spherical_step`` on the sphere around x through the current adversarial, then a step of
    relative size ``source_step`` towards x; the candidate replaces the current adversarial if
    it is adversarial and closer.  Every ``stats_every`` steps the spherical candidate is
    queried too, and the step sizes adapt (x or / ``step_adaptation``) from the success rates
    of the last 100 spherical and the last 30 full candidates (foolbox's rules).  1 query per
    step, 2 on statistics steps.
  Evolutionary (ARES's worker): a (1+1) evolution strategy.  A Gaussian perturbation on K =
    dim / 20 coordinates of a reduced ``reduced`` x ``reduced`` x 3 grid, drawn with
    probability proportional to the diagonal covariance, scaled by its square root, resized
    bilinearly to the image; candidate = the point at distance (1 - mu) ||x - x_adv|| from x
    in the direction of x_adv + mu (x - x_adv) + sigma ||x - x_adv|| z / ||z||.  On success the
    evolution path and the covariance update (decay, c), and every 30 steps mu *= exp(p - 1/5)
    (p: the success rate).  1 query per step.

Queries: an example is charged only for what it is shown; it stops when the next step would
exceed ``max_queries``.  ``DecisionResult.distances[t]`` / ``queries[t]`` are its best L2
distortion (/255; +inf before an adversarial) and its queries after step t (t = 0: after the
start), so ``distortion_after_queries`` gives the distortion at any query budget.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.attacks import core
from imagenet_cp.attacks.jit import jit as attack_jit

_TINY = 1e-12
_START = 0x7FFFFFFF   # the fold of the start's draws, apart from any step's


class DecisionResult(NamedTuple):
  """adversarial: float32 [N, H, W, 3], the closest adversarial found (the clean image where
  none); success: bool [N], an adversarial was found; distances: float32 [T + 1, N], the L2
  distortion (/255) of the best adversarial after each step (+inf: none yet), non-increasing;
  queries: int32 [T + 1, N], the queries spent by then, non-decreasing, <= max_queries."""
  adversarial: jax.Array
  success: jax.Array
  distances: jax.Array
  queries: jax.Array


def label_oracle(apply_fn, variables, labels, targets):
  """images -> bool [N]: adversarial or not, from the predicted label alone."""
  def is_adversarial(x):
    predicted = jnp.argmax(apply_fn(variables, x), axis=-1)
    return predicted != labels if targets is None else predicted == targets
  return is_adversarial


def _l2(a, b):
  return core.flat_norm(a - b, "l2")


def blended_start(is_adversarial, images, keys, budget, *, init_draws, search_steps):
  """foolbox's blended-noise start -> (start [N, ...], found bool [N], queries int32 [N])."""
  n = images.shape[0]
  queries = jnp.zeros((n,), jnp.int32)

  def draw(j, carry):
    noise, found, queries = carry
    fresh = core.draw(core.fold_keys(keys, j), jax.random.uniform, images.shape[1:])
    asking = ~found & (queries < budget)
    ok = is_adversarial(fresh) & asking
    noise = jnp.where(core.per_example(ok, images), fresh, noise)
    return noise, found | ok, queries + asking

  noise, has_noise, queries = jax.lax.fori_loop(
      0, init_draws, draw, (images, jnp.zeros((n,), bool), queries))

  def blend(k, carry):
    start, found, queries = carry
    e = k / search_steps
    candidate = (1.0 - e) * images + e * noise
    asking = has_noise & ~found & (queries < budget)
    ok = is_adversarial(candidate) & asking
    start = jnp.where(core.per_example(ok, images), candidate, start)
    return start, found | ok, queries + asking

  return jax.lax.fori_loop(0, search_steps + 1, blend,
                           (images, jnp.zeros((n,), bool), queries))


# ----------------------------------------------------------------------------------------------
# Boundary attack.


def boundary_proposals(images, best, spherical_step, source_step, eta):
  """foolbox's ``draw_proposals`` given the normal draw eta [N, ...] -> (candidate,
  spherical candidate); steps [N] are relative to the current distance."""
  source = images - best
  norm = core.per_example(jnp.maximum(_l2(images, best), _TINY), images)
  direction = source / norm
  along = core.per_example(jnp.sum((eta * direction).reshape(eta.shape[0], -1), axis=1), eta)
  eta = eta - along * direction
  eta = eta * core.per_example(spherical_step, eta) * norm / core.per_example(
      jnp.maximum(core.flat_norm(eta, "l2"), _TINY), eta)
  scale = core.per_example(jnp.sqrt(spherical_step ** 2 + 1.0), eta)
  spherical = jnp.clip(images + (eta - source) / scale, 0.0, 1.0)
  new_source = images - spherical
  new_norm = core.per_example(jnp.maximum(core.flat_norm(new_source, "l2"), _TINY), images)
  length = jnp.maximum(core.per_example(source_step, images) * norm + new_norm - norm, 0.0)
  candidate = jnp.clip(spherical + length / new_norm * new_source, 0.0, 1.0)
  return candidate, spherical


def _adapt(queue, full_rows, up, down, factor, steps_list):
  """Multiply (rate > up) or divide (rate < down) the step sizes of examples whose queue is
  full; -> (new steps, cleared mask)."""
  full = ~jnp.any(jnp.isnan(queue), axis=0) & full_rows
  rate = jnp.nanmean(jnp.where(full[None], queue, 0.0), axis=0)
  grow, shrink = full & (rate > up), full & (rate < down)
  out = [jnp.where(grow, s * factor, jnp.where(shrink, s / factor, s)) for s in steps_list]
  return out, grow | shrink


@attack_jit(static_argnames=("apply_fn", "steps", "init_draws", "search_steps",
                                             "stats_every"))
def _boundary(apply_fn, variables, images, labels, targets, keys, budget, spherical0, source0,
              adaptation, convergence, *, steps, init_draws, search_steps, stats_every):
  is_adv = label_oracle(apply_fn, variables, labels, targets)
  n = images.shape[0]
  start, found, queries = blended_start(is_adv, images, core.fold_keys(keys, _START), budget,
                                        init_draws=init_draws, search_steps=search_steps)
  spherical_steps = jnp.full((n,), spherical0, jnp.float32)
  source_steps = jnp.full((n,), source0, jnp.float32)
  spherical_stats = jnp.full((100, n), jnp.nan, jnp.float32)
  step_stats = jnp.full((30, n), jnp.nan, jnp.float32)

  def body(carry, t):
    best, queries, sph, src, s_stats, c_stats, s_next, c_next = carry
    stats_step = (t % stats_every) == 0
    cost = 1 + stats_step.astype(jnp.int32)
    active = found & (src >= convergence) & (queries + cost <= budget)
    eta = core.draw(core.fold_keys(keys, t), jax.random.normal, images.shape[1:])
    candidate, spherical = boundary_proposals(images, best, sph, src, eta)
    ok = is_adv(candidate)
    closer = _l2(images, candidate) < _l2(images, best)
    take = active & ok & closer
    best = jnp.where(core.per_example(take, best), candidate, best)
    queries = queries + jnp.where(active, cost, 0)

    def with_stats(state):
      sph, src, s_stats, c_stats, s_next, c_next = state
      s_ok = is_adv(spherical)
      s_stats = s_stats.at[s_next].set(jnp.where(active, s_ok, jnp.nan).astype(jnp.float32))
      c_stats = c_stats.at[c_next].set(jnp.where(active, ok, jnp.nan).astype(jnp.float32))
      (sph, src), cleared = _adapt(s_stats, active, 0.5, 0.2, adaptation, [sph, src])
      s_stats = jnp.where(cleared[None], jnp.nan, s_stats)
      (src,), cleared = _adapt(c_stats, active, 0.25, 0.1, adaptation, [src])
      c_stats = jnp.where(cleared[None], jnp.nan, c_stats)
      return sph, src, s_stats, c_stats, (s_next + 1) % 100, (c_next + 1) % 30

    state = (sph, src, s_stats, c_stats, s_next, c_next)
    state = jax.lax.cond(stats_step, with_stats, lambda s: s, state)
    distance = jnp.where(found, _l2(images, best) * core.PIXEL, jnp.inf)
    return (best, queries) + state, (distance, queries)

  init = (start, queries, spherical_steps, source_steps, spherical_stats, step_stats,
          jnp.int32(0), jnp.int32(0))
  (best, *_), (distances, trace) = jax.lax.scan(body, init, jnp.arange(1, steps + 1))
  return _result(images, start, found, queries, best, distances, trace)


def _result(images, start, found, start_queries, best, distances, trace) -> DecisionResult:
  """Prepend the start (step 0) to the per-step traces."""
  first = jnp.where(found, _l2(images, start) * core.PIXEL, jnp.inf)
  return DecisionResult(best, found, jnp.concatenate([first[None], distances]),
                        jnp.concatenate([start_queries[None], trace]))


# ----------------------------------------------------------------------------------------------
# Evolutionary attack.


def evolutionary_perturbation(key, cov, k: int):
  """A Gaussian draw on k coordinates chosen without replacement with probability
  proportional to the diagonal covariance cov [r, r, 3], scaled by sqrt(cov)."""
  k_pick, k_draw = jax.random.split(key)
  flat = cov.reshape(-1)
  picked = jax.random.choice(k_pick, flat.size, (k,), replace=False, p=flat / jnp.sum(flat))
  mask = jnp.zeros_like(flat).at[picked].set(1.0).reshape(cov.shape)
  return jax.random.normal(k_draw, cov.shape) * mask * jnp.sqrt(cov)


def evolutionary_candidate(images, best, z_large, mu, sigma):
  """ARES's candidate: x_adv + mu (x - x_adv) + sigma ||x - x_adv|| z / ||z||, moved to distance
  (1 - mu) ||x - x_adv|| from x along its direction, clipped to the box."""
  source = images - best
  norm = core.per_example(_l2(images, best), images)
  m = core.per_example(mu, images)
  biased = best + m * source
  z_norm = core.per_example(jnp.maximum(core.flat_norm(z_large, "l2"), _TINY), images)
  candidate = biased + sigma * norm * z_large / z_norm
  away = images - candidate
  away_norm = core.per_example(jnp.maximum(core.flat_norm(away, "l2"), _TINY), images)
  return jnp.clip(images - away / away_norm * (1.0 - m) * norm, 0.0, 1.0)


@attack_jit(static_argnames=("apply_fn", "steps", "init_draws", "search_steps",
                                             "reduced"))
def _evolutionary(apply_fn, variables, images, labels, targets, keys, budget, mu0, sigma, decay,
                  c, *, steps, init_draws, search_steps, reduced):
  is_adv = label_oracle(apply_fn, variables, labels, targets)
  n, h, w, _ = images.shape
  start, found, queries = blended_start(is_adv, images, core.fold_keys(keys, _START), budget,
                                        init_draws=init_draws, search_steps=search_steps)
  shape = (reduced, reduced, 3)
  k = max(int(np.prod(shape) / 20), 1)

  def body(carry, t):
    best, queries, path, cov, mu, stats, filled = carry
    active = found & (queries + 1 <= budget)
    z = jax.vmap(lambda key, cv: evolutionary_perturbation(key, cv, k))(
        core.fold_keys(keys, t), cov)
    z_large = jax.image.resize(z, (n, h, w, 3), "linear") if (h, w) != shape[:2] else z
    candidate = evolutionary_candidate(images, best, z_large, mu, sigma)
    ok = is_adv(candidate)
    take = active & ok & (_l2(images, candidate) < _l2(images, best))
    best = jnp.where(core.per_example(take, best), candidate, best)
    new_path = core.per_example(decay, z) * path + core.per_example(jnp.sqrt(1 - decay ** 2), z) * z
    path = jnp.where(core.per_example(take, z), new_path, path)
    cc = core.per_example(c, z)
    cov = jnp.where(core.per_example(take, z), (1 - cc) * cov + cc * path ** 2, cov)
    # The success rate of the last 30 steps adapts mu, then the window restarts.
    stats = stats + (active & ok)
    filled = filled + active
    full = filled == 30
    mu = jnp.where(full, mu * jnp.exp(stats / 30.0 - 0.2), mu)
    stats, filled = jnp.where(full, 0, stats), jnp.where(full, 0, filled)
    queries = queries + active
    distance = jnp.where(found, _l2(images, best) * core.PIXEL, jnp.inf)
    return (best, queries, path, cov, mu, stats, filled), (distance, queries)

  zeros = jnp.zeros((n,) + shape, jnp.float32)
  init = (start, queries, zeros, zeros + 1.0, jnp.broadcast_to(mu0, (n,)),
          jnp.zeros((n,), jnp.int32), jnp.zeros((n,), jnp.int32))
  (best, *_), (distances, trace) = jax.lax.scan(body, init, jnp.arange(steps))
  return _result(images, start, found, queries, best, distances, trace)


# ----------------------------------------------------------------------------------------------
# The public functions.


def _prepare(images, labels, targets, key, max_queries, steps, init_draws, search_steps):
  images, labels, targets, _ = core.check_inputs(images, labels, targets)
  max_queries = core.check_positive_int(max_queries, "max_queries")
  core.check_positive_int(init_draws, "init_draws")
  core.check_positive_int(search_steps, "search_steps")
  if key is None:
    raise ValueError("a decision-based attack needs a PRNG key")
  # At least one query per step: more steps than queries would never run.
  steps = max_queries if steps is None else core.check_positive_int(steps, "steps")
  return images, labels, targets, core.per_example_keys(key, images.shape[0]), max_queries, steps


def _positive(name, value):
  if not float(value) > 0:
    raise ValueError(f"{name} must be positive, got {value!r}")
  return float(value)


def boundary(apply_fn, variables, images, labels, *, key, max_queries=1000, steps=None,
             targets=None, spherical_step=1e-2, source_step=1e-2, source_step_convergence=1e-7,
             step_adaptation=1.5, stats_every=10, init_draws=100, search_steps=50
             ) -> DecisionResult:
  """Boundary attack (L2, labels only) with foolbox's defaults; ``max_queries`` per example
  includes the start's; ``steps`` (default max_queries) bounds the loop (and the traces' T).
  key: one PRNG key or [N] keys (one per example: results then do not depend on the batch)."""
  images, labels, targets, keys, budget, steps = _prepare(
      images, labels, targets, key, max_queries, steps, init_draws, search_steps)
  for name, value in (("spherical_step", spherical_step), ("source_step", source_step),
                      ("step_adaptation", step_adaptation)):
    _positive(name, value)
  stats_every = core.check_positive_int(stats_every, "stats_every")
  return _boundary(apply_fn, variables, images, labels, targets, keys, jnp.int32(budget),
                   jnp.float32(spherical_step), jnp.float32(source_step),
                   jnp.float32(step_adaptation), jnp.float32(source_step_convergence),
                   steps=steps, init_draws=init_draws, search_steps=search_steps,
                   stats_every=stats_every)


def evolutionary(apply_fn, variables, images, labels, *, key, max_queries=1000, steps=None,
                 targets=None, mu=1e-2, sigma=3e-2, decay=0.99, c=1e-3, reduced=None,
                 init_draws=100, search_steps=50) -> DecisionResult:
  """Evolutionary attack (L2, labels only), Dong et al.'s hyper-parameters (mu 0.01, sigma
  0.03, path decay 0.99, covariance rate 0.001); ``reduced``: the side of the search grid
  (default the image side / 4, at least 1)."""
  images, labels, targets, keys, budget, steps = _prepare(
      images, labels, targets, key, max_queries, steps, init_draws, search_steps)
  side = images.shape[1]
  reduced = max(side // 4, 1) if reduced is None else core.check_positive_int(reduced, "reduced")
  for name, value in (("mu", mu), ("sigma", sigma)):
    _positive(name, value)
  if not (0.0 <= decay < 1.0 and 0.0 < c <= 1.0):
    raise ValueError(f"decay must be in [0, 1) and c in (0, 1], got {decay!r}, {c!r}")
  return _evolutionary(apply_fn, variables, images, labels, targets, keys, jnp.int32(budget),
                       jnp.float32(mu), jnp.float32(sigma), jnp.float32(decay), jnp.float32(c),
                       steps=steps, init_draws=init_draws, search_steps=search_steps,
                       reduced=reduced)


def distortion_after_queries(distances, queries, grid) -> np.ndarray:
  """float64 [G, N]: each example's best L2 distortion (/255) with at most q queries, for q
  in ``grid`` (+inf: no adversarial by then), from a result's ``distances`` and ``queries``
  traces [T + 1, N]."""
  distances = np.asarray(distances, np.float64)
  queries = np.asarray(queries, np.int64)
  grid = np.asarray(grid, np.int64)
  if distances.shape != queries.shape or distances.ndim != 2:
    raise ValueError("distances and queries must both be [T + 1, N]")
  if np.any(grid < 0):
    raise ValueError("query counts must be non-negative")
  within = queries[None] <= grid[:, None, None]          # [G, T + 1, N]
  return np.where(within, distances[None], np.inf).min(axis=1)


def accuracy_at_distortion(distortion, eps) -> np.ndarray:
  """Robust accuracy: the fraction of examples whose distortion [..., N] exceeds eps (/255)."""
  return (np.asarray(distortion, np.float64) > float(eps)).mean(axis=-1)
