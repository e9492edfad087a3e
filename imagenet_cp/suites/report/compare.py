"""The report of a several-model run (``suites.compare``): OUTPUT_DIR/report.md, comparison.json
and comparison.png, side by side for every model from their results.json dicts.

report.md: which images (for the demo: each photo's name, label, source package and licence),
each model's clean prediction per image, one summary row per model (clean error, mCE, relative
mCE, mFR, mT5D with their bootstrap intervals), top-1 error per corruption and flip probability
per sequence (a column per model), the attacks and the transfer matrix across the models, the
OOD accuracies, and what the run evaluated.  Each model's own report.md (every table of the
paper) is linked.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import pathlib
from typing import Sequence

import numpy as np

from imagenet_cp import sources
from imagenet_cp.corruptions import BENCHMARK_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS
from imagenet_cp.perturbations import PERTURBATIONS, TEST_PERTURBATIONS
from imagenet_cp.suites.common import CORRUPT_NPZ, Task, write_json, write_text
from imagenet_cp.suites.report.common import fmt, pct, pyplot, save, title

REPORT = "report.md"
JSON = "comparison.json"
PLOT = "comparison.png"


# ----------------------------------------------------------------------------------------------
# Figures.


def _ci(results: dict, key: str, scale: float, digits: int) -> str:
  ci = results.get("confidence_intervals", {}).get(key)
  return f" [{ci['low'] * scale:.{digits}f}, {ci['high'] * scale:.{digits}f}]" if ci else ""


def _difficulty(results: dict) -> str | None:
  """The (first) ImageNet-P difficulty a run evaluated."""
  levels = sorted({d for levels in results.get("perturbations", {}).values() for d in levels})
  return levels[0] if levels else None


def mean_errors(results: dict) -> dict[str, float]:
  """Per corruption: top-1 error averaged over the severities evaluated (fraction)."""
  return {name: float(np.mean([cell["error"] for cell in c["severities"].values()]))
          for name, c in results.get("corruptions", {}).items()}


def clean_predictions(folder: pathlib.Path) -> dict[str, int]:
  """{image id: top-1 class} of the clean images, from the corruption suite's task record in
  ``folder``; empty when that suite did not run there or its record is not readable (the report
  then shows no prediction table: the figures do not depend on it)."""
  path = pathlib.Path(folder) / "tasks" / f"{Task('clean').file_stem}.npz"
  try:
    with np.load(path) as data:
      key = next(k for k in ("ids", "file_names") if k in data.files)
      return {str(f): int(p) for f, p in zip(data[key], data["predictions"])}
  except (StopIteration, *CORRUPT_NPZ):
    return {}


@functools.lru_cache(maxsize=None)
def class_names() -> tuple[str, ...] | None:
  """The 1,000 ImageNet class names in label order, from the list tensorflow-datasets ships
  (``datasets/siscore/labels.py``, read as text: importing tfds costs seconds); None when it is
  not there, and the report shows class indices alone."""
  try:
    spec = importlib.util.find_spec("tensorflow_datasets")
    path = pathlib.Path(spec.origin).parent / "datasets" / "siscore" / "labels.py"
    for node in ast.parse(path.read_text()).body:
      target = getattr(node, "targets", [None])[0]
      if isinstance(node, ast.Assign) and getattr(target, "id", "") == "IMAGENET_LABELS_LIST":
        names = ast.literal_eval(node.value)
        return tuple(names) if len(names) == 1000 else None
  except (AttributeError, OSError, SyntaxError, TypeError, ValueError):
    pass
  return None


def class_label(index: int) -> str:
  """'282 tiger cat': the index and the first of the class's names (the index alone without
  ``class_names``)."""
  names = class_names()
  if names is None or not 0 <= index < len(names):
    return str(index)
  return f"{index} {names[index].split(',')[0]}"


def transfer(results_by_model: dict) -> dict | None:
  """The transfer matrix over the most models (the several-model run computes it once)."""
  matrices = [r["adversarial"]["transfer"] for r in results_by_model.values()
              if (r.get("adversarial") or {}).get("transfer")]
  return max(matrices, key=lambda t: len(t["models"]), default=None)


def figures(results: dict, predictions: dict[str, int]) -> dict:
  """One model's row of the comparison (fractions as results.json has them; CE, FR in %)."""
  d = _difficulty(results)
  return {"clean_error": results.get("clean", {}).get("error"),
          "mce": results.get("mce"), "relative_mce": results.get("relative_mce"),
          "extra_mce": results.get("extra_mce"),
          "mfr": (results.get("mfr") or {}).get(d), "mt5d": (results.get("mt5d") or {}).get(d),
          "difficulty": None if d is None else int(d),
          # The unnormalised figures (CIFAR, Tiny, 64, 299: no published normaliser).
          "mean_error": results.get("mean_error"), "mean_accuracy": results.get("mean_accuracy"),
          "evaluated_mean_error": results.get("evaluated_mean_error"),
          "evaluated_cells": results.get("evaluated_cells"),
          "mean_flip_probability": (results.get("mean_flip_probability") or {}).get(d),
          "corruption_errors": mean_errors(results),
          "ce": {n: c.get("ce") for n, c in results.get("corruptions", {}).items()},
          "flip_probability": {n: levels[d]["flip_probability"]
                               for n, levels in results.get("perturbations", {}).items()
                               if d in levels},
          "fr": {n: levels[d].get("fr") for n, levels in results.get("perturbations", {}).items()
                 if d in levels},
          "clean_predictions": predictions}


