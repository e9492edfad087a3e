"""The CIFAR-10 / CIFAR-100 test sets from the official python tarballs, without running pickles.

The "python version" archives (https://www.cs.toronto.edu/~kriz/cifar.html) hold Python 2
pickles of dicts: ``data`` uint8 [N, 3072] (the 1,024 red values of a row-major 32x32 image,
then green, then blue), ``labels`` (CIFAR-10) or ``fine_labels`` / ``coarse_labels``
(CIFAR-100) as lists of ints, ``filenames``, ``batch_label``.  ``pickle.load`` would run any
code a tampered file names, so ``restricted_loads`` resolves only the NumPy array
reconstruction these files use (``RestrictedUnpickler.ALLOWED``) and refuses every other global.

The test set is what CIFAR-10-C / CIFAR-100-C / -P corrupt (``make_cifar_c.py``,
``make_cifar_p.py``), in file order: example i is ``test_batch``'s row i, file name
``file_name(i)`` = ``test/00000`` ... ``test/09999`` (zero-based, the row index), which is also
what ``imagenet_cp.example_key`` hashes.

A TFDS build of TFDS's own ``cifar10`` / ``cifar100`` (made from the binary archives, which hold
the same test set) is the other accepted source (``find_source``, ``read_source``): its ``test``
split is stored in TFDS's shuffled order, so the test-set order is restored from the ``id``
feature (``test_00000`` is row 0); the label is its ``label`` feature (CIFAR-100: the fine
label, not ``coarse_label``).  Both formats TFDS writes are read without TensorFlow
(array_record through ``as_data_source``, tfrecord by its framing; tfrecord CRCs are not
checked: ``TestSet.sha256`` of the pixels is what a build and a run record).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pathlib
import pickle
import re
import struct
import tarfile

import numpy as np

from imagenet_cp.sources import SourceError

SIZE = 32

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# The fine label names of cifar-100-python/meta, in label order (alphabetical).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm")


@dataclasses.dataclass(frozen=True)
class CifarSet:
  """One official archive: where it is published, its published checksums, where the test set is.

  ``md5`` is the checksum published on the CIFAR page; ``sha256`` and ``size`` are those of the
  same file as Keras pins them (``keras.datasets``), which TFDS's ``checksums.tsv`` needs.
  """
  name: str
  dataset: str
  archive: str
  url: str
  size: int
  md5: str
  sha256: str
  test_member: str
  meta_member: str
  labels_key: bytes
  names_key: bytes
  classes: tuple[str, ...]


CIFAR10 = CifarSet(
    name="cifar10", dataset="CIFAR-10", archive="cifar-10-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", size=170_498_071,
    md5="c58f30108f718f92721af3b95e74349a",
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    test_member="cifar-10-batches-py/test_batch", meta_member="cifar-10-batches-py/batches.meta",
    labels_key=b"labels", names_key=b"label_names", classes=CIFAR10_CLASSES)
CIFAR100 = CifarSet(
    name="cifar100", dataset="CIFAR-100", archive="cifar-100-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", size=169_001_437,
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    test_member="cifar-100-python/test", meta_member="cifar-100-python/meta",
    labels_key=b"fine_labels", names_key=b"fine_label_names", classes=CIFAR100_CLASSES)
SETS = {s.name: s for s in (CIFAR10, CIFAR100)}


def get_set(name: str) -> CifarSet:
  if name not in SETS:
    raise ValueError(f"unknown CIFAR set {name!r}; expected one of {sorted(SETS)}")
  return SETS[name]


def file_name(index: int) -> str:
  """The documented per-image name (and key input) of test image ``index`` (zero-based)."""
  return f"test/{index:05d}"


# ----------------------------------------------------------------------------------------------
# Pickles without code execution


def _reconstruct_ndarray(cls, shape, dtype):
  """numpy's ``_reconstruct``, for ``ndarray`` only (a pickle may name any class here)."""
  if cls is not np.ndarray:
    raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}: only numpy.ndarray is allowed")
  return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(spec, align=False, copy=False):
  """``numpy.dtype`` for plain scalar types only (object dtypes would unpickle arbitrary data)."""
  if isinstance(spec, bytes):
    spec = spec.decode("ascii")
  dtype = np.dtype(spec, align, copy)
  if dtype.hasobject or dtype.fields is not None:
    raise pickle.UnpicklingError(f"refusing dtype {dtype!r}: only plain numeric dtypes are allowed")
  return dtype


