"""The adversarial suite's attacks: the catalogue (``ATTACKS``), their settings (``Config``, the
demo's short ``DEMO_CONFIG``) and one attack on one padded batch (``attack_batch``).

``suites.adversarial`` runs them over the attacked examples and ``suites.adversarial_summary``
turns their records into the figures; this module knows nothing of examples, files or processes.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np

from imagenet_cp import attacks
from imagenet_cp.suites.common import Classifier

# name -> (attack function, norm, kind).  Kinds: "search" (minimal distortion by the budget
# search; accuracy vs budget and vs iterations), "optimised" (the attack's own distortion;
# accuracy vs budget), "iterations" (a fixed budget; accuracy vs iterations), "queries" (a fixed
# budget; accuracy vs queries), "decision" (labels only, L2: distortion and accuracy at the L2
# budget vs queries).  The transfer attacks (mi/di/ti/si_ni/vmi_fgsm) are "search" attacks too,
# so they run as suite entries and as ``transfer_attacks`` of the matrix.
ATTACKS = {
    "pgd_linf": ("pgd", "linf", "search"), "pgd_l2": ("pgd", "l2", "search"),
    "bim_linf": ("bim", "linf", "search"), "bim_l2": ("bim", "l2", "search"),
    "mim_linf": ("mim", "linf", "search"), "fgsm_linf": ("fgsm", "linf", "search"),
    "fgsm_l2": ("fgsm", "l2", "search"),
    "cw_l2": ("cw_l2", "l2", "optimised"), "ead_l1": ("ead", "l1", "optimised"),
    "deepfool_l2": ("deepfool", "l2", "optimised"),
    "deepfool_linf": ("deepfool", "linf", "optimised"),
    "apgd_ce_linf": ("apgd", "linf", "iterations"), "apgd_ce_l2": ("apgd", "l2", "iterations"),
    "apgd_t_linf": ("apgd_t", "linf", "iterations"), "apgd_t_l2": ("apgd_t", "l2", "iterations"),
    "nes_linf": ("nes", "linf", "queries"), "nes_l2": ("nes", "l2", "queries"),
    "spsa_linf": ("spsa", "linf", "queries"), "nattack_linf": ("nattack", "linf", "queries"),
    "mi_fgsm_linf": ("mi_fgsm", "linf", "search"), "di_fgsm_linf": ("di_fgsm", "linf", "search"),
    "ti_fgsm_linf": ("ti_fgsm", "linf", "search"),
    "si_ni_fgsm_linf": ("si_ni_fgsm", "linf", "search"),
    "vmi_fgsm_linf": ("vmi_fgsm", "linf", "search"),
    "boundary_l2": ("boundary", "l2", "decision"),
    "evolutionary_l2": ("evolutionary", "l2", "decision"),
}
TRANSFER_METHODS = ("mi_fgsm", "di_fgsm", "ti_fgsm", "si_ni_fgsm", "vmi_fgsm")
DEFAULT_ATTACKS = ("pgd_linf", "cw_l2", "deepfool_l2", "apgd_ce_linf", "apgd_t_linf", "nes_linf",
                   "spsa_linf")
DEFAULT_BUDGETS = {"linf": (0, 0.5, 1, 2, 4, 8, 16), "l2": (0, 32, 64, 128, 256, 512, 1024),
                   "l1": (0, 1000, 2000, 4000, 8000, 16000, 32000)}
TRANSFER_TARGETS = ("untargeted", "random", "least_likely", "second_most_likely")


@dataclasses.dataclass(frozen=True)
class Config:
  """Attack settings (budgets /255).  ``steps``: iterations of the iterative attacks;
  ``iterations_eps``: the fixed budget (per norm) of the accuracy-vs-iterations curve;
  search: ``initial_eps`` doubled ``doubling_steps`` times, then ``bisection_steps`` bisections;
  ``optimiser_steps`` / ``optimiser_search_steps``: C&W's and EAD's Adam/FISTA iterations and
  binary search over c; ``deepfool_steps`` and ``deepfool_candidates`` (classes considered, one
  backward pass each per iteration); transfer: ``transfer_attack`` at ``transfer_eps``
  with ``transfer_target`` ('untargeted', or a target mode of ``attacks.select_targets``).
  The fixed-budget attacks (APGD, NES, SPSA) run at ``iterations_eps``: APGD for
  ``apgd_iterations`` (APGD-T: per target class, ``apgd_target_classes`` classes), NES and SPSA
  for ``blackbox_steps`` iterations of ``nes_samples`` / ``spsa_samples`` antithetic pairs
  (``attacks.queries_at``: 1 + t (2 samples + 1) queries after t iterations), NAttack for as
  many of ``nattack_population`` samples (``attacks.nattack_queries_at``: 1 + t (population + 1));
  ``query_grid``: the query counts of the accuracy-vs-queries curve (empty: the count after
  each iteration; decision attacks: 10 even steps up to their budget).  ``transfer_attacks``:
  more rows of the transfer matrix (each a budgeted attack: PGD, or the transfer attacks
  DI/TI/SI-NI/VMI/MI-FGSM) after ``transfer_attack``'s.  Decision-based attacks (Boundary,
  Evolutionary) get ``decision_queries`` queries per example; their accuracy is at the fixed
  L2 budget of ``iterations_eps``."""
  steps: int = 20
  iterations_eps: tuple = (("linf", 4.0), ("l2", 255.0))
  initial_eps: float = 0.25
  doubling_steps: int = 10
  bisection_steps: int = 8
  optimiser_steps: int = 100
  optimiser_search_steps: int = 5
  deepfool_steps: int = 50
  deepfool_candidates: int = 10
  transfer_attack: str = "pgd_linf"
  transfer_eps: float = 4.0
  transfer_target: str = "untargeted"
  apgd_iterations: int = 100
  apgd_target_classes: int = 9
  blackbox_steps: int = 100
  nes_samples: int = 50
  spsa_samples: int = 32
  nattack_population: int = 100   # ARES's sample_size
  query_grid: tuple = ()
  transfer_attacks: tuple = ()
  decision_queries: int = 1000

  def check(self) -> None:
    for name in ("steps", "doubling_steps", "optimiser_steps", "optimiser_search_steps",
                 "deepfool_steps", "deepfool_candidates", "apgd_iterations",
                 "apgd_target_classes", "blackbox_steps", "nes_samples", "spsa_samples",
                 "nattack_population", "decision_queries"):
      if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
        raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
    if self.bisection_steps < 0 or self.initial_eps <= 0 or self.transfer_eps < 0:
      raise ValueError("bisection_steps and transfer_eps must be >= 0, initial_eps > 0")
    for name in (self.transfer_attack,) + tuple(self.transfer_attacks):
      if name not in ATTACKS or ATTACKS[name][2] != "search":
        raise ValueError(f"transfer_attack(s) must be budgeted attacks "
                         f"{[a for a, s in ATTACKS.items() if s[2] == 'search']}, got {name!r}")
    grid = list(self.query_grid)
    if any(int(q) != q or q < 0 for q in grid) or grid != sorted(set(grid)):
      raise ValueError(f"query_grid must be increasing non-negative integers, got {grid}")
    if self.transfer_target not in TRANSFER_TARGETS:
      raise ValueError(f"transfer_target must be one of {TRANSFER_TARGETS}, "
                       f"got {self.transfer_target!r}")

  def matrix_attacks(self) -> list[str]:
    """The attacks of the transfer matrix's rows, ``transfer_attack`` first."""
    return [self.transfer_attack] + [a for a in self.transfer_attacks
                                     if a != self.transfer_attack]

  def decision_grid(self) -> list[int]:
    """Query counts of the decision attacks' curves."""
    if self.query_grid:
      return [int(q) for q in self.query_grid]
    return sorted({int(q) for q in np.linspace(0, self.decision_queries, 11).round()})

  def iterations_budget(self, norm: str) -> float:
    return dict(self.iterations_eps).get(norm, 4.0)

  def samples(self, method: str) -> int:
    """Antithetic pairs per gradient estimate of a black-box attack (NAttack: its population)."""
    if method == "nattack":
      return self.nattack_population
    return self.nes_samples if method == "nes" else self.spsa_samples

  def queries_at(self, method: str, iteration):
    """Queries a score-based attack has cost an example after ``iteration`` iterations."""
    if method == "nattack":
      return attacks.nattack_queries_at(iteration, self.nattack_population)
    return attacks.queries_at(iteration, self.samples(method))


