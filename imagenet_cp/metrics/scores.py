"""The paper's normalised scores, and the counts -> figures aggregation.

All scores are percentages with the baseline (AlexNet) at 100, as in the paper's tables;
errors, flip probabilities and uT5D stay raw (fractions; uT5D in [0, 18]).

* CE_c = sum_s E_s,c / sum_s E_s,c(AlexNet)                     (section 4.1)
* Relative CE_c = sum_s (E_s,c - E_clean) / sum_s (E_s,c(AlexNet) - E_clean(AlexNet)).
  The clean error is subtracted at every severity.  The formula printed in section 4.1
  subtracts it once, which does not reproduce the paper's own Table 2 (ResNet-50 Gaussian
  noise: CE 80 -> 104 in Table 2; subtracting once gives 83).
* mCE and relative mCE: means over the 15 benchmark corruptions; the 4 extra corruptions are
  reported separately and never mixed in.
* Unnormalised (CIFAR-10/100-C and -P, hendrycks/robustness#28: "we don't normalize"): the mean
  error over the 15 benchmark corruptions x 5 severities and 1 - it (what AugMix and RobustBench
  report), and the mean raw flip probability over the 10 test perturbations.
* FR_p = FP_p / FP_p(AlexNet), T5D_p = uT5D_p / uT5D_p(AlexNet) (section 4.2); mFR and mT5D
  are means over the 10 test perturbations.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from imagenet_cp.metrics.baselines import (
    ALEXNET, BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS, PERTURBATIONS, SEVERITIES,
    TEST_PERTURBATIONS, Baseline, check_corruption, check_difficulty, check_fraction,
    check_perturbation, check_severity)
from imagenet_cp.metrics.counts import ErrorCounts, SequenceCounts
from imagenet_cp.metrics.ranking import MAX_TOP5_DISTANCE



def _severity_errors(errors, what: str) -> np.ndarray:
  """Five per-severity errors (a sequence in severity order, or a severity -> error mapping)."""
  if isinstance(errors, Mapping):
    for severity in errors:
      check_severity(severity)
    missing = [s for s in SEVERITIES if s not in errors]
    if missing:
      raise ValueError(f"{what}: no error for severities {missing}")
    errors = [errors[s] for s in SEVERITIES]
  errors = list(errors)
  if len(errors) != len(SEVERITIES):
    raise ValueError(f"{what}: need one error per severity 1..5, got {len(errors)}")
  return np.asarray([check_fraction(e, f"{what} error") for e in errors], np.float64)


def ce(errors, corruption: str, *, baseline: Baseline = ALEXNET) -> float:
  """Corruption Error CE_c = 100 * sum_s E_s,c / sum_s E_s,c(baseline), in percent.

  Args:
    errors: top-1 errors (fractions) at severities 1..5: a sequence of 5 or a mapping.
    corruption: one of the 19 ImageNet-C names.
    baseline: the normalising network (default AlexNet, from the README history).
  """
  check_corruption(corruption)
  mine = _severity_errors(errors, corruption)
  theirs = np.asarray(baseline.corruption_errors(corruption), np.float64)
  return float(100.0 * mine.sum() / theirs.sum())


def relative_ce(errors, clean_error: float, corruption: str, *,
                baseline: Baseline = ALEXNET) -> float:
  """Relative CE_c = 100 * sum_s (E_s,c - E_clean) / sum_s (E_s,c(base) - E_clean(base)).

  The clean error is subtracted at every severity (this reproduces Table 2; the formula
  printed in section 4.1 subtracts it once and does not).
  """
  check_corruption(corruption)
  mine = _severity_errors(errors, corruption)
  clean = check_fraction(clean_error, "clean error")
  theirs = np.asarray(baseline.corruption_errors(corruption), np.float64)
  denominator = np.sum(theirs - baseline.require_clean_error())
  if denominator <= 0:
    raise ValueError(
        f"baseline {baseline.name!r} is no worse on {corruption} than on clean images; "
        "relative CE is undefined")
  return float(100.0 * np.sum(mine - clean) / denominator)


def _mean_over(values: Mapping[str, float], names: Sequence[str], known: Sequence[str],
               what: str) -> float:
  unknown = [n for n in values if n not in known]
  if unknown:
    raise ValueError(f"unknown names for {what}: {unknown}; expected from {', '.join(known)}")
  missing = [n for n in names if n not in values]
  if missing:
    raise ValueError(f"{what} needs all of {', '.join(names)}; missing {missing}")
  return float(np.mean([float(values[n]) for n in names]))


def mce(ces: Mapping[str, float]) -> float:
  """mCE: the mean of the 15 benchmark corruptions' CE (extra corruptions are ignored)."""
  return _mean_over(ces, BENCHMARK_CORRUPTIONS, BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS, "mCE")


def relative_mce(relative_ces: Mapping[str, float]) -> float:
  """Relative mCE: the mean of the 15 benchmark corruptions' relative CE."""
  return _mean_over(relative_ces, BENCHMARK_CORRUPTIONS,
                    BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS, "relative mCE")


