"""One model on the released ImageNet-C (or CIFAR-10/100-C) and on our regeneration of the same
images: per corruption and severity the error on each, their difference and a paired bootstrap
interval of it (``python -m metrics.compare_released``).

The two runs are ordinary corruption-suite runs in ``OUTPUT_DIR/released/`` and
``OUTPUT_DIR/regenerated/`` (so each resumes); the regenerated one evaluates exactly the
released run's images (their list is written to ``OUTPUT_DIR/images.txt`` and passed as the
image list; CIFAR: the same first N test images).  What to expect is in docs/evaluation.md: both
carry the JPEG q85 stage (ImageNet), but the original drew its noise unseeded, so the random
corruptions differ image by image and only their error rates can agree.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Callable, Sequence

import numpy as np

import imagenet_cp
from imagenet_cp.metrics.bootstrap import resample_weights
from imagenet_cp.suites import corruption as ev
from imagenet_cp.suites import released as _released
from imagenet_cp.suites.common import Task, write_json, write_text


@dataclasses.dataclass(frozen=True)
class CellComparison:
  """One (corruption, severity): errors on the released and regenerated images (fractions),
  released - regenerated, and its paired bootstrap 95% interval (None without resamples)."""
  corruption: str
  severity: int
  images: int
  released_error: float
  regenerated_error: float
  difference: float
  interval: tuple[float, float] | None


def paired_difference(released_wrong: np.ndarray, regenerated_wrong: np.ndarray,
                      replicates: int, seed: int = 0):
  """(difference of the error rates, its percentile 95% interval resampling images: one draw
  weights both runs' errors of an image together)."""
  diff = released_wrong.astype(np.float64) - regenerated_wrong.astype(np.float64)
  if not replicates:
    return float(diff.mean()), None
  weights = resample_weights(diff.shape[0], replicates, seed)
  means = weights @ diff / diff.shape[0]
  return float(diff.mean()), tuple(float(x) for x in np.percentile(means, [2.5, 97.5]))


def _records(run_dir: pathlib.Path, task: Task) -> dict:
  with np.load(run_dir / "tasks" / f"{task.file_stem}.npz") as data:
    return {k: data[k] for k in ("ids", "predictions")}


def _by_file_name(records: dict) -> dict:
  """{file name: prediction}: the runs key their images differently (``<wnid>/<file>`` or the
  file name alone), the file name is what both share."""
  return {str(i).rsplit("/", 1)[-1]: int(p) for i, p in zip(records["ids"], records["predictions"])}


def compare(apply_fn: Callable, variables, *, released_dir, output_dir,
            benchmark: str = "imagenet", imagenet_dir=None, cifar_dir=None,
            corruptions: Sequence[str] = imagenet_cp.BENCHMARK_CORRUPTIONS,
            severities: Sequence[int] = (1, 2, 3, 4, 5), image_list: str | None = None,
            max_images: int | None = None, batch_size: int = 32, seed: int = 0,
            bootstrap: int = 1000, model_name: str = "user model", progress: bool = True,
            log: Callable[[str], None] = print) -> list[CellComparison]:
  """Evaluates the model on both, writes ``compare_released.json`` / ``.md`` into
  ``output_dir`` and returns one ``CellComparison`` per (corruption, severity)."""
  output_dir = pathlib.Path(output_dir)
  if (imagenet_dir is None) == (benchmark == "imagenet") or (cifar_dir is None) == (
      benchmark != "imagenet"):
    raise ValueError("the regeneration needs the clean images: imagenet_dir= for ImageNet, "
                     "cifar_dir= for CIFAR (and only that one)")
  common = dict(benchmark=benchmark, imagenet_dir=imagenet_dir, cifar_dir=cifar_dir,
                corruptions=tuple(corruptions), severities=tuple(severities), perturbations=(),
                batch_size=batch_size, seed=seed, bootstrap=0, model_name=model_name,
                progress=progress, log=log)
  ev.evaluate(apply_fn, variables, source="released", released_dir=released_dir,
              image_list=image_list, max_images=max_images,
              output_dir=output_dir / "released", **common)
  tasks = ev.plan(corruptions, severities, ())
  config = ev.SuiteConfig(source="released", benchmark=benchmark, released_dir=str(released_dir),
                          image_list=image_list, max_images=max_images, cifar_dir=cifar_dir,
                          imagenet_dir=None if imagenet_dir is None else str(imagenet_dir))
  listing, _ = _released.open_release(config, tasks)
  if benchmark == "imagenet":
    (output_dir / "images.txt").write_text("".join(f"{i}\n" for i in listing.ids))
    ev.evaluate(apply_fn, variables, source="imagenet", image_list=str(output_dir / "images.txt"),
                output_dir=output_dir / "regenerated", **common)
  else:
    ev.evaluate(apply_fn, variables, max_images=len(listing.ids),
                output_dir=output_dir / "regenerated", **common)
  labels = {i.rsplit("/", 1)[-1]: int(l) for i, l in zip(listing.ids, listing.labels)}
  cells = [_compare_cell(output_dir, task, labels, bootstrap, seed) for task in tasks[1:]]
  write_json(output_dir / "compare_released.json",
             {"cells": [dataclasses.asdict(c) for c in cells], "released_dir": str(released_dir),
              "benchmark": benchmark, "model": model_name, "bootstrap": bootstrap})
  write_text(output_dir / "compare_released.md", markdown(cells))
  return cells


def _compare_cell(output_dir: pathlib.Path, task: Task, labels: dict, replicates: int,
                  seed: int) -> CellComparison:
  released = _by_file_name(_records(output_dir / "released", task))
  regenerated = _by_file_name(_records(output_dir / "regenerated", task))
  if set(released) != set(regenerated) or set(released) != set(labels):
    raise ValueError(f"{task.id}: the released and regenerated runs hold different images")
  names = sorted(labels)
  truth = np.array([labels[n] for n in names])
  wrong_released = np.array([released[n] for n in names]) != truth
  wrong_regenerated = np.array([regenerated[n] for n in names]) != truth
  diff, interval = paired_difference(wrong_released, wrong_regenerated, replicates, seed)
  return CellComparison(task.name, task.level, len(names), float(wrong_released.mean()),
                        float(wrong_regenerated.mean()), diff, interval)


def markdown(cells: Sequence[CellComparison]) -> str:
  """The comparison as a Markdown table (errors in %)."""
  lines = ["# Released vs regenerated", "",
           "| corruption | severity | images | released error | regenerated error | "
           "difference | 95% interval |", "|---|---|---|---|---|---|---|"]
  for c in cells:
    interval = ("-" if c.interval is None else
                f"[{100 * c.interval[0]:+.2f}, {100 * c.interval[1]:+.2f}]")
    lines.append(f"| {c.corruption} | {c.severity} | {c.images} | {100 * c.released_error:.2f} | "
                 f"{100 * c.regenerated_error:.2f} | {100 * c.difference:+.2f} | {interval} |")
  return "\n".join(lines) + "\n"
