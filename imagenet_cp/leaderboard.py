"""Several runs' ``results.json`` -> one leaderboard: markdown, CSV and scatter plots.

``python -m metrics.leaderboard out/*/results.json --output_dir=out/board`` writes
``leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.png``.  One row per run, in the column
layouts of RobustBench's ImageNet leaderboards (clean, ImageNet-C and AutoAttack accuracy) and of
ARES-Bench (clean and adversarial accuracy, ImageNet-C mCE, OOD accuracies); accuracies in %,
figures a run lacks shown as "—".  Runs of different benchmarks or image lists are refused unless
``allow_mixed``, which adds a ``benchmark`` column naming each row's.
"""
from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from typing import Sequence

MISSING = "—"
LINF_EPS = 4.0  # /255: RobustBench's and ARES-Bench's ImageNet Linf budget
# layout -> (its columns, the column it ranks by).
LAYOUTS = {
    "robustbench": (("clean", "corruption", "autoattack"), "autoattack"),
    "robustbench_corruptions": (("clean", "corruption"), "corruption"),
    "ares": (("clean", "adversarial", "autoattack", "mce", "ood"), "adversarial"),
    "full": (("clean", "corruption", "mce", "relative_mce", "mfr", "mt5d", "adversarial",
              "autoattack", "ood"), "clean"),
}
TITLES = {"clean": "clean acc. (%)", "corruption": "ImageNet-C acc. (%)", "mce": "mCE (%)",
          "relative_mce": "relative mCE (%)", "mfr": "mFR (%)", "mt5d": "mT5D (%)",
          "adversarial": "Linf 4/255 acc., suite (%)", "autoattack": "AutoAttack acc. (%)"}
_PERCENT = ("mce", "relative_mce", "mfr", "mt5d")  # already percentages in results.json


def read(paths: Sequence[str | os.PathLike]) -> dict[str, dict]:
  """{model label: results} of ``results.json`` files; the label is the run's model name, made
  unique with its folder where two runs share it."""
  out = {}
  for path in paths:
    path = pathlib.Path(path)
    results = json.loads(path.read_text())
    label = _run(results).get("model") or path.parent.name
    if label in out:
      label = f"{label} ({path.parent.name})"
    if label in out:
      raise ValueError(f"two runs are both labelled {label!r}: {path}")
    out[label] = results
  return out


def _run(results: dict) -> dict:
  """The run record of the first suite a results.json holds (corruption, then the others)."""
  for section in (results, *(results.get(s) or {} for s in ("adversarial", "autoattack", "ood"))):
    if section.get("run"):
      return section["run"]
  return {}


def benchmark(results: dict) -> str:
  """What a run measured on: benchmark, image source and the digest of its image list."""
  run = _run(results)
  ids = run.get("file_names_sha256") or run.get("image_list") or "?"
  return f"{run.get('benchmark', 'imagenet')}/{run.get('source', '?')}/{str(ids)[:8]}"


def corruption_accuracy(results: dict) -> float | None:
  """1 - the mean error over the benchmark corruptions present (each averaged over its
  severities): RobustBench's ImageNet-C accuracy (severities 1-5, the 15 corruptions)."""
  errors = []
  for c in (results.get("corruptions") or {}).values():
    severities = [s["error"] for s in (c.get("severities") or {}).values()]
    if c.get("benchmark", True) and severities:
      errors.append(sum(severities) / len(severities))
  return 1 - sum(errors) / len(errors) if errors else None


def adversarial_accuracy(results: dict, eps: float = LINF_EPS) -> float | None:
  """Accuracy at Linf ``eps``/255 under the adversarial suite's strongest Linf attack whose
  curve has that budget: clean accuracy x the attacked images' accuracy at it."""
  adv = results.get("adversarial") or {}
  at_eps = [a["accuracy_vs_budget"][a["budgets"].index(eps)]
            for a in (adv.get("attacks") or {}).values()
            if a.get("norm") == "linf" and eps in (a.get("budgets") or [])]
  if not at_eps or adv.get("clean_accuracy") is None:
    return None
  return adv["clean_accuracy"] * min(at_eps)


def autoattack_accuracy(results: dict, eps: float = LINF_EPS) -> float | None:
  """The ``autoattack`` section's robust accuracy where it attacked Linf at ``eps``/255."""
  aa = results.get("autoattack") or {}
  if aa.get("norm") != "linf" or aa.get("eps") != eps:
    return None
  return aa.get("robust_accuracy")


def ood_accuracies(results: dict) -> dict[str, float | None]:
  """{OOD dataset title: top-1 accuracy} of the ood suite."""
  datasets = (results.get("ood") or {}).get("datasets") or {}
  return {d.get("title", name): d.get("accuracy") for name, d in datasets.items()}


def row(results: dict) -> dict:
  """One run's leaderboard figures (fractions; mCE, mFR, mT5D as results.json's percentages)."""
  clean = (results.get("clean") or {}).get("error")
  if clean is None:
    clean_acc = next((s["clean_accuracy"] for s in (results.get("adversarial"),
                      results.get("autoattack")) if s and s.get("clean_accuracy") is not None),
                     None)
  else:
    clean_acc = 1 - clean
  return {"clean": clean_acc, "corruption": corruption_accuracy(results),
          "mce": results.get("mce"), "relative_mce": results.get("relative_mce"),
          "mfr": (results.get("mfr") or {}).get("1"), "mt5d": (results.get("mt5d") or {}).get("1"),
          "adversarial": adversarial_accuracy(results),
          "autoattack": autoattack_accuracy(results), "ood": ood_accuracies(results),
          "benchmark": benchmark(results)}


