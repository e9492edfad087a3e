"""The suites' images: the source photos listed (``SourceListing``) and preprocessed once
(``ImageCache``), and the built TFDS ImageNet-C / ImageNet-P datasets and those of the other
benchmarks (``TfdsSource``).

Sources: 'demo' (the packaged photos) or 'imagenet' (the validation set: the official tar or an
extracted folder), in file-name order (``imagenet_cp.sources``); the user's own data is listed
by ``suites.own_data`` into the same ``SourceListing``.  The listing comes from the
source itself before any image is read: every image's id (its path relative to the source,
unique), file name, label and size in bytes; its digest is the run's record of which images it
used.  Each image is decoded, resized (shorter side 256) and kept twice: its 224 center crop
(the ImageNet-C and adversarial input) and the resized image on a padded canvas (the ImageNet-P
input).  Chunks of ``chunk_size`` images are the unit split between processes (round-robin)
and, with a directory, cached as ``.npz`` files that carry the digest of the listing they were
built from: a chunk whose digest differs (other images, another chunk size, another Pillow) is
rebuilt, never reused.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pathlib
from typing import Callable, Iterator, Sequence

import jax
import numpy as np
from PIL import Image

import imagenet_cp
from imagenet_cp import perturbations as _perturbations
from imagenet_cp import sources
from imagenet_cp.metrics.baselines import NOISE_PERTURBATIONS as NOISE_SEQUENCES
from imagenet_cp import image_lists
from imagenet_cp.preprocess import DEFAULT_PREPROCESSING, center_crop, robustbench_preprocess
from imagenet_cp.suites.common import (CORRUPT_NPZ, DirectoryLock, Task, remove_orphans,
                                       save_npz, text)

CHUNK = 256          # images per cache chunk (one padded ImageNet-P canvas per chunk)
CANVAS_MULTIPLE = 128
CACHE_FORMAT = 2     # 2: chunks carry their images' ids and the digest of their listing
_CHUNK_KEYS = ("ids", "file_names", "labels", "crops", "canvas", "sizes", "listing_sha256")


def check_max_images(max_images: int | None) -> None:
  if max_images is not None and (isinstance(max_images, bool) or int(max_images) != max_images
                                 or max_images < 1):
    raise ValueError(f"max_images must be a whole number >= 1 (or None for all), got {max_images!r}")


@dataclasses.dataclass
class SourceListing:
  """The images a run uses, in order, listed from the source before any is read.

  ``ids``: unique per image (the path relative to the source; the demo's file names);
  ``file_names``: base names (what the example keys derive from); ``labels``; ``sizes``: bytes of
  each encoded file.  ``read(start, stop)`` reads examples ``start:stop``; a source of decoded
  pixels gives ``chunk(start, stop)`` instead (``Chunk``, used as it is).  ``in_memory``: the
  images are in memory already (no cache files); ``extra``: more identity (e.g. the digest of
  given pixels), recorded and compared with the rest.
  """
  source: str
  location: str
  ids: list[str]
  file_names: list[str]
  labels: np.ndarray
  sizes: list[int]
  read: Callable[[int, int], list[sources.Example]] | None = dataclasses.field(repr=False,
                                                                                compare=False)
  chunk: Callable[[int, int], "Chunk"] | None = dataclasses.field(default=None, repr=False,
                                                                   compare=False)
  in_memory: bool = False
  extra: dict = dataclasses.field(default_factory=dict)
  # How the clean crops are made (``preprocess.PREPROCESSINGS``); another than the default is
  # recorded in ``extra``, so it enters the digest.
  preprocessing: str = DEFAULT_PREPROCESSING
  # ids -> decoded source photos, for the sequences that start from the photo (suites.sized).
  photos: Callable[[Sequence[str]], list[np.ndarray]] | None = dataclasses.field(
      default=None, repr=False, compare=False)

  def __post_init__(self):
    if len(set(self.ids)) != len(self.ids):
      seen, first = set(), None
      for i in self.ids:
        if i in seen:
          first = i
          break
        seen.add(i)
      raise ValueError(f"{self.location}: the id {first!r} names two images; ids must be unique")

  def __len__(self) -> int:
    return len(self.ids)

  def digest(self, start: int = 0, stop: int | None = None) -> str:
    """sha256 of the listing of images ``start:stop``: id, file name, label and size of each."""
    h = hashlib.sha256()
    if self.extra:
      h.update(json.dumps(self.extra, sort_keys=True).encode())
    for i in range(start, len(self.ids) if stop is None else stop):
      h.update(f"{self.ids[i]}\t{self.file_names[i]}\t{int(self.labels[i])}\t{self.sizes[i]}\n"
               .encode())
    return h.hexdigest()

  def identity(self) -> dict:
    """What a run records and compares about its images."""
    return {"source": self.source, "images": len(self), "source_sha256": self.digest(),
            **self.extra}

  def load(self, start: int, stop: int) -> "Chunk":
    """Images ``start:stop`` preprocessed (``Chunk``)."""
    if self.chunk is not None:
      return self.chunk(start, stop)
    return _chunk_from_examples(self.read(start, stop), self.preprocessing)

  @classmethod
  def from_examples(cls, examples: Sequence[sources.Example], source: str = "examples",
                    location: str = "examples in memory") -> "SourceListing":
    examples = list(examples)
    return cls(source, location, [e.id for e in examples], [e.file_name for e in examples],
               np.array([e.label for e in examples], np.int32), [len(e.data) for e in examples],
               lambda start, stop: examples[start:stop])


def source_listing(source: str, imagenet_dir, max_images: int | None, image_list=None,
                   preprocessing: str = DEFAULT_PREPROCESSING) -> SourceListing:
  """The first ``max_images`` images of 'demo' or 'imagenet' (the tar or folder in
  ``imagenet_dir``), listed; ValueError for an unknown or empty source.  ``image_list``: a
  ``image_lists`` name or file (ImageNet only): its images in its order; ``preprocessing``:
  how the clean crops are made (``preprocess.PREPROCESSINGS``)."""
  check_max_images(max_images)
  stop = None if max_images is None else int(max_images)
  if image_list is not None and source != "imagenet":
    raise ValueError(f"image_list= selects ImageNet validation images; the source is {source!r}")
  if source == "demo":
    listing = SourceListing.from_examples(sources.demo_examples()[:stop], "demo",
                                          "the packaged demo photos")
  elif source == "imagenet":
    path, files = sources.list_imagenet_val(imagenet_dir)
    extra = {}
    if image_list is not None:
      chosen = image_lists.load(image_list)
      wnids = [f.id.split("/")[-2] if "/" in f.id else None for f in files]
      files = [files[i] for i in image_lists.select(chosen, [f.file_name for f in files], wnids,
                                                    str(path))]
      extra = chosen.identity()
    files = files[:stop]

    def read(start: int, end: int) -> list[sources.Example]:
      with open(path, "rb") if path.is_file() else contextlib.nullcontext() as handle:
        return [sources.Example(f.file_name, f.label, sources.read_source_file(f, handle), f.id)
                for f in files[start:end]]

    listing = SourceListing("imagenet", str(path), [f.id for f in files],
                            [f.file_name for f in files], np.array([f.label for f in files], np.int32),
                            [f.size for f in files], read, extra=extra)
  else:
    raise ValueError(f"unknown source {source!r}; expected 'demo' or 'imagenet'")
  if not len(listing):
    raise ValueError(f"no source images in {listing.location}")
  return with_preprocessing(listing, preprocessing)


def with_preprocessing(listing: SourceListing, preprocessing: str) -> SourceListing:
  """``listing`` making its clean crops with ``preprocessing`` (recorded unless the default)."""
  robustbench_preprocess(np.zeros((1, 1, 3), np.uint8), preprocessing)  # a known name
  listing.preprocessing = preprocessing
  if preprocessing != DEFAULT_PREPROCESSING:
    listing.extra = dict(listing.extra, preprocessing=preprocessing)
  return listing


def source_examples(source: str, imagenet_dir, max_images: int | None) -> Iterator[sources.Example]:
  """The source's examples ('demo' or 'imagenet'), in file-name order, the first ``max_images``."""
  listing = source_listing(source, imagenet_dir, max_images)
  for start in range(0, len(listing), CHUNK):
    yield from listing.read(start, min(start + CHUNK, len(listing)))


def sequence_key_level(name: str, difficulty: int) -> int:
  """The level that enters a sequence's example key: only the noise sequences' data changes with
  difficulty (the separate ``_2``/``_3`` datasets); the others are one dataset whose difficulty
  is a stride applied by the metrics."""
  return difficulty if name in NOISE_SEQUENCES else 1


# ----------------------------------------------------------------------------------------------
# Decoded and preprocessed once, reused by every task.


@dataclasses.dataclass
class Chunk:
  ids: list[str]            # unique per image: what records are keyed by
  file_names: list[str]     # what the example keys derive from
  labels: np.ndarray        # int32 [n]
  crops: np.ndarray         # uint8 [n, 224, 224, 3]   (ImageNet-C input)
  canvas: np.ndarray        # uint8 [n, Hc, Wc, 3]     (Resize(256) images, top-left aligned)
  sizes: np.ndarray         # int32 [n, 2]             true (height, width) on the canvas


def _chunk_from_examples(examples: Sequence[sources.Example],
                         preprocessing: str = DEFAULT_PREPROCESSING) -> Chunk:
  decoded = [sources.decode(e) for e in examples]
  resized = [imagenet_cp.resize_short_side(d) for d in decoded]
  if preprocessing == DEFAULT_PREPROCESSING:
    crops = np.stack([center_crop(r) for r in resized])
  else:  # the clean crops from the photo itself; ImageNet-P still starts from Resize(256)
    crops = np.stack([robustbench_preprocess(d, preprocessing) for d in decoded])
  canvas, sizes = _perturbations.pad_to_canvas(resized, multiple=CANVAS_MULTIPLE)
  return Chunk([e.id for e in examples], [e.file_name for e in examples],
               np.array([e.label for e in examples], np.int32), crops, canvas, sizes)


def _chunk_key(listing: SourceListing, start: int, stop: int) -> str:
  """What a cached chunk must have been built from: its images' listing, the cache format and
  Pillow's version (which decodes and resizes them)."""
  return hashlib.sha256(f"{CACHE_FORMAT}\t{Image.__version__}\t{listing.digest(start, stop)}"
                        .encode()).hexdigest()


def _chunk_problem(path: pathlib.Path, key: str, ids: Sequence[str]) -> str | None:
  """Why the cached chunk at ``path`` cannot be reused (None: it can)."""
  try:
    with np.load(path) as data:
      missing = [k for k in _CHUNK_KEYS if k not in data.files]
      if missing:
        return f"lacks {', '.join(missing)}"
      if str(data["listing_sha256"]) != key:
        return "was built from other images or settings (its listing digest differs)"
      if list(data["ids"]) != list(ids):
        return "holds other images"
  except CORRUPT_NPZ as err:
    return f"unreadable ({type(err).__name__}: {err})"
  return None


class ImageCache:
  """Preprocessed chunks of the listed images, in memory or as ``.npz`` files in ``directory``
  (only this process's chunks: every ``process_count``-th from ``process_index``)."""

  def __init__(self, listing: SourceListing, directory: pathlib.Path | None = None,
               process_index: int = 0, process_count: int = 1, chunk_size: int = CHUNK,
               log: Callable[[str], None] = print):
    self._dir = None if directory is None else pathlib.Path(directory)
    self._memory: list[Chunk] = []
    self._paths: list[pathlib.Path] = []
    bounds = [(start, min(start + chunk_size, len(listing)))
              for start in range(0, len(listing), chunk_size)]
    mine = [(index, b) for index, b in enumerate(bounds) if index % process_count == process_index]
    if self._dir is None or listing.in_memory:
      self._memory = [listing.load(*b) for _, b in mine]
      return
    with DirectoryLock(self._dir):
      remove_orphans(self._dir)
      for index, (start, stop) in mine:
        path = self._dir / f"chunk_{index:05d}.npz"
        key = _chunk_key(listing, start, stop)
        problem = _chunk_problem(path, key, listing.ids[start:stop]) if path.exists() else "new"
        if problem is not None:
          if problem != "new":
            log(f"{path}: {problem}; rebuilding it")
          chunk = listing.load(start, stop)
          save_npz(path, dict(dataclasses.asdict(chunk), listing_sha256=np.array(key)))
        self._paths.append(path)

  def __iter__(self) -> Iterator[Chunk]:
    yield from self._memory
    for path in self._paths:
      try:
        with np.load(path) as data:
          chunk = Chunk(list(data["ids"]), list(data["file_names"]), data["labels"],
                        data["crops"], data["canvas"], data["sizes"])
      except CORRUPT_NPZ as err:
        raise ValueError(f"{path}: the image cache changed during the run ({type(err).__name__}: "
                         f"{err}); delete it and rerun") from err
      yield chunk

  def __len__(self) -> int:
    return len(self._memory) + len(self._paths)


# ----------------------------------------------------------------------------------------------
# The datasets the TFDS builders wrote (read instead of generating on the fly).


# The split each builder writes (its only one): the CIFAR builders keep the test set's name.
TFDS_SPLITS = {"cifar10": "test", "cifar100": "test"}
# The benchmarks with no -P builder (the original released no 299 -P set).
NO_P_BUILDER = ("imagenet299",)


@dataclasses.dataclass
class TfdsSource:
  """Built ``imagenet_c[_demo]`` / ``imagenet_p[_demo]`` datasets under ``data_dir``, or those of
  another ``benchmark`` (``<benchmark>_c`` / ``<benchmark>_p``: cifar10, cifar100, tiny_imagenet,
  imagenet64, imagenet299 (-C only)).

  ``image_format`` picks the -C variant: 'jpeg' (PIL q85, like the release), 'png' (lossless
  ``release_jpeg`` pixels: identical to the on-the-fly input) or 'raw' (no JPEG stage); the CIFAR
  builders store one format, the release's (no JPEG stage: ``jpeg_stage=False``), under the
  plain names.  -P frames are read from the default (lossless PNG) configs.  Config names are
  the builders' own (``BUILDER_CONFIGS``, or a format variant they resolve).  Records carry file
  names, so TFDS's on-disk order and any split across processes do not matter.
  """
  data_dir: str
  demo: bool
  image_format: str = "jpeg"
  benchmark: str = "imagenet"
  jpeg_stage: bool = True   # the benchmark's release has the JPEG q85 stage (CIFAR's has none)

  def __post_init__(self):
    if self.image_format not in ("jpeg", "png", "raw"):
      raise ValueError(f"unknown ImageNet-C image format {self.image_format!r}: jpeg, png or raw")

  @property
  def applies_release_jpeg(self) -> bool:
    return self.jpeg_stage and self.image_format != "raw"

  @property
  def record(self) -> str:
    """What a run records as its data."""
    return f"tfds {self.data_dir} ({self.image_format if self.jpeg_stage else 'release format'})"

  @property
  def split(self) -> str:
    return TFDS_SPLITS.get(self.benchmark, "validation")

  def dataset(self, task: Task) -> str:
    """``<dataset>/<config>`` of a corruption or perturbation task."""
    import imagenet_cp.datasets  # pylint: disable=g-import-not-at-top,unused-import
    from imagenet_cp.datasets.imagenet_c import imagenet_c_dataset_builder as c_builder  # pylint: disable=g-import-not-at-top
    from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder as p_builder  # pylint: disable=g-import-not-at-top
    if self.benchmark != "imagenet":
      return self._sized_dataset(task, c_builder, p_builder)
    suffix = "_demo" if self.demo else ""
    if task.kind == "corruption":
      return f"imagenet_c{suffix}/{c_builder.config_name(task.name, task.level, self.image_format)}"
    level = sequence_key_level(task.name, task.level)
    return f"imagenet_p{suffix}/{p_builder.config_name(task.name, level)}"

  def _sized_dataset(self, task: Task, c_builder, p_builder) -> str:
    """The config of another benchmark's builder, checked against the configs it has."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    if task.kind == "perturbation" and self.benchmark in NO_P_BUILDER:
      raise ValueError(f"tfds_data_dir= with benchmark={self.benchmark!r} and perturbations: there "
                       f"is no {self.benchmark}_p dataset (the original released no 299 -P set); "
                       "pass perturbations=() (--perturbations=none), or evaluate -P on the fly "
                       "without tfds_data_dir=")
    if task.kind == "corruption":
      dataset = f"{self.benchmark}_c"
      config = c_builder.config_name(task.name, task.level, self.image_format)
    else:
      dataset = f"{self.benchmark}_p"
      config = p_builder.config_name(task.name, sequence_key_level(task.name, task.level))
    builder_cls = tfds.builder_cls(dataset)
    if builder_cls.get_builder_config(config) is None:
      listed = ", ".join(c.name for c in builder_cls.BUILDER_CONFIGS[:3])
      hint = (f"; tfds_image_format={self.image_format!r} names a variant it does not store: "
              "leave it unset" if task.kind == "corruption" and self.image_format != "jpeg"
              else "")
      raise ValueError(f"{dataset} has no config {config!r} (its configs: {listed}, ...{hint})")
    return f"{dataset}/{config}"

  def build_command(self, name: str) -> str:
    """The command that builds ``<dataset>/<config>`` into this data_dir."""
    dataset, config = name.split("/", 1)
    return (f"python -m launch.build_datasets --datasets={dataset} --configs={config} "
            f"--data_dir={self.data_dir} --manual_dir=DIR (or `tfds build {dataset} --imports "
            f"imagenet_cp.datasets --config {config} --file_format array_record --data_dir "
            f"{self.data_dir} --manual_dir DIR`; docs/datasets.md)")

  def _open(self, task: Task, decoders=None):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    name = self.dataset(task)
    try:
      builder = tfds.builder(name, data_dir=self.data_dir)
      built = builder.is_prepared()
    except Exception as err:  # TFDS raises several types for an unreadable build.
      raise ValueError(f"{name} in {self.data_dir} cannot be read ({type(err).__name__}: {err}); "
                       f"rebuild it with {self.build_command(name)}") from err
    if not built:  # never built (or fetched) on the way: the run reads what is there
      raise ValueError(f"{name} is not built in {self.data_dir}; build it with "
                       f"{self.build_command(name)}")
    try:
      return builder.as_data_source(split=self.split, decoders=decoders)
    except Exception as err:  # e.g. a tfrecord build: no random access
      raise ValueError(f"{name} in {self.data_dir} cannot be read by index ({type(err).__name__}: "
                       f"{err}); rebuild it as array_record with {self.build_command(name)}"
                       ) from err

  def identity(self, tasks: Sequence[Task]) -> dict:
    """What a run records and compares of the builds it reads: the data_dir and each planned
    dataset's version and size; ValueError naming the first one not built (so before any
    evaluation)."""
    datasets = {}
    for task in tasks:
      if task.kind == "clean":
        continue
      source = self._open(task)
      datasets[self.dataset(task)] = {"version": str(source.dataset_info.version),
                                      "examples": len(source)}
    return {"data_dir": str(self.data_dir), "datasets": datasets}

  def names_and_labels(self, task: Task) -> tuple[list[str], np.ndarray]:
    """The file names and labels ``task``'s build stores, in on-disk order (pixels of a -C
    build left encoded)."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    source = self._open(task, {"image": tfds.decode.SkipDecoding()}
                        if task.kind == "corruption" else None)
    examples = [source[i] for i in range(len(source))]
    return ([text(e["file_name"]) for e in examples],
            np.array([int(e["label"]) for e in examples], np.int32))

  def batches(self, task: Task, size: int) -> Iterator[list[dict]]:
    """This process's share of the stored examples (every process_count-th record), ``size`` at
    a time."""
    source = self._open(task)
    mine = range(jax.process_index(), len(source), jax.process_count())
    for start in range(0, len(mine), size):
      yield [source[i] for i in mine[start:start + size]]
