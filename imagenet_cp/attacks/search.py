"""Minimal adversarial distortion per example, and the robustness curves it yields.

ARES's DistortionBenchmark and Adversarial_Survey's I-FGSM search: an iterative attack is run
at a per-example budget that doubles from ``initial_eps`` until the attack succeeds, then
bisects between the largest failing and the smallest succeeding budget.  Every round is one
batched attack call in which each example has its own budget, so an example starts bisecting
as soon as it has a success; ``doubling_steps + bisection_steps`` rounds in all.  The result is
the smallest successful budget ``hi`` (the minimal budget lies in (lo, hi]), +inf where no
budget up to initial_eps * 2^(doubling_steps - 1) succeeded, 0 for examples the model already
misclassifies (a budget-0 attack succeeds).

C&W, EAD and DeepFool optimise the distortion themselves: ``optimised_distortion`` measures it.

One minimal distortion per example gives the whole accuracy-vs-budget curve:
robust accuracy at budget b = fraction of examples with minimal distortion > b.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.attacks import blackbox, core, norms
from imagenet_cp.attacks.jit import jit as attack_jit


class BudgetSearch(NamedTuple):
  """minimal: float32 [N], the smallest budget (/255) at which the attack succeeded (+inf: none);
  lower: float32 [N], the largest budget that failed (0 if none); adversarial: the images found
  at ``minimal`` (the clean images where none); success: bool [N]; budgets: float32 [R, N], the
  budget tried in each round; found: bool [R, N], whether it succeeded."""
  minimal: jax.Array
  lower: jax.Array
  adversarial: jax.Array
  success: jax.Array
  budgets: jax.Array
  found: jax.Array


def next_budget(lower, upper, initial):
  """Doubling while nothing has succeeded (upper = inf), bisection afterwards."""
  doubling = jnp.where(lower > 0, 2.0 * lower, initial)
  return jnp.where(jnp.isfinite(upper), 0.5 * (lower + upper), doubling)


def search_budget(attack: Callable, variables, images, labels, *, targets=None,
                  initial_eps=1.0, doubling_steps=10, bisection_steps=10) -> BudgetSearch:
  """Per-example minimal budget of an attack.

  attack(variables, images, labels, eps=eps, targets=targets) -> AttackResult, with eps
  float32 [N] in /255 units: e.g. ``functools.partial(attacks.bim, apply_fn, steps=50)``
  (the default step sizes of this package's attacks scale with eps, as the search needs).
  It must be traceable (it runs inside ``lax.scan``) and hashable (it is a static argument
  of the jitted search; keep the model's variables out of it).  initial_eps in /255.
  """
  images, labels, targets, initial = core.check_inputs(images, labels, targets, initial_eps,
                                                       "initial_eps")
  doubling_steps = core.check_positive_int(doubling_steps, "doubling_steps")
  if not isinstance(bisection_steps, int) or bisection_steps < 0:
    raise ValueError(f"bisection_steps must be a non-negative integer, got {bisection_steps!r}")
  if core.is_concrete(initial) and not bool(jnp.all(initial > 0)):
    raise ValueError("initial_eps must be positive")
  return _search(attack, variables, images, labels, targets, initial * core.PIXEL,
                 rounds=doubling_steps + bisection_steps)


@attack_jit(static_argnames=("attack", "rounds"))
def _search(attack, variables, images, labels, targets, initial, *, rounds):
  n = images.shape[0]
  clean = attack(variables, images, labels, eps=jnp.zeros((n,), jnp.float32), targets=targets)
  upper0 = jnp.where(clean.success, 0.0, jnp.inf)

  def body(carry, _):
    lower, upper, adv = carry
    eps = next_budget(lower, upper, initial)
    result = attack(variables, images, labels, eps=eps, targets=targets)
    # Examples already settled at 0 keep their bracket.
    ok = result.success & (upper > 0)
    failed = ~result.success & (upper > 0)
    upper = jnp.where(ok, eps, upper)
    lower = jnp.where(failed, eps, lower)
    adv = jnp.where(core.per_example(ok, adv), result.adversarial, adv)
    return (lower, upper, adv), (eps, ok)

  init = (jnp.zeros((n,), jnp.float32), upper0, images)
  (lower, upper, adv), (budgets, found) = jax.lax.scan(body, init, None, length=rounds)
  return BudgetSearch(upper, lower, adv, jnp.isfinite(upper), budgets, found)


def optimised_distortion(result: core.AttackResult, images, norm: str) -> jax.Array:
  """float32 [N]: the distortion (/255) C&W, EAD or DeepFool found; +inf where they failed."""
  return norms.distortion(result.adversarial, images, norm, result.success)


def accuracy_vs_budget(minimal, budgets) -> np.ndarray:
  """Robust accuracy at each budget (/255): fraction of examples whose minimal distortion
  exceeds it.  minimal: [N] (+inf for never fooled); budgets: [B] -> float64 [B], monotone
  non-increasing in the budget."""
  minimal = np.asarray(minimal, np.float64)
  budgets = np.asarray(budgets, np.float64)
  if np.any(budgets < 0):
    raise ValueError("budgets must be non-negative")
  return (minimal[None, :] > budgets[:, None]).mean(axis=1)


def accuracy_vs_iterations(curve) -> np.ndarray:
  """Accuracy after each iteration (or query count, or search step) from an attack's
  ``curve`` bool [T + 1, N] -> float64 [T + 1]."""
  return 1.0 - np.asarray(curve, np.float64).mean(axis=1)


def accuracy_vs_queries(result: core.AttackResult, samples: int):
  """-> (queries int [T + 1], accuracy float64 [T + 1]) of a NES / SPSA result run with
  ``samples`` pairs per estimate: ARES's accuracy-vs-queries curve."""
  steps = np.asarray(result.curve).shape[0] - 1
  return blackbox.queries_at(np.arange(steps + 1), samples), accuracy_vs_iterations(result.curve)


def accuracy_after_queries(queries, success, grid) -> np.ndarray:
  """Accuracy after q queries for each q of ``grid``, from one black-box run per example:
  queries int [N] (the query at which the example was fooled, exact; what it spent where it
  was not), success bool [N] -> float64 [len(grid)], monotone non-increasing in q.  An example
  counts as fooled after q queries iff it succeeded with at most q."""
  queries = np.asarray(queries, np.int64)
  success = np.asarray(success, bool)
  grid = np.asarray(grid, np.int64)
  if queries.shape != success.shape or queries.ndim != 1:
    raise ValueError("queries and success must both be [N]")
  if np.any(grid < 0):
    raise ValueError("query counts must be non-negative")
  fooled = success[None, :] & (queries[None, :] <= grid[:, None])
  return (~fooled).mean(axis=1) if success.size else np.full(grid.shape, np.nan)


def area_under_curve(x, y) -> float:
  """Trapezoidal area under y(x), normalised by the x range (a mean accuracy)."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  if x.shape != y.shape or x.ndim != 1 or x.size < 2 or np.any(np.diff(x) <= 0):
    raise ValueError("x must be strictly increasing with the same length as y (>= 2 points)")
  return float(np.sum(np.diff(x) * 0.5 * (y[1:] + y[:-1])) / (x[-1] - x[0]))


def distortion_summary(distortions: dict, success) -> dict:
  """Adversarial_Survey's aggregate: success rate, mean and std of each norm over successful
  examples, and the median (the survey's conditioning on success hides the failures)."""
  success = np.asarray(success, bool)
  out = {"count": int(success.size), "success_rate": float(success.mean()) if success.size else
         float("nan")}
  for name, values in distortions.items():
    values = np.asarray(values, np.float64)[success]
    out[f"{name}_mean"] = float(values.mean()) if values.size else float("nan")
    out[f"{name}_std"] = float(values.std()) if values.size else float("nan")
    out[f"{name}_median"] = float(np.median(values)) if values.size else float("nan")
  return out
