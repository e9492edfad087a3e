"""The user's own images as a source of the corruption suite: arrays, batches or a TFDS dataset.

* ``images`` + ``labels``: uint8 [N, H, W, 3] (NumPy, a memmap or JAX) and int [N];
* ``batches``: an iterable of ``(images, labels)`` batches of that form, read once at the start
  and kept in host memory, named by ``source_id``;
* ``tfds_name`` + ``tfds_split``: any TFDS image classification dataset (its
  ``supervised_keys``, else ``image`` / ``label``), read by index like the ImageNet sources.

Arrays are used as they are, never re-encoded or resized.  Their size says what they are:
224x224 are the clean 224 crops (ImageNet-C only: ImageNet-P's sequences transform the
Resize(256) image before the crop, which a 224 crop cannot give back, so sequences on them are
refused); shorter side 256 are Resize(256) images (ImageNet-P takes them whole, ImageNet-C their
center 224 crop).  TFDS images are decoded with PIL and go through the project's Resize(256) +
CenterCrop(224), like the ImageNet photos.

Ids (what records are keyed by and the example keys derive from,
``imagenet_cp.example_key(seed, name, level, id)``): ``f"{source_id or digest[:16]}/{index}"``
for arrays and batches, where ``digest`` is the sha256 of the pixels and labels (recorded as
``run.data_sha256`` and compared on resume, as is ``source_id``); ``f"{tfds_name}/{split}/{index}"``
for TFDS (``tfds_version`` recorded).

With a CIFAR benchmark (``benchmark="cifar10"`` / ``"cifar100"``) the images are 32x32 and are
used whole for both CIFAR-10/100-C and -P (``check_images(..., size=32)``); without the user's
own data the source is the CIFAR test set (``cifar_listing``: ids ``test/00000`` ..., the file
names the CIFAR TFDS builders key their examples by).
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib
from typing import Any, Callable, Iterable

import numpy as np

from imagenet_cp import cifar, sources
from imagenet_cp.metrics.baselines import ALEXNET, Baseline
from imagenet_cp.preprocess import CROP, RESIZE, center_crop
from imagenet_cp.suites import sized
from imagenet_cp.suites.images import Chunk, SourceListing, check_max_images

SOURCES = ("arrays", "batches", "tfds")
# What the images are corrupted as: ImageNet's 224, or one of suites.sized's sizes.
BENCHMARKS = ("imagenet", *sized.BENCHMARKS)
IMAGENET_CLASSES = 1000
_HASH_ROWS = 256  # images hashed per update: a memmap is read a slice at a time


@dataclasses.dataclass(frozen=True)
class OwnData:
  """What ``evaluate`` got for the user's data (one of arrays, batches or a TFDS dataset)."""
  images: Any = dataclasses.field(default=None, repr=False)
  labels: Any = dataclasses.field(default=None, repr=False)
  batches: Iterable | None = dataclasses.field(default=None, repr=False)
  source_id: str | None = None
  tfds_name: str | None = None
  tfds_split: str | None = None
  tfds_dir: str | None = None
  size: int | None = None  # the one image side the benchmark takes (32: CIFAR), else None

  @property
  def kind(self) -> str:
    return ("arrays" if self.images is not None else
            "batches" if self.batches is not None else "tfds")

  @property
  def location(self) -> str:
    if self.kind == "tfds":
      where = self.tfds_dir or "the default TFDS data_dir"
      return f"tfds {self.tfds_name} split {self.tfds_split} in {where}"
    return f"{self.kind} given to evaluate" + (f" ({self.source_id})" if self.source_id else "")


