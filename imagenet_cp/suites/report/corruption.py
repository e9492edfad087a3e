"""The corruption suite's report: the paper's tables (CE, relative CE, FR, T5D), its rows of
results.csv and its plots (CE per corruption, error vs severity, flip probability)."""
from __future__ import annotations

import pathlib

import numpy as np

from imagenet_cp.corruptions import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from imagenet_cp.metrics.baselines import ALEXNET
from imagenet_cp.perturbations import TEST_PERTURBATIONS, VALIDATION_PERTURBATIONS
from imagenet_cp.suites.report.common import fmt, pct, pyplot, save, title


def _ci(results: dict, key: str, scale: float = 1.0, digits: int = 0) -> str:
  ci = results.get("confidence_intervals", {}).get(key)
  if not ci:
    return ""
  return f" [{ci['low'] * scale:.{digits}f}, {ci['high'] * scale:.{digits}f}]"


def csv_rows(results: dict) -> list[dict]:
  """Clean error, per-severity errors, CEs, per-sequence figures and the summary figures."""
  rows = []
  if "clean" in results:
    rows.append(dict(kind="clean", name="clean", level="", metric="error",
                     value=results["clean"]["error"], n=results["clean"]["examples"]))
  for name, c in results.get("corruptions", {}).items():
    for s, cell in c["severities"].items():
      rows.append(dict(kind="corruption", name=name, level=s, metric="error", value=cell["error"],
                       n=cell["examples"]))
    for metric in ("ce", "relative_ce", "unnormalized_ce", "mean_error"):
      if c.get(metric) is not None:
        rows.append(dict(kind="corruption", name=name, level="", metric=metric, value=c[metric],
                         n=c["examples"]))
  for name, levels in results.get("perturbations", {}).items():
    for d, p in levels.items():
      for metric in ("flip_probability", "fr", "ut5d", "t5d"):
        if p.get(metric) is not None:
          rows.append(dict(kind="perturbation", name=name, level=d, metric=metric,
                           value=p[metric], n=p["videos"]))
  for metric in ("mce", "relative_mce", "extra_mce", "mean_error", "mean_accuracy",
                 "evaluated_mean_error"):
    if results.get(metric) is not None:
      rows.append(dict(kind="summary", name=metric, level="", metric=metric,
                       value=results[metric], n=_summary_n(results, metric)))
  for metric in ("mfr", "mt5d", "mean_flip_probability"):
    for d, value in (results.get(metric) or {}).items():
      if value is not None:
        rows.append(dict(kind="summary", name=metric, level=d, metric=metric, value=value, n=""))
  return rows


def _summary_n(results: dict, metric: str):
  """What a summary row's n counts: the cells behind the evaluated mean, else the images."""
  if metric == "evaluated_mean_error":
    return results.get("evaluated_cells", "")
  return results.get("clean", {}).get("examples", "")


def _unnormalized_headline(results: dict) -> list[str]:
  """The unnormalised rows (CIFAR, Tiny, 64, 299: no published normaliser)."""
  lines = []
  if results.get("mean_error") is not None:
    lines.append(f"| mean error, 15 corruptions x 5 severities (%) | {pct(results['mean_error'])}"
                 " | |")
    lines.append(f"| mean accuracy (%) | {pct(results['mean_accuracy'])} | |")
  elif results.get("evaluated_mean_error") is not None:
    lines.append(f"| mean error over the {results['evaluated_cells']} benchmark cells evaluated "
                 f"(%; the full mean needs all 75) | {pct(results['evaluated_mean_error'])} | |")
  for d, value in (results.get("mean_flip_probability") or {}).items():
    if value is not None:
      lines.append(f"| mean flip probability, difficulty {d} (%) | {fmt(100 * value, 2)} | |")
  return lines


def _corruption_table(results: dict, key: str, names) -> list[str]:
  corr = results.get("corruptions", {})
  present = [n for n in names if n in corr]
  if not present:
    return []
  header = "| | " + " | ".join(title(n) for n in present) + " |"
  # Errors are fractions (shown as %); CEs are percentages already.
  show = pct if key == "mean_error" else fmt
  row = "| " + key + " | " + " | ".join(show(corr[n].get(key)) for n in present) + " |"
  return [header, "|" + "---|" * (len(present) + 1), row]


def _perturbation_table(results: dict, key: str, raw_key: str, names) -> list[str]:
  pert = results.get("perturbations", {})
  levels = sorted({d for n in names for d in pert.get(n, {})})
  present = [n for n in names if n in pert]
  if not present:
    return []
  lines = ["| difficulty | " + " | ".join(title(n) for n in present) + " |",
           "|" + "---|" * (len(present) + 1)]
  for d in levels:
    cells = []
    for n in present:
      p = pert[n].get(d, {})
      raw = p.get(raw_key)
      cells.append(f"{fmt(p.get(key))} ({fmt(raw, 4 if raw_key == 'flip_probability' else 3)})"
                   if raw is not None else "–")
    lines.append(f"| {d} | " + " | ".join(cells) + " |")
  return lines


