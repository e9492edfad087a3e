"""The adversarial suite's figures from its per-example records (``results.json["adversarial"]``):
per attack the accuracy-vs-budget, -iterations and -queries curves with their normalised areas
(ARES-Bench) and the distortion statistics of the successes (Adversarial_Survey); the transfer
matrix.  Accuracies are over the attacked (clean-correct) examples.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from imagenet_cp import attacks
from imagenet_cp.suites.adversarial_attacks import ATTACKS, Config


def attack_summary(name: str, records: dict, budgets: Sequence[float],
                   config: Config = Config()) -> dict:
  """Curves, areas and distortion statistics of one attack's records."""
  method, norm, kind = ATTACKS[name]
  norms = {k: records[k] for k in ("l0", "l1", "l2", "linf")}
  out = {"norm": norm, "kind": kind, "examples": int(len(records["success"])),
         "distortion": _finite_or_none(attacks.distortion_summary(norms, records["success"]))}
  if kind in ("search", "optimised"):
    out.update(_budget_summary(kind, records["minimal"], budgets))
  else:
    out["eps"] = config.iterations_budget(norm)
  curve = records.get("curve")
  if curve is not None and curve.size:
    out.update(_iterations_summary(method, curve, config))
  if kind == "queries":
    out.update(_queries_summary(method, records, config))
  if kind == "decision":
    out.update(_decision_summary(records, config))
  return out


def _budget_summary(kind: str, minimal, budgets) -> dict:
  budgets = [float(b) for b in budgets]
  accuracy = attacks.accuracy_vs_budget(minimal, budgets) if len(minimal) \
      else np.full(len(budgets), np.nan)
  return {"minimal_distortion": kind, "budgets": budgets, "accuracy_vs_budget": _floats(accuracy),
          "auc": attacks.area_under_curve(budgets, accuracy) if len(budgets) > 1 else None,
          "minimal": [None if not np.isfinite(v) else float(v) for v in minimal]}


def _iterations_summary(method: str, curve, config: Config) -> dict:
  """Accuracy after 0, 1, ... iterations, its normalised area; APGD: also at its checkpoints
  (APGD-T: the checkpoints of each target run, its iterations counted one run after another)."""
  accuracy = attacks.accuracy_vs_iterations(curve)
  x = np.arange(len(accuracy))
  out = {"iterations": x.tolist(), "accuracy_vs_iterations": accuracy.tolist(),
         "auc_iterations": attacks.area_under_curve(x, accuracy) if len(x) > 1 else None}
  if method in ("apgd", "apgd_t"):
    points = apgd_points(len(accuracy) - 1, config.apgd_iterations)
    out["checkpoints"] = points
    out["accuracy_at_checkpoints"] = accuracy[points].tolist()
  return out


def apgd_points(total: int, n_iter: int) -> list[int]:
  """APGD's checkpoints (and the last iteration) over ``total`` iterations made of runs of
  ``n_iter`` (one run for APGD-CE, one per target class for APGD-T)."""
  points = {total}
  for run in range(total // n_iter):
    points |= {run * n_iter + c for c in attacks.apgd_checkpoints(n_iter)}
  return sorted(points)


def _queries_summary(method: str, records: dict, config: Config) -> dict:
  """Accuracy after q queries for q in the grid (exact: each example's fooling query is
  recorded), its normalised area, and the queries the successes took."""
  samples = config.samples(method)
  budget = int(config.queries_at(method, config.blackbox_steps))
  grid = np.asarray(config.query_grid or
                    config.queries_at(method, np.arange(config.blackbox_steps + 1)), np.int64)
  success = np.asarray(records["success"], bool)
  accuracy = attacks.accuracy_after_queries(records["queries"], success, grid)
  spent = np.asarray(records["queries"], np.float64)[success]
  return {"samples": samples, "steps": config.blackbox_steps, "query_budget": budget,
          "queries": grid.tolist(), "accuracy_vs_queries": _floats(accuracy),
          "auc_queries": attacks.area_under_curve(grid, accuracy)
                         if len(grid) > 1 and success.size else None,
          "first_success_query": [int(q) if ok else None
                                  for q, ok in zip(records["queries"], success)],
          "queries_of_successes": _finite_or_none({
              "mean": float(spent.mean()) if spent.size else float("nan"),
              "median": float(np.median(spent)) if spent.size else float("nan")})}


def _decision_summary(records: dict, config: Config) -> dict:
  """Decision-based attacks: median L2 distortion and accuracy at the L2 budget after q queries
  (each example's best distortion within q, exact from its per-step traces), the area of the
  accuracy curve, and the queries the examples needed to get within the budget."""
  eps = config.iterations_budget("l2")
  grid = np.asarray(config.decision_grid(), np.int64)
  distances, trace = records["distances"], records["query_trace"]
  if distances.shape[1]:
    within = attacks.distortion_after_queries(distances, trace, grid)
    accuracy = attacks.accuracy_at_distortion(within, eps)
    median = np.median(within, axis=1)
    inside = np.where(distances <= eps, trace, np.iinfo(np.int64).max).min(axis=0)
    reached = inside[inside < np.iinfo(np.int64).max].astype(np.float64)
  else:
    accuracy = median = np.full(len(grid), np.nan)
    reached = np.zeros(0)
  return {"query_budget": config.decision_queries, "queries": grid.tolist(),
          "accuracy_vs_queries": _floats(accuracy), "median_l2_vs_queries": _floats(median),
          "auc_queries": attacks.area_under_curve(grid, accuracy)
                         if len(grid) > 1 and distances.shape[1] else None,
          "queries_of_successes": _finite_or_none({
              "mean": float(reached.mean()) if reached.size else float("nan"),
              "median": float(np.median(reached)) if reached.size else float("nan")})}


def _floats(values) -> list:
  """A curve as JSON numbers (NaN, i.e. no examples: None)."""
  return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64)]


def _finite_or_none(summary: dict) -> dict:
  """NaN (no successful example) -> None, so results.json stays strict JSON."""
  return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in summary.items()}


def _matrix(names: Sequence[str], records: dict[str, dict]) -> tuple[list, list]:
  """matrix[i][j]: fraction of model i's adversarials that fool model j; white-box rates."""
  matrix = [[float(records[s]["fooled"][j].mean()) if records[s]["fooled"].shape[1] else None
             for j in range(len(names))] for s in names]
  whitebox = [float(records[s]["whitebox"].mean()) if records[s]["whitebox"].size else None
              for s in names]
  return matrix, whitebox


def transfer_summary(names: Sequence[str], by_attack: dict[str, dict[str, dict]],
                     config: Config) -> dict:
  """by_attack: {attack: {surrogate: records}}.  ``matrix`` / ``whitebox_success``: those of
  ``config.transfer_attack``; ``by_attack``: every attack's (rows surrogate x attack)."""
  records = by_attack[config.transfer_attack]
  matrix, whitebox = _matrix(names, records)
  every = {}
  for attack, r in by_attack.items():
    m, w = _matrix(names, r)
    every[attack] = {"matrix": m, "whitebox_success": w}
  any_records = records[names[0]]
  return {"models": list(names), "matrix": matrix, "whitebox_success": whitebox,
          "by_attack": every, "attack": config.transfer_attack, "eps": config.transfer_eps,
          "target": config.transfer_target,
          "criterion": "top-1 != label" if config.transfer_target == "untargeted" else
                       "target in top-5",
          "examples": int(any_records["file_names"].size),
          "example_ids": [str(f) for f in any_records["file_names"]]}
