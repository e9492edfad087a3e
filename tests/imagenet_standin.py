"""Stand-ins for the ImageNet manual download: a small tar shaped like ILSVRC2012_img_val.tar.

The official tar is a flat, uncompressed tar of ILSVRC2012_val_XXXXXXXX.JPEG files; this one
holds real photos (scikit-image) re-encoded as JPEG under the first validation file names.
"""
import io
import pathlib
import tarfile

import numpy as np
from PIL import Image

from conftest import photo

STANDIN_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def val_name(index: int) -> str:
  return f"ILSVRC2012_val_{index:08d}.JPEG"


def standin_jpegs(n: int) -> list[tuple[str, bytes]]:
  files = []
  for i in range(n):
    buf = io.BytesIO()
    Image.fromarray(photo(STANDIN_PHOTOS[i % len(STANDIN_PHOTOS)])).save(buf, format="JPEG", quality=90)
    files.append((val_name(i + 1), buf.getvalue()))
  return files


def make_val_tar(directory, n: int = 4) -> pathlib.Path:
  """Writes ``<directory>/ILSVRC2012_img_val.tar`` with n JPEGs (stored in reverse order)."""
  pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
  path = pathlib.Path(directory) / "ILSVRC2012_img_val.tar"
  with tarfile.open(path, "w") as tar:
    for name, data in reversed(standin_jpegs(n)):
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


def make_val_folder(directory, n: int = 4, by_wnid: bool = False) -> pathlib.Path:
  from imagenet_cp.sources import imagenet_wnids, validation_label
  root = pathlib.Path(directory) / "val"
  for name, data in standin_jpegs(n):
    sub = root / imagenet_wnids()[validation_label(name)] if by_wnid else root
    sub.mkdir(parents=True, exist_ok=True)
    (sub / name).write_bytes(data)
  return root