def comparison(results_by_model: dict, folders: dict, photos: Sequence = (),
               notes: Sequence[str] = ()) -> dict:
  """The comparison.json dict: models, images, photos, one row of figures per model, the
  transfer matrix and the notes."""
  run = next(iter(results_by_model.values())).get("run", {})
  return {"models": list(results_by_model), "source": run.get("source"),
          "benchmark": run.get("benchmark", "imagenet"),
          "images": run.get("images"), "warning": run.get("warning"),
          "photos": [{"name": p.name, "file_name": f"{sources.DEMO_PREFIX}{p.name}.png", "label": p.label,
                      "class_name": p.class_name, "source": p.origin, "licence": p.licence}
                     for p in photos],
          "figures": {name: figures(r, clean_predictions(folders[name]))
                      for name, r in results_by_model.items()},
          "transfer": transfer(results_by_model), "notes": list(notes)}


# ----------------------------------------------------------------------------------------------
# report.md.


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
          + ["| " + " | ".join(row) + " |" for row in rows])


def _photos_section(data: dict) -> list[str]:
  photos = data["photos"]
  if not photos:
    return []
  rows = [[f"{p['name']}", f"{p['label']} {p['class_name']}", f"`{p['source']}`", p["licence"]]
          for p in photos]
  return ([f"## The {len(photos)} photos", "",
           "Real photos shipped by scikit-image and matplotlib (read from the installed packages), "
           "with hand-assigned ImageNet labels (`imagenet_cp.sources.DEMO_PHOTOS`; why each "
           "label: `imagenet_cp/sources.py`).", ""]
          + _table(["photo", "label", "source", "licence"], rows) + [""])


def _predictions_section(data: dict) -> list[str]:
  models = data["models"]
  figs = data["figures"]
  if not any(figs[m]["clean_predictions"] for m in models):
    return []
  labels = {p["file_name"]: p["label"] for p in data["photos"]}
  files = list(dict.fromkeys(f for m in models for f in figs[m]["clean_predictions"]))
  rows = []
  for f in files:
    label = labels.get(f)
    cells = []
    for m in models:
      pred = figs[m]["clean_predictions"].get(f)
      mark = "" if pred is None or label is None else (" ✓" if pred == label else " ✗")
      cells.append("–" if pred is None else f"{class_label(pred)}{mark}")
    rows.append([f.rsplit("/", 1)[-1], "–" if label is None else class_label(label)] + cells)
  return (["## Clean predictions (top-1 class)", ""]
          + _table(["image", "label"] + models, rows) + [""])


