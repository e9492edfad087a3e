"""The corruption suite's benchmarks at other image sizes, as data: CIFAR-10/100 (32 px), Tiny
ImageNet and ImageNet 64x64 (64 px) and the 299 px (Inception) ImageNet-C.

Each ``Benchmark`` names the side the model takes, its classes, its -P constant set
(``perturbations.sets``), whether its release has the JPEG q85 stage, and, for the photo
sources, how a photo becomes the -C and the -P input: the pixel kinds of the TFDS builders
(``datasets.common.PIXEL_KINDS``), so the on-the-fly images are those the builders store.

  benchmark      clean images                         -C input          -P input      JPEG
  cifar10/100    the CIFAR test set (cifar_dir)       the 32x32 image   the same      no
  tiny_imagenet  Tiny ImageNet val (tiny_imagenet_dir)  Resize((64, 64))  Resize(64)    q85
  imagenet64     ImageNet val (imagenet_dir)          Resize((64, 64))  the same      q85
  imagenet299    ImageNet val (imagenet_dir)          0.875 crop, 299   the same      q85

Ids and key names of the photo sources are the builders' file names (``val_0.JPEG``,
``ILSVRC2012_val_00000001.JPEG``; a Tiny crops folder: ``<wnid>/<file>``).  The sequences that
start from the source photo (``SequenceSet.source_sequences``) read it again per video
(``photos``).  No published normaliser exists at these sizes: the figures are unnormalised.

With ``tfds_data_dir=`` the -C images and -P frames are read from the builds
(``images.TfdsSource``) and, without the clean images' folder, the run's images are the ones
the builds store (``build_listing``): their file names and labels, no clean task.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from imagenet_cp import perturbations
from imagenet_cp.perturbations import sets
from imagenet_cp.suites.common import Task
from imagenet_cp.suites.images import Chunk, SourceListing, TfdsSource, check_max_images

CANVAS_MULTIPLE = 64  # Tiny's Resize(64) inputs: one canvas width for square photos


@dataclasses.dataclass(frozen=True)
class Benchmark:
  name: str
  size: int              # the side of the images the model takes
  classes: int           # the logits a model must return (None: any, CIFAR's rule)
  sequences: str         # the -P constant set (perturbations.sets)
  release_jpeg: bool     # the release's JPEG q85 stage (the default of release_jpeg=)
  source_arg: str        # the argument naming the clean images' folder
  corruption_pixels: str | None = None  # datasets.common pixel kind of the -C input
  sequence_pixels: str | None = None    # ... of the -P set input

  @property
  def from_photos(self) -> bool:
    return self.corruption_pixels is not None


BENCHMARKS = {b.name: b for b in (
    Benchmark("cifar10", 32, 10, "cifar", False, "cifar_dir"),
    Benchmark("cifar100", 32, 100, "cifar", False, "cifar_dir"),
    Benchmark("tiny_imagenet", 64, 200, "tiny_imagenet", True, "tiny_imagenet_dir",
              "resize64x64", "resize64"),
    Benchmark("imagenet64", 64, 1000, "imagenet64", True, "imagenet_dir",
              "resize64x64", "resize64x64"),
    Benchmark("imagenet299", 299, 1000, "imagenet299", True, "imagenet_dir",
              "crop299", "crop299"),
)}
PHOTO_BENCHMARKS = tuple(n for n, b in BENCHMARKS.items() if b.from_photos)


def get(name: str) -> Benchmark | None:
  """The benchmark ``name`` (None for ImageNet's 224, which the suite's own code handles)."""
  return BENCHMARKS.get(name)


def _common():
  # The builders' package registers them with TFDS on import: only the photo benchmarks pay it.
  from imagenet_cp.datasets import common  # pylint: disable=g-import-not-at-top
  return common


def photo_items(benchmark: Benchmark, directory) -> tuple[list, str, dict]:
  """(items, location, extra identity) of the benchmark's clean photos in ``directory``."""
  if directory is None:
    raise ValueError(f"benchmark={benchmark.name!r} needs {benchmark.source_arg}= (its clean "
                     "images)")
  if benchmark.name == "tiny_imagenet":
    from imagenet_cp.datasets import tiny_imagenet  # pylint: disable=g-import-not-at-top
    layout, items = tiny_imagenet.list_items(directory)
    return items, os.fspath(directory), {"source_layout": layout}
  return _common().list_items("imagenet", directory), os.fspath(directory), {}