# The demo's short run (4 photos, efficientnet_lite0, 2 CPU cores): ~8 search rounds of 3
# steps, C&W with 2 x 8 Adam steps, DeepFool 3 steps over 3 candidate classes; the demo's
# attacks are DEMO_ATTACKS.
DEMO_CONFIG = Config(steps=3, initial_eps=0.25, doubling_steps=6, bisection_steps=2,
                     optimiser_steps=8, optimiser_search_steps=2, deepfool_steps=3,
                     deepfool_candidates=3,
                     iterations_eps=(("linf", 1.0), ("l2", 64.0)), transfer_eps=1.0,
                     apgd_iterations=5, apgd_target_classes=2, blackbox_steps=3, nes_samples=4,
                     spsa_samples=4, nattack_population=4)
# APGD-T and SPSA would add about 25 s more to the demo (measured: docs/attacks.md).
DEMO_ATTACKS = ("pgd_linf", "cw_l2", "deepfool_l2", "apgd_ce_linf", "nes_linf")
DEMO_BUDGETS = {"linf": (0, 0.25, 0.5, 1, 2, 4), "l2": (0, 16, 32, 64, 128, 256),
                "l1": (0, 500, 1000, 2000, 4000, 8000)}


def check_attacks(names: Sequence[str]) -> list[str]:
  unknown = [n for n in names if n not in ATTACKS]
  if unknown or not names:
    raise ValueError(f"unknown or no attack(s) {list(unknown)}; expected some of "
                     f"{', '.join(ATTACKS)}")
  return list(names)


