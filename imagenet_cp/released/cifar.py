"""CIFAR-10/100-C and -P as released (``make_cifar_c.py``, ``make_cifar_p.py``).

* C: ``<corruption>.npy`` uint8 [5 N, 32, 32, 3], severity-major (rows ``(s - 1) N ... s N - 1``
  are severity s; N = 10,000), and ``labels.npy`` [5 N] (the test labels, five times).
* P: ``<perturbation>.npy`` uint8 [N, T, 32, 32, 3] (``gaussian_noise_2.npy`` ... for the noise
  difficulties).
Row i is test image i (``imagenet_cp.cifar.file_name(i)``, ``test/00000`` ...).  The arrays are
memory-mapped, never copied whole.  The folder may hold the files, or ``CIFAR-10-C/`` /
``CIFAR-10-P/`` (``CIFAR-100-...``) sub-folders as the tars extract.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Sequence

import numpy as np

from imagenet_cp.corruptions import CORRUPTIONS
from imagenet_cp.perturbations import PERTURBATIONS
from imagenet_cp.released.common import SEVERITIES, ReleasedError
from imagenet_cp.released.videos import folder_name

SIZE = 32
FOLDERS = {"cifar10": ("CIFAR-10-C", "CIFAR-10-P"), "cifar100": ("CIFAR-100-C", "CIFAR-100-P")}


def _load(path: pathlib.Path) -> np.ndarray:
  try:
    return np.load(path, mmap_mode="r", allow_pickle=False)
  except (OSError, ValueError) as err:
    raise ReleasedError(f"{path}: not a readable .npy file ({err})") from err


@dataclasses.dataclass
class CifarRelease:
  """CIFAR-10/100-C and/or -P in ``root``; ``c_dir`` / ``p_dir``: where each was found."""
  root: pathlib.Path
  benchmark: str

  def __post_init__(self):
    self.root = pathlib.Path(self.root).expanduser()
    if self.benchmark not in FOLDERS:
      raise ReleasedError(f"unknown CIFAR benchmark {self.benchmark!r}: cifar10 or cifar100")
    if not self.root.is_dir():
      raise ReleasedError(f"{self.root} is not a folder (the released .npy files)")
    c_name, p_name = FOLDERS[self.benchmark]
    self.c_dir = next((d for d in (self.root / c_name, self.root)
                       if (d / "labels.npy").is_file()), None)
    self.p_dir = next((d for d in (self.root / p_name, self.root)
                       if any((d / f"{n}.npy").is_file() for n in PERTURBATIONS)), None)
    names = set(CORRUPTIONS) | {"labels"} | {folder_name(n, d) for n in PERTURBATIONS
                                              for d in (1, 2, 3)}
    for folder in {self.c_dir, self.p_dir} - {None}:
      unknown = sorted(p.stem for p in folder.glob("*.npy") if p.stem not in names)
      if unknown:
        raise ReleasedError(f"{folder} holds unknown file(s) {unknown} (.npy); expected "
                            "<corruption>.npy, labels.npy or <perturbation>[_2|_3].npy")

  def _c_dir(self) -> pathlib.Path:
    if self.c_dir is None:
      c_name = FOLDERS[self.benchmark][0]
      raise ReleasedError(f"no labels.npy in {self.root} or {self.root / c_name}: not "
                          f"{c_name} as released")
    return self.c_dir

  def labels(self) -> np.ndarray:
    """int32 [N]: the test labels (``labels.npy``'s first block; the five must be equal)."""
    labels = np.asarray(_load(self._c_dir() / "labels.npy"))
    if labels.ndim != 1 or labels.shape[0] % len(SEVERITIES):
      raise ReleasedError(f"{self.c_dir / 'labels.npy'}: shape {labels.shape}, expected "
                          "[5 N] (the test labels once per severity)")
    blocks = labels.reshape(len(SEVERITIES), -1)
    if not (blocks == blocks[:1]).all():
      raise ReleasedError(f"{self.c_dir / 'labels.npy'}: the five severity blocks differ: not "
                          "severity-major as released")
    return blocks[0].astype(np.int32)

  def corruption(self, name: str, severity: int) -> np.ndarray:
    """uint8 [N, 32, 32, 3] (a memory-mapped view) of ``name`` at ``severity``."""
    if name not in CORRUPTIONS:
      raise ReleasedError(f"unknown corruption {name!r}; expected one of {', '.join(CORRUPTIONS)}")
    path = self._c_dir() / f"{name}.npy"
    if not path.is_file():
      raise ReleasedError(f"{path} is missing")
    array = _load(path)
    n = len(self.labels())
    if array.dtype != np.uint8 or array.shape != (len(SEVERITIES) * n, SIZE, SIZE, 3):
      raise ReleasedError(f"{path}: {array.dtype} {array.shape}, expected uint8 "
                          f"[{len(SEVERITIES) * n}, {SIZE}, {SIZE}, 3] (5 x labels.npy's {n})")
    return array[(severity - 1) * n:severity * n]

  def perturbation(self, name: str, difficulty: int) -> np.ndarray:
    """uint8 [N, T, 32, 32, 3] (memory-mapped) of ``name`` at ``difficulty``'s file."""
    if name not in PERTURBATIONS:
      raise ReleasedError(f"unknown perturbation {name!r}; expected one of "
                          f"{', '.join(PERTURBATIONS)}")
    folder = self.p_dir or self.root / FOLDERS[self.benchmark][1]
    path = folder / f"{folder_name(name, difficulty)}.npy"
    if not path.is_file():
      raise ReleasedError(f"{path} is missing")
    array = _load(path)
    if array.dtype != np.uint8 or array.ndim != 5 or array.shape[2:] != (SIZE, SIZE, 3):
      raise ReleasedError(f"{path}: {array.dtype} {array.shape}, expected uint8 "
                          f"[N, T, {SIZE}, {SIZE}, 3]")
    return array

  def files(self, corruptions: Sequence[str], perturbations: Sequence[tuple[str, int]]
            ) -> list[pathlib.Path]:
    """The .npy files a run with these corruptions and (perturbation, difficulty)s reads."""
    out = [self._c_dir() / "labels.npy"] if corruptions else []
    out += [self._c_dir() / f"{n}.npy" for n in corruptions]
    folder = self.p_dir or self.root
    out += [folder / f"{folder_name(n, d)}.npy" for n, d in perturbations]
    return out

  def identity(self, corruptions: Sequence[str], perturbations: Sequence[tuple[str, int]]
               ) -> dict:
    """The files' names and sizes (and the labels' digest): what a run records of them."""
    import hashlib  # pylint: disable=g-import-not-at-top
    files = [[p.relative_to(self.root).as_posix(), p.stat().st_size]
             for p in self.files(corruptions, perturbations) if p.is_file()]
    out = {"layout": "npy", "files": files}
    if corruptions:
      out["labels_sha256"] = hashlib.sha256(self.labels().astype("<i8").tobytes()).hexdigest()
    return out