def own_data(*, images=None, labels=None, batches=None, source_id: str | None = None,
             tfds_name: str | None = None, tfds_split: str | None = None,
             tfds_dir=None, benchmark: str = "imagenet") -> OwnData | None:
  """The user's data from ``evaluate``'s arguments (None: none given), checked before anything
  is read or traced: ValueError naming the problem.  ``benchmark``: a CIFAR one takes 32x32
  images only."""
  size = image_size(benchmark)
  given = [n for n, v in (("images", images), ("batches", batches), ("tfds_name", tfds_name))
           if v is not None]
  if len(given) > 1:
    raise ValueError(f"give one source of your own data, not {' and '.join(given)}")
  if not given:
    extra = [n for n, v in (("labels", labels), ("source_id", source_id),
                            ("tfds_split", tfds_split), ("tfds_dir", tfds_dir)) if v is not None]
    if extra:
      raise ValueError(f"{', '.join(extra)} given without images=, batches= or tfds_name=")
    return None
  if source_id is not None and (not isinstance(source_id, str) or not source_id
                                or source_id != source_id.strip()):
    raise ValueError(f"source_id must be a non-empty string naming your data, got {source_id!r}")
  if images is not None:
    if labels is None:
      raise ValueError("images= needs labels= (int [N], one class index per image)")
    check_images(images, "images", size)
    check_labels(labels, images.shape[0], "labels")
  elif labels is not None:
    raise ValueError("labels= goes with images=; batches= yield (images, labels) pairs")
  if batches is not None:
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Iterable):
      raise ValueError("batches must be an iterable of (images, labels), got "
                       f"{type(batches).__name__}")
  if tfds_name is not None:
    if source_id is not None:
      raise ValueError("source_id names arrays or batches; a TFDS dataset is named by tfds_name")
    if not isinstance(tfds_name, str) or not tfds_split or not isinstance(tfds_split, str):
      raise ValueError("tfds_name= needs tfds_split= (e.g. tfds_name='imagenet_v2/"
                       f"matched-frequency', tfds_split='test'), got {tfds_name!r}, {tfds_split!r}")
  elif tfds_split is not None or tfds_dir is not None:
    raise ValueError("tfds_split= and tfds_dir= go with tfds_name=")
  return OwnData(images, labels, batches, source_id, tfds_name, tfds_split,
                 None if tfds_dir is None else str(tfds_dir), size)


def image_size(benchmark: str) -> int | None:
  """The image side a benchmark takes (32 for CIFAR, 64, 299), None for ImageNet (224 crops or
  Resize(256) images); ValueError for an unknown benchmark."""
  if benchmark not in BENCHMARKS:
    raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
  return None if benchmark == "imagenet" else sized.get(benchmark).size


def check_images(images, what: str, size: int | None = None) -> tuple[int, int]:
  """(H, W) of uint8 [N, H, W, 3] clean crops (224x224) or Resize(256) images (shorter side 256),
  or, with ``size``, of size x size images (CIFAR's 32); ValueError naming what is wrong
  otherwise (reads only the dtype and shape)."""
  shape, dtype = getattr(images, "shape", None), getattr(images, "dtype", None)
  if shape is None or dtype is None:
    raise ValueError(f"{what} must be a NumPy or JAX uint8 array [N, H, W, 3], got "
                     f"{type(images).__name__}")
  if np.dtype(dtype) != np.uint8:
    raise ValueError(f"{what} must be uint8 pixels 0..255, got dtype {np.dtype(dtype)}")
  if len(shape) != 4 or shape[-1] != 3:
    raise ValueError(f"{what} must have shape [N, H, W, 3] (RGB), got {tuple(shape)}")
  if shape[0] < 1:
    raise ValueError(f"{what} holds no image (shape {tuple(shape)})")
  h, w = int(shape[1]), int(shape[2])
  if size is not None:
    if (h, w) != (size, size):
      kind = "CIFAR images" if size == cifar.SIZE else "benchmark's images"
      raise ValueError(f"{what} must be the {size}x{size} {kind} (used as they are for -C and "
                       f"-P), got {h}x{w}")
    return h, w
  if (h, w) != (CROP, CROP) and min(h, w) != RESIZE:
    raise ValueError(f"{what} must be the clean {CROP}x{CROP} crops or Resize({RESIZE}) images "
                     f"(shorter side {RESIZE}), got {h}x{w}: resize them with "
                     "imagenet_cp.preprocess (224 crops) or imagenet_cp.resize_short_side")
  return h, w


def check_labels(labels, n: int, what: str) -> np.ndarray:
  """int32 [n] class indices >= 0, else ValueError naming what is wrong."""
  array = np.asarray(labels)
  if array.dtype.kind not in "iu":
    raise ValueError(f"{what} must be integer class indices, got dtype {array.dtype}")
  if array.shape != (n,):
    raise ValueError(f"{what} must be one class index per image, shape [{n}], got {array.shape}")
  if n and (array.min() < 0 or array.max() > np.iinfo(np.int32).max):
    raise ValueError(f"{what} must be class indices >= 0, got "
                     f"{int(array.min())}..{int(array.max())}")
  return array.astype(np.int32)


