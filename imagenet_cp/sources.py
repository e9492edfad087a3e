"""Source images: the ImageNet validation set as the user has it, and the built-in demo photos.

Both sources yield ``Example(file_name, label, data)`` with the encoded image bytes, in sorted
file-name order, so the TFDS builders and the on-the-fly evaluation see the same examples and
derive the same per-example keys (``imagenet_cp.example_key``).

ImageNet validation (manual download, it cannot be fetched automatically):
  * the official ``ILSVRC2012_img_val.tar`` (6,744,924,160 bytes, 50,000 JPEGs), or
  * an extracted folder: flat (``<dir>/ILSVRC2012_val_00000001.JPEG`` ...) or ImageFolder-style
    (``<dir>/<wnid>/ILSVRC2012_val_00000001.JPEG``).
  Labels are TFDS's ``imagenet2012`` labels: ``validation_labels.txt`` (one wnid per validation
  file, in file-name order) indexed into the sorted 1,000 wnids of ``labels.txt``.

Demo: real photos shipped by scikit-image and matplotlib with hand-assigned ImageNet labels
(``DEMO_PHOTOS``).  Their file names start with ``demo/`` and every consumer records that the
data is the demo, so it cannot be mistaken for ImageNet.  The photos are read from the installed
packages at run time (none is copied into this repository):

  ============  =============================  ====================  ==============================
  name          source                         label                 licence
  ============  =============================  ====================  ==============================
  chelsea       scikit-image chelsea()         281 tabby             CC0 (S. van der Walt)
  coffee        scikit-image coffee()          967 espresso          CC0 (R. Michetti)
  rocket        scikit-image rocket()          657 missile           public domain (SpaceX)
  grace_hopper  matplotlib grace_hopper.jpg    652 military uniform  public domain (US Navy)
  camera        scikit-image camera() (grey)   872 tripod            CC0 (L. Varshney)
  clock         scikit-image clock() (grey)    892 wall clock        public domain (S. van der Walt)
  ============  =============================  ====================  ==============================

How the labels were chosen (ImageNet-1k has one label per image; these are the closest
genuinely correct classes, not the models' guesses):
  * chelsea is a domestic cat with a tawny, black-striped coat: WordNet's "tabby" (a cat with a
    grey or tawny coat mottled with black).  The real models split it between tiger cat (282),
    Egyptian cat (285) and tabby (281), three classes ImageNet itself does not separate cleanly.
  * coffee is an espresso in a cup on a saucer; the drink, not the cup, fills the crop.
  * rocket is a Falcon 9 launch.  ImageNet has no space-launcher class; "missile" (n03773504,
    a self-propelled rocket) is closest; "projectile" (744) is defined as not self-propelled and
    "space shuttle" (812) is a different vehicle.
  * grace_hopper is an official US Navy portrait of Grace Hopper in uniform.
  * camera (scikit-image's CC0 replacement "cameraman" since 0.18) shows a man filming with a
    camera on a tripod; the tripod is the ImageNet object that dominates the crop (the film
    camera on it is neither of ImageNet's reflex or Polaroid cameras).
  * clock is a wall clock photographed while the camera moved (real motion blur): a hard case.
Skipped: astronaut (a portrait of Eileen Collins in a spacesuit: no ImageNet class), the stereo
motorcycle (a full-size motorcycle: ImageNet has only moped and motor scooter), coins, moon,
hubble_deep_field and the textures/medical/synthetic images (no class), matplotlib's other
sample images (clip art, plots).  imageio ships no images (its standard images are downloaded
on demand) and Pillow's test images are not installed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import pathlib
import re
import tarfile
import warnings
from typing import Iterator

import numpy as np
from PIL import Image

VAL_TAR = "ILSVRC2012_img_val.tar"
VAL_TAR_SIZE = 6_744_924_160
VAL_COUNT = 50_000
_VAL_NAME = re.compile(r"^ILSVRC2012_val_(\d{8})\.JPEG$")

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
ImageNet cannot be downloaded automatically. Register at https://image-net.org/, download
`{VAL_TAR}` (6.7 GB, 50,000 validation images) and put it in the manual directory
(TFDS: `--manual_dir=DIR`, default `<data_dir>/downloads/manual/`; metrics.run: `--imagenet_dir=DIR`).
An extracted folder of the validation JPEGs (flat, or one sub-folder per wnid) works too.
"""

