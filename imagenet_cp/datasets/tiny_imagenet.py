"""The Tiny-ImageNet-C/-P sources: the Tiny ImageNet validation set, or crops the user supplies.

The original Tiny-ImageNet-C/-P were made from crops of the ImageNet validation images to the 200
classes' bounding boxes (``make_tinyimagenet_c.py`` reads ``./imagenet_val_bbox_crop/<wnid>/``),
a procedure that was never published (hendrycks/robustness#39: re-running it gave other images
than the Tiny ImageNet test set).  So the builders read, from the manual directory, in this order:

  ``tiny-imagenet-200.zip``   the official zip: ``tiny-imagenet-200/val/images/*.JPEG``, labels
                              from ``val/val_annotations.txt``, classes in ``wnids.txt``
  ``tiny-imagenet-200/``      the same, extracted
  ``<wnid>/<file>``           a folder of crops (the original's layout), e.g. a re-creation of
                              its bounding-box crops

and record which one in the dataset's metadata.  Labels index the 200 Tiny ImageNet wnids in
sorted order (``tiny_imagenet_wnids.txt``), as the original's ``ImageFolder`` numbered them.
"""
from __future__ import annotations

import functools
import os
import pathlib
import re
import zipfile

from imagenet_cp import sources
from imagenet_cp.datasets import common

ZIP_NAME = "tiny-imagenet-200.zip"
ROOT = "tiny-imagenet-200"
ANNOTATIONS = "val/val_annotations.txt"
WNIDS = "wnids.txt"
WNIDS_FILE = pathlib.Path(__file__).with_name("tiny_imagenet_wnids.txt")
# The original's loader (make_tinyimagenet_c.py ``IMG_EXTENSIONS``), compared in lower case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm")
_WNID = re.compile(r"^n\d{8}$")