def _unnormalized(data: dict) -> bool:
  """Whether the models were evaluated on a benchmark without a published normaliser."""
  return data.get("benchmark", "imagenet") != "imagenet"


def _unnormalized_summary(data: dict) -> list[str]:
  """The summary of a CIFAR / Tiny / 64 / 299 run: mean error and accuracy, raw flips."""
  rows = []
  for m in data["models"]:
    f = data["figures"][m]
    mean = f["mean_error"]
    evaluated = ("" if f["evaluated_mean_error"] is None else
                 f"{pct(f['evaluated_mean_error'])} ({f['evaluated_cells']} cells)")
    flips = f["mean_flip_probability"]
    rows.append([m, pct(f["clean_error"]), pct(mean) if mean is not None else evaluated or "–",
                 pct(f["mean_accuracy"]) if f["mean_accuracy"] is not None else "–",
                 "–" if flips is None else fmt(100 * flips, 2)])
  d = next((data["figures"][m]["difficulty"] for m in data["models"]
            if data["figures"][m]["difficulty"]), None)
  return (["## Summary", "",
           "Unnormalised, as the field reports these sets (no published AlexNet baseline): mean "
           "error over the 15 corruptions x 5 severities (over the cells evaluated when not all "
           "75 were), mean accuracy, and the raw mean flip probability"
           + (f" at difficulty {d}" if d else "") + "; lower error and flips are better.", ""]
          + _table(["model", "clean error (%)", "mean corruption error (%)",
                    "mean accuracy (%)", "mean flip probability (%)"], rows) + [""])


def _summary_section(data: dict, results_by_model: dict) -> list[str]:
  if _unnormalized(data):
    return _unnormalized_summary(data)
  rows = []
  for m, r in results_by_model.items():
    f = data["figures"][m]
    d = f["difficulty"]
    rows.append([m, pct(f["clean_error"]) + _ci(r, "clean_error", 100, 1),
                 fmt(f["mce"], 1) + _ci(r, "mce", 1, 1),
                 fmt(f["relative_mce"], 1) + _ci(r, "relative_mce", 1, 1),
                 fmt(f["extra_mce"], 1),
                 fmt(f["mfr"], 1) + _ci(r, f"mfr/{d}", 1, 1),
                 fmt(f["mt5d"], 1) + _ci(r, f"mt5d/{d}", 1, 1)])
  if not any(data["figures"][m]["clean_error"] is not None for m in data["models"]):
    return []
  d = next((data["figures"][m]["difficulty"] for m in data["models"]
            if data["figures"][m]["difficulty"]), None)
  return (["## Summary", "",
           "AlexNet = 100 for mCE, relative mCE, mFR and mT5D (the paper's normalisation); "
           "[95% bootstrap intervals over the images]; lower is better everywhere."
           + (f"  ImageNet-P at difficulty {d}." if d else "")
           + (f"  On {data['images']} photos the intervals are wide: the demo shows what the "
              "benchmark measures, not which model is more robust." if data["photos"] else ""),
           ""]
          + _table(["model", "clean error (%)", "mCE (%)", "relative mCE (%)",
                    "mean CE, 4 extra (%)", "mFR (%)", "mT5D (%)"], rows) + [""])


def _corruption_section(data: dict) -> list[str]:
  clean = [["clean"] + [pct(data["figures"][m]["clean_error"]) for m in data["models"]]]
  return _per_name_section(
      data, CORRUPTIONS, "corruption_errors", "ce", "corruption",
      lambda n: title(n) + (" (extra)" if n in EXTRA_CORRUPTIONS else ""),
      ["## Top-1 error per corruption", "",
       "Error (%) averaged over the severities evaluated, (CE, AlexNet = 100) beside it; "
       "the 4 extra corruptions are not part of mCE."], first_rows=clean)