DEMO_PREFIX = "demo/"


@dataclasses.dataclass(frozen=True)
class DemoPhoto:
  name: str
  label: int
  wnid: str
  class_name: str
  origin: str  # "skimage.data.<function>" or "matplotlib sample_data/<file>"
  licence: str


# Hand-assigned labels (index into the sorted ImageNet wnids, as TFDS's imagenet2012); the
# reasoning is in the module docstring.  New photos go last, so that runs over the first N
# photos (max_images) keep their images.
DEMO_PHOTOS = (
    DemoPhoto("chelsea", 281, "n02123045", "tabby, tabby cat", "skimage.data.chelsea",
              "CC0, by the photographer Stefan van der Walt"),
    DemoPhoto("coffee", 967, "n07920052", "espresso", "skimage.data.coffee",
              "CC0, by the photographer Rachel Michetti"),
    DemoPhoto("rocket", 657, "n03773504", "missile", "skimage.data.rocket",
              "public domain, released by SpaceX"),
    DemoPhoto("grace_hopper", 652, "n03763968", "military uniform",
              "matplotlib sample_data/grace_hopper.jpg",
              "public domain, US Navy photograph (Wikimedia Commons File:Grace_Hopper.jpg)"),
    DemoPhoto("camera", 872, "n04485082", "tripod", "skimage.data.camera",
              "CC0, by the photographer Lav Varshney"),
    DemoPhoto("clock", 892, "n04548280", "wall clock", "skimage.data.clock",
              "public domain, released by the photographer Stefan van der Walt"),
)
_SKIMAGE = "skimage.data."
_MATPLOTLIB = "matplotlib sample_data/"


@dataclasses.dataclass(frozen=True)
class Example:
  """One source image: its file name (the example's key), ImageNet label and encoded bytes.

  ``id`` says where it came from, unique within its source: the path relative to the source
  (``<wnid>/ILSVRC2012_val_00000001.JPEG`` in a per-wnid folder, the member's name in a tar; the
  file name when not given).  Evaluations key their per-example records by it, since two
  folders may hold files of one name; it does not take part in comparisons (the same image read
  from a tar or a folder is the same example).
  """
  file_name: str
  label: int
  data: bytes
  id: str = dataclasses.field(default="", compare=False)

  def __post_init__(self):
    if not self.id:
      object.__setattr__(self, "id", self.file_name)


@dataclasses.dataclass(frozen=True)
class SourceFile:
  """One image of the validation set, listed without reading it: ``id`` (its path relative to
  the folder, or its tar member's name; unique), ``file_name`` (its base name: the example key's
  name), label, ``size`` in bytes, and where its bytes are (``path``, plus ``offset`` in a tar)."""
  id: str
  file_name: str
  label: int
  size: int
  path: str
  offset: int | None = None


class SourceWarning(UserWarning):
  """Something in a source that is skipped (said once per source)."""


class SourceError(ValueError):
  """A missing, incomplete or corrupt source file; the message names the file."""


# ----------------------------------------------------------------------------------------------
# Labels


@functools.lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
  """The 1,000 ImageNet wnids in label order (TFDS imagenet2012 ``labels.txt``)."""
  return tuple(_tfds_text("labels.txt").split())


@functools.lru_cache(maxsize=None)
def _validation_wnids() -> tuple[str, ...]:
  return tuple(_tfds_text("validation_labels.txt").split())


def _tfds_text(name: str) -> str:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.core.tfds_path(f"datasets/imagenet2012/{name}").read_text()


