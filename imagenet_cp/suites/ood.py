"""Natural robustness (out of distribution): ImageNet-ReaL, -V2, -A, -R and -Sketch from TFDS.

ARES-Bench evaluates natural robustness next to ImageNet-C on ImageNet-val with the ReaL
labels, ImageNet-V2, ImageNet-A, ImageNet-R and ImageNet-Sketch.  This module reads those
datasets as the TFDS builders write them (``tfds build <name> --data_dir=DIR``) and scores any
``apply_fn(variables, images in [0, 1]) -> logits [N, 1000]``:

* every TFDS builder labels with the 1000 ImageNet-1k classes (``ClassLabel`` over the
  imagenet2012 wnids, sorted), so the label of an example is its ImageNet-1k index;
* ImageNet-A and ImageNet-R hold only 200 of those classes; as their authors and timm do, the
  prediction is the argmax over those 200 classes' logits (``SUBSET_WNIDS``, mapped to
  ImageNet-1k indices through the imagenet2012 label list); the 1000-way accuracy is reported
  beside it;
* ImageNet-ReaL (Beyer et al. 2020): an image is correct when its top-1 prediction is in its
  set of real labels; images whose set is empty are excluded.  The accuracy on the original
  labels (all images) is reported beside it.

Images are decoded with PIL (``convert('RGB')``, as torchvision's ImageFolder does) and
preprocessed with ``imagenet_cp.preprocess`` (Resize 256 + CenterCrop 224, bit-exact to
torchvision), as for ImageNet-C; the datasets' specs and reading are in
``suites.ood_datasets``.  The model runs data-parallel over the local devices
(``suites.common.Classifier``).  Each dataset is read in fixed slices of ``chunk_size`` examples
(TFDS split slicing, ``test[a:b]``); each finished slice's per-example records (ids, labels,
predictions) are saved atomically with ``suites.common.Store`` under ``output_dir/ood/tasks/``,
so an interrupted run resumes where it stopped and gives identical results.  The folder is
locked while in use, ``ood/run.json`` pins the model and its weights' digest, and a saved slice
is reused only when it is this run's, of the dataset's version, with the slice's number of
examples and well-formed records (else it is recomputed, saying why).

With several processes (``jax.distributed``) each process reads and scores its own slices (the
slices not yet saved, dealt round-robin), on its local devices; each round's records are
all-gathered (``suites.distributed.gather_parts``), so every process ends with the records of
one process's run, in the same order, and identical results.  Process 0 alone reads and writes
``output_dir``; saved slices are numbered by dataset and position, not by process, so a rerun
with any number of processes reuses them.  Every process reads the TFDS data_dir itself.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import pathlib
import time
from typing import Any, Callable, Sequence

import jax
import numpy as np

import imagenet_cp
from imagenet_cp.suites import distributed
from imagenet_cp.suites.common import (Classifier, Model, Store, Task, batched, file_digest,
                                       model_identity, progress_bar, records_problem, text,
                                       with_results_json, write_text)
from imagenet_cp.suites.ood_datasets import (  # noqa: F401  (the suite's public names)
    IMAGENET_V2_CONFIGS, OOD_DATASETS, SUBSET_WNIDS, Dataset, built_datasets, dataset,
    decode_preprocess, imagenet_wnids, open_builder, read_slice, subset_indices)
from imagenet_cp.suites.report.ood import markdown, plot  # noqa: F401  (its report section)

SECTION = "ood"        # results.json key
AUTO_SOURCES = ()      # --suite=auto never runs it (there are no demo OOD datasets)
CHUNK = 1024   # examples per saved slice (the unit of resumption)
DECODE_THREADS = min(8, os.cpu_count() or 1)   # PIL decodes and resizes outside the GIL


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
  """What to evaluate and how (the arguments of ``evaluate_ood``, see there)."""
  datasets: Sequence[str] | str = OOD_DATASETS
  data_dir: str | None = None
  batch_size: int = 32
  max_images: int | None = None
  progress: bool = False
  chunk_size: int = CHUNK
  devices: Sequence[jax.Device] | None = None


def check(config: SuiteConfig) -> tuple[list, dict]:
  """The datasets' specs and builders; ValueError (on every process) for bad settings or a
  dataset that is unknown or not built, before hours go into other suites."""
  if config.max_images is not None and config.max_images < 1:
    raise ValueError(f"max_images must be >= 1, got {config.max_images}")
  if config.chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1, got {config.chunk_size}")
  return distributed.on_every_process(lambda: built_datasets(config.datasets, config.data_dir))


def describe(config: SuiteConfig) -> str:
  names = config.datasets.split(",") if isinstance(config.datasets, str) else config.datasets
  return f"ood suite: {', '.join(names)}"


# ----------------------------------------------------------------------------------------------
# Per-example records of one slice.


_PARTS = ("file_names", "labels", "top1", "top1_subset", "real_sizes", "real_labels")


def slice_records(ds: Dataset, examples, model: Classifier, subset: np.ndarray | None,
                  tick) -> dict:
  """Per-example records of a slice: ``file_names``, ``labels`` (ImageNet-1k, the original
  label for ReaL), ``top1`` (1000-way), ``top1_subset`` (subset datasets) and, for ReaL,
  ``real_sizes`` [n] and ``real_labels`` (every image's set, concatenated)."""
  parts = {k: [] for k in _PARTS}
  with concurrent.futures.ThreadPoolExecutor(DECODE_THREADS) as pool:
    for batch in batched(examples, model.batch_size):
      names = [text(e["file_name"]) for e in batch]
      pixels = np.stack(list(pool.map(decode_preprocess, [e["image"] for e in batch], names)))
      _add_batch(ds, parts, batch, names, model.top1(pixels, names, subset=subset, classes=1000))
      tick(len(batch))
  return _finish_records(ds, parts)


def _add_batch(ds: Dataset, parts: dict, batch, names, predictions) -> None:
  sub, full = predictions
  parts["file_names"] += names
  parts["top1"].append(full)
  parts["top1_subset"].append(sub)
  if ds.real:
    parts["labels"].append(np.array([e["original_label"] for e in batch], np.int32))
    sets = [np.asarray(e["real_label"], np.int32).reshape(-1) for e in batch]
    parts["real_sizes"].append(np.array([len(s) for s in sets], np.int32))
    parts["real_labels"] += sets
  else:
    parts["labels"].append(np.array([e["label"] for e in batch], np.int32))


def _finish_records(ds: Dataset, parts: dict) -> dict:
  cat = lambda arrays: np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
  records = {"file_names": np.array(parts["file_names"], dtype=str), "labels": cat(parts["labels"]),
             "top1": cat(parts["top1"])}
  if ds.subset:
    records["top1_subset"] = cat(parts["top1_subset"])
  if ds.real:
    records["real_sizes"] = cat(parts["real_sizes"])
    records["real_labels"] = cat(parts["real_labels"]).astype(np.int32)
  return records


def concat_records(parts: Sequence[dict]) -> dict:
  """Slices' records joined in order (``real_labels`` stays aligned through ``real_sizes``)."""
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def real_hits(top1: np.ndarray, sizes: np.ndarray, flat: np.ndarray) -> np.ndarray:
  """bool [n]: top-1 prediction in the image's set of real labels (False for an empty set)."""
  owner = np.repeat(np.arange(top1.shape[0]), sizes)
  hits = np.zeros(top1.shape[0], bool)
  hits[owner[flat == top1[owner]]] = True
  return hits


# ----------------------------------------------------------------------------------------------
# Records -> figures.


def _accuracy(correct: int, n: int) -> dict:
  accuracy = correct / n if n else None
  return {"correct": int(correct), "accuracy": accuracy,
          "error": None if accuracy is None else 1.0 - accuracy}


def dataset_summary(ds: Dataset, records: dict, version: str, split_size: int) -> dict:
  """One dataset's figures (fractions in [0, 1]) from its per-example records."""
  n = int(records["labels"].shape[0])
  out = {"title": ds.title, "tfds": ds.tfds_name, "version": version, "split": ds.split,
         "split_examples": split_size, "images": n,
         "example_ids_sha256": file_digest(list(records["file_names"]))}
  original = int((records["top1"] == records["labels"]).sum())
  if ds.subset:
    indices = subset_indices(ds.subset)
    out["label_space"] = f"{len(indices)}-class subset (argmax over its logits)"
    out["subset_indices"] = indices.tolist()
    out.update(_accuracy(int((records["top1_subset"] == records["labels"]).sum()), n))
    out["accuracy_1000"] = _accuracy(original, n)["accuracy"]
  elif ds.real:
    hits = real_hits(records["top1"], records["real_sizes"], records["real_labels"])
    labelled = int((records["real_sizes"] > 0).sum())
    out["label_space"] = "1000 classes, ReaL label sets (images with an empty set excluded)"
    out["real_images"], out["excluded_empty"] = labelled, n - labelled
    out.update(_accuracy(int(hits.sum()), labelled))
    out["original"] = _accuracy(original, n)
  else:
    out["label_space"] = "1000 classes"
    out.update(_accuracy(original, n))
  return out


def _check_labels(ds: Dataset, records: dict) -> None:
  if not ds.subset:
    return
  outside = ~np.isin(records["labels"], subset_indices(ds.subset))
  if outside.any():
    first = int(np.argmax(outside))
    raise ValueError(f"{ds.tfds_name}: {records['file_names'][first]} is labelled "
                     f"{int(records['labels'][first])}, outside the dataset's 200 classes")


# ----------------------------------------------------------------------------------------------
# The entry points.


def run(config: SuiteConfig, model: Model, output_dir=None,
        log: Callable[[str], None] = print) -> dict:
  """``evaluate_ood`` with its settings in ``config``."""
  specs, builders = check(config)
  started = time.time()
  classifier = Classifier(model, config.batch_size, devices=config.devices)
  run_info = dict(model_identity(model), max_images=config.max_images,
                  chunk_size=config.chunk_size,
                  preprocess="PIL RGB, Resize(256) + CenterCrop(224)")
  first = jax.process_index() == 0
  root = pathlib.Path(output_dir) / "ood" if output_dir is not None else None
  store = distributed.on_every_process(
      lambda: Store(root, run_info, log) if root is not None and first else None)
  with store or contextlib.nullcontext():  # releases the folder's lock
    return _run(config, specs, builders, classifier, run_info, root, store, started, log)


def _run(config: SuiteConfig, specs, builders, classifier: Classifier, run_info: dict, root,
         store: Store | None, started: float, log) -> dict:
  first = jax.process_index() == 0
  sizes = {ds.name: _dataset_size(ds, builders[ds.name], config.max_images) for ds in specs}
  bar = progress_bar(sum(sizes.values()), config.progress and first)
  devices_used = distributed.total(classifier.devices)
  results = {"datasets": {}, "run": {}}
  for ds in specs:
    builder = builders[ds.name]
    bar.set_description(ds.name)
    records = dataset_records(ds, builder, sizes[ds.name], classifier, store, config.chunk_size,
                              bar.update, log)
    _check_labels(ds, records)
    summary = dataset_summary(ds, records, str(builder.version),
                              builder.info.splits[ds.split].num_examples)
    if root is not None:
      summary["example_ids_file"] = str(_ids_path(root, ds))
    if store:
      write_text(_ids_path(root, ds), "".join(f"{name}\n" for name in records["file_names"]))
    results["datasets"][ds.name] = summary
    data_dir = None if config.data_dir is None else str(config.data_dir)
    results["run"] = dict(run_info, data_dir=data_dir, weights_file=classifier.model.weights_file,
                          jax=jax.__version__,
                          imagenet_cp=imagenet_cp.__version__, processes=jax.process_count(),
                          devices=devices_used, batch_size=classifier.batch_size,
                          seconds=round(time.time() - started, 1))
    with_results_json(store, results)
  bar.close()
  return results


def evaluate_ood(apply_fn: Callable, variables: Any, *,
                 datasets: Sequence[str] = OOD_DATASETS,
                 data_dir: str | os.PathLike | None = None,
                 batch_size: int = 32,
                 output_dir: str | os.PathLike | None = None,
                 max_images: int | None = None,
                 model_name: str = "user model",
                 progress: bool = False,
                 chunk_size: int = CHUNK,
                 devices: Sequence[jax.Device] | None = None,
                 log: Callable[[str], None] = print) -> dict:
  """Evaluates a classifier on built TFDS OOD datasets; returns a JSON-able dict.

  Args:
    apply_fn: ``apply_fn(variables, images) -> logits [N, 1000]``, images float32
      [N, 224, 224, 3] pixels in [0, 1] (``models.classifier`` gives one for every zoo model).
    variables: the model's variables.
    datasets: names of ``OOD_DATASETS`` (``imagenet_v2`` = matched-frequency) or
      ``imagenet_v2/<config>``, a list or a comma-separated string; all are checked to be
      built before any work starts.
    data_dir: the TFDS data_dir they were built in (None: TFDS's default).
    batch_size: each process's batch per step (rounded up to a multiple of its device count).
    output_dir: per-slice records in ``output_dir/ood/tasks`` (resumable), the figures in
      ``output_dir/ood/results.json`` and the evaluated ids in ``output_dir/ood/example_ids/``;
      None keeps everything in memory.
    max_images: only the first N examples of each dataset (in TFDS's stored order).
    chunk_size: examples per saved slice (the unit of resumption).
    devices: this process's devices to shard over (default: all its local devices).

  With several processes (``jax.distributed``) every process calls this with the same
  arguments; the slices are split over the processes, every process returns the complete,
  identical results (``run.processes``; ``run.devices`` counts all processes' devices) and
  process 0 writes the files.  A ValueError on one process is raised on all.

  Returns:
    ``{"datasets": {name: {...}}, "run": {...}}``; per dataset: ``images``, ``accuracy``,
    ``error``, ``correct``, ``split``, ``label_space``, ``example_ids_sha256`` and
    ``subset_indices`` + ``accuracy_1000`` (ImageNet-A/-R) or ``real_images``,
    ``excluded_empty`` + ``original`` (ReaL; ``accuracy`` is then the ReaL accuracy).
  """
  config = SuiteConfig(datasets=datasets, data_dir=data_dir, batch_size=batch_size,
                       max_images=max_images, progress=progress, chunk_size=chunk_size,
                       devices=devices)
  return run(config, Model(model_name, apply_fn, variables), output_dir, log)


def _dataset_size(ds: Dataset, builder, max_images: int | None) -> int:
  total = builder.info.splits[ds.split].num_examples
  return total if max_images is None else min(total, max_images)


def dataset_records(ds: Dataset, builder, n: int, model: Classifier, store: Store | None,
                    chunk_size: int, tick, log) -> dict:
  """Records of the first ``n`` examples, slice by slice; saved slices are loaded, not redone.

  With several processes only process 0 holds the store: it says which slices are saved and
  shares them; the slices left are dealt round-robin over the processes, one per process a
  round, and each round's records are gathered, so process 0 saves them at once and every
  process ends with every record, in slice order."""
  if n == 0:
    raise ValueError(f"{ds.tfds_name} has no examples in its {ds.split} split")
  bounds = [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]
  parts = _shared(ds, distributed.on_every_process(
      lambda: saved_slices(ds, builder, bounds, store)))
  if parts:
    log(f"{ds.name}: resumed {len(parts)} saved slice(s)")
    tick(sum(p["labels"].shape[0] for p in parts.values()))
  todo = [index for index in range(len(bounds)) if index not in parts]
  mine = todo[jax.process_index()::jax.process_count()]
  subset = subset_indices(ds.subset) if ds.subset else None
  for turn in range(-(-len(todo) // jax.process_count())):
    index = mine[turn] if turn < len(mine) else None
    local = distributed.on_every_process(
        lambda: {} if index is None else
        {index: computed_slice(ds, builder, bounds[index], model, subset, tick)})
    done = _shared(ds, local)
    tick(sum(p["labels"].shape[0] for i, p in done.items() if i not in local))
    for i, records in sorted(done.items()):
      if store:
        store.save(Task("ood", ds.name, i), dict(records, version=np.array(str(builder.version))))
      parts[i] = records
  return concat_records([parts[i] for i in range(len(bounds))])


def saved_slices(ds: Dataset, builder, bounds, store: Store | None) -> dict:
  """{slice index: records} of the slices saved in ``store`` (none without one) that are sound
  (``slice_problem``); the others are recomputed (``Store.load`` says why)."""
  parts = {}
  for index, (start, stop) in enumerate(bounds):
    task = Task("ood", ds.name, index)
    saved = store.load(task, lambda r, n=stop - start: slice_problem(ds, r, n, builder.version)
                       ) if store else None
    if saved is not None:
      parts[index] = {k: v for k, v in saved.items() if k != "version"}
  return parts


def slice_problem(ds: Dataset, saved: dict, n: int, version) -> str | None:
  """Why ``saved`` is not a slice of ``n`` examples of ``ds`` at ``version`` (None: it is)."""
  if str(saved.get("version")) != str(version):
    return f"holds version {saved.get('version')} of the dataset, not {version}"
  keys = [k for k in _finish_records(ds, {k: [] for k in _PARTS})]
  missing = [k for k in keys if k not in saved]
  if missing:
    return f"lacks {', '.join(missing)}"
  ids = saved["file_names"]
  if ids.ndim != 1 or ids.shape[0] != n or ids.dtype.kind not in "US":
    return f"holds {ids.shape[0] if ids.ndim else 0} examples, the slice has {n}"
  integers = {k: "iu" for k in keys if k != "file_names"}
  reason = records_problem(saved, list(ids), id_key="file_names", kinds=integers,
                           ragged=("real_labels", "version"))
  if reason is None and ds.real and int(saved["real_sizes"].sum()) != saved["real_labels"].shape[0]:
    return "its ReaL label sets do not add up"
  return reason


def computed_slice(ds: Dataset, builder, bound, model: Classifier, subset, tick) -> dict:
  """Records of examples ``bound = (start, stop)``, read and scored now."""
  start, stop = bound
  records = slice_records(ds, read_slice(builder, ds.split, start, stop), model, subset, tick)
  if records["labels"].shape[0] != stop - start:
    raise ValueError(f"{ds.tfds_name}[{start}:{stop}] gave {records['labels'].shape[0]} "
                     "examples: the build is incomplete")
  return records


def _shared(ds: Dataset, parts: dict) -> dict:
  """Every process's {slice index: records} on every process (one process: ``parts``)."""
  if jax.process_count() == 1:
    return parts
  return distributed.gather_parts(parts, _finish_records(ds, {k: [] for k in _PARTS}))


def _ids_path(root: pathlib.Path, ds: Dataset) -> pathlib.Path:
  return root / "example_ids" / (ds.name.replace("/", "__") + ".txt")