def fr(fp: float, perturbation: str, *, difficulty: int = 1,
       baseline: Baseline = ALEXNET) -> float:
  """Flip Rate FR_p = 100 * FP_p / FP_p(baseline), in percent.

  With the default AlexNet baseline only difficulty 1 exists (appendix E, measured on the
  released lossy H.264 videos: ``ALEXNET.note``).
  """
  check_perturbation(perturbation)
  difficulty = check_difficulty(difficulty)
  fp = check_fraction(fp, f"flip probability of {perturbation}")
  return float(100.0 * fp / baseline.perturbation_value("fp", perturbation, difficulty))


def t5d(ut5d: float, perturbation: str, *, difficulty: int = 1,
        baseline: Baseline = ALEXNET) -> float:
  """Top-5 Distance T5D_p = 100 * uT5D_p / uT5D_p(baseline), in percent."""
  check_perturbation(perturbation)
  difficulty = check_difficulty(difficulty)
  ut5d = check_fraction(ut5d, f"uT5D of {perturbation}", MAX_TOP5_DISTANCE)
  return float(100.0 * ut5d / baseline.perturbation_value("ut5d", perturbation, difficulty))


def mfr(frs: Mapping[str, float]) -> float:
  """mFR: the mean Flip Rate over the 10 test perturbations (validation ones ignored)."""
  return _mean_over(frs, TEST_PERTURBATIONS, PERTURBATIONS, "mFR")


def mt5d(t5ds: Mapping[str, float]) -> float:
  """mT5D: the mean T5D over the 10 test perturbations (validation ones ignored)."""
  return _mean_over(t5ds, TEST_PERTURBATIONS, PERTURBATIONS, "mT5D")


# --------------------------------------------------------------------------------------------
# Counts -> figures.


def _try(fn, *args, **kwargs):
  """(value, None) or (None, reason) for figures that a baseline may lack."""
  try:
    return fn(*args, **kwargs), None
  except ValueError as error:
    return None, str(error)


def _corruption_summary(name, cells, clean_error, baseline):
  severities = {str(s): {"error": c.error, "examples": c.examples}
                for s, c in sorted(cells.items())}
  out = {"benchmark": name in BENCHMARK_CORRUPTIONS, "severities": severities,
         "examples": sum(c.examples for c in cells.values())}
  if set(cells) != set(SEVERITIES):
    out["missing_severities"] = [s for s in SEVERITIES if s not in cells]
    return out
  errors = [cells[s].error for s in SEVERITIES]
  out["unnormalized_ce"] = float(np.mean(errors))  # what ImageNet-C/test.py prints
  out["ce"], why = _try(ce, errors, name, baseline=baseline)
  if why:
    out["ce_unavailable"] = why
  if clean_error is not None:
    out["relative_ce"], why = _try(relative_ce, errors, clean_error, name, baseline=baseline)
    if why:
      out["relative_ce_unavailable"] = why
  return out


def _perturbation_summary(name, difficulty, counts, baseline):
  out = {"flip_probability": counts.flip_probability, "videos": counts.videos,
         "frames": counts.frames, "pairs": counts.pairs}
  out["fr"], why = _try(fr, out["flip_probability"], name, difficulty=difficulty,
                        baseline=baseline)
  if why:
    out["fr_unavailable"] = why
  if counts.distance is not None:
    out["ut5d"] = counts.mean_top5_distance
    out["t5d"], why = _try(t5d, out["ut5d"], name, difficulty=difficulty, baseline=baseline)
    if why:
      out["t5d_unavailable"] = why
  if baseline.note and (out["fr"] is not None or out.get("t5d") is not None):
    out["baseline_note"] = baseline.note
  return out


def _mean_if_complete(per_name: Mapping[str, dict], key: str, names, mean_fn):
  values = {n: v[key] for n, v in per_name.items() if v.get(key) is not None}
  if not all(n in values for n in names):
    return None
  return mean_fn({n: values[n] for n in names})


