"""Writes built cifar10_c / cifar100_c / cifar10_p / cifar100_p configs in the original release's layout.

Users of the released files load ``.npy`` arrays; this writes the same files from our builds, so
their loaders work unchanged:

  -C  ``<corruption>.npy``  uint8 [5N, 32, 32, 3], severity-major: severity 1's N test images in
                            test-set order, then severity 2's, ... (``make_cifar_c.py``)
      ``labels.npy``        uint8 [5N], the test labels x 5
  -P  ``<config>.npy``      uint8 [N, T, 32, 32, 3] (``make_cifar_p.py``; noise levels 2 and 3
                            as ``gaussian_noise_2.npy`` ...); the release has no labels file

N is the test set's size (10,000; a stand-in's size for a stand-in build).  Only complete
groups are written: a corruption needs all five severities built.  Each file is written to a
temporary name and renamed, so an interrupted export leaves no truncated ``.npy``.
"""
from __future__ import annotations

import os
import pathlib
from typing import Callable, Sequence

import numpy as np
import tensorflow_datasets as tfds

import imagenet_cp.datasets  # noqa: F401  pylint: disable=unused-import  (registers the builders)
from imagenet_cp import cifar, corruptions
from imagenet_cp.datasets import cifar_builder

DATASETS = ("cifar10_c", "cifar100_c", "cifar10_p", "cifar100_p")


def _builder_cls(dataset: str):
  if dataset not in DATASETS:
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
  return tfds.builder_cls(dataset)


def release_files(dataset: str) -> dict[str, list[str]]:
  """Release file stem -> the configs it holds, in row order."""
  cls = _builder_cls(dataset)
  if issubclass(cls, cifar_builder.CifarCBuilder):
    return {c: [f"{c}_{s}" for s in corruptions.SEVERITIES] for c in corruptions.CORRUPTIONS}
  return {c.name: [c.name] for c in cls.BUILDER_CONFIGS}


def _is_built(dataset: str, config: str, data_dir) -> bool:
  return tfds.builder(f"{dataset}/{config}", data_dir=os.fspath(data_dir)).is_prepared()


def read_config(dataset: str, config: str, data_dir) -> tuple[np.ndarray, np.ndarray]:
  """A built config's pixels (``image`` or ``frames``) and labels, in test-set order."""
  name = f"{dataset}/{config}"
  try:
    source = tfds.data_source(name, data_dir=os.fspath(data_dir), split=cifar_builder.SPLIT)
    examples = (source[i] for i in range(len(source)))
  except NotImplementedError:  # A tfrecord build: tf.data reads it (needs TensorFlow).
    examples = tfds.as_numpy(tfds.load(name, data_dir=os.fspath(data_dir),
                                       split=cifar_builder.SPLIT, download=False))
  pixels, labels, names = [], [], []
  for ex in examples:
    pixels.append(np.asarray(ex["image"] if "image" in ex else ex["frames"], np.uint8))
    labels.append(int(ex["label"]))
    names.append(ex["file_name"].decode() if isinstance(ex["file_name"], bytes)
                 else str(ex["file_name"]))
  order = np.argsort(names, kind="stable")
  if [names[i] for i in order] != [cifar.file_name(i) for i in range(len(names))]:
    raise ValueError(f"{name} in {data_dir} does not hold test/00000 ... test/{len(names) - 1:05d} "
                     "exactly once each: rebuild it")
  return np.stack([pixels[i] for i in order]), np.asarray(labels)[order]


def _save(path: pathlib.Path, arrays: Sequence[np.ndarray]) -> None:
  """Concatenates ``arrays`` along axis 0 into ``path`` (temp file, then rename)."""
  shape = (sum(len(a) for a in arrays),) + arrays[0].shape[1:]
  tmp = path.with_name(path.name + ".tmp")
  out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
  start = 0
  for a in arrays:
    out[start:start + len(a)] = a
    start += len(a)
  out.flush()
  del out
  os.replace(tmp, path)


def export(dataset: str, data_dir, out, names: Sequence[str] | None = None,
           log: Callable[[str], None] | None = print) -> list[pathlib.Path]:
  """Writes the release files of ``dataset`` from the configs built in ``data_dir`` to ``out``.

  Args:
    dataset: cifar10_c, cifar100_c, cifar10_p or cifar100_p.
    data_dir: the TFDS data_dir of the builds (array_record, or tfrecord with TensorFlow).
    out: the folder to write (created).
    names: release file stems (corruptions for -C, configs for -P); None: every one whose configs
      are all built (an incomplete one is reported and skipped).

  Returns:
    The written paths (``labels.npy`` last for -C).
  """
  files = release_files(dataset)
  data_dir = pathlib.Path(os.fspath(data_dir)).expanduser()
  if names is None:
    chosen = []
    for stem, configs in files.items():
      built = [c for c in configs if _is_built(dataset, c, data_dir)]
      if built and len(built) < len(configs) and log:
        log(f"{dataset}: skipping {stem}: {sorted(set(configs) - set(built))} not built")
      if len(built) == len(configs):
        chosen.append(stem)
    if not chosen:
      raise ValueError(f"no complete {dataset} group is built in {data_dir} "
                       f"(-C needs all five severities of a corruption)")
  else:
    chosen = list(dict.fromkeys(names))
    for stem in chosen:
      if stem not in files:
        raise ValueError(f"{dataset} has no release file {stem}.npy; expected one of "
                         f"{', '.join(files)}")
      missing = [c for c in files[stem] if not _is_built(dataset, c, data_dir)]
      if missing:
        raise ValueError(f"{dataset}/{stem}: {', '.join(missing)} not built in {data_dir}")
  out = pathlib.Path(os.fspath(out)).expanduser()
  out.mkdir(parents=True, exist_ok=True)
  written, labels = [], None
  for stem in chosen:
    parts = [read_config(dataset, c, data_dir) for c in files[stem]]
    for config, (pixels, part_labels) in zip(files[stem], parts):
      if labels is None:
        labels = part_labels
      elif not np.array_equal(part_labels, labels):
        raise ValueError(f"{dataset}/{config} has other labels (or another test set) than "
                         f"{dataset}/{files[chosen[0]][0]}")
    _save(out / f"{stem}.npy", [p for p, _ in parts])
    written.append(out / f"{stem}.npy")
    if log:
      log(f"{dataset}: wrote {written[-1]} {(sum(len(p) for p, _ in parts),) + parts[0][0].shape[1:]}")
  if issubclass(_builder_cls(dataset), cifar_builder.CifarCBuilder):
    _save(out / "labels.npy", [np.tile(labels.astype(np.uint8), len(corruptions.SEVERITIES))])
    written.append(out / "labels.npy")
  return written
