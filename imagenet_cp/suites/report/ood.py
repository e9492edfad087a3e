"""The OOD suite's report: the natural-robustness table (beside the clean ImageNet and ImageNet-C
rows when the corruption suite ran), its results.csv rows and the accuracy plot."""
from __future__ import annotations

import pathlib

import numpy as np

from imagenet_cp.suites.report.common import pct, pyplot, save


def csv_rows(results: dict) -> list[dict]:
  """Per dataset its accuracy (ReaL: also on the original labels)."""
  rows = []
  for name, d in ((results.get("ood") or {}).get("datasets") or {}).items():
    rows.append(dict(kind="ood", name=name, level=d["label_space"], metric="accuracy",
                     value=d["accuracy"], n=d.get("real_images", d["images"])))
    if "original" in d:
      rows.append(dict(kind="ood", name=name, level="original labels", metric="accuracy",
                       value=d["original"]["accuracy"], n=d["images"]))
  return rows


def section(results: dict) -> list[str]:
  """The "Natural robustness" section of report.md (nothing when the suite did not run)."""
  if not results.get("ood"):
    return []
  return ["", markdown(results["ood"], results if "clean" in results else None)]


def plots(results: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  return plot(results["ood"], directory) if results.get("ood") else []


def _corruption_rows(corruption: dict) -> list[str]:
  """ImageNet val (clean) and ImageNet-C rows from a ``metrics.evaluate`` results dict."""
  rows = []
  clean = corruption.get("clean")
  if clean:
    rows.append(f"| ImageNet val (clean) | validation | 1000 classes | {clean['examples']} | "
                f"{pct(1 - clean['error'], 2)} | {pct(clean['error'], 2)} | |")
  cells = [c["unnormalized_ce"] for c in corruption.get("corruptions", {}).values()
           if c.get("benchmark") and c.get("unnormalized_ce") is not None]
  if cells or corruption.get("mce") is not None:
    error = float(np.mean(cells)) if cells else None
    mce = corruption.get("mce")
    images = clean["examples"] if clean else "–"
    rows.append(f"| ImageNet-C ({len(cells)} corruptions x 5 severities) | validation | "
                f"1000 classes | {images} | {pct(None if error is None else 1 - error, 2)} | "
                f"{pct(error, 2)} | {'–' if mce is None else f'{mce:.1f}'} |")
  return rows


def markdown(results: dict, corruption: dict | None = None) -> str:
  """A report section: per dataset the images, top-1 accuracy and error (%); with the
  corruption suite's results (``metrics.evaluate``) also the clean ImageNet and ImageNet-C rows
  and mCE (AlexNet = 100) beside them."""
  extra = corruption is not None
  lines = ["## Natural robustness (out of distribution)", "",
           "| dataset | split | label space | images | top-1 accuracy (%) | top-1 error (%) |"
           + (" mCE (%) |" if extra else ""),
           "|---|---|---|---|---|---|" + ("---|" if extra else "")]
  if extra:
    lines += _corruption_rows(corruption)
  notes = []
  for name, d in results.get("datasets", {}).items():
    space = "200 classes" if "subset_indices" in d else "1000 classes"
    label = d["title"] + (" (ReaL labels)" if "real_images" in d else "")
    lines.append(f"| {label} | {d['split']} | {space} | {d.get('real_images', d['images'])} | "
                 f"{pct(d['accuracy'], 2)} | {pct(d['error'], 2)} |" + (" |" if extra else ""))
    if "original" in d:
      lines.append(f"| {d['title']} (original labels) | {d['split']} | 1000 classes | "
                   f"{d['images']} | {pct(d['original']['accuracy'], 2)} | "
                   f"{pct(d['original']['error'], 2)} |" + (" |" if extra else ""))
      notes.append(f"{d['title']}: {d['excluded_empty']} of {d['images']} images have an empty "
                   "ReaL label set and are excluded from the ReaL accuracy (Beyer et al. 2020).")
    if "accuracy_1000" in d:
      notes.append(f"{d['title']}: argmax over its 200 classes' logits only, as its authors and "
                   f"timm score it; the 1000-way accuracy is {pct(d['accuracy_1000'], 2)}%.")
    if d["images"] < d["split_examples"]:
      notes.append(f"{d['title']}: the first {d['images']} of {d['split_examples']} examples only.")
  if notes:
    lines += [""] + [f"- {n}" for n in notes]
  return "\n".join(lines) + "\n"


def plot(results: dict, output_dir) -> list[pathlib.Path]:
  """``ood_accuracy.png``: top-1 accuracy per dataset (ReaL: the ReaL accuracy)."""
  plt = pyplot()
  data = {d["title"]: d["accuracy"] for d in results.get("datasets", {}).values()
          if d.get("accuracy") is not None}
  if not data:
    return []
  directory = pathlib.Path(output_dir)
  directory.mkdir(parents=True, exist_ok=True)
  fig, ax = plt.subplots(figsize=(1.4 * len(data) + 2, 4))
  bars = ax.bar(np.arange(len(data)), [100 * v for v in data.values()], color="tab:green")
  ax.bar_label(bars, fmt="%.1f")
  ax.set_xticks(np.arange(len(data)), list(data), rotation=30, ha="right")
  ax.set_ylabel("top-1 accuracy (%)")
  ax.set_ylim(0, 105)
  ax.set_title(results.get("run", {}).get("model", ""))
  return [save(fig, directory / "ood_accuracy.png")]