def check_budgets(budgets: dict | None) -> dict:
  """{norm: budgets /255} for every norm, ``DEFAULT_BUDGETS`` where missing; ValueError unless
  they are non-negative and increasing."""
  budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
  for norm, values in budgets.items():
    if any(b < 0 for b in values) or list(values) != sorted(values):
      raise ValueError(f"{norm} budgets must be non-negative and increasing, got {values}")
  return budgets


# ----------------------------------------------------------------------------------------------
# One attack, one batch.


@dataclasses.dataclass(frozen=True)
class BudgetedAttack:
  """attack(variables=(model variables, keys), images, labels, eps=[N], targets) for
  ``attacks.search_budget``: hashable (a static argument) with the keys kept out of it."""
  method: str
  apply_fn: Callable
  norm: str
  steps: int

  def __call__(self, variables, images, labels, *, eps, targets=None):
    model_variables, keys = variables
    fn = getattr(attacks, self.method)
    if self.method in TRANSFER_METHODS:
      return fn(self.apply_fn, model_variables, images, labels, eps=eps, steps=self.steps,
                targets=targets, key=keys)
    if self.method == "fgsm":
      return fn(self.apply_fn, model_variables, images, labels, eps=eps, targets=targets,
                norm=self.norm)
    extra = {"key": keys} if self.method == "pgd" else {}
    return fn(self.apply_fn, model_variables, images, labels, eps=eps, steps=self.steps,
              targets=targets, norm=self.norm, **extra)