def _sequence_section(data: dict) -> list[str]:
  return _per_name_section(
      data, PERTURBATIONS, "flip_probability", "fr", "sequence",
      lambda n: title(n) + ("" if n in TEST_PERTURBATIONS else " (validation)"),
      ["## Flip probability per sequence", "",
       "How often the top-1 class changes between consecutive frames (%), (FR, AlexNet = "
       "100) beside it."])


def _per_name_section(data: dict, names, figure: str, index: str, column: str, row_title,
                      heading: list[str], first_rows=()) -> list[str]:
  """A table of ``figure`` (a fraction, in %) with its AlexNet-relative ``index`` beside it, a
  row per name any model has, a column per model; nothing when no model has any."""
  models = data["models"]
  figs = data["figures"]
  present = [n for n in names if any(n in figs[m][figure] for m in models)]
  if not present:
    return []
  rows = list(first_rows)
  for n in present:
    cells = []
    for m in models:
      value, relative = figs[m][figure].get(n), figs[m][index].get(n)
      cells.append("–" if value is None else
                   pct(value) + ("" if relative is None else f" ({relative:.0f})"))
    rows.append([row_title(n)] + cells)
  return heading + [""] + _table([column] + models, rows) + [""]


def _adversarial_section(data: dict, results_by_model: dict, folders: dict) -> list[str]:
  lines = []
  for m, r in results_by_model.items():
    adv = r.get("adversarial")
    if not adv:
      continue
    config = "short demo config" if adv["run"].get("source") == "demo" else "full config"
    rows = [[n, a["norm"], *_attack_curve(a), pct(a["distortion"]["success_rate"])]
            for n, a in adv["attacks"].items()]
    lines += [f"## Attacks on {m} ({config})", "",
              f"On the {_count(adv['attacked_examples'], 'image')} {m} classifies correctly "
              f"(clean accuracy {pct(adv['clean_accuracy'])}%): accuracy under attack (% of those "
              "images; budgets in /255) and the normalised area under that curve (AUC, %; lower "
              "= less robust); every curve and the distortions in "
              f"[{folders[m].name}/report.md]({folders[m].name}/report.md).", ""]
    lines += _table(["attack", "norm", "accuracy (%) vs", "AUC (%)", "success rate (%)"], rows)
    lines += [""]
  t = data["transfer"]
  if t and len(t["models"]) > 1:
    rows = [[s] + [pct(v) for v in row] for s, row in zip(t["models"], t["matrix"])]
    lines += ["## Transfer matrix", "",
              f"{t['attack']} at eps {t['eps']:g}/255 ({t['target']}, success = {t['criterion']}) "
              f"crafted on the row's model, scored on the column's, over the "
              f"{_count(t['examples'], 'image')} every model classifies correctly; success (%); "
              "the diagonal is white-box.",
              ""]
    lines += _table(["source \\ target"] + list(t["models"]), rows) + [""]
  return lines


def _ood_section(results_by_model: dict) -> list[str]:
  """Top-1 accuracy per OOD dataset (ReaL: on its labels), a column per model."""
  models = list(results_by_model)
  datasets = {m: ((r.get("ood") or {}).get("datasets") or {}) for m, r in results_by_model.items()}
  names = list(dict.fromkeys(n for m in models for n in datasets[m]))
  if not names:
    return []
  rows = []
  for n in names:
    title_ = next(datasets[m][n]["title"] for m in models if n in datasets[m])
    rows.append([title_] + [pct(datasets[m][n]["accuracy"], 2) if n in datasets[m] else "–"
                            for m in models])
  return (["## Natural robustness (out of distribution)", "",
           "Top-1 accuracy (%); the datasets' details are in each model's report.", ""]
          + _table(["dataset"] + models, rows) + [""])