SOURCE = "tiny_imagenet"
LAYOUT_ZIP, LAYOUT_FOLDER, LAYOUT_CROPS = "zip", "extracted", "crops"
DESCRIPTIONS = {
    LAYOUT_ZIP: (f"Tiny ImageNet validation set ({ZIP_NAME}: val/images, labels from "
                 "val/val_annotations.txt), NOT the original's bounding-box crops of the ImageNet "
                 "validation images (unpublished procedure, hendrycks/robustness#39): numbers "
                 "are not comparable with the released Tiny-ImageNet-C/-P"),
    LAYOUT_FOLDER: (f"Tiny ImageNet validation set (extracted {ROOT}/val), NOT the original's "
                    "bounding-box crops (hendrycks/robustness#39): numbers are not comparable "
                    "with the released Tiny-ImageNet-C/-P"),
    LAYOUT_CROPS: ("user-supplied crops in <wnid>/<file> folders (the original's "
                   "imagenet_val_bbox_crop layout); comparable with the release only if they "
                   "are its crops"),
}
EXPECTED = f"{ZIP_NAME}, its extracted {ROOT}/ folder, or a folder of crops <wnid>/<file>"
MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Put the Tiny ImageNet zip {ZIP_NAME} (http://cs231n.stanford.edu/{ZIP_NAME}; its
{ROOT}/val/images/*.JPEG, {ROOT}/{ANNOTATIONS} and {ROOT}/{WNIDS} are read) in the manual
directory (--manual_dir, default <data_dir>/downloads/manual/), or its extracted {ROOT}/ folder,
or instead a folder of crops laid out <wnid>/<file> (one folder per Tiny ImageNet class, e.g. the
original's ImageNet-validation bounding-box crops, whose procedure was not published:
hendrycks/robustness#39).
"""


@functools.lru_cache(maxsize=None)
def wnids() -> tuple[str, ...]:
  """The 200 Tiny ImageNet wnids, sorted: label i is wnids()[i]."""
  return tuple(WNIDS_FILE.read_text().split())


def label(wnid: str, where: str) -> int:
  """The label of ``wnid``; a SourceError naming ``where`` for a wnid outside the 200."""
  try:
    return wnids().index(wnid)
  except ValueError:
    raise sources.SourceError(f"{where}: {wnid!r} is not one of the 200 Tiny ImageNet classes "
                              f"({WNIDS_FILE.name})") from None


def parse_annotations(text: str, where: str) -> dict[str, str]:
  """``val_annotations.txt`` (file, wnid, x0, y0, x1, y1 per line) -> {file: wnid}."""
  out = {}
  for n, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    fields = line.split("\t")
    if len(fields) < 2 or not _WNID.match(fields[1]):
      raise sources.SourceError(f"{where}, line {n}: expected '<file>\\t<wnid>\\t...', got "
                                f"{line[:80]!r}")
    out[fields[0]] = fields[1]
  if not out:
    raise sources.SourceError(f"{where} lists no images")
  return out


def _check_wnids(text: str, where: str) -> None:
  """The source's class list must be (a subset of) the 200 Tiny ImageNet classes."""
  for wnid in text.split():
    label(wnid, where)


def _items(files: dict[str, str], locate, where: str) -> list[common.Item]:
  """Items of {file name: wnid} in sorted file-name order; ``locate(name)`` is the locator."""
  return [common.Item(i, name, label(files[name], where), locate(name))
          for i, name in enumerate(sorted(files))]


def zip_items(path: pathlib.Path) -> list[common.Item]:
  """The validation images of the official zip (read in place, never extracted)."""
  try:
    with zipfile.ZipFile(path) as archive:
      infos = {info.filename: info for info in archive.infolist()}
      annotations = [n for n in infos if n.endswith(ANNOTATIONS)]
      if not annotations:
        raise sources.SourceError(f"{path} has no {ROOT}/{ANNOTATIONS} (the validation labels): "
                                  f"not the Tiny ImageNet zip, or an incomplete one")
      prefix = annotations[0][:-len(ANNOTATIONS)]
      if prefix + WNIDS not in infos:
        raise sources.SourceError(f"{path} has no {prefix}{WNIDS} (the class list)")
      _check_wnids(archive.read(prefix + WNIDS).decode(), f"{path}:{prefix}{WNIDS}")
      where = f"{path}:{annotations[0]}"
      files = parse_annotations(archive.read(annotations[0]).decode(), where)
  except (zipfile.BadZipFile, OSError) as err:
    raise sources.SourceError(f"{path} is not a readable zip ({err}); download {ZIP_NAME} "
                              "again") from err
  members = {name: f"{prefix}val/images/{name}" for name in files}
  missing = [m for m in members.values() if m not in infos]
  if missing:
    raise sources.SourceError(f"{path}: {ANNOTATIONS} lists {len(missing)} image(s) the zip "
                              f"lacks (first: {missing[0]}); the download is incomplete")
  return _items(files, lambda n: ("zip", os.fspath(path), members[n],
                                  infos[members[n]].file_size), where)


def folder_items(root: pathlib.Path) -> list[common.Item]:
  """The validation images of the extracted ``tiny-imagenet-200/`` folder."""
  if not (root / WNIDS).is_file():
    raise sources.SourceError(f"{root} has no {WNIDS} (the class list)")
  _check_wnids((root / WNIDS).read_text(), os.fspath(root / WNIDS))
  where = os.fspath(root / ANNOTATIONS)
  files = parse_annotations((root / ANNOTATIONS).read_text(), where)
  paths = {name: root / "val" / "images" / name for name in files}
  missing = [p for p in paths.values() if not p.is_file()]
  if missing:
    raise sources.SourceError(f"{where} lists {len(missing)} image(s) that are not there "
                              f"(first: {missing[0]})")
  return _items(files, lambda n: ("file", os.fspath(paths[n])), where)


def crop_items(root: pathlib.Path) -> list[common.Item]:
  """Crops ``<root>/<wnid>/<file>``; the file name (and key) is ``<wnid>/<file>``."""
  files = {}
  for folder in sorted(p for p in root.iterdir() if p.is_dir() and _WNID.match(p.name)):
    label(folder.name, os.fspath(folder))
    for path in sorted(folder.iterdir()):
      if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        files[f"{folder.name}/{path.name}"] = folder.name
  if not files:
    raise sources.SourceError(f"{root}: the <wnid>/ folders hold no images "
                              f"({', '.join(IMAGE_EXTENSIONS)})")
  return _items(files, lambda n: ("file", os.fspath(root / n)), os.fspath(root))


def list_items(manual_dir) -> tuple[str, list[common.Item]]:
  """(layout, items) of the first source found in ``manual_dir`` (see the module docstring)."""
  root = pathlib.Path(os.fspath(manual_dir)).expanduser()
  if (root / ZIP_NAME).is_file() or root.name == ZIP_NAME:
    return LAYOUT_ZIP, zip_items(root if root.name == ZIP_NAME else root / ZIP_NAME)
  for folder in (root / ROOT, root):
    if (folder / ANNOTATIONS).is_file():
      return LAYOUT_FOLDER, folder_items(folder)
  if root.is_dir() and any(p.is_dir() and _WNID.match(p.name) for p in root.iterdir()):
    return LAYOUT_CROPS, crop_items(root)
  found = sorted(p.name for p in root.iterdir())[:10] if root.is_dir() else []
  raise sources.SourceError(f"no Tiny ImageNet source in {root} (found: {found}): expected "
                            f"{EXPECTED}.\n" + MANUAL_DOWNLOAD_INSTRUCTIONS)