def summarize(errors: Mapping[tuple[str, int], ErrorCounts] | None = None,
              clean: ErrorCounts | None = None,
              sequences: Mapping[tuple[str, int], SequenceCounts] | None = None,
              *, baseline: Baseline = ALEXNET) -> dict:
  """Turns accumulated counts into the paper's figures (a JSON-ready dict).

  Args:
    errors: ``ErrorCounts`` per (corruption, severity).
    clean: ``ErrorCounts`` on the clean images (needed for relative CE).
    sequences: ``SequenceCounts`` per (perturbation, difficulty).
    baseline: the normalising network (default: AlexNet from published numbers).

  Returns:
    ``{"baseline", "clean", "corruptions", "mce", "relative_mce", "extra_mce",
    "perturbations", "mfr", "mt5d"}``: errors and FP as fractions, uT5D raw, CE / relative
    CE / FR / T5D and their means in percent (baseline = 100), examples/videos/pairs behind
    every figure.  A mean is None unless every benchmark corruption (or test perturbation)
    is present; a figure the baseline cannot normalise is None with a ``*_unavailable`` reason.
  """
  errors = dict(errors or {})
  sequences = dict(sequences or {})
  out = {"baseline": {"name": baseline.name, "source": baseline.source, "note": baseline.note}}
  clean_error = None
  if clean is not None:
    clean = clean.host()
    clean_error = clean.error
    out["clean"] = {"error": clean_error, "examples": clean.examples}

  by_corruption: dict[str, dict[int, ErrorCounts]] = {}
  for (name, severity), counts in errors.items():
    check_corruption(name)
    by_corruption.setdefault(name, {})[check_severity(severity)] = counts.host()
  corruptions = {name: _corruption_summary(name, by_corruption[name], clean_error, baseline)
                 for name in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS if name in by_corruption}
  out["corruptions"] = corruptions
  out["mce"] = _mean_if_complete(corruptions, "ce", BENCHMARK_CORRUPTIONS, mce)
  out["relative_mce"] = _mean_if_complete(
      corruptions, "relative_ce", BENCHMARK_CORRUPTIONS, relative_mce)
  extra = [corruptions[n]["ce"] for n in EXTRA_CORRUPTIONS
           if corruptions.get(n, {}).get("ce") is not None]
  out["extra_mce"] = float(np.mean(extra)) if len(extra) == len(EXTRA_CORRUPTIONS) else None

  perturbations: dict[str, dict[str, dict]] = {}
  for (name, difficulty), counts in sorted(sequences.items()):
    check_perturbation(name)
    difficulty = check_difficulty(difficulty)
    if counts.difficulty != difficulty:
      raise ValueError(f"counts for {name} at difficulty {difficulty} were made at "
                       f"difficulty {counts.difficulty}")
    perturbations.setdefault(name, {})[str(difficulty)] = _perturbation_summary(
        name, difficulty, counts.host(), baseline)
  out["perturbations"] = perturbations
  out["mfr"], out["mt5d"] = {}, {}
  for difficulty in sorted({d for (_, d) in sequences}):
    level = {n: v[str(difficulty)] for n, v in perturbations.items() if str(difficulty) in v}
    out["mfr"][str(difficulty)] = _mean_if_complete(level, "fr", TEST_PERTURBATIONS, mfr)
    out["mt5d"][str(difficulty)] = _mean_if_complete(level, "t5d", TEST_PERTURBATIONS, mt5d)
  return out


def unnormalized_means(summary: Mapping) -> dict:
  """The unnormalised figures of a ``summarize`` output (the CIFAR-C/-P convention).

  Returns ``{"mean_error", "mean_accuracy", "mean_flip_probability"}`` to add to it:
  ``mean_error`` = the mean top-1 error over the 15 benchmark corruptions x 5 severities
  (the mean of their ``unnormalized_ce``), ``mean_accuracy`` = 1 - that, both None (with
  ``mean_error_unavailable``) unless every cell is present; ``mean_flip_probability``: per
  difficulty, the mean raw FP over the 10 test perturbations (None unless all are present).
  Each corruption's own mean is its ``unnormalized_ce``.
  """
  corruptions = summary.get("corruptions", {})
  means = [corruptions[n].get("unnormalized_ce") for n in BENCHMARK_CORRUPTIONS
           if n in corruptions]
  out = {"mean_error": None, "mean_accuracy": None}
  if len(means) == len(BENCHMARK_CORRUPTIONS) and None not in means:
    out["mean_error"] = float(np.mean(means))
    out["mean_accuracy"] = 1.0 - out["mean_error"]
  else:
    out["mean_error_unavailable"] = (
        f"needs all {len(BENCHMARK_CORRUPTIONS)} benchmark corruptions at severities 1..5; "
        f"{sum(m is not None for m in means)} complete")
  out["mean_flip_probability"] = {}
  levels = {d for per in summary.get("perturbations", {}).values() for d in per}
  for difficulty in sorted(levels):
    fps = [summary["perturbations"].get(n, {}).get(difficulty, {}).get("flip_probability")
           for n in TEST_PERTURBATIONS]
    out["mean_flip_probability"][difficulty] = (None if None in fps else float(np.mean(fps)))
  return out


def baseline_from_counts(name: str, *,
                         errors: Mapping[tuple[str, int], ErrorCounts] | None = None,
                         clean: ErrorCounts | None = None,
                         sequences: Mapping[tuple[str, int], SequenceCounts] | None = None,
                         source: str = "measured by the user", note: str = "") -> Baseline:
  """A ``Baseline`` from counts the user measured (e.g. their own AlexNet on their own data)."""
  return Baseline(
      name=name,
      errors={key: c.error for key, c in (errors or {}).items()},
      clean_error=None if clean is None else clean.error,
      flip_probability={key: c.flip_probability for key, c in (sequences or {}).items()},
      top5_distance={key: c.mean_top5_distance for key, c in (sequences or {}).items()
                     if c.distance is not None},
      source=source, note=note)