class RestrictedUnpickler(pickle.Unpickler):
  """Resolves only the globals a CIFAR batch needs; any other (``os.system``, ``eval``...) fails.

  Python 2 pickles name the array helpers ``numpy.core.multiarray``; NumPy 2 writes
  ``numpy._core.multiarray``.  Both map to our own checked replacements, never to what the file
  asks for.
  """

  ALLOWED = {
      ("numpy.core.multiarray", "_reconstruct"): _reconstruct_ndarray,
      ("numpy._core.multiarray", "_reconstruct"): _reconstruct_ndarray,
      ("numpy", "ndarray"): np.ndarray,
      ("numpy", "dtype"): _dtype,
  }

  def find_class(self, module, name):
    try:
      return self.ALLOWED[(module, name)]
    except KeyError:
      raise pickle.UnpicklingError(
          f"refusing to load global {module}.{name}: a CIFAR batch holds only bytes, lists, "
          "dicts and uint8 arrays") from None


def restricted_loads(data: bytes):
  """Unpickles ``data`` like ``pickle.loads(data, encoding="bytes")``, refusing code globals."""
  return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


# ----------------------------------------------------------------------------------------------
# The test set


@dataclasses.dataclass(frozen=True, eq=False)
class TestSet:
  """A CIFAR test set in file order: images uint8 [N, 32, 32, 3], labels int64 [N]."""
  images: np.ndarray
  labels: np.ndarray

  @property
  def file_names(self) -> list[str]:
    return [file_name(i) for i in range(len(self.labels))]

  def sha256(self) -> str:
    """sha256 of the images (uint8, row-major) then the labels (int64 little-endian), in
    test-set order: the same for every source holding the same test set."""
    h = hashlib.sha256(np.ascontiguousarray(self.images, np.uint8).tobytes())
    h.update(np.asarray(self.labels, "<i8").tobytes())
    return h.hexdigest()


def find_archive(directory, cifar_set: CifarSet) -> pathlib.Path | None:
  """``<directory>/<archive>`` if it is there (no other layout is searched), else None."""
  if directory is None:
    return None
  path = pathlib.Path(os.fspath(directory)).expanduser() / cifar_set.archive
  return path if path.is_file() else None


def _path(path):
  """A local pathlib.Path, or an etils.epath.Path for gs:// and other remote file systems."""
  path = os.fspath(path)
  if "://" in path:
    from etils import epath  # pylint: disable=g-import-not-at-top
    return epath.Path(path)
  return pathlib.Path(path)


def checksums(path) -> dict[str, str]:
  """md5 and sha256 of a file, read once."""
  md5, sha256 = hashlib.md5(), hashlib.sha256()
  with _path(path).open("rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      md5.update(block)
      sha256.update(block)
  return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest()}


def read_test_set(archive, cifar_set: CifarSet) -> TestSet:
  """The test set of an official python tarball (or a stand-in with the same members).

  Raises SourceError, naming the archive, for a missing member, an unreadable archive, a pickle
  that names anything but the array helpers, or contents of the wrong shape or labels.
  """
  archive = _path(archive)
  try:
    with archive.open("rb") as f, tarfile.open(fileobj=f, mode="r:gz") as tar:
      batch = _read_member(tar, archive, cifar_set.test_member)
      meta = _read_member(tar, archive, cifar_set.meta_member, required=False)
  except (tarfile.TarError, EOFError, OSError) as err:
    raise SourceError(f"{archive} is not a readable {cifar_set.archive} ({err}); download it "
                      f"again from {cifar_set.url}") from err
  where = f"{archive}:{cifar_set.test_member}"
  if not isinstance(batch, dict) or b"data" not in batch or cifar_set.labels_key not in batch:
    raise SourceError(f"{where} is not a CIFAR batch (expected a dict with b'data' and "
                      f"{cifar_set.labels_key!r})")
  data, labels = batch[b"data"], np.asarray(batch[cifar_set.labels_key], np.int64)
  if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
      or data.shape[1] != 3 * SIZE * SIZE or labels.shape != (data.shape[0],)):
    raise SourceError(f"{where}: expected uint8 data [N, 3072] and N labels, got "
                      f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')} and "
                      f"{labels.shape[0]} labels")
  if labels.size and not 0 <= labels.min() <= labels.max() < len(cifar_set.classes):
    raise SourceError(f"{where}: labels outside 0..{len(cifar_set.classes) - 1}")
  if meta is not None:
    names = tuple(n.decode() if isinstance(n, bytes) else n
                  for n in meta.get(cifar_set.names_key, ()))
    if names != cifar_set.classes:
      raise SourceError(f"{archive}:{cifar_set.meta_member}: class names {names[:3]}... differ "
                        f"from {cifar_set.dataset}'s official names")
  images = data.reshape(-1, 3, SIZE, SIZE).transpose(0, 2, 3, 1)
  return TestSet(np.ascontiguousarray(images), labels)