def check_sequences(size: tuple[int, int], wants_sequences: bool, what: str) -> None:
  """The ImageNet-P rule for arrays: ValueError when sequences are asked of 224 crops."""
  if wants_sequences and size == (CROP, CROP):
    raise ValueError(
        f"{what} are {CROP}x{CROP} crops: ImageNet-P's sequences start from the Resize({RESIZE}) "
        f"image (the geometric ones transform it before the {CROP} crop), so they cannot be made "
        f"from crops. Pass perturbations=() for ImageNet-C alone, or give the Resize({RESIZE}) "
        f"images instead (shorter side {RESIZE}, e.g. imagenet_cp.resize_short_side(photo)): "
        f"ImageNet-C then takes their center {CROP} crop")


def check_resumable(data: OwnData, output_dir) -> None:
  """Batches without ``source_id`` are not resumed into an output folder that holds a run."""
  if (data.kind == "batches" and data.source_id is None and output_dir is not None
      and (pathlib.Path(output_dir) / "run.json").exists()):
    raise ValueError(
        f"{output_dir} holds a run already, and batches given without source_id cannot be "
        "checked to be that run's data (an iterator has no identity before it is read to the "
        "end); pass source_id='<a name for this data>' to resume, or choose an empty output_dir")


# ----------------------------------------------------------------------------------------------
# Listings.


class _Digest:
  """sha256 of images and labels, the same however they are split into batches."""

  def __init__(self):
    self._pixels, self._labels = hashlib.sha256(), hashlib.sha256()
    self.count, self.size = 0, None

  def update(self, images: np.ndarray, labels: np.ndarray) -> None:
    self.size = tuple(images.shape[1:])
    for start in range(0, images.shape[0], _HASH_ROWS):
      self._pixels.update(np.ascontiguousarray(images[start:start + _HASH_ROWS]).tobytes())
    self._labels.update(np.asarray(labels, "<i8").tobytes())
    self.count += images.shape[0]

  def hexdigest(self) -> str:
    head = (f"uint8 {self.count} x {self.size}\n{self._pixels.hexdigest()}\n"
            f"{self._labels.hexdigest()}")
    return hashlib.sha256(head.encode()).hexdigest()


def _read_batches(batches: Iterable, max_images: int | None, side: int | None = None):
  """All batches (or the first ``max_images`` images) as one uint8 [N, H, W, 3] and int32 [N]."""
  images, labels, size, total = [], [], None, 0
  for index, batch in enumerate(batches):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
      raise ValueError(f"batch {index}: batches must yield (images, labels) pairs, got "
                       f"{type(batch).__name__}")
    pixels, classes = batch
    what = f"batch {index}'s images"
    got = check_images(pixels, what, side)
    if size is not None and got != size:
      raise ValueError(f"{what} are {got[0]}x{got[1]}, the first batch's {size[0]}x{size[1]}: "
                       "every batch must have one image size")
    size = got
    classes = check_labels(classes, pixels.shape[0], f"batch {index}'s labels")
    keep = pixels.shape[0] if max_images is None else min(pixels.shape[0], max_images - total)
    images.append(np.asarray(pixels[:keep]))
    labels.append(classes[:keep])
    total += keep
    if max_images is not None and total >= max_images:
      break
  if not total:
    raise ValueError("batches yielded no image")
  return np.concatenate(images), np.concatenate(labels)


def _array_chunk(ids, labels, images, start: int, stop: int) -> Chunk:
  """The images ``start:stop`` as they are: 224 crops (their own canvas; sequences are refused
  before they could use it), CIFAR's 32x32 images (both inputs) or Resize(256) images and their
  center crops."""
  pixels = np.asarray(images[start:stop])
  h, w = pixels.shape[1:3]
  crops = (np.stack([center_crop(p) for p in pixels])
           if min(h, w) == RESIZE and (h, w) != (CROP, CROP) else pixels)
  sizes = np.tile(np.array([[h, w]], np.int32), (len(pixels), 1))
  return Chunk(list(ids[start:stop]), list(ids[start:stop]), labels[start:stop],
               np.ascontiguousarray(crops), pixels, sizes)


