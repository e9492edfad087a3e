"""The evaluation suites and their registry.

Each suite is one module of this package, named in ``NAMES`` (the order they run in), with:

  SECTION          its results.json key (None: its figures are the file's top level)
  AUTO_SOURCES     the sources ('demo', 'imagenet') on which ``--suite=auto`` runs it
  SuiteConfig      a frozen dataclass of its settings; fields named like a shared flag of
                   ``python -m metrics.run`` (source, imagenet_dir, max_images, batch_size, seed,
                   progress) take that flag's value
  check(config)    ValueError for bad settings or missing data, before any suite starts
  describe(config) the line announcing it (or None)
  run(config, model, output_dir=None, log=print) -> its results (``common.Model`` names the model)

and its report section in ``report/<name>.py``.  A new suite is one more module and one more
name here; ``run_suites`` runs any of them on one model and keeps one results.json.
"""
from __future__ import annotations

import contextlib
import importlib
import pathlib
from typing import Callable

import jax

from imagenet_cp.suites import common

NAMES = ("corruption", "adversarial", "ood", "autoattack")


def get(name: str):
  """The suite module called ``name``."""
  if name not in NAMES:
    raise ValueError(f"unknown suite {name!r}; expected one of {', '.join(NAMES)}")
  return importlib.import_module(f"{__name__}.{name}")


def auto(source: str) -> tuple[str, ...]:
  """The suites ``--suite=auto`` runs on ``source``."""
  return tuple(name for name in NAMES if source in get(name).AUTO_SOURCES)


def run_suites(model: common.Model, configs: dict, output_dir=None,
               log: Callable[[str], None] = print) -> dict:
  """Runs the suites of ``configs`` ({name: its SuiteConfig}) on ``model``, in ``NAMES`` order;
  returns the one results.json dict of them all.

  The suite without a section (the corruption suite) writes ``output_dir/results.json`` itself;
  every other adds its section, and the file is rewritten (by process 0) after each.  Without
  the corruption suite the first section's run info (less its config) becomes the file's.
  Process 0 holds ``output_dir``'s lock (``common.DirectoryLock``) from the first suite to the
  last, so no other run interleaves its results with these.
  """
  unknown = sorted(set(configs) - set(NAMES))
  if unknown:
    raise ValueError(f"unknown suite(s) {unknown}; expected some of {', '.join(NAMES)}")
  lock = (common.DirectoryLock(output_dir) if output_dir is not None and jax.process_index() == 0
          else contextlib.nullcontext())
  with lock:
    return _run_suites(model, configs, output_dir, log)


def _run_suites(model: common.Model, configs: dict, output_dir, log) -> dict:
  results = {"schema_version": common.SCHEMA_VERSION}
  for name in (n for n in NAMES if n in configs):
    suite, config = get(name), configs[name]
    line = suite.describe(config)
    if line:
      log(line)
    section = suite.run(config, model, output_dir, log)
    if suite.SECTION is None:
      results.update(section)
      continue
    results[suite.SECTION] = section
    results.setdefault("run", {k: v for k, v in section.get("run", {}).items() if k != "config"})
    results["run"].setdefault("warning", "DEMO on the packaged photos: not ImageNet"
                              if getattr(config, "source", None) == "demo" else None)
    if output_dir is not None and jax.process_index() == 0:
      common.write_json(pathlib.Path(output_dir) / "results.json", results)
  return results
