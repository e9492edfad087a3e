"""Stand-ins for cifar-10-python.tar.gz / cifar-100-python.tar.gz: same members, same pickles.

The official batches are Python 2 (cPickle, protocol 2) dicts whose keys and byte strings are
Python 2 ``str`` (the BINSTRING opcodes) and whose arrays name ``numpy.core.multiarray``.
``py2_pickle`` writes exactly that structure from Python 3, so the stand-ins exercise the
restricted unpickler the way the real files do.
"""
import io
import pathlib
import pickle
import struct
import tarfile

import numpy as np

from imagenet_cp import cifar


class _Py2Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """Protocol 2, with bytes and text as Python 2 ``str`` (BINSTRING), as cPickle wrote them
  (NumPy's own 'u1' and '|' in the arrays' dtype state included)."""
  dispatch = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access

  def save_py2_str(self, obj):
    if len(obj) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
    else:
      self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
    self.memoize(obj)

  def save_py2_text(self, obj):
    self.save_py2_str(obj.encode("latin-1"))

  dispatch[bytes] = save_py2_str
  dispatch[str] = save_py2_text


def py2_pickle(obj) -> bytes:
  buf = io.BytesIO()
  _Py2Pickler(buf, protocol=2).dump(obj)
  # NumPy 2 names its helpers numpy._core; the files were written by NumPy 1 (GLOBAL opcodes are
  # newline-terminated text in protocol 2, so renaming the module keeps the stream valid).
  return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def standin_images(n: int, seed: int) -> np.ndarray:
  """n distinct uint8 [32, 32, 3] images: smooth gradients plus noise (not constant, so the
  corruptions change them visibly)."""
  rng = np.random.RandomState(seed)
  yy, xx = np.mgrid[0:32, 0:32]
  images = []
  for i in range(n):
    base = np.stack([xx * 8, yy * 8, (xx + yy) * 4], axis=-1) + 37 * i
    images.append(np.clip(base % 256 + rng.randint(-20, 21, base.shape), 0, 255))
  return np.asarray(images, np.uint8)


def _batch(images, labels, labels_key, batch_label, extra=None):
  n = len(images)
  return {
      b"batch_label": batch_label,
      labels_key: [int(x) for x in labels],
      b"data": np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(n, 3072)),
      b"filenames": [f"standin_{i}.png".encode() for i in range(n)],
      **(extra or {}),
  }


def make_archive(directory, cifar_set, n: int = 5, seed: int = 0, test_batch=None):
  """Writes ``<directory>/<cifar_set.archive>``; returns (path, images [n,32,32,3], labels)."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  images = standin_images(n, seed)
  labels = np.random.RandomState(seed + 1).randint(0, len(cifar_set.classes), n)
  folder = cifar_set.test_member.split("/")[0]
  names = [c.encode() for c in cifar_set.classes]
  if cifar_set is cifar.CIFAR10:
    members = {
        "batches.meta": {b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072},
        "data_batch_1": _batch(standin_images(2, seed + 9), [0, 1], b"labels",
                               b"training batch 1 of 5"),
        "test_batch": _batch(images, labels, b"labels", b"testing batch 1 of 1"),
    }
  else:
    coarse = [int(x) % 20 for x in labels]
    members = {
        "meta": {b"fine_label_names": names,
                 b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)]},
        "train": _batch(standin_images(2, seed + 9), [0, 1], b"fine_labels",
                        b"training batch 1 of 1", {b"coarse_labels": [0, 0]}),
        "test": _batch(images, labels, b"fine_labels", b"testing batch 1 of 1",
                       {b"coarse_labels": coarse}),
    }
  path = directory / cifar_set.archive
  with tarfile.open(path, "w:gz") as tar:
    for name, content in members.items():
      data = test_batch if (test_batch is not None and f"{folder}/{name}" ==
                            cifar_set.test_member) else py2_pickle(content)
      info = tarfile.TarInfo(f"{folder}/{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path, images, labels