def array_listing(data: OwnData, max_images: int | None, wants_sequences: bool) -> SourceListing:
  """The listing of arrays or batches: in memory, ids from ``source_id`` or the digest."""
  check_max_images(max_images)
  stop = None if max_images is None else int(max_images)
  if data.kind == "arrays":
    images, labels = data.images[:stop], check_labels(data.labels, data.images.shape[0],
                                                      "labels")[:stop]
    if not isinstance(images, np.ndarray):  # a JAX array: one copy to the host
      images = np.asarray(images)
  else:
    images, labels = _read_batches(data.batches, stop, data.size)
  size = tuple(images.shape[1:3])
  check_sequences(size, wants_sequences, "the images" if data.kind == "arrays" else "the batches")
  digest = _Digest()
  digest.update(images, labels)
  data_sha256 = digest.hexdigest()
  prefix = data.source_id or data_sha256[:16]
  ids = [f"{prefix}/{i}" for i in range(images.shape[0])]
  return SourceListing(
      data.kind, data.location, ids, ids, labels, [int(np.prod(images.shape[1:]))] * len(ids),
      read=None, chunk=lambda a, b: _array_chunk(ids, labels, images, a, b), in_memory=True,
      extra={"source_id": data.source_id, "data_sha256": data_sha256})


def cifar_listing(benchmark: str, cifar_dir, max_images: int | None) -> SourceListing:
  """The CIFAR-10 / CIFAR-100 test set of ``cifar_dir`` (``cifar-10-python.tar.gz`` /
  ``cifar-100-python.tar.gz``, or a TFDS build of cifar10 / cifar100: ``cifar.find_source``) in
  file order, as the arrays above: ids and key names ``test/00000`` ... (``cifar.file_name``);
  the pixels' and labels' sha256 recorded, and a TFDS build's name/version as ``cifar_tfds``
  (so a run never resumes on the other source)."""
  check_max_images(max_images)
  cifar_set = cifar.get_set(benchmark)
  path = find_cifar_archive(benchmark, cifar_dir)
  test_set = cifar.read_source(path, cifar_set)
  identity = cifar.source_identity(path, cifar_set)
  stop = None if max_images is None else int(max_images)
  images, labels = test_set.images[:stop], test_set.labels[:stop].astype(np.int32)
  ids = test_set.file_names[:stop]
  digest = _Digest()
  digest.update(images, labels)
  return SourceListing(
      benchmark, str(path), ids, ids, labels, [int(np.prod(images.shape[1:]))] * len(ids),
      read=None, chunk=lambda a, b: _array_chunk(ids, labels, images, a, b), in_memory=True,
      extra={"data_sha256": digest.hexdigest(),
             **({"cifar_tfds": identity["tfds_build"]} if identity["format"] == "tfds" else {})})


def find_cifar_archive(benchmark: str, cifar_dir) -> pathlib.Path:
  """``cifar_dir``'s official python tarball of ``benchmark`` or its TFDS build
  (``cifar.find_source``); ValueError saying where to get one."""
  cifar_set = cifar.get_set(benchmark)
  path = cifar.find_source(cifar_dir, cifar_set)
  if path is None:
    where = "no cifar_dir given" if cifar_dir is None else f"not in {cifar_dir}"
    raise ValueError(f"benchmark {benchmark!r} reads the {cifar_set.dataset} test set from "
                     f"{cifar_set.archive} ({where}): download it from {cifar_set.url} "
                     f"(md5 {cifar_set.md5}) into a folder and pass cifar_dir= (--cifar_dir), "
                     f"or pass a TFDS data_dir holding a build of {cifar_set.name} "
                     f"({cifar_set.name}/<version>/)")
  return path


