"""What the -C and -P builders share: sources, the crop cache, keys, encoding, Beam (CIFAR too).

Generation is the same function whether it runs in the builder's own loop or in Beam workers,
and it computes the pixels the on-the-fly evaluation (``metrics``) computes from the same keys:

  source image --decode, Resize(256)[+CenterCrop(224)]--> crop  (cached once per source, reused)
  crop --imagenet_cp.corrupt / perturb, key = example_key(ROOT_SEED, name, severity, file_name)-->
  pixels --encode (image_format)--> example

Work is cut into fixed-size chunks of examples in sorted file-name order; every chunk is padded
to the same batch size, so a chunk's examples do not depend on which worker, batch or order
produced them.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import pathlib
import shutil
import tarfile
import uuid
import zipfile
from typing import Callable, Iterator, Sequence

from absl import logging
import numpy as np
from PIL import Image

from imagenet_cp import keys as keys_lib
from imagenet_cp.preprocess import (
    as_rgb_array, preprocess, resize_exact, resize_short_side, resized_center_crop)
from imagenet_cp import sources

# The root seed of every released example key (DESIGN.md: example_key(seed, name, severity,
# file_name)).  Changing it makes a different dataset, so it is part of the dataset version.
ROOT_SEED = 0
# Examples per corrupt/perturb call.  Fixed for a build (the last chunk is padded), so the
# compiled program, and hence every pixel, is the same for every chunk, runner and worker.
CHUNK_SIZE = 32
P_CHUNK_SIZE = 8  # ImageNet-P chunks hold T = 31 (41) frames per image
JPEG_QUALITY = 85  # the released ImageNet-C / the release_jpeg stage
# PNG (lossless configs and frames): level 1 encodes several times faster than the default 6
# for a slightly larger file (docs/speed.md).
PNG_COMPRESS_LEVEL = 1
CACHE_ENV = "IMAGENET_CP_CROP_CACHE"
CACHE_DIRNAME = "imagenet_cp_crops"
CACHE_FORMAT = 1

SOURCE_IMAGENET = "imagenet"
SOURCE_DEMO = "demo"

CROP_224 = "crop224"   # Resize(256) + CenterCrop(224): the ImageNet-C input
RESIZE_256 = "resize256"  # Resize(256) only: the ImageNet-P input (width varies)
CROP_299 = "crop299"   # 0.875 centre crop + 299x299 bilinear: make_imagenet_c_inception.py
RESIZE_64X64 = "resize64x64"  # Resize((64, 64)), aspect ratio not kept: the 64 px -C inputs
RESIZE_64 = "resize64"  # Resize(64) (shorter side 64): the Tiny-ImageNet-P input
PHOTO = "photo"  # the decoded photo itself: sequences that start from it (sets.SOURCE)
# What each pixel kind computes from the decoded photo (PIL, as the original scripts).
PIXEL_KINDS = {
    CROP_224: preprocess,
    RESIZE_256: resize_short_side,
    CROP_299: resized_center_crop,
    RESIZE_64X64: functools.partial(resize_exact, size_hw=(64, 64)),
    RESIZE_64: functools.partial(resize_short_side, size=64),
    PHOTO: as_rgb_array,
}

LABELS_FILE = "datasets/imagenet2012/labels.txt"


# ----------------------------------------------------------------------------------------------
# Work items: one per source image, small and picklable (Beam ships them to workers).


@dataclasses.dataclass(frozen=True)
class Item:
  """One source image: its sorted position, file name (the key), label and where its bytes are.

  ``locator`` is ``("tar", path, offset, size)``, ``("file", path)``, ``("zip", path, member,
  size)`` or ``("demo", name)``.
  """
  index: int
  file_name: str
  label: int
  locator: tuple


def list_items(source: str, manual_dir=None) -> list[Item]:
  """The source's images in sorted file-name order; clear SourceErrors for bad manual downloads."""
  if source == SOURCE_DEMO:
    return [Item(i, ex.file_name, ex.label, ("demo", ex.file_name))
            for i, ex in enumerate(sources.demo_examples())]
  if source != SOURCE_IMAGENET:
    raise ValueError(f"unknown source {source!r}; expected {SOURCE_IMAGENET!r} or {SOURCE_DEMO!r}")
  if manual_dir is not None and "://" in os.fspath(manual_dir):
    return _remote_tar_items(os.fspath(manual_dir))
  path = sources.locate_imagenet_val(manual_dir)
  if path.is_file():
    members = sources.scan_val_tar(path)
    return [Item(i, os.path.basename(m.name), sources.validation_label(os.path.basename(m.name)),
                 ("tar", str(path), m.offset_data, m.size)) for i, m in enumerate(members)]
  # pylint: disable-next=protected-access
  files = sorted(sources._iter_folder_files(path), key=lambda p: p.name)
  return [Item(i, f.name, sources.validation_label(f.name), ("file", str(f)))
          for i, f in enumerate(files)]