def validation_label(file_name: str) -> int:
  """Label of ``ILSVRC2012_val_XXXXXXXX.JPEG`` (any directory prefix), as TFDS reads it."""
  match = _VAL_NAME.match(os.path.basename(file_name))
  if not match:
    raise SourceError(f"{file_name!r} is not an ImageNet validation file name (ILSVRC2012_val_XXXXXXXX.JPEG)")
  index = int(match.group(1)) - 1
  if not 0 <= index < VAL_COUNT:
    raise SourceError(f"{file_name!r}: validation index out of range 1..{VAL_COUNT}")
  return imagenet_wnids().index(_validation_wnids()[index])


# ----------------------------------------------------------------------------------------------
# ImageNet validation


def locate_imagenet_val(manual_dir) -> pathlib.Path:
  """The validation tar or extracted folder inside (or at) ``manual_dir``; clear errors otherwise."""
  if manual_dir is None:
    raise SourceError("no ImageNet directory given.\n" + MANUAL_DOWNLOAD_INSTRUCTIONS)
  root = pathlib.Path(manual_dir).expanduser()
  candidates = [root] if root.name == VAL_TAR else [root / VAL_TAR, root / "val", root]
  for path in candidates:
    if path.is_file() and path.name == VAL_TAR:
      return path
    if path.is_dir() and any(True for _ in _iter_folder_files(path, limit=1)):
      return path
  raise SourceError(
      f"no ImageNet validation data in {root}: expected {root / VAL_TAR} or a folder of "
      f"ILSVRC2012_val_*.JPEG files.\n" + MANUAL_DOWNLOAD_INSTRUCTIONS)


def scan_val_tar(path: pathlib.Path) -> list[tarfile.TarInfo]:
  """The tar's validation JPEG members, sorted by name, after checking the file is complete.

  Reading the headers seeks through the file (about a second for the 6.7 GB tar), so a
  truncated or corrupt download fails here, naming the file, before any work starts.
  """
  size = path.stat().st_size
  try:
    with tarfile.open(path, "r:") as tar:
      named = [m for m in tar.getmembers() if _VAL_NAME.match(os.path.basename(m.name))]
  except (tarfile.TarError, EOFError, OSError) as err:
    raise SourceError(f"{path} is not a readable tar ({err}); download {VAL_TAR} again") from err
  members = [m for m in named if m.isfile()]
  links = [m for m in named if m.issym() or m.islnk()]
  if links:
    # The official tar holds regular files only; a link is not followed (its target may lie
    # outside the tar), and the user is told once per tar.
    warnings.warn(f"{path}: skipped {len(links)} symlink/hardlink member(s) named like "
                  f"validation images (first: {links[0].name}); only regular files are read",
                  SourceWarning, stacklevel=2)
  if not members:
    raise SourceError(f"{path} contains no ILSVRC2012_val_*.JPEG files")
  last = max(members, key=lambda m: m.offset_data)
  if last.offset_data + last.size > size:
    raise SourceError(
        f"{path} is truncated ({size:,} bytes; the official {VAL_TAR} has {VAL_TAR_SIZE:,}): "
        "the download is incomplete. Download it again.")
  return sorted(members, key=lambda m: (os.path.basename(m.name), m.name))


def _iter_folder_files(root: pathlib.Path, limit: int | None = None) -> Iterator[pathlib.Path]:
  found = 0
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(filenames):
      if _VAL_NAME.match(name):
        yield pathlib.Path(dirpath) / name
        found += 1
        if limit is not None and found >= limit:
          return


def list_imagenet_val(manual_dir) -> tuple[pathlib.Path, list[SourceFile]]:
  """(the tar or folder read, its validation images) without reading any image: sorted by file
  name, then by id (two folders may hold files of one name)."""
  path = locate_imagenet_val(manual_dir)
  if path.is_file():
    files = [SourceFile(_member_id(m.name), os.path.basename(m.name),
                        validation_label(os.path.basename(m.name)), m.size, str(path), m.offset_data)
             for m in scan_val_tar(path)]
  else:
    files = []
    for file in _iter_folder_files(path):
      try:
        size = file.stat().st_size
      except OSError as err:
        raise SourceError(f"{file}: cannot read ({err})") from err
      files.append(SourceFile(file.relative_to(path).as_posix(), file.name,
                              validation_label(file.name), size, str(file)))
  return path, sorted(files, key=lambda f: (f.file_name, f.id))