def tfds_listing(data: OwnData, max_images: int | None) -> SourceListing:
  """The listing of a TFDS dataset's split, read by index (any random-access build:
  array_record); images left encoded until a chunk is built."""
  check_max_images(max_images)
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ValueError(f"tfds_name={data.tfds_name!r} needs tensorflow_datasets "
                     f"(pip install tensorflow-datasets): {err}") from err
  where = data.tfds_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
  prepare = (f"prepare it with tfds.builder({data.tfds_name!r}, data_dir=DIR, "
             "file_format='array_record').download_and_prepare(), then pass tfds_dir=DIR")
  try:
    builder = tfds.builder(data.tfds_name, data_dir=data.tfds_dir)
    prepared = builder.is_prepared()
  except Exception as err:  # TFDS raises several types for an unknown or damaged dataset.
    raise ValueError(f"{data.tfds_name} cannot be opened in {where} ({type(err).__name__}: "
                     f"{err}); {prepare}") from err
  if not prepared:
    raise ValueError(f"{data.tfds_name} (version {builder.version}) is not prepared in {where}; "
                     f"{prepare}")
  image_key, label_key = builder.info.supervised_keys or ("image", "label")
  features = builder.info.features
  if (not isinstance(image_key, str) or image_key not in features
      or not isinstance(features[image_key], tfds.features.Image)):
    raise ValueError(f"{data.tfds_name} has no image feature {image_key!r} (its supervised_keys: "
                     f"{builder.info.supervised_keys}); an image classification dataset is needed")
  if not isinstance(label_key, str) or label_key not in features:
    raise ValueError(f"{data.tfds_name} has no label feature {label_key!r}")
  try:
    source = builder.as_data_source(split=data.tfds_split,
                                    decoders={image_key: tfds.decode.SkipDecoding()})
  except NotImplementedError as err:  # a tfrecord build: no random access
    stored = getattr(builder.info.file_format, "value", builder.info.file_format)
    raise ValueError(f"{data.tfds_name} is prepared in {where} as {stored}, which cannot be "
                     f"read by index: {prepare} (another data_dir)") from err
  except Exception as err:  # TFDS raises several types for an unknown split.
    raise ValueError(f"{data.tfds_name}: cannot read split {data.tfds_split!r} "
                     f"({type(err).__name__}: {err})") from err
  count = len(source) if max_images is None else min(len(source), int(max_images))
  if not count:
    raise ValueError(f"{data.tfds_name} split {data.tfds_split} holds no example")
  labels, sizes = np.zeros(count, np.int32), []
  for i in range(count):
    record = source[i]
    labels[i] = int(record[label_key])
    sizes.append(len(record[image_key]))
  prefix = f"{data.tfds_name}/{data.tfds_split}"
  ids = [f"{prefix}/{i}" for i in range(count)]

  def read(start: int, stop: int) -> list[sources.Example]:
    records = [source[i] for i in range(start, stop)]
    return [sources.Example(ids[i], int(labels[i]), bytes(r[image_key]), ids[i])
            for i, r in zip(range(start, stop), records)]

  return SourceListing("tfds", data.location, ids, ids, labels, sizes, read,
                       extra={"tfds_name": data.tfds_name, "tfds_split": data.tfds_split,
                              "tfds_version": str(builder.version)})


def listing(data: OwnData, max_images: int | None, wants_sequences: bool) -> SourceListing:
  """The ``SourceListing`` of the user's data (batches are read here, once)."""
  if data.kind == "tfds":
    return tfds_listing(data, max_images)
  return array_listing(data, max_images, wants_sequences)


# ----------------------------------------------------------------------------------------------
# The model's classes and the baseline.


def model_classes(apply_fn: Callable, variables, size: int = CROP) -> int:
  """How many logits the model returns per image (traced abstractly on one size x size image:
  224, or 32 for CIFAR)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  out = jax.eval_shape(lambda v, x: apply_fn(v, x), variables,
                       jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32))
  shape = getattr(out, "shape", None)
  if shape is None or len(shape) != 2 or shape[0] != 1:
    raise ValueError(f"apply_fn must return logits [N, C]; on one image it returned {out}")
  return int(shape[1])


def check_classes(labels: np.ndarray, classes: int, wants_sequences: bool) -> None:
  """Labels must index the model's logits; sequences need 5 classes (the top-5 distance)."""
  if labels.size and int(labels.max()) >= classes:
    raise ValueError(f"the labels go up to {int(labels.max())} but the model returns {classes} "
                     f"logits per image: labels must be class indices 0..{classes - 1}")
  if wants_sequences and classes < 5:
    raise ValueError(f"ImageNet-P's top-5 distance needs at least 5 classes; the model returns "
                     f"{classes}: pass perturbations=()")


def cifar_baseline(baseline: Baseline, benchmark: str) -> Baseline:
  """CIFAR's figures are reported unnormalised (hendrycks/robustness#28: "we don't normalize"),
  and no normaliser was published for Tiny / 64 / 299: no baseline unless the user passed one
  they measured on this data."""
  if baseline is not ALEXNET:
    return baseline
  why = ("as the CIFAR-C/-P papers do" if benchmark.startswith("cifar")
         else "no normaliser was published at this size")
  return Baseline(
      name=f"none ({benchmark}: reported unnormalised, {why}; pass baseline= measured on this "
           "data for CE / FR)", source="none", note="")


def baseline_for(baseline: Baseline, classes: int) -> Baseline:
  """The baseline a run on the user's data normalises by: AlexNet's published ImageNet figures
  only for a 1000-class model; for another number of classes none (the raw figures stay,
  CE / FR / T5D are null with the reason), unless the user passed one they measured."""
  if baseline is not ALEXNET or classes == IMAGENET_CLASSES:
    return baseline
  return Baseline(
      name=f"none (a {classes}-class model: AlexNet's ImageNet-1k figures do not apply; pass "
           "baseline= measured on this data)",
      source="none", note="")
