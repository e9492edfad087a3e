"""ImageNet-C as released: the five tars or their extracted tree.

Layout (``make_imagenet_c.py``): ``<corruption>/<severity>/<wnid>/<file>.JPEG``, 224x224 JPEGs
(q85) written after the corruption.  Zenodo 2235448 groups the 19 corruptions into five tars
(``TARS``); a folder may hold the tars or the extracted tree (not a mix for one corruption).
Images are read by seeking into the tar (no extraction) and decoded once, never resized or
cropped.  Labels: the wnid folder's index in the 1,000 sorted ImageNet wnids (TFDS's
``imagenet2012`` labels, which are also what torchvision's ImageFolder gives on the tree).
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Sequence

import numpy as np

from imagenet_cp.corruptions import CORRUPTIONS
from imagenet_cp.released.common import (Cell, ReleasedError, files_digest, read_images,
                                         scan_tar, scan_tree)
from imagenet_cp.sources import SourceFile, imagenet_wnids

SIZE = 224
SUFFIX = ".JPEG"
# Zenodo record 2235448: which tar holds which corruption folders.
TARS = {
    "noise.tar": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur.tar": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather.tar": ("snow", "frost", "fog", "brightness"),
    "digital.tar": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
    "extra.tar": ("speckle_noise", "gaussian_blur", "spatter", "saturate"),
}
TAR_OF = {name: tar for tar, names in TARS.items() for name in names}


@dataclasses.dataclass
class ImageTree:
  """A released C set under ``root``: which corruptions it holds (``available``), and their
  files per (corruption, severity) once listed (``cell``).  ``size``: the images' side."""
  root: pathlib.Path
  names: tuple[str, ...]
  size: int
  tars: dict[str, tuple[str, ...]]
  layout: str = "tree"

  def __post_init__(self):
    self.root = pathlib.Path(self.root).expanduser()
    if not self.root.is_dir():
      raise ReleasedError(f"{self.root} is not a folder (the released tree or tars)")
    self._tar_cells: dict[tuple[str, int], list[SourceFile]] = {}
    self._scanned: set[str] = set()
    found_tars = [t for t in self.tars if (self.root / t).is_file()]
    if found_tars:
      self.layout = "tars"
    unknown = [p.name for p in self.root.iterdir() if p.is_dir() and p.name not in self.names
               and not p.name.startswith(".")]
    if unknown:
      raise ReleasedError(f"{self.root} holds unknown corruption folder(s) {sorted(unknown)}; "
                          f"expected some of {', '.join(self.names)}")

  def _tar_for(self, name: str) -> pathlib.Path | None:
    tar = next((t for t, names in self.tars.items() if name in names), None)
    return None if tar is None or not (self.root / tar).is_file() else self.root / tar

  def available(self) -> list[str]:
    """The corruptions present, as folders or inside their tar."""
    return [n for n in self.names if (self.root / n).is_dir() or self._tar_for(n) is not None]

  def cell(self, name: str, severity: int) -> Cell:
    """The files of ``<name>/<severity>``; ReleasedError when they are not there."""
    if name not in self.names:
      raise ReleasedError(f"unknown corruption {name!r}; expected one of {', '.join(self.names)}")
    if (self.root / name).is_dir():
      return Cell(name, severity, tuple(scan_tree(self.root, name, severity, SUFFIX)))
    tar = self._tar_for(name)
    if tar is None:
      where = next((t for t, names in self.tars.items() if name in names), None)
      hint = f" or {where}" if where else ""
      raise ReleasedError(f"{name} is not in {self.root}: expected the folder {name}/{hint}")
    if tar.name not in self._scanned:
      cells = scan_tar(tar, self.tars[tar.name], SUFFIX)
      self._tar_cells.update(cells)
      self._scanned.add(tar.name)
    files = self._tar_cells.get((name, severity))
    if not files:
      raise ReleasedError(f"{tar} holds no {name}/{severity}/ images")
    return Cell(name, severity, tuple(files))

  def containers(self, names: Sequence[str]) -> list[list]:
    """[name, bytes] of the tars the corruptions ``names`` are read from (none for folders)."""
    tars = sorted({t.name for n in names if not (self.root / n).is_dir()
                   and (t := self._tar_for(n)) is not None})
    return [[t, (self.root / t).stat().st_size] for t in tars]

  def identity(self, cells: Sequence[Cell]) -> dict:
    """What a run records of the files it read: layout, tars, and the files' names and sizes."""
    names = sorted({c.name for c in cells})
    return {"layout": self.layout, "tars": self.containers(names),
            "files_sha256": files_digest((f"{c.name}/{c.severity}", c.files) for c in cells)}

  def read(self, files: Sequence[SourceFile]) -> np.ndarray:
    """uint8 [n, size, size, 3] of ``files`` (one decode each, no resize or crop)."""
    return read_images(files, self.size)


def imagenet_c(root) -> ImageTree:
  """ImageNet-C (224) in ``root``: the tree, the tars, or a folder holding ``ImageNet-C/``."""
  root = pathlib.Path(root).expanduser()
  if (root / "ImageNet-C").is_dir():
    root = root / "ImageNet-C"
  return ImageTree(root, tuple(CORRUPTIONS), SIZE, TARS)


def imagenet_label(wnid: str) -> int:
  """The ImageNet label of a wnid folder; ReleasedError for a wnid outside ImageNet-1k."""
  wnids = imagenet_wnids()
  if wnid not in wnids:
    raise ReleasedError(f"{wnid} is not one of the 1,000 ImageNet wnids")
  return wnids.index(wnid)