def _remote_tar_items(manual_dir: str) -> list[Item]:
  """Items of ``<manual_dir>/ILSVRC2012_img_val.tar`` on a remote filesystem (gs://, s3://).

  For Beam runners: the driver reads the tar's headers through etils.epath (one ranged read per
  member) and workers seek to their members, so nothing is downloaded or extracted in full.
  """
  path = _open(manual_dir)
  if path.name != sources.VAL_TAR:
    path = path / sources.VAL_TAR
  if not path.exists():
    raise sources.SourceError(f"{path} not found.\n" + sources.MANUAL_DOWNLOAD_INSTRUCTIONS)
  try:
    with path.open("rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
      members = [m for m in tar.getmembers() if m.isfile() and _is_val_name(m.name)]
  except (tarfile.TarError, EOFError, OSError) as err:
    raise sources.SourceError(f"{path} is not a readable tar ({err}); download "
                              f"{sources.VAL_TAR} again") from err
  members.sort(key=lambda m: os.path.basename(m.name))
  return [Item(i, os.path.basename(m.name), sources.validation_label(m.name),
               ("tar", os.fspath(path), m.offset_data, m.size)) for i, m in enumerate(members)]


def _is_val_name(name: str) -> bool:
  # pylint: disable-next=protected-access
  return sources._VAL_NAME.match(os.path.basename(name)) is not None


def read_bytes(item: Item) -> bytes:
  """The encoded source image of ``item`` (a seek into the tar: no extraction, no full scan)."""
  kind = item.locator[0]
  if kind == "demo":
    return _demo_bytes()[item.locator[1]]
  if kind == "file":
    return _open(item.locator[1]).read_bytes()
  if kind == "zip":
    return _zip_member(item.locator[1], item.locator[2])
  _, path, offset, size = item.locator
  with _open(path).open("rb") as f:
    f.seek(offset)
    data = f.read(size)
  if len(data) != size:
    raise sources.SourceError(f"{path}: {item.file_name} is cut short ({len(data)} of {size} "
                              "bytes); the download is incomplete")
  return data


def _open(path: str):
  from etils import epath  # pylint: disable=g-import-not-at-top
  return epath.Path(path)


@functools.lru_cache(maxsize=4)
def _zip_file(path: str) -> zipfile.ZipFile:
  # Opened once per process: the Tiny ImageNet zip's central directory lists 120k members.
  return zipfile.ZipFile(path)


def _zip_member(path: str, member: str) -> bytes:
  try:
    return _zip_file(path).read(member)
  except (KeyError, zipfile.BadZipFile, OSError) as err:
    raise sources.SourceError(f"{path}: cannot read {member} ({err})") from err


@functools.lru_cache(maxsize=1)
def _demo_bytes() -> dict[str, bytes]:
  return {ex.file_name: ex.data for ex in sources.demo_examples()}


def load_pixels(item: Item, kind: str) -> np.ndarray:
  """Decodes ``item`` and returns the benchmark input ``kind`` (``PIXEL_KINDS``), uint8
  [H, W, 3]: [224, 224, 3] (``CROP_224``), [256, W, 3] (``RESIZE_256``), ..."""
  if kind not in PIXEL_KINDS:
    raise ValueError(f"unknown pixel kind {kind!r}; expected one of {', '.join(PIXEL_KINDS)}")
  image = sources.decode(sources.Example(item.file_name, item.label, read_bytes(item)))
  return np.ascontiguousarray(PIXEL_KINDS[kind](image))


def chunked(items: Sequence[Item], size: int = CHUNK_SIZE) -> list[tuple[Item, ...]]:
  return [tuple(items[i:i + size]) for i in range(0, len(items), size)]


# ----------------------------------------------------------------------------------------------
# The crop cache: decode + Resize(256) [+ CenterCrop(224)] once per source, reuse for 95 configs.


def cache_root(data_dir) -> pathlib.Path | None:
  """Where crops are cached: $IMAGENET_CP_CROP_CACHE, else ``<data_dir>/imagenet_cp_crops``.

  None (no cache) when the variable is ``off``/``0`` or the data_dir is not a local path
  (gs://...: Beam workers then decode their own images).
  """
  setting = os.environ.get(CACHE_ENV, "")
  if setting.lower() in ("off", "0", "false", "no"):
    return None
  root = setting or (os.path.join(os.fspath(data_dir), CACHE_DIRNAME) if data_dir else "")
  if not root or "://" in root:
    return None
  return pathlib.Path(root).expanduser()


def cache_fingerprint(items: Sequence[Item], kind: str) -> str:
  """Identifies the cached pixels: the source's file names and sizes, the crop, Pillow's version."""
  h = hashlib.sha256()
  h.update(json.dumps([CACHE_FORMAT, kind, Image.__version__]).encode())
  for item in items:
    h.update(f"{item.file_name}:{_source_size(item)}\n".encode())
  return h.hexdigest()[:16]


def _source_size(item: Item) -> int:
  """Bytes of the item's encoded image (a tar header field, or a stat of the file)."""
  if item.locator[0] == "tar":
    return item.locator[3]
  if item.locator[0] == "file":
    return os.path.getsize(item.locator[1])
  if item.locator[0] == "zip":
    return item.locator[3]
  return len(_demo_bytes()[item.locator[1]])


class CropCache:
  """Crops of one source, concatenated uint8 in ``pixels.u8`` with an index; read by memmap.

  Written into a temporary sibling directory and renamed at the end, so an interrupted build
  never leaves a half-written cache; a rerun writes it again.
  """

  def __init__(self, directory):
    self.directory = pathlib.Path(directory)
    self._pixels = None
    self._index = None

  def __getstate__(self):  # Beam pickles the cache by path; workers memmap it themselves.
    return {"directory": self.directory}

  def __setstate__(self, state):
    self.__init__(state["directory"])

  @classmethod
  def for_items(cls, root, items: Sequence[Item], kind: str) -> "CropCache":
    return cls(pathlib.Path(root) / f"{kind}-{cache_fingerprint(items, kind)}")

  def exists(self) -> bool:
    return (self.directory / "index.npz").is_file() and (self.directory / "pixels.u8").is_file()

  def build(self, items: Sequence[Item], kind: str,
            log: Callable[[str], None] | None = logging.info) -> None:
    """Decodes every item once and writes the crops (atomic: temp dir, then rename)."""
    if self.exists():
      return
    tmp = self.directory.with_name(f"{self.directory.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
      offsets, shapes = np.zeros(len(items), np.int64), np.zeros((len(items), 3), np.int32)
      position = 0
      with open(tmp / "pixels.u8", "wb") as f:
        for i, item in enumerate(items):
          pixels = load_pixels(item, kind)
          offsets[i], shapes[i] = position, pixels.shape
          f.write(np.ascontiguousarray(pixels).tobytes())
          position += pixels.size
          if log and (i + 1) % 5000 == 0:
            log(f"crop cache {self.directory.name}: {i + 1}/{len(items)} images decoded")
      np.savez(tmp / "index.npz", offsets=offsets, shapes=shapes,
               file_names=np.array([it.file_name for it in items]))
      try:
        os.rename(tmp, self.directory)
      except OSError:
        if not self.exists():  # Lost a race with another process only if its cache is complete.
          raise
    finally:
      shutil.rmtree(tmp, ignore_errors=True)

  def _load(self):
    if self._index is None:
      with open(self.directory / "index.npz", "rb") as f, np.load(f) as index:
        self._index = {k: index[k] for k in index.files}
      self._pixels = np.memmap(self.directory / "pixels.u8", dtype=np.uint8, mode="r")
    return self._index, self._pixels

  def get(self, item: Item) -> np.ndarray:
    index, pixels = self._load()
    if index["file_names"][item.index] != item.file_name:
      raise ValueError(f"crop cache {self.directory} does not match the source at "
                       f"{item.file_name}; delete it and rebuild")
    shape = tuple(index["shapes"][item.index])
    start = int(index["offsets"][item.index])
    return np.array(pixels[start:start + int(np.prod(shape))]).reshape(shape)


@dataclasses.dataclass(frozen=True)
class PixelSource:
  """Gives the benchmark input of an item: from the crop cache when there is one, else decoded."""
  kind: str
  cache: CropCache | None = None

  def get(self, item: Item) -> np.ndarray:
    if self.cache is not None and self.cache.exists():
      return self.cache.get(item)
    return load_pixels(item, self.kind)


def pixel_source(items: Sequence[Item], kind: str, source: str, data_dir,
                 log: Callable[[str], None] | None = logging.info) -> PixelSource:
  """The crop cache of a manual source (built once); the demo is decoded directly."""
  root = cache_root(data_dir) if source != SOURCE_DEMO else None
  if root is None:
    return PixelSource(kind)
  cache = CropCache.for_items(root, items, kind)
  if not cache.exists() and log:
    log(f"decoding {len(items)} images once into the crop cache {cache.directory}")
  cache.build(items, kind, log=log)
  return PixelSource(kind, cache)


# ----------------------------------------------------------------------------------------------
# Encoding


def encode_jpeg(image: np.ndarray) -> bytes:
  """PIL JPEG quality 85, optimize=True: how the released ImageNet-C files were saved."""
  buf = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="JPEG", quality=JPEG_QUALITY,
                                                    optimize=True)
  return buf.getvalue()


def encode_png(image: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG",
                                                    compress_level=PNG_COMPRESS_LEVEL)
  return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Generation


def _record_key(item: Item, index_keys: bool):
  """The TFDS key of an item's example: its file name, or its source index where the builder
  keeps the source order on disk (``disable_shuffling``, which needs integer keys)."""
  return item.index if index_keys else item.file_name


def _pad_keys(seed: int, name: str, severity: int, file_names: Sequence[str], size: int):
  """One key per real image, plus keys for the zero-image padding of a short last chunk."""
  pads = [f"__padding__/{i}" for i in range(size - len(file_names))]
  return keys_lib.example_keys(seed, name, severity, list(file_names) + pads)


@dataclasses.dataclass(frozen=True)
class CorruptionTask:
  """One -C config's generation: what to compute and how to store it."""
  corruption: str
  severity: int
  image_format: str  # "jpeg" | "png" | "raw" (see imagenet_c README, "Image formats")
  root_seed: int = ROOT_SEED
  chunk_size: int = CHUNK_SIZE
  size: int = 224  # the input's S (224 ImageNet, 32 CIFAR): selects the constant set
  index_keys: bool = False  # see _record_key

  def dispatch(self, chunk: Sequence[Item], pixels: PixelSource):
    """Starts the chunk's corruption (JAX runs asynchronously; ``finish`` waits for it)."""
    import imagenet_cp  # pylint: disable=g-import-not-at-top
    images = np.zeros((self.chunk_size, self.size, self.size, 3), np.uint8)
    for i, item in enumerate(chunk):
      images[i] = pixels.get(item)
    keys = _pad_keys(self.root_seed, self.corruption, self.severity,
                     [it.file_name for it in chunk], self.chunk_size)
    out = imagenet_cp.corrupt(images, self.corruption, self.severity, keys)
    if self.image_format == "png":
      out = imagenet_cp.release_jpeg(out)
    return out

  def finish(self, chunk: Sequence[Item], out) -> list[tuple[str, dict]]:
    out = np.asarray(out)
    encode = encode_jpeg if self.image_format == "jpeg" else encode_png
    return [(_record_key(item, self.index_keys),
             {"image": encode(out[i]), "label": item.label, "file_name": item.file_name})
            for i, item in enumerate(chunk)]

  def __call__(self, chunk: Sequence[Item], pixels: PixelSource) -> list[tuple[str, dict]]:
    return self.finish(chunk, self.dispatch(chunk, pixels))


@dataclasses.dataclass(frozen=True)
class PerturbationTask:
  """One -P config's generation: a sequence of frames per input image.

  ImageNet-P's (and Tiny-ImageNet-P's) inputs are Resize(256) (Resize(64)) images of different
  widths, stacked on a padded canvas; the other benchmarks' (``perturbations.BENCHMARKS``) are
  all S x S, stacked as they are.  Sequences that start from the source photo
  (``SequenceSet.source_sequences``) run one photo per ``perturb`` call.
  """
  perturbation: str
  difficulty: int
  # "png" (lossless, default) | "jpeg" (q85, about 8x smaller) | "array" (the uint8 [T, S, S, 3]
  # array itself, for a Tensor feature: how the CIFAR-P release stores a sequence)
  frame_format: str
  root_seed: int = ROOT_SEED
  chunk_size: int = P_CHUNK_SIZE
  benchmark: str = "imagenet"
  index_keys: bool = False  # see _record_key

  def dispatch(self, chunk: Sequence[Item], pixels: PixelSource):
    import imagenet_cp  # pylint: disable=g-import-not-at-top
    from imagenet_cp.perturbations import sets  # pylint: disable=g-import-not-at-top
    seq_set = sets.get_set(self.benchmark)
    keys = _pad_keys(self.root_seed, self.perturbation, self.difficulty,
                     [it.file_name for it in chunk], self.chunk_size)
    if seq_set.inputs(self.perturbation) == sets.SOURCE:
      # The photo's size is part of the program (perturb_batch refuses these): one per call;
      # perturb_photo, as a Tiny ImageNet photo has the set input's 64x64 shape.
      from imagenet_cp import perturbations  # pylint: disable=g-import-not-at-top
      return [perturbations.perturb_photo(pixels.get(item), self.perturbation, keys[i],
                                          self.difficulty, benchmark=self.benchmark)
              for i, item in enumerate(chunk)]
    images = [pixels.get(item) for item in chunk]
    # A short last chunk is padded with black images so every chunk has the same N.
    side = 256 if self.benchmark == "imagenet" else seq_set.size
    images += [np.zeros((side, side, 3), np.uint8)] * (self.chunk_size - len(images))
    canvas, sizes = imagenet_cp.pad_to_canvas(
        images, canvas_hw=(side, side) if seq_set.fixed_input() else None,
        benchmark=self.benchmark)
    return imagenet_cp.perturb_batch(canvas, sizes, self.perturbation, keys,
                                     difficulty=self.difficulty, benchmark=self.benchmark)

  def finish(self, chunk: Sequence[Item], frames) -> list[tuple[str, dict]]:
    # A batch [N, T, S, S, 3], or a list of [T, H, W, 3] (one photo per call: shapes may differ).
    frames = frames if isinstance(frames, list) else np.asarray(frames)
    if self.frame_format == "array":
      stored = [np.asarray(frames[i]) for i in range(len(chunk))]
    else:
      encode = encode_png if self.frame_format == "png" else encode_jpeg
      stored = [[encode(f) for f in np.asarray(frames[i])] for i in range(len(chunk))]
    return [(_record_key(item, self.index_keys),
             {"frames": stored[i], "label": item.label, "file_name": item.file_name})
            for i, item in enumerate(chunk)]

  def __call__(self, chunk: Sequence[Item], pixels: PixelSource) -> list[tuple[str, dict]]:
    return self.finish(chunk, self.dispatch(chunk, pixels))


def generate(task, items: Sequence[Item], pixels: PixelSource, use_beam: bool):
  """Examples of a split: a generator of (key, example), or a Beam PTransform doing the same."""
  chunks = chunked(items, task.chunk_size)
  if use_beam:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    beam = tfds.core.lazy_imports.apache_beam
    return (beam.Create(chunks)
            | "Redistribute" >> beam.Reshuffle()
            | "Generate" >> beam.FlatMap(run_chunk, task=task, pixels=pixels))
  return _iterate(task, chunks, pixels)


def run_chunk(chunk: Sequence[Item], task, pixels: PixelSource) -> list[tuple[str, dict]]:
  """One chunk's examples (what a Beam worker runs)."""
  return task(chunk, pixels)


def _iterate(task, chunks: Sequence[Sequence[Item]],
             pixels: PixelSource) -> Iterator[tuple[str, dict]]:
  """Runs the chunks in order, starting chunk k+1 on the JAX side while chunk k is encoded."""
  pending = None
  for chunk in chunks:
    started = (chunk, task.dispatch(chunk, pixels))
    if pending is not None:
      yield from task.finish(*pending)
    pending = started
  if pending is not None:
    yield from task.finish(*pending)


def chunk_size_for(num_items: int, size: int = CHUNK_SIZE) -> int:
  """``size``, or fewer for a source smaller than one chunk (the demo's 4 photos)."""
  return max(1, min(size, num_items))


# ----------------------------------------------------------------------------------------------
# Metadata


def provenance(source: str, **extra) -> dict:
  """What makes a build reproducible: root seed, key derivation, versions, the source."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  import imagenet_cp  # pylint: disable=g-import-not-at-top
  return {
      "source": source,
      "source_description": (
          "DEMO DATA - NOT ImageNet: real photos shipped by scikit-image and matplotlib with "
          "hand-assigned ImageNet labels (imagenet_cp.sources.DEMO_PHOTOS); numbers on it are "
          "not comparable with the paper" if source == SOURCE_DEMO else
          "ImageNet ILSVRC2012 validation set (manual download), labels as TFDS imagenet2012"),
      "root_seed": ROOT_SEED,
      "key_derivation": ("imagenet_cp.example_key(root_seed, name, severity, file_name): "
                         "sha256('{seed}/{name}/{severity}/{file_name}')[:8] as threefry2x32 "
                         "key data; ImageNet-P: severity = noise level (1 for non-noise "
                         "sequences), frame t = fold_in(key, t)"),
      "prng_impl": keys_lib.PRNG_IMPL,
      "imagenet_cp_version": imagenet_cp.__version__,
      "jax_version": jax.__version__,
      "jaxlib_version": jaxlib.__version__,
      "jax_backend": jax.default_backend(),
      "pillow_version": Image.__version__,
      "numpy_version": np.__version__,
      "preprocessing": "torchvision Resize(256) (PIL bilinear) + CenterCrop(224)",
      **extra,
  }


# ----------------------------------------------------------------------------------------------
# Builder plumbing shared by imagenet_c and imagenet_p


IMAGENET_EXPECTED = f"{sources.VAL_TAR} (or the extracted validation folder)"


def manual_dir(dl_manager, expected: str = IMAGENET_EXPECTED,
               instructions: str = sources.MANUAL_DOWNLOAD_INSTRUCTIONS) -> pathlib.Path:
  """The manual directory, or a SourceError naming the exact path and the files expected."""
  where = getattr(dl_manager, "_manual_dir", None)
  try:
    return pathlib.Path(os.fspath(dl_manager.manual_dir))
  except AssertionError as err:
    raise sources.SourceError(
        f"the manual directory {where} does not exist or is empty: put {expected} there, or "
        f"pass --manual_dir.\n" + instructions) from err


class CleanFailedBuild:
  """Builder mixin: a failed ``download_and_prepare`` leaves none of the folders it created.

  TFDS removes its own ``incomplete.*`` directory on an exception, but not the empty
  ``<data_dir>/<name>/<config>/`` (nor ``<name>/.config/``, ``downloads/extracted/``) made before
  it, which looks like a build to anyone listing the data_dir (a missing manual download left
  exactly that).  Only folders that did not exist before the call and are empty again (``.config``:
  TFDS's default-config note, in a ``<name>/`` this call created) are removed; remote paths are
  left alone.
  """

  def download_and_prepare(self, *args, **kwargs):
    created = [d for d in _build_dirs(self, kwargs.get("download_dir"),
                                      kwargs.get("download_config")) if not os.path.exists(d)]
    try:
      return super().download_and_prepare(*args, **kwargs)
    except BaseException:
      _remove_empty(created)
      raise


class RequireConfig:
  """Builder mixin: no default config. ``tfds.builder(name)`` / ``tfds.load(name)`` without a
  config fail, listing the configs, instead of silently giving the first (cifar10_corrupted's
  first config is a mild one, which hides the accuracy drop: hendrycks/robustness#29).

  TFDS also writes ``<name>/.config/metadata.json`` naming a default config, which a reader
  without our package (``tfds.data_source(name)`` from the files alone) would follow; a build
  removes that note again, so such a reader finds no dataset instead of the first config.
  ``tfds build <name>`` without ``--config`` still builds every config (TFDS's CLI names each).
  """

  def _create_builder_config(self, builder_config, version):
    if builder_config is None and self.BUILDER_CONFIGS:
      names = [c.name for c in self.BUILDER_CONFIGS]
      raise ValueError(
          f"{self.name} has no default config: name one, e.g. tfds.load('{self.name}/"
          f"{names[0]}') or tfds build {self.name} --config={names[0]}. Configs: "
          + ", ".join(names))
    return super()._create_builder_config(builder_config, version)

  def download_and_prepare(self, *args, **kwargs):
    try:
      return super().download_and_prepare(*args, **kwargs)
    finally:
      note_dir = os.fspath(self.data_path.parent.parent / ".config")
      if "://" not in note_dir and os.path.isfile(os.path.join(note_dir, "metadata.json")):
        os.remove(os.path.join(note_dir, "metadata.json"))
        try:
          os.rmdir(note_dir)
        except OSError:  # Something else is in it.
          pass


def _build_dirs(builder, download_dir, download_config) -> list[str]:
  """Folders download_and_prepare may create, deepest first; [] for a remote data_dir."""
  config_dir = os.fspath(builder.data_path.parent)  # <root>/<name>/<config>/<version>
  root = os.fspath(builder.data_dir_root)
  if "://" in config_dir or "://" in root:
    return []
  downloads = os.fspath(download_dir or os.path.join(root, "downloads"))
  extracted = os.fspath((download_config and download_config.extract_dir)
                        or os.path.join(downloads, "extracted"))
  name_dir = os.path.dirname(config_dir)
  return [config_dir, name_dir, extracted, downloads, root]


def _remove_empty(created: Sequence[str]) -> None:
  for directory in created:
    if not os.path.isdir(directory):
      continue
    note = os.path.join(directory, ".config")  # written by TFDS before the build starts
    if os.listdir(directory) == [".config"] and os.path.isdir(note):
      shutil.rmtree(note, ignore_errors=True)
    try:
      os.rmdir(directory)
    except OSError:  # Not empty: something else (another build, a user's file) is in it.
      pass


def uses_beam(download_config) -> bool:
  """Whether the user asked for Beam (``--beam_pipeline_options`` or a ``beam_runner``)."""
  return bool(download_config is not None and
              (download_config.beam_runner or download_config.beam_options))


def labels_file():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.core.tfds_path(LABELS_FILE)
