"""Writes built tiny_imagenet_c / tiny_imagenet_p configs in the original release's folder layout.

The released Tiny-ImageNet-C/-P are folder trees that ``torchvision.datasets.ImageFolder`` (and
the original evaluation scripts) read; this writes the same trees from our builds:

  -C  ``<corruption>/<severity>/<wnid>/<file>``  the stored JPEG q85 bytes themselves
      (``make_tinyimagenet_c.py`` saved PIL JPEG q85, optimize: so do the builders)
  -P  ``<config>/<wnid>/<stem>/img<t>.png``      the stored frames of one sequence, named as
      ``make_tinyimagenet_p.py`` wrote them before ffmpeg turned them into ``<stem>.mp4``
      (libx264); the H.264 step is not done (``_jpeg`` configs: ``img<t>.jpg``)

``<file>`` is the example's file name without a folder (``val_123.JPEG``; a crop's own name),
``<stem>`` the same without its extension.  Stored bytes are copied, never re-encoded, so a
round trip gives back exactly what was built.  Each file is written under a temporary name and
renamed, so an interrupted export leaves no truncated image.
"""
from __future__ import annotations

import os
import pathlib
from typing import Callable, Iterator, Sequence

import tensorflow_datasets as tfds

import imagenet_cp.datasets  # noqa: F401  pylint: disable=unused-import  (registers the builders)

DATASETS = ("tiny_imagenet_c", "tiny_imagenet_p")
SPLIT = "validation"


def _builder_cls(dataset: str):
  if dataset not in DATASETS:
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
  return tfds.builder_cls(dataset)


def _check_config(dataset: str, config: str) -> None:
  """Only the release-like formats: -C's JPEG configs (the release's files are JPEG)."""
  parsed = _builder_cls(dataset).parse_config(config)
  if parsed is None:
    raise ValueError(f"{dataset} has no config {config!r}")
  if getattr(parsed, "image_format", "jpeg") != "jpeg":
    raise ValueError(f"{dataset}/{config} stores {parsed.image_format}, not the release's JPEG "
                     f"files: export {parsed.corruption}_{parsed.severity}")


def _built(dataset: str, config: str, data_dir) -> bool:
  return tfds.builder(f"{dataset}/{config}", data_dir=os.fspath(data_dir)).is_prepared()


def stored_examples(dataset: str, config: str, data_dir) -> Iterator[dict]:
  """A built config's examples with their encoded image / frame bytes (never decoded).

  ``data_source``'s ``SkipDecoding`` does not reach into a ``Sequence`` (TFDS 4.9.10 fails on
  the -P frames), so the records are parsed without decoding, as TFDS parses them first.
  """
  from tensorflow_datasets.core import example_parser  # pylint: disable=g-import-not-at-top
  name = f"{dataset}/{config}"
  try:
    source = tfds.data_source(name, data_dir=os.fspath(data_dir), split=SPLIT)
  except NotImplementedError as err:
    raise ValueError(f"{name} in {data_dir} is not an array_record build: build it with "
                     "launch.build_datasets (or tfds build --file_format array_record)") from err
  parser = example_parser.ExampleParserNp(source.dataset_info.features.get_serialized_info())
  for i in range(len(source)):
    yield parser.parse_example(source.data_source[i])


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def _write(path: pathlib.Path, data: bytes) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_bytes(data)
  os.replace(tmp, path)


def release_files(dataset: str, config: str, example: dict, wnids: Sequence[str]
                  ) -> list[tuple[str, bytes]]:
  """(relative path, bytes) of one example in the release layout."""
  wnid = wnids[int(example["label"])]
  name = os.path.basename(_text(example["file_name"]))
  if dataset == "tiny_imagenet_c":
    parsed = _builder_cls(dataset).parse_config(config)
    return [(f"{parsed.corruption}/{parsed.severity}/{wnid}/{name}", bytes(example["image"]))]
  extension = ".jpg" if config.endswith("_jpeg") else ".png"
  stem = os.path.splitext(name)[0]
  return [(f"{config}/{wnid}/{stem}/img{t}{extension}", bytes(frame))
          for t, frame in enumerate(example["frames"])]


def export(dataset: str, data_dir, out, names: Sequence[str] | None = None,
           log: Callable[[str], None] | None = print) -> list[pathlib.Path]:
  """Writes the release tree of ``dataset``'s configs built in ``data_dir`` under ``out``.

  Args:
    dataset: tiny_imagenet_c or tiny_imagenet_p.
    data_dir: the TFDS data_dir of the builds (array_record: read with tfds.data_source).
    out: the folder to write (created).
    names: configs (``fog_3``; -P: ``rotate``, ``gaussian_noise_2``, ``rotate_jpeg``); None:
      every listed config that is built.

  Returns:
    The written files, in example order per config.
  """
  cls = _builder_cls(dataset)
  data_dir = pathlib.Path(os.fspath(data_dir)).expanduser()
  if names is None:
    names = [c.name for c in cls.BUILDER_CONFIGS if _built(dataset, c.name, data_dir)]
    if not names:
      raise ValueError(f"no {dataset} config is built in {data_dir}")
  for config in names:
    _check_config(dataset, config)
    if not _built(dataset, config, data_dir):
      raise ValueError(f"{dataset}/{config} is not built in {data_dir}")
  out = pathlib.Path(os.fspath(out)).expanduser()
  written = []
  for config in dict.fromkeys(names):
    start = len(written)
    wnids = tfds.builder(f"{dataset}/{config}", data_dir=os.fspath(data_dir)).info.features[
        "label"].names
    for example in stored_examples(dataset, config, data_dir):
      for relative, data in release_files(dataset, config, example, wnids):
        _write(out / relative, data)
        written.append(out / relative)
    if log:
      log(f"{dataset}/{config}: wrote {len(written) - start} files under {out}")
  return written
