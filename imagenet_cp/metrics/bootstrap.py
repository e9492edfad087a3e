"""95% bootstrap confidence intervals of the headline figures, resampling images.

One resample draws N file names with replacement; the SAME draw weights the clean images, every
(corruption, severity) and every perturbation's videos (a video is generated from one source
image), so correlations between configurations are kept.  The baseline (AlexNet) is held fixed,
as the paper's published values have no sampling error of ours.  Percentile intervals.
"""
from __future__ import annotations

import numpy as np

from imagenet_cp.corruptions import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from imagenet_cp.perturbations import TEST_PERTURBATIONS
from imagenet_cp.metrics.baselines import Baseline

SEVERITIES = (1, 2, 3, 4, 5)
_BLOCK = 100


def resample_weights(n: int, replicates: int, seed: int = 0) -> np.ndarray:
  """float64 [replicates, n]: how often each image is drawn in each resample (rows sum to n)."""
  rng = np.random.default_rng(seed)
  return rng.multinomial(n, np.full(n, 1.0 / n), size=replicates).astype(np.float64)


def _replicate_means(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
  """Weighted means per replicate: [R, N] x [N] -> [R]."""
  return weights @ values / weights.shape[1]


def _statistics(weights, records, labels, baseline: Baseline) -> dict[str, np.ndarray]:
  """Every figure's value in each resample, [R] arrays keyed by figure name."""
  out = {}
  by_kind = {}
  for task, rec in records.items():
    by_kind.setdefault(task.kind, {})[(task.name, task.level)] = rec
  clean = by_kind.get("clean", {}).get(("clean", 0))
  clean_error = None
  if clean is not None:
    clean_error = _replicate_means(weights, (clean["predictions"] != labels).astype(np.float64))
    out["clean_error"] = clean_error
  ces, rces = {}, {}
  corr = by_kind.get("corruption", {})
  for name in {n for n, _ in corr}:
    if not all((name, s) in corr for s in SEVERITIES):
      continue
    try:
      base = np.asarray(baseline.corruption_errors(name))
    except ValueError:
      continue
    errs = np.stack([_replicate_means(weights, (corr[(name, s)]["predictions"] != labels)
                                      .astype(np.float64)) for s in SEVERITIES])   # [5, R]
    ces[name] = 100 * errs.sum(0) / base.sum()
    out[f"ce/{name}"] = ces[name]
    if clean_error is not None and baseline.clean_error is not None:
      rces[name] = 100 * (errs - clean_error).sum(0) / (base - baseline.clean_error).sum()
  if all(n in ces for n in BENCHMARK_CORRUPTIONS):
    out["mce"] = np.mean([ces[n] for n in BENCHMARK_CORRUPTIONS], axis=0)
  if all(n in ces for n in EXTRA_CORRUPTIONS):
    out["extra_mce"] = np.mean([ces[n] for n in EXTRA_CORRUPTIONS], axis=0)
  if all(n in rces for n in BENCHMARK_CORRUPTIONS):
    out["relative_mce"] = np.mean([rces[n] for n in BENCHMARK_CORRUPTIONS], axis=0)
  frs, t5ds = {}, {}
  for (name, difficulty), rec in by_kind.get("perturbation", {}).items():
    pairs = float(rec["pairs_per_video"])
    fp = _replicate_means(weights, rec["flips"].astype(np.float64)) / pairs
    ut5d = _replicate_means(weights, rec["distance"].astype(np.float64)) / pairs
    out[f"fp/{name}/{difficulty}"], out[f"ut5d/{name}/{difficulty}"] = fp, ut5d
    try:
      frs[(name, difficulty)] = 100 * fp / baseline.perturbation_value("fp", name, difficulty)
      t5ds[(name, difficulty)] = 100 * ut5d / baseline.perturbation_value("ut5d", name, difficulty)
    except ValueError:
      continue
  for difficulty in sorted({d for _, d in frs}):
    if all((n, difficulty) in frs for n in TEST_PERTURBATIONS):
      out[f"mfr/{difficulty}"] = np.mean([frs[(n, difficulty)] for n in TEST_PERTURBATIONS], axis=0)
      out[f"mt5d/{difficulty}"] = np.mean([t5ds[(n, difficulty)] for n in TEST_PERTURBATIONS], axis=0)
  return out


def intervals(records: dict, labels: np.ndarray, baseline: Baseline, replicates: int = 1000,
              seed: int = 0, level: float = 0.95) -> dict:
  """``{figure: {"low", "high", "replicates", "level"}}`` for clean error, mCE, relative mCE,
  each CE, each FP/uT5D, mFR and mT5D (those the records and baseline allow)."""
  n = labels.shape[0]
  if n == 0 or replicates <= 0:
    return {}
  chunks: dict[str, list[np.ndarray]] = {}
  for start in range(0, replicates, _BLOCK):
    weights = resample_weights(n, min(_BLOCK, replicates - start), seed + start)
    for key, values in _statistics(weights, records, labels, baseline).items():
      chunks.setdefault(key, []).append(values)
  tail = 100 * (1 - level) / 2
  return {key: {"low": float(np.percentile(np.concatenate(v), tail)),
                "high": float(np.percentile(np.concatenate(v), 100 - tail)),
                "replicates": replicates, "level": level}
          for key, v in sorted(chunks.items())}