def fixed_budget_attack(method: str, norm: str, model: Classifier, images, labels, keys,
                        config: Config):
  """APGD-CE / APGD-T / NES / SPSA / NAttack at the fixed budget
  ``config.iterations_budget(norm)``."""
  eps = config.iterations_budget(norm)
  common = dict(eps=eps, key=keys)
  if method == "apgd":
    return attacks.apgd(model.apply_fn, model.variables, images, labels,
                        n_iter=config.apgd_iterations, norm=norm, loss="ce", **common)
  if method == "apgd_t":
    return attacks.apgd_t(model.apply_fn, model.variables, images, labels,
                          n_iter=config.apgd_iterations, norm=norm,
                          n_target_classes=config.apgd_target_classes, **common)
  if method == "nes":
    return attacks.nes(model.apply_fn, model.variables, images, labels, norm=norm,
                       steps=config.blackbox_steps, samples=config.nes_samples, **common)
  if method == "nattack":
    # The budget of blackbox_steps whole iterations, so the query grid is the other attacks'.
    return attacks.nattack(model.apply_fn, model.variables, images, labels, norm=norm,
                           population=config.nattack_population,
                           max_queries=int(config.queries_at(method, config.blackbox_steps)),
                           **common)
  return attacks.spsa(model.apply_fn, model.variables, images, labels,
                      steps=config.blackbox_steps, samples=config.spsa_samples, **common)


def attack_batch(name: str, model: Classifier, images, labels, keys, config: Config) -> dict:
  """Records of one padded batch: success, norms, and per kind the minimal distortion, the
  iterations curve (bool [T + 1, N]) or the query at which each example was fooled."""
  method, norm, kind = ATTACKS[name]
  images, labels = model.shard(images), model.shard(labels)
  extra = {}
  if kind == "decision":
    fn = getattr(attacks, method)
    result = fn(model.apply_fn, model.variables, images, labels, key=model.shard(keys),
                max_queries=config.decision_queries)
    success, adversarial, minimal = result.success, result.adversarial, None
    extra = {"distances": np.asarray(result.distances), "query_trace": np.asarray(result.queries)}
    curve = np.zeros((0, images.shape[0]), bool)
  elif kind in ("iterations", "queries"):
    result = fixed_budget_attack(method, norm, model, images, labels, model.shard(keys), config)
    success, adversarial = result.success, result.adversarial
    if kind == "queries":
      extra["queries"] = np.asarray(result.queries, np.int32)
      curve = np.zeros((0, images.shape[0]), bool)
    else:
      curve = np.asarray(result.curve)
    minimal = None   # not searched: the attack runs at one fixed budget
  elif kind == "search":
    attack = BudgetedAttack(method, model.apply_fn, norm, config.steps)
    found = attacks.search_budget(attack, (model.variables, model.shard(keys)), images, labels,
                                  initial_eps=config.initial_eps,
                                  doubling_steps=config.doubling_steps,
                                  bisection_steps=config.bisection_steps)
    minimal, success, adversarial = found.minimal, found.success, found.adversarial
    n = images.shape[0]
    fixed = attack((model.variables, model.shard(keys)), images, labels,
                   eps=jnp.full((n,), config.iterations_budget(norm), jnp.float32))
    curve = np.asarray(fixed.curve)
  else:
    if method == "cw_l2":
      result = attacks.cw_l2(model.apply_fn, model.variables, images, labels,
                             steps=config.optimiser_steps,
                             binary_search_steps=config.optimiser_search_steps)
    elif method == "ead":
      result = attacks.ead(model.apply_fn, model.variables, images, labels,
                           steps=config.optimiser_steps,
                           binary_search_steps=config.optimiser_search_steps)
    else:
      result = attacks.deepfool(model.apply_fn, model.variables, images, labels, norm=norm,
                                steps=config.deepfool_steps,
                                candidates=max(config.deepfool_candidates, 2))
    minimal = attacks.optimised_distortion(result, images, norm)
    success, adversarial = result.success, result.adversarial
    curve = np.zeros((0, images.shape[0]), bool)
  norms = attacks.perturbation_norms(adversarial, images)
  out = {"success": np.asarray(success), "curve": curve, **extra}
  if minimal is not None:
    out["minimal"] = np.asarray(minimal)
  out.update({k: np.asarray(v) for k, v in norms.items()})
  return out
