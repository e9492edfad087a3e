"""The suites' images: the source photos preprocessed once (``ImageCache``) and the built TFDS
ImageNet-C / ImageNet-P datasets (``TfdsSource``).

Sources: 'demo' (the packaged photos) or 'imagenet' (the validation set: the official tar or an
extracted folder), in file-name order (``imagenet_cp.sources``).  Each image is decoded, resized
(shorter side 256) and kept twice: its 224 center crop (the ImageNet-C and adversarial input) and
the resized image on a padded canvas (the ImageNet-P input).  Chunks of ``chunk_size`` images are
the unit split between processes (round-robin) and, with a directory, cached as ``.npz`` files.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Iterable, Iterator, Sequence

import jax
import numpy as np

import imagenet_cp
from imagenet_cp import perturbations as _perturbations
from imagenet_cp import sources
from imagenet_cp.metrics.baselines import NOISE_PERTURBATIONS as NOISE_SEQUENCES
from imagenet_cp.preprocess import center_crop
from imagenet_cp.suites.common import Task, batched, readable_npz, save_npz

CHUNK = 256          # images per cache chunk (one padded ImageNet-P canvas per chunk)
CANVAS_MULTIPLE = 128


def source_examples(source: str, imagenet_dir, max_images: int | None):
  """The source's examples ('demo' or 'imagenet'), in file-name order, the first ``max_images``."""
  if source == "demo":
    examples = sources.demo_examples()
  elif source == "imagenet":
    examples = sources.imagenet_val_examples(imagenet_dir)
  else:
    raise ValueError(f"unknown source {source!r}; expected 'demo' or 'imagenet'")
  if max_images is not None:
    examples = (e for i, e in enumerate(examples) if i < max_images)
  return examples


def sequence_key_level(name: str, difficulty: int) -> int:
  """The level that enters a sequence's example key: only the noise sequences' data changes with
  difficulty (the separate ``_2``/``_3`` datasets); the others are one dataset whose difficulty
  is a stride applied by the metrics."""
  return difficulty if name in NOISE_SEQUENCES else 1


# ----------------------------------------------------------------------------------------------
# Decoded and preprocessed once, reused by every task.


@dataclasses.dataclass
class Chunk:
  file_names: list[str]
  labels: np.ndarray        # int32 [n]
  crops: np.ndarray         # uint8 [n, 224, 224, 3]   (ImageNet-C input)
  canvas: np.ndarray        # uint8 [n, Hc, Wc, 3]     (Resize(256) images, top-left aligned)
  sizes: np.ndarray         # int32 [n, 2]             true (height, width) on the canvas


def _chunk_from_examples(examples: Sequence[sources.Example]) -> Chunk:
  resized = [imagenet_cp.resize_short_side(sources.decode(e)) for e in examples]
  crops = np.stack([center_crop(r) for r in resized])
  canvas, sizes = _perturbations.pad_to_canvas(resized, multiple=CANVAS_MULTIPLE)
  return Chunk([e.file_name for e in examples], np.array([e.label for e in examples], np.int32),
               crops, canvas, sizes)


class ImageCache:
  """Preprocessed chunks of the source images, in memory or as ``.npz`` files in ``directory``."""

  def __init__(self, examples: Iterable[sources.Example], directory: pathlib.Path | None = None,
               process_index: int = 0, process_count: int = 1, chunk_size: int = CHUNK):
    self._dir = directory
    self._memory: list[Chunk] = []
    self._paths: list[pathlib.Path] = []
    for index, batch in enumerate(batched(examples, chunk_size)):
      if index % process_count != process_index:
        continue
      self._add(index, batch)

  def _add(self, index: int, examples: Sequence[sources.Example]) -> None:
    if self._dir is None:
      self._memory.append(_chunk_from_examples(examples))
      return
    path = self._dir / f"chunk_{index:05d}.npz"
    if not readable_npz(path, "crops"):
      save_npz(path, dataclasses.asdict(_chunk_from_examples(examples)))
    self._paths.append(path)

  def __iter__(self) -> Iterator[Chunk]:
    yield from self._memory
    for path in self._paths:
      with np.load(path) as data:
        yield Chunk(list(data["file_names"]), data["labels"], data["crops"], data["canvas"],
                    data["sizes"])

  def __len__(self) -> int:
    return len(self._memory) + len(self._paths)


# ----------------------------------------------------------------------------------------------
# The datasets the TFDS builders wrote (read instead of generating on the fly).


@dataclasses.dataclass
class TfdsSource:
  """Built ``imagenet_c[_demo]`` / ``imagenet_p[_demo]`` datasets under ``data_dir``.

  ``image_format`` picks the ImageNet-C variant: 'jpeg' (PIL q85, like the release), 'png'
  (lossless ``release_jpeg`` pixels: identical to the on-the-fly input) or 'raw' (no JPEG stage).
  ImageNet-P frames are read from the default (lossless PNG) configs.  Records carry file names,
  so TFDS's on-disk order and any split across processes do not matter.
  """
  data_dir: str
  demo: bool
  image_format: str = "jpeg"

  def __post_init__(self):
    if self.image_format not in ("jpeg", "png", "raw"):
      raise ValueError(f"unknown ImageNet-C image format {self.image_format!r}: jpeg, png or raw")

  @property
  def applies_release_jpeg(self) -> bool:
    return self.image_format != "raw"

  def dataset(self, task: Task) -> str:
    import imagenet_cp.datasets  # pylint: disable=g-import-not-at-top,unused-import
    from imagenet_cp.datasets.imagenet_c import imagenet_c_dataset_builder as c_builder  # pylint: disable=g-import-not-at-top
    from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder as p_builder  # pylint: disable=g-import-not-at-top
    suffix = "_demo" if self.demo else ""
    if task.kind == "corruption":
      return f"imagenet_c{suffix}/{c_builder.config_name(task.name, task.level, self.image_format)}"
    level = sequence_key_level(task.name, task.level)
    return f"imagenet_p{suffix}/{p_builder.config_name(task.name, level)}"

  def _open(self, task: Task):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    name = self.dataset(task)
    try:
      return tfds.data_source(name, data_dir=self.data_dir, split="validation")
    except Exception as err:  # TFDS raises several types for a missing build.
      raise ValueError(
          f"{name} is not built in {self.data_dir} ({type(err).__name__}: {err}); build it with "
          f"`python -m launch.build_datasets` or `tfds build` (docs/datasets.md)") from err

  def batches(self, task: Task, size: int) -> Iterator[list[dict]]:
    """This process's share of the stored examples (every process_count-th record), ``size`` at
    a time."""
    source = self._open(task)
    mine = range(jax.process_index(), len(source), jax.process_count())
    for start in range(0, len(mine), size):
      yield [source[i] for i in mine[start:start + size]]
