"""The AutoAttack suite's report: robust and clean accuracy, the accuracy after each attack and
the examples each attack broke first (a table and results.csv rows; no plot)."""
from __future__ import annotations

import pathlib

from imagenet_cp.suites.report.common import num, pct


def csv_rows(results: dict) -> list[dict]:
  """Clean and robust accuracy, then per attack the accuracy after it and the count it broke."""
  a = results.get("autoattack")
  if not a:
    return []
  level = f"{a['norm']} {a['eps']:g}/255"
  rows = [dict(kind="autoattack", name=a["version"], level=level, metric=metric, value=a[metric],
               n=a["images"]) for metric in ("clean_accuracy", "robust_accuracy")]
  for name in a["attacks"]:
    rows.append(dict(kind="autoattack", name=name, level=level, metric="accuracy_after",
                     value=a["accuracy_after"][name], n=a["images"]))
    rows.append(dict(kind="autoattack", name=name, level=level, metric="broken",
                     value=a["broken_by"][name], n=a["images"]))
  return rows


def section(results: dict) -> list[str]:
  """The "AutoAttack" section of report.md (nothing when the suite did not run)."""
  a = results.get("autoattack")
  if not a:
    return []
  lines = ["## AutoAttack", "",
           f"{a['version']} ({', '.join(a['attacks'])}) at eps {a['eps']:g}/255 in {a['norm']} "
           f"on {a['images']} images: clean accuracy {pct(a['clean_accuracy'])}%, robust "
           f"accuracy **{pct(a['robust_accuracy'])}%** ({a['robust_images']} images).  Each "
           "attack runs on the images still robust; an image counts for the first attack that "
           "broke it.", "",
           "| attack | broken (images) | accuracy after (%) | median distance of its "
           "breaks (/255) |", "|---|---|---|---|",
           f"| clean | {a['clean_errors']} | {pct(a['accuracy_after']['clean'])} | – |"]
  for name in a["attacks"]:
    lines.append(f"| {name} | {a['broken_by'][name]} | {pct(a['accuracy_after'][name])} | "
                 f"{num(a['median_distance_of_broken'][name])} |")
  return lines + [""]


def plots(results: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  del results, directory
  return []