def table(results_by_model: dict[str, dict], layout: str = "full",
          allow_mixed: bool = False) -> tuple[list[str], list[list]]:
  """(header, rows of values) ranked by the layout's metric, best first (missing last)."""
  if layout not in LAYOUTS:
    raise ValueError(f"unknown layout {layout!r}; one of {', '.join(LAYOUTS)}")
  rows = {m: row(r) for m, r in results_by_model.items()}
  kinds = sorted({r["benchmark"] for r in rows.values()})
  if len(kinds) > 1 and not allow_mixed:
    groups = "; ".join(f"{k}: {', '.join(m for m, r in rows.items() if r['benchmark'] == k)}"
                       for k in kinds)
    raise ValueError(f"runs of different benchmarks or image lists cannot share one table: "
                     f"{groups} (allow_mixed adds a benchmark column)")
  columns, rank_by = LAYOUTS[layout]
  ood = list(dict.fromkeys(t for r in rows.values() for t in r["ood"])) if "ood" in columns else []
  header = (["rank", "model"] + [TITLES[c] for c in columns if c != "ood"]
            + [f"{t} acc. (%)" for t in ood] + (["benchmark"] if len(kinds) > 1 else []))
  lower = rank_by in _PERCENT  # mCE-like: lower is better
  order = sorted(rows, key=lambda m: (rows[m][rank_by] is None,
                                      (rows[m][rank_by] or 0) * (1 if lower else -1)))
  body = []
  for i, m in enumerate(order, 1):
    r = rows[m]
    values = [r[c] if c in _PERCENT else _percent(r[c]) for c in columns if c != "ood"]
    body.append([i, m, *values, *(_percent(r["ood"].get(t)) for t in ood)]
                + ([r["benchmark"]] if len(kinds) > 1 else []))
  return header, body


def _percent(fraction):
  return None if fraction is None else 100 * fraction


def _cell(value) -> str:
  if value is None:
    return MISSING
  return f"{value:.2f}" if isinstance(value, float) else str(value)


def markdown(header: list[str], rows: list[list]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
  return "\n".join(lines) + "\n"


def to_csv(header: list[str], rows: list[list]) -> str:
  """CSV with empty cells for missing figures (what spreadsheets read as no value)."""
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(header)
  writer.writerows([["" if v is None else (f"{v:.4f}" if isinstance(v, float) else v)
                     for v in r] for r in rows])
  return out.getvalue()


def plot(results_by_model: dict[str, dict], path: str | os.PathLike) -> pathlib.Path:
  """Two scatter plots, clean vs ImageNet-C accuracy and clean vs Linf 4/255 accuracy
  (AutoAttack's where a run has it, else the suite's), one labelled point per run."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = {m: row(r) for m, r in results_by_model.items()}
  fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
  panels = (("corruption", "ImageNet-C accuracy (%)"), ("robust", "Linf 4/255 accuracy (%)"))
  for ax, (key, label) in zip(axes, panels):
    for m, r in rows.items():
      y = r["corruption"] if key == "corruption" else (
          r["autoattack"] if r["autoattack"] is not None else r["adversarial"])
      if r["clean"] is not None and y is not None:
        ax.scatter(100 * r["clean"], 100 * y)
        ax.annotate(m, (100 * r["clean"], 100 * y), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path


def write_all(paths: Sequence[str | os.PathLike], output_dir: str | os.PathLike,
              layout: str = "full", allow_mixed: bool = False) -> dict[str, pathlib.Path]:
  """``leaderboard.md`` (the layout), ``leaderboard.csv`` (every column) and ``leaderboard.png``
  in ``output_dir``; -> their paths."""
  results = read(paths)
  output_dir = pathlib.Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  md = output_dir / "leaderboard.md"
  md.write_text(markdown(*table(results, layout, allow_mixed)))
  full = output_dir / "leaderboard.csv"
  full.write_text(to_csv(*table(results, "full", allow_mixed)))
  return {"markdown": md, "csv": full, "plot": plot(results, output_dir / "leaderboard.png")}


def main(argv: Sequence[str] | None = None) -> None:
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(prog="python -m metrics.leaderboard", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("results", nargs="+", help="results.json files of the runs")
  parser.add_argument("--layout", default="full", choices=list(LAYOUTS))
  parser.add_argument("--output_dir", help="write leaderboard.md/.csv/.png here (else: print)")
  parser.add_argument("--allow_mixed", action="store_true",
                      help="accept runs of different benchmarks/image lists (a benchmark column)")
  args = parser.parse_args(argv)
  if args.output_dir:
    for path in write_all(args.results, args.output_dir, args.layout, args.allow_mixed).values():
      print(f"wrote {path}")
  else:
    print(markdown(*table(read(args.results), args.layout, args.allow_mixed)), end="")


if __name__ == "__main__":
  main()