def _member_id(name: str) -> str:
  """A tar member's name as its id (a leading ./ dropped)."""
  return name[2:] if name.startswith("./") else name


def read_source_file(file: SourceFile, handle=None) -> bytes:
  """The encoded bytes of ``file`` (a seek into the tar: no extraction); ``handle``: the tar,
  already open.  SourceError naming the file if it is gone or cut short."""
  try:
    if file.offset is None:
      data = pathlib.Path(file.path).read_bytes()
    elif handle is not None:
      handle.seek(file.offset)
      data = handle.read(file.size)
    else:
      with open(file.path, "rb") as f:
        f.seek(file.offset)
        data = f.read(file.size)
  except OSError as err:
    raise SourceError(f"{file.id}: cannot read {file.path} ({err})") from err
  if len(data) != file.size:
    raise SourceError(f"{file.path}: {file.id} has {len(data)} bytes, {file.size} when listed "
                      "(the source changed or is cut short)")
  return data


def imagenet_val_examples(manual_dir) -> Iterator[Example]:
  """Streams the validation set (tar or folder) in sorted file-name order, without extracting."""
  path, files = list_imagenet_val(manual_dir)
  with open(path, "rb") if path.is_file() else contextlib.nullcontext() as handle:
    for file in files:
      yield Example(file.file_name, file.label, read_source_file(file, handle), file.id)


def count_imagenet_val(manual_dir) -> int:
  """How many validation images the manual download holds (50,000 for the official set)."""
  path = locate_imagenet_val(manual_dir)
  if path.is_file():
    return len(scan_val_tar(path))
  return sum(1 for _ in _iter_folder_files(path))


# ----------------------------------------------------------------------------------------------
# Demo


def demo_photo(name: str) -> np.ndarray:
  """A demo photo as uint8 [H, W, 3] at its original size (grey photos as equal R, G, B)."""
  found = [p for p in DEMO_PHOTOS if p.name == name]
  if not found:
    raise ValueError(f"unknown demo photo {name!r}; expected one of {[p.name for p in DEMO_PHOTOS]}")
  origin = found[0].origin
  if origin.startswith(_MATPLOTLIB):
    import matplotlib.cbook  # pylint: disable=g-import-not-at-top
    with matplotlib.cbook.get_sample_data(origin[len(_MATPLOTLIB):]) as f:
      return np.asarray(Image.open(f).convert("RGB"))
  import skimage.data  # pylint: disable=g-import-not-at-top
  image = np.asarray(getattr(skimage.data, origin[len(_SKIMAGE):])())
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, axis=-1)  # what PIL's convert("RGB") does to greys
  return np.ascontiguousarray(image[..., :3])


def demo_examples() -> list[Example]:
  """The demo photos as losslessly encoded (PNG) examples, file names ``demo/<name>.png``."""
  examples = []
  for photo in DEMO_PHOTOS:
    buf = io.BytesIO()
    Image.fromarray(demo_photo(photo.name)).save(buf, format="PNG")
    examples.append(Example(f"{DEMO_PREFIX}{photo.name}.png", photo.label, buf.getvalue()))
  return examples


def is_demo(file_name: str) -> bool:
  return file_name.startswith(DEMO_PREFIX)


# ----------------------------------------------------------------------------------------------
# Decoding


def decode(example: Example) -> Image.Image:
  """Decodes an example to an RGB PIL image (as the original's ``PIL.open(...).convert('RGB')``)."""
  try:
    image = Image.open(io.BytesIO(example.data))
    image.load()
  except Exception as err:  # PIL raises several types for corrupt data.
    raise SourceError(f"{example.id}: cannot decode the image ({err})") from err
  return image.convert("RGB")
