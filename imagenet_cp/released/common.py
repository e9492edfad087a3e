"""What the released readers share: image trees (folders or tars) listed without reading them."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import re
import tarfile
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from imagenet_cp.sources import SourceError, SourceFile, read_source_file

WNID = re.compile(r"^n\d{8}$")
SEVERITIES = (1, 2, 3, 4, 5)


class ReleasedError(SourceError):
  """A released dataset that is missing, laid out otherwise, or does not match its name."""


@dataclasses.dataclass(frozen=True)
class Cell:
  """One folder of a released C set: ``<name>/<severity>/<wnid>/<file>`` files, sorted by id
  (``<wnid>/<file>``).  ``files[i].path`` is the file, or its tar (``offset`` set)."""
  name: str
  severity: int
  files: tuple[SourceFile, ...]


def parse_member(path: str, names: Sequence[str], suffix: str) -> tuple[str, int, str, str] | None:
  """(name, severity, wnid, file) of a ``[...]/<name>/<severity>/<wnid>/<file><suffix>`` path;
  None when it is not shaped so."""
  parts = path.strip("/").split("/")
  if len(parts) < 4 or not parts[-1].endswith(suffix):
    return None
  name, severity, wnid, file = parts[-4:]
  if name not in names or severity not in {str(s) for s in SEVERITIES} or not WNID.match(wnid):
    return None
  return name, int(severity), wnid, file


def scan_tree(root: pathlib.Path, name: str, severity: int, suffix: str) -> list[SourceFile]:
  """The ``<root>/<name>/<severity>/<wnid>/*<suffix>`` files, label -1 (set by the reader)."""
  folder = root / name / str(severity)
  if not folder.is_dir():
    raise ReleasedError(f"{folder} is missing (expected <corruption>/<severity>/<wnid>/"
                        f"<file>{suffix} under {root})")
  files = []
  for wnid in sorted(os.listdir(folder)):
    sub = folder / wnid
    if not sub.is_dir():
      continue
    if not WNID.match(wnid):
      raise ReleasedError(f"{sub} is not a wnid folder (n########): not the released layout")
    for file in sorted(os.listdir(sub)):
      if file.endswith(suffix):
        files.append(SourceFile(f"{wnid}/{file}", file, -1, (sub / file).stat().st_size,
                                str(sub / file)))
  if not files:
    raise ReleasedError(f"{folder} holds no <wnid>/*{suffix} file")
  return files


def scan_tar(path: pathlib.Path, names: Sequence[str], suffix: str
             ) -> dict[tuple[str, int], list[SourceFile]]:
  """{(name, severity): files} of a released tar (headers only, no extraction); ReleasedError
  for a truncated tar or a member outside the layout (e.g. another corruption's)."""
  size = path.stat().st_size
  try:
    with tarfile.open(path, "r:") as tar:
      members = [m for m in tar.getmembers() if m.isfile()]
  except (tarfile.TarError, EOFError, OSError) as err:
    raise ReleasedError(f"{path} is not a readable tar ({err})") from err
  out: dict[tuple[str, int], list[SourceFile]] = {}
  for m in members:
    parsed = parse_member(m.name, names, suffix)
    if parsed is None:
      raise ReleasedError(f"{path}: member {m.name!r} is not <{'|'.join(names)}>/<severity>/"
                          f"<wnid>/<file>{suffix}: this tar does not match {path.name}")
    name, severity, wnid, file = parsed
    if m.offset_data + m.size > size:
      raise ReleasedError(f"{path} is truncated ({size:,} bytes): download it again")
    out.setdefault((name, severity), []).append(
        SourceFile(f"{wnid}/{file}", file, -1, m.size, str(path), m.offset_data))
  if not out:
    raise ReleasedError(f"{path} holds no <name>/<severity>/<wnid>/<file>{suffix} file")
  return {k: sorted(v, key=lambda f: f.id) for k, v in out.items()}


def files_digest(cells: Iterable[tuple[str, Sequence[SourceFile]]]) -> str:
  """sha256 of (folder, id, size) of every listed file: the released files' identity."""
  h = hashlib.sha256()
  for folder, files in cells:
    for f in files:
      h.update(f"{folder}\t{f.id}\t{f.size}\n".encode())
  return h.hexdigest()


def decode_image(data: bytes, size: int, what: str) -> np.ndarray:
  """A released JPEG -> uint8 [size, size, 3] as PIL decodes it (``convert('RGB')``, as the
  original's loader); ReleasedError if it is not ``size`` x ``size``: no resize, no crop."""
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except Exception as err:  # PIL raises several types for corrupt data.
    raise ReleasedError(f"{what}: cannot decode the image ({err})") from err
  if image.size != (size, size):
    raise ReleasedError(f"{what} is {image.size[0]}x{image.size[1]}; the released images are "
                        f"{size}x{size} and are used as they are (no resize or crop)")
  return np.asarray(image.convert("RGB"), np.uint8)


def read_images(files: Sequence[SourceFile], size: int) -> np.ndarray:
  """uint8 [len(files), size, size, 3]: each file read (a seek into its tar) and decoded once."""
  handles: dict[str, object] = {}
  try:
    out = []
    for f in files:
      handle = None
      if f.offset is not None:
        handle = handles.get(f.path) or handles.setdefault(f.path, open(f.path, "rb"))
      out.append(decode_image(read_source_file(f, handle), size, f"{f.path}:{f.id}"))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)
  finally:
    for h in handles.values():
      h.close()
