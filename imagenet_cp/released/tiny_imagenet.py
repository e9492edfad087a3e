"""Tiny-ImageNet-C and -P as released (zenodo 2536630): the 64x64 trees.

* C: ``<corruption>/<severity>/<wnid>/<file>.JPEG`` (``make_tinyimagenet_c.py``: Resize((64, 64)),
  corruption, JPEG q85), 200 classes.  Known quirk (hendrycks/robustness#60): the released frost
  folder holds all 1,000 ImageNet classes.  ``classes`` are the wnid folders every other listed
  corruption holds (or the ones given); a folder's images of other wnids are dropped and
  reported (``TinyCell.dropped``), never given a label.
* P: ``<perturbation>[_2|_3]/<wnid>/<file>.mp4`` (64x64 frames), read like ImageNet-P.
Labels: the index of the wnid in the sorted classes (what torchvision's ImageFolder gives).

There is no ``tiny_imagenet`` benchmark in ``metrics.run`` (no Tiny-ImageNet model in the zoo);
these readers give the arrays to ``metrics.evaluate`` through ``own_data`` or your own loop.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Sequence

import numpy as np

from imagenet_cp.corruptions import CORRUPTIONS
from imagenet_cp.perturbations import PERTURBATIONS
from imagenet_cp.released.common import Cell, ReleasedError
from imagenet_cp.released.imagenet_c import ImageTree
from imagenet_cp.released.videos import VideoTree

SIZE = 64
CLASSES = 200


@dataclasses.dataclass(frozen=True)
class TinyCell:
  """A Tiny-ImageNet-C folder's images of the classes, their labels, and what was dropped."""
  cell: Cell
  labels: np.ndarray
  dropped: int


class TinyImageNetC:
  """Tiny-ImageNet-C in ``root`` (or ``root/Tiny-ImageNet-C``)."""

  def __init__(self, root, classes: Sequence[str] | None = None):
    root = pathlib.Path(root).expanduser()
    if (root / "Tiny-ImageNet-C").is_dir():
      root = root / "Tiny-ImageNet-C"
    self.tree = ImageTree(root, tuple(CORRUPTIONS), SIZE, {})
    self.classes = tuple(sorted(classes)) if classes is not None else self._common_classes()

  def _common_classes(self) -> tuple[str, ...]:
    """The wnids of every non-frost corruption folder (frost holds 1,000: #60)."""
    sets = []
    for name in self.tree.available():
      if name == "frost":
        continue
      for severity in sorted(os.listdir(self.tree.root / name)):
        sets.append({w for w in os.listdir(self.tree.root / name / severity)})
    if not sets:
      raise ReleasedError(f"{self.tree.root}: only frost, whose folder holds 1,000 classes "
                          "(hendrycks/robustness#60): pass classes= (Tiny-ImageNet's 200 wnids)")
    common = set.intersection(*sets)
    if len(set.union(*sets)) != len(common):
      raise ReleasedError(f"{self.tree.root}: the corruption folders hold different classes "
                          f"({len(common)} common of {len(set.union(*sets))}); pass classes=")
    return tuple(sorted(common))

  def cell(self, name: str, severity: int) -> TinyCell:
    cell = self.tree.cell(name, severity)
    keep = tuple(f for f in cell.files if f.id.split("/")[0] in self.classes)
    labels = np.array([self.classes.index(f.id.split("/")[0]) for f in keep], np.int32)
    return TinyCell(Cell(name, severity, keep), labels, len(cell.files) - len(keep))

  def read(self, cell: TinyCell) -> np.ndarray:
    """uint8 [n, 64, 64, 3] of the cell's kept images."""
    return self.tree.read(cell.cell.files)


def tiny_imagenet_p(root) -> VideoTree:
  """Tiny-ImageNet-P (64x64 frames) in ``root`` (or ``root/Tiny-ImageNet-P``)."""
  root = pathlib.Path(root).expanduser()
  if (root / "Tiny-ImageNet-P").is_dir():
    root = root / "Tiny-ImageNet-P"
  return VideoTree(root, tuple(PERTURBATIONS), SIZE)