def section(results: dict) -> list[str]:
  """The headline figures with their intervals, Tables 1 and 2 (CE, relative CE), Tables 3 and
  4 (FR, T5D) layouts; nothing when the suite did not run."""
  if "clean" not in results:
    return []
  baseline = results.get("baseline", {})
  lines = [f"Normalised by {baseline.get('name')} = 100 ({baseline.get('source')}).", ""]
  lines += ["## Headline", "", "| figure | value | 95% CI (bootstrap over images) |", "|---|---|---|"]
  lines.append(f"| clean error (%) | {pct(results['clean']['error'])} | "
               f"{_ci(results, 'clean_error', 100, 1)} |")
  lines += _unnormalized_headline(results)
  for key, label in (("mce", "mCE (%)"), ("relative_mce", "relative mCE (%)"),
                     ("extra_mce", "mean CE of the 4 extra corruptions (%)")):
    if results.get(key) is not None:
      lines.append(f"| {label} | {fmt(results[key], 1)} | {_ci(results, key, 1, 1)} |")
  for key, label in (("mfr", "mFR (%)"), ("mt5d", "mT5D (%)")):
    for d, value in (results.get(key) or {}).items():
      if value is not None:
        lines.append(f"| {label}, difficulty {d} | {fmt(value, 1)} | "
                     f"{_ci(results, f'{key}/{d}', 1, 1)} |")
  lines.append("")
  for heading, key, names in (
      ("Table 1: Corruption Error (CE, %)", "ce", BENCHMARK_CORRUPTIONS),
      ("Table 2: Relative Corruption Error (%)", "relative_ce", BENCHMARK_CORRUPTIONS),
      ("Extra corruptions: CE (%), not part of mCE", "ce", EXTRA_CORRUPTIONS),
      ("Mean error per corruption over its severities (%, unnormalised)", "mean_error",
       BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS)):
    table = _corruption_table(results, key, names)
    if table:
      lines += [f"## {heading}", ""] + table + [""]
  for heading, key, raw, names in (
      ("Table 3: Flip Rate FR (%) (raw flip probability)", "fr", "flip_probability", TEST_PERTURBATIONS),
      ("Table 4: Top-5 Distance T5D (%) (raw uT5D)", "t5d", "ut5d", TEST_PERTURBATIONS),
      ("Validation sequences: FR (%) (raw flip probability)", "fr", "flip_probability",
       VALIDATION_PERTURBATIONS)):
    table = _perturbation_table(results, key, raw, names)
    if table:
      lines += [f"## {heading}", ""] + table + [""]
  if results.get("perturbations"):
    lines += [f"FR and T5D use {ALEXNET.name}'s appendix-E values, measured on the released lossy "
              "H.264 videos (difficulty 1 only); our frames are lossless.", ""]
  lines += ["Errors per corruption and severity are in results.csv; every figure lists the "
            "number of images (or videos) behind it in results.json.", ""]
  return lines


def plots(results: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  """ce_per_corruption.png (CE vs AlexNet), error_vs_severity.png, flip_probability.png."""
  plt = pyplot()
  written = []
  corr = results.get("corruptions", {})
  names = [n for n in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS if corr.get(n, {}).get("ce") is not None]
  if names:
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(np.arange(len(names)), [corr[n]["ce"] for n in names], color="tab:blue", label="model")
    ax.axhline(100, color="k", ls="--", lw=1, label="AlexNet = 100")
    ax.set_xticks(np.arange(len(names)), [title(n) for n in names], rotation=60, ha="right")
    ax.set_ylabel("Corruption Error (%)")
    ax.legend()
    written.append(save(fig, directory / "ce_per_corruption.png"))
  if corr:
    fig, ax = plt.subplots(figsize=(7, 5))
    for n, c in corr.items():
      sev = sorted(c["severities"], key=int)
      ax.plot([int(s) for s in sev], [100 * c["severities"][s]["error"] for s in sev], marker="o",
              label=title(n), ls="-" if c.get("benchmark") else ":")
    if "clean" in results:
      ax.axhline(100 * results["clean"]["error"], color="k", lw=1, label="clean")
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.set_xlabel("severity")
    ax.set_ylabel("top-1 error (%)")
    ax.legend(fontsize=6, ncol=2)
    written.append(save(fig, directory / "error_vs_severity.png"))
  pert = results.get("perturbations", {})
  if pert:
    fig, ax = plt.subplots(figsize=(9, 4))
    labels, values = [], []
    for n in TEST_PERTURBATIONS + VALIDATION_PERTURBATIONS:
      for d, p in sorted(pert.get(n, {}).items()):
        labels.append(f"{title(n)} (d{d})")
        values.append(100 * p["flip_probability"])
    ax.bar(np.arange(len(values)), values, color="tab:orange")
    ax.set_xticks(np.arange(len(values)), labels, rotation=60, ha="right")
    ax.set_ylabel("flip probability (%)")
    written.append(save(fig, directory / "flip_probability.png"))
  return written