def read_photos(items: Sequence) -> list[np.ndarray]:
  """The decoded photos of ``items`` (uint8 [H, W, 3] each)."""
  common = _common()
  return [common.load_pixels(it, common.PHOTO) for it in items]


def photo_chunk(benchmark: Benchmark, items: Sequence, ids: Sequence[str] | None = None) -> Chunk:
  """The -C inputs (``crops``) and -P set inputs (``canvas`` + true ``sizes``) of ``items``
  (ids: their file names unless given)."""
  common = _common()
  photos = read_photos(items)
  crops = np.stack([common.PIXEL_KINDS[benchmark.corruption_pixels](p) for p in photos])
  inputs = [common.PIXEL_KINDS[benchmark.sequence_pixels](p) for p in photos]
  side = sets.get_set(benchmark.sequences).size
  fixed = sets.get_set(benchmark.sequences).fixed_input()
  canvas, sizes = perturbations.pad_to_canvas(
      inputs, multiple=CANVAS_MULTIPLE, canvas_hw=(side, side) if fixed else None,
      benchmark=benchmark.sequences)
  names = [it.file_name for it in items]
  return Chunk(list(ids or names), names, np.array([it.label for it in items], np.int32),
               np.ascontiguousarray(crops), canvas, sizes)


def photo_listing(benchmark: Benchmark, directory, max_images: int | None) -> SourceListing:
  """The first ``max_images`` clean photos of a photo benchmark, listed (ids: file names)."""
  check_max_images(max_images)
  items, location, extra = photo_items(benchmark, directory)
  items = items[:None if max_images is None else int(max_images)]
  if not items:
    raise ValueError(f"no source images in {location}")
  names = [it.file_name for it in items]
  return SourceListing(
      benchmark.name, location, names, names, np.array([it.label for it in items], np.int32),
      [encoded_size(it) for it in items], read=None,
      chunk=lambda a, b: photo_chunk(benchmark, items[a:b]), extra=extra,
      photos=_reader_by_name(items))


def encoded_size(item) -> int:
  """The encoded size of an item where its locator records it (-1: a plain file, not read)."""
  sizes = {"tar": 3, "zip": 3}
  index = sizes.get(item.locator[0])
  if index is not None:
    return int(item.locator[index])
  return os.path.getsize(item.locator[1]) if item.locator[0] == "file" else -1


def _reader_by_name(items: Sequence):
  """ids (file names) -> their decoded photos (what the source-photo sequences start from)."""
  by_name = {it.file_name: it for it in items}
  return lambda ids: read_photos([by_name[i] for i in ids])


def build_listing(benchmark: Benchmark, tfds: TfdsSource, tasks: Sequence[Task],
                  max_images: int | None) -> SourceListing:
  """The images the builds store, listed from the first planned build (a -C one if any: its
  pixels are left encoded): file names in sorted order (CIFAR's: the test set's), the stored
  labels, the first ``max_images``.  No clean images: the builds hold none."""
  check_max_images(max_images)
  stored = [t for t in tasks if t.kind == "corruption"] + [
      t for t in tasks if t.kind == "perturbation"]
  if not stored:
    raise ValueError(f"tfds_data_dir= with benchmark={benchmark.name!r} and no corruption or "
                     f"perturbation: the builds hold no clean images (pass "
                     f"{benchmark.source_arg}= for the clean task)")
  names, labels = tfds.names_and_labels(stored[0])
  order = sorted(range(len(names)), key=names.__getitem__)[:None if max_images is None
                                                             else int(max_images)]
  names = [names[i] for i in order]
  if not names:
    raise ValueError(f"{tfds.dataset(stored[0])} in {tfds.data_dir} holds no examples")
  return SourceListing(benchmark.name, f"tfds {tfds.data_dir} ({tfds.dataset(stored[0])})",
                       names, names, labels[order], [0] * len(names), read=None)