def _count(n: int, noun: str) -> str:
  return f"{n} {noun}{'' if n == 1 else 's'}"


def _attack_curve(a: dict) -> list[str]:
  """(the attack's curve as 'x: accuracy' points, its AUC) for the comparison's attack table:
  accuracy vs budget, else vs iterations or queries at the fixed budget."""
  for key, x_key, what in (("accuracy_vs_budget", "budgets", "budget"),
                           ("accuracy_vs_iterations", "iterations", "iterations"),
                           ("accuracy_vs_queries", "queries", "queries")):
    if a.get(key):
      xs = a.get(x_key) or list(range(len(a[key])))
      points = ", ".join(f"{x:g}: {pct(v, 0)}" for x, v in zip(xs, a[key]))
      auc = a.get({"budget": "auc", "iterations": "auc_iterations",
                   "queries": "auc_queries"}[what])
      return [f"{what} {points}", pct(auc)]
  return ["–", "–"]


def _evaluated_section(data: dict, results_by_model: dict) -> list[str]:
  first = next(iter(results_by_model.values()))
  lines = ["## What was evaluated", ""]
  data_from = first.get("run", {}).get("data") or "on the fly"
  corr = first.get("corruptions", {})
  if corr:
    severities = sorted({int(s) for c in corr.values() for s in c["severities"]})
    lines.append(f"- ImageNet-C: {_count(len(corr), 'corruption')} "
                 f"({len(set(corr) & set(BENCHMARK_CORRUPTIONS))} of the benchmark) x severities "
                 f"{', '.join(map(str, severities))} ({data_from}), the release's JPEG q85 stage "
                 f"{'on' if first.get('run', {}).get('release_jpeg') else 'off'}.")
  pert = first.get("perturbations", {})
  if pert:
    lines.append(f"- ImageNet-P: {_count(len(pert), 'sequence')} at difficulty "
                 f"{_difficulty(first)} ({data_from}).")
  replicates = {ci.get("replicates") for r in results_by_model.values()
                for ci in r.get("confidence_intervals", {}).values()}
  if replicates:
    lines.append(f"- Bootstrap intervals: {', '.join(str(n) for n in sorted(replicates))} "
                 "resamples of the images.")
  attacked = [m for m, r in results_by_model.items() if r.get("adversarial")]
  if attacked:
    names = list(results_by_model[attacked[0]]["adversarial"]["attacks"])
    lines.append(f"- Attacks: {', '.join(names)} on {', '.join(attacked)}.")
  ood = [n for r in results_by_model.values() for n in ((r.get("ood") or {}).get("datasets") or {})]
  if ood:
    lines.append(f"- Out of distribution: {', '.join(dict.fromkeys(ood))}.")
  if data["notes"]:
    lines += ["", "Less than a full run evaluates, for time (a flag given on the command line "
              "wins):", ""] + [f"- {note}" for note in data["notes"]]
  seconds = []
  for m, r in results_by_model.items():
    parts = [f"{r['run']['seconds']:.0f} s" if r.get("run", {}).get("seconds") is not None
             and "clean" in r else None,
             f"{r['adversarial']['run']['seconds']:.0f} s adversarial"
             if (r.get("adversarial") or {}).get("run", {}).get("seconds") is not None else None]
    parts = [p for p in parts if p]
    if parts:
      seconds.append(f"{m} {' + '.join(parts)}")
  if seconds:
    lines.append(f"\nTime (this run, compiles included; the first model compiles the corruptions "
                 f"and sequences for all): {'; '.join(seconds)}.")
  return lines + [""]