def _read_member(tar: tarfile.TarFile, archive, member: str, required=True):
  try:
    f = tar.extractfile(member)
  except KeyError:
    f = None
  if f is None:
    if not required:
      return None
    raise SourceError(f"{archive} has no {member}: is it the python version "
                      f"(cifar-10-python.tar.gz / cifar-100-python.tar.gz)?")
  try:
    return restricted_loads(f.read())
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
          AttributeError) as err:
    raise SourceError(f"{archive}:{member}: {err}") from err


# ----------------------------------------------------------------------------------------------
# The other source: a TFDS build of TFDS's cifar10 / cifar100

TFDS_ID = re.compile(r"test_(\d{5})")  # the ``id`` of test image i: test_{i:05d}
_VERSION = re.compile(r"\d+\.\d+\.\d+")


def is_tfds_build(path) -> bool:
  """Whether ``path`` is a TFDS dataset version folder (it holds dataset_info.json)."""
  return (_path(path) / "dataset_info.json").is_file()


def find_tfds_build(directory, cifar_set: CifarSet):
  """The TFDS build of ``cifar_set.name`` in ``directory``: the version folder itself
  (``<data_dir>/cifar10/3.0.2``) or, in a TFDS data_dir, ``<name>/<version>`` (the highest
  version holding dataset_info.json; the build records which); None if there is none."""
  if directory is None:
    return None
  directory = _path(os.path.expanduser(os.fspath(directory)))
  if is_tfds_build(directory):
    return directory if directory.parent.name == cifar_set.name else None
  folder = directory / cifar_set.name
  if not folder.is_dir():
    return None
  versions = [p for p in folder.iterdir() if _VERSION.fullmatch(p.name) and is_tfds_build(p)]
  if not versions:
    return None
  return max(versions, key=lambda p: tuple(int(x) for x in p.name.split(".")))


def find_source(directory, cifar_set: CifarSet):
  """``directory``'s python tarball of ``cifar_set`` or its TFDS build (``find_tfds_build``);
  None if it holds neither.  Holding both is ambiguous and refused: a build must not pick one
  of two test sets silently."""
  archive = find_archive(directory, cifar_set)
  build = find_tfds_build(directory, cifar_set)
  if archive is not None and build is not None:
    raise SourceError(f"{directory} holds both {cifar_set.archive} and a TFDS build of "
                      f"{cifar_set.name} ({build}): point the directory option at a folder "
                      "with only one of them (e.g. the build's <data_dir>/"
                      f"{cifar_set.name}/<version>)")
  return archive if archive is not None else build


def source_identity(path, cifar_set: CifarSet) -> dict[str, str]:
  """What the source is, for metadata and run records: its format, and for a TFDS build its
  dataset/version (read from its dataset_info.json)."""
  if not is_tfds_build(path):
    return {"format": "python tarball", "archive": cifar_set.archive}
  info = _tfds_info(path)
  return {"format": "tfds", "tfds_build": f"{info.get('name')}/{info.get('version')}",
          "tfds_file_format": info.get("fileFormat", "tfrecord")}


def read_source(path, cifar_set: CifarSet) -> TestSet:
  """The test set of a python tarball (``read_test_set``) or a TFDS build
  (``read_tfds_test_set``), whichever ``path`` is."""
  if is_tfds_build(path):
    return read_tfds_test_set(path, cifar_set)
  return read_test_set(path, cifar_set)


