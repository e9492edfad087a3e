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
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import pickle
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
