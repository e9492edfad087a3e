"""Fixed image lists: which validation images a run evaluates, in which order.

``robustbench_5k`` is RobustBench's ImageNet subset (5,000 ``<wnid>/<file>.JPEG`` lines, from
robustbench 1.1.1, MIT; ``assets_data/robustbench/README.md``); any text file of the same form
(``<wnid>/<file>`` or ``<file>``, one a line) works too.  The list's order is kept: RobustBench
evaluates the first ``n_ex`` of it, so ``max_images=n`` takes the same images.  A run records
the list's name and sha256, and a resume with another list is refused.
"""
from __future__ import annotations

import dataclasses
import hashlib
import pathlib

_ASSETS = pathlib.Path(__file__).resolve().parent / "assets_data"
# name -> (file, sha256 of the shipped copy)
NAMED = {"robustbench_5k": (_ASSETS / "robustbench" / "imagenet_test_image_ids.txt",
                            "d4121626d07722a0126c35b1563042e46a546f1a05ce705f2cdc635896d58574")}


@dataclasses.dataclass(frozen=True)
class ImageList:
  """``entries``: ``<wnid>/<file>`` or ``<file>``, in order; ``name``: the option or path."""
  name: str
  entries: tuple[str, ...]
  sha256: str

  def file_names(self) -> list[str]:
    return [e.rsplit("/", 1)[-1] for e in self.entries]

  def wnid(self, index: int) -> str | None:
    """The wnid an entry names (None for a bare file name)."""
    parts = self.entries[index].split("/")
    return parts[-2] if len(parts) > 1 else None

  def identity(self) -> dict:
    return {"image_list": self.name, "image_list_sha256": self.sha256,
            "image_list_images": len(self.entries)}


def load(spec: str) -> ImageList:
  """A named list (``NAMED``) or a text file's; ValueError for a missing, empty or repeating
  list."""
  if spec in NAMED:
    path, expected = NAMED[spec]
  else:
    path, expected = pathlib.Path(spec).expanduser(), None
  try:
    data = pathlib.Path(path).read_bytes()
  except OSError as err:
    raise ValueError(f"image list {spec!r}: not a named list ({', '.join(NAMED)}) nor a readable "
                     f"file ({err})") from err
  digest = hashlib.sha256(data).hexdigest()
  if expected is not None and digest != expected:
    raise ValueError(f"{path}: sha256 {digest}, the shipped {spec} has {expected}: reinstall")
  entries = tuple(line.strip() for line in data.decode("utf-8").splitlines() if line.strip())
  if not entries:
    raise ValueError(f"image list {spec!r} ({path}) holds no image")
  names = [e.rsplit("/", 1)[-1] for e in entries]
  if len(set(names)) != len(names):
    twice = next(n for i, n in enumerate(names) if n in names[:i])
    raise ValueError(f"image list {spec!r} names {twice} twice")
  return ImageList(spec if spec in NAMED else str(pathlib.Path(path).resolve()), entries, digest)


def select(image_list: ImageList, file_names: list[str], wnids: list[str | None], where: str
           ) -> list[int]:
  """Indices into a source's images (``file_names``, with their ``wnids``) of the list's
  entries, in the list's order; ValueError when one is missing or sits under another wnid."""
  position = {n: i for i, n in enumerate(file_names)}
  out = []
  for k, name in enumerate(image_list.file_names()):
    if name not in position:
      raise ValueError(f"image list {image_list.name}: {image_list.entries[k]} is not in {where}")
    i = position[name]
    want = image_list.wnid(k)
    if want is not None and wnids[i] is not None and wnids[i] != want:
      raise ValueError(f"image list {image_list.name}: {image_list.entries[k]} is labelled "
                       f"{wnids[i]} in {where}")
    out.append(i)
  return out
