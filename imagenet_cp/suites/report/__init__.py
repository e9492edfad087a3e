"""Reports from ``results.json``: results.csv, report.md (the paper's table layouts) and PNG plots.

report.md is a header (model, source, run) followed by one section per suite that ran, in the
order of ``suites.NAMES``; each suite's tables, csv rows and plots are in ``report/<suite>.py``
(``csv_rows(results)``, ``section(results)``, ``plots(results, directory)``, all taking the
whole results.json dict).  A suite without such a module adds nothing to the report.
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import pathlib

from imagenet_cp import suites
from imagenet_cp.suites.common import write_text

CSV_FIELDS = ["kind", "name", "level", "metric", "value", "n"]


def sections() -> list:
  """The report modules of the registered suites, in the suites' order."""
  modules = []
  for name in suites.NAMES:
    module_name = f"{__name__}.{name}"
    if importlib.util.find_spec(module_name) is not None:
      modules.append(importlib.import_module(module_name))
  return modules


def csv_rows(results: dict) -> list[dict]:
  """One row per figure: kind, name, level, metric, value, n (images or videos behind it)."""
  return [row for module in sections() for row in module.csv_rows(results)]


def write_csv(results: dict, path: pathlib.Path) -> None:
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
  writer.writeheader()
  writer.writerows(csv_rows(results))
  write_text(path, buf.getvalue())


def markdown(results: dict, model: str) -> str:
  """report.md: the run's header, then every suite's section."""
  run = results.get("run", {})
  lines = [f"# Robustness report: {model}", ""]
  if run.get("warning"):
    lines += [f"> **{run['warning']}**", ""]
  lines += [f"Source: {run.get('source')} ({run.get('images')} images); seed {run.get('seed')}; "
            f"release JPEG q85 stage: {'on' if run.get('release_jpeg') else 'off'}; "
            f"jax {run.get('jax')}, imagenet_cp {run.get('imagenet_cp')}; "
            f"{run.get('tasks_done')}/{run.get('tasks_planned')} tasks.", ""]
  for module in sections():
    lines += module.section(results)
  return "\n".join(lines)


def plots(results: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  """Every suite's PNG plots into ``directory``."""
  return [path for module in sections() for path in module.plots(results, directory)]


def write_all(results: dict, directory, model: str) -> list[pathlib.Path]:
  """results.csv, report.md and the plots into ``directory`` (results.json is the caller's)."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  write_csv(results, directory / "results.csv")
  write_text(directory / "report.md", markdown(results, model))
  return [directory / "results.csv", directory / "report.md"] + plots(results, directory)