def _tfds_info(path) -> dict:
  where = _path(path) / "dataset_info.json"
  try:
    return json.loads(where.read_text())
  except (OSError, ValueError) as err:
    raise SourceError(f"{where} is not a readable TFDS dataset_info.json ({err})") from err


def read_tfds_test_set(path, cifar_set: CifarSet) -> TestSet:
  """The test set of a TFDS build of ``cifar10`` / ``cifar100`` (its version folder), in
  test-set order (from ``id``), labels from ``label`` (CIFAR-100's fine label).

  Raises SourceError, naming the build, for a build of another dataset, one without a test
  split or ``id``, other class names, or ids that are not exactly test_00000 ... in some order.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (this source only)
  info = _tfds_info(path)
  if info.get("name") != cifar_set.name:
    raise SourceError(f"{path} is a TFDS build of {info.get('name')!r}, not {cifar_set.name!r}")
  try:
    builder = tfds.builder_from_directory(os.fspath(path))
  except (OSError, ValueError, KeyError) as err:
    raise SourceError(f"{path}: not a readable TFDS build of {cifar_set.name} ({err})") from err
  features = builder.info.features
  missing = [k for k in ("id", "image", "label") if k not in features]
  if missing or "test" not in builder.info.splits:
    raise SourceError(f"{path}: a TFDS {cifar_set.name} build needs a test split and the "
                      f"features id, image, label (missing: {missing or ['the test split']}); "
                      "rebuild it with a current tensorflow-datasets")
  names = tuple(features["label"].names)
  if names != cifar_set.classes:
    raise SourceError(f"{path}: label names {names[:3]}... differ from {cifar_set.dataset}'s "
                      "official (fine) names")
  count = builder.info.splits["test"].num_examples
  images = np.zeros((count, SIZE, SIZE, 3), np.uint8)
  labels = np.full(count, -1, np.int64)
  for example in _tfds_test_examples(builder, path):
    index = _tfds_index(example["id"], count, path)
    if labels[index] != -1:
      raise SourceError(f"{path}: the id test_{index:05d} names two test images")
    if example["image"].shape != (SIZE, SIZE, 3):
      raise SourceError(f"{path}: test_{index:05d} is {example['image'].shape}, not 32x32x3")
    images[index], labels[index] = example["image"], example["label"]
  if (labels == -1).any():
    raise SourceError(f"{path}: {int((labels == -1).sum())} of {count} test images are missing "
                      f"(e.g. test_{int(np.argmax(labels == -1)):05d}); is the build complete?")
  return TestSet(images, labels)


def _tfds_index(example_id, count: int, path) -> int:
  text = example_id.decode() if isinstance(example_id, bytes) else str(example_id)
  match = TFDS_ID.fullmatch(text)
  if match is None or int(match.group(1)) >= count:
    raise SourceError(f"{path}: test id {text!r} is not test_00000 ... test_{count - 1:05d}")
  return int(match.group(1))


def _tfds_test_examples(builder, path):
  """The decoded examples of the test split, in file order, without TensorFlow."""
  file_format = builder.info.file_format
  fmt = "tfrecord" if file_format is None else file_format.value
  if fmt == "array_record":
    source = builder.as_data_source(split="test")
    for i in range(len(source)):
      yield source[i]
  elif fmt == "tfrecord":
    for shard in builder.info.splits["test"].filepaths:
      for record in _tfrecords(shard):
        yield builder.info.features.deserialize_example_np(record)
  else:
    raise SourceError(f"{path}: TFDS file format {fmt!r} is not read here; build "
                      f"{builder.info.name} as array_record or tfrecord")


def _tfrecords(path):
  """The records of a TFRecord file: uint64 length, its CRC, the bytes, their CRC (the CRCs are
  not checked: a truncated or padded file still fails here)."""
  data = _path(path).read_bytes()
  offset = 0
  while offset < len(data):
    if offset + 12 > len(data):
      raise SourceError(f"{path}: truncated TFRecord header at byte {offset}")
    (length,) = struct.unpack_from("<Q", data, offset)
    start, offset = offset + 12, offset + 12 + length + 4
    if offset > len(data):
      raise SourceError(f"{path}: truncated TFRecord at byte {start}")
    yield data[start:start + length]