def markdown(results_by_model: dict, data: dict, folders: dict,
             pictures: Sequence[pathlib.Path] = ()) -> str:
  models = data["models"]
  lines = [f"# Robustness comparison: {', '.join(models)}", ""]
  if data.get("warning"):
    lines += [f"> **{data['warning']}**", ""]
  links = ", ".join(f"[{m}]({folders[m].name}/{REPORT})" for m in models)
  same = (f"on the same {_count(data['images'], 'image')} ({data['source']})"
          if data.get("images") is not None else f"on the same data ({data['source']})")
  generated = ", the same corrupted images and sequences (one key per image)" if any(
      "clean" in r for r in results_by_model.values()) else ""
  lines += [f"{len(models)} models {same}{generated}.  Each model's own report, with all its "
            f"tables, plots and results.json: {links}.", ""]
  names = {pathlib.Path(p).name for p in pictures}
  if "gallery.png" in names:
    gifs = [f"[{n}]({n})" for n in sorted(names) if n.endswith(".gif")]
    photo = data["photos"][0]["name"] if data["photos"] else "the first photo"
    lines += [f"What the benchmark does to a photo: [gallery.png](gallery.png) ({photo} under the "
              "19 corruptions at severities 1-5, before the release's JPEG stage) and one GIF per "
              "ImageNet-P sequence: " + ", ".join(gifs) + ".", ""]
  lines += _photos_section(data) + _predictions_section(data)
  lines += _summary_section(data, results_by_model)
  if data["figures"] and any(f["corruption_errors"] or f["flip_probability"]
                             for f in data["figures"].values()):
    lines += [f"![error per corruption and flip probability per sequence]({PLOT})", ""]
  lines += _corruption_section(data) + _sequence_section(data)
  lines += _adversarial_section(data, results_by_model, folders)
  lines += _ood_section(results_by_model)
  lines += _evaluated_section(data, results_by_model)
  return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# comparison.png.


def plot(data: dict, path: pathlib.Path) -> pathlib.Path | None:
  """Grouped bars, one per model: top-1 error per corruption (top), flip probability per
  sequence (bottom); None when there is neither."""
  models = data["models"]
  figs = data["figures"]
  corr = ["clean"] + [n for n in CORRUPTIONS if any(n in figs[m]["corruption_errors"]
                                                     for m in models)]
  seqs = [n for n in PERTURBATIONS if any(n in figs[m]["flip_probability"] for m in models)]
  panels = [(corr, "corruption_errors", "top-1 error (%)",
             "ImageNet-C: top-1 error, mean over the severities")] if len(corr) > 1 else []
  panels += [(seqs, "flip_probability", "flip probability (%)",
              "ImageNet-P: how often the top-1 class flips between frames")] if seqs else []
  if not panels:
    return None
  plt = pyplot()
  fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4 * len(panels)), squeeze=False)
  width = 0.8 / len(models)
  for ax, (names, key, label, heading) in zip(axes[:, 0], panels):
    x = np.arange(len(names))
    for i, m in enumerate(models):
      values = [figs[m]["clean_error"] if n == "clean" else figs[m][key].get(n) for n in names]
      ax.bar(x + (i - (len(models) - 1) / 2) * width,
             [np.nan if v is None else 100 * v for v in values], width, label=m)
    ax.set_xticks(x, [title(n) + (" (extra)" if n in EXTRA_CORRUPTIONS else "") for n in names],
                  rotation=45, ha="right")
    ax.set_ylabel(label)
    ax.set_title(heading)
    ax.legend(fontsize=8)
  return save(fig, path)


def write_all(results_by_model: dict, output_dir, *, folders: dict, photos: Sequence = (),
              notes: Sequence[str] = (),
              pictures: Sequence[pathlib.Path] = ()) -> list[pathlib.Path]:
  """report.md, comparison.json and comparison.png into ``output_dir``."""
  output_dir = pathlib.Path(output_dir)
  output_dir.mkdir(parents=True, exist_ok=True)
  data = comparison(results_by_model, folders, photos, notes)
  written = [write_json(output_dir / JSON, data)]
  picture = plot(data, output_dir / PLOT)
  write_text(output_dir / REPORT, markdown(results_by_model, data, folders, pictures))
  return [output_dir / REPORT] + written + ([picture] if picture else [])
