"""What the benchmark does to one photo: ImageNet-C as a labelled grid, ImageNet-P as GIFs.

  python -m imagenet_cp.gallery photo.jpg out/    # or: imagenet-cp gallery photo.jpg out/
      [--seed=0] [--frame_ms=100] [--file_name=NAME]

writes

* ``out/gallery.png``: the photo's 224 px crop (Resize(256) + CenterCrop(224), as the benchmark
  evaluates it), clean and under each of the 19 corruptions at severities 1..5: one row per
  corruption (the 15 benchmark corruptions, then the 4 extra ones), columns clean, 1, ..., 5;
* ``out/<sequence>.gif`` for the 14 ImageNet-P sequences: every frame (31; translate 41) of
  ``imagenet_cp.perturb`` on the Resize(256) photo, difficulty 1, ``frame_ms`` per frame, with
  the sequence name and frame number in a caption bar under the 224 px image.

The random draws come from the benchmark's per-example keys, ``imagenet_cp.example_key(seed,
name, level, file_name)``, so the pictures are exactly the images an evaluation of a file with
that name generates (before the release's JPEG stage, which ``metrics.run`` applies on top by
default).  ``write_demo`` uses the first demo photo under its demo file name, so its pictures are
the demo's own inputs.  A missing or unreadable image exits with ``error: ...`` and status 2.

Python API::

  paths = gallery.write(image_or_path, out_dir)    # {"gallery": .../gallery.png, "<sequence>": .../<sequence>.gif}
  paths = gallery.write_demo(out_dir)              # the same for the first demo photo
  crop, corrupted = gallery.corrupted_crops(image, file_name)   # uint8 [224,224,3], [19,5,224,224,3]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import imagenet_cp
from imagenet_cp import sources
from imagenet_cp.preprocess import CROP
from imagenet_cp.suites.common import StoreError, atomic_write

GRID_FILE = "gallery.png"
SEVERITIES = (1, 2, 3, 4, 5)
FRAME_MS = 100
DIFFICULTY = 1
# Layout of gallery.png, in pixels.
GAP = 4
PAD = 10
FONT_SIZE = 20
HEADER = 36
CAPTION = 24  # GIF caption bar under each frame
CAPTION_FONT_SIZE = 15


class GalleryError(ValueError):
  """An image that cannot be read or used; the message names the file."""


def load_image(path: str | os.PathLike) -> np.ndarray:
  """Any image file PIL reads -> uint8 RGB [H, W, 3]; GalleryError naming the file otherwise."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise GalleryError(f"{path}: no such image file")
  try:
    with Image.open(path) as image:
      return np.asarray(image.convert("RGB"))
  except (OSError, ValueError, Image.DecompressionBombError) as err:
    raise GalleryError(f"{path}: cannot read the image ({err})") from err


def _as_rgb(image) -> np.ndarray:
  if isinstance(image, Image.Image):
    return np.asarray(image.convert("RGB"))
  arr = np.asarray(image)
  if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3 or min(arr.shape[:2]) < 1:
    raise GalleryError(f"expected a uint8 RGB image [H, W, 3], got {arr.dtype} {arr.shape}")
  return arr


def corrupted_crops(image, file_name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """-> (clean crop uint8 [224, 224, 3], corrupted uint8 [19, 5, 224, 224, 3]).

  Rows follow ``imagenet_cp.CORRUPTIONS``, columns ``SEVERITIES``; the keys are the
  benchmark's ``example_key(seed, corruption, severity, file_name)``.
  """
  crop = imagenet_cp.preprocess(_as_rgb(image))
  out = np.empty((len(imagenet_cp.CORRUPTIONS), len(SEVERITIES)) + crop.shape, np.uint8)
  for i, name in enumerate(imagenet_cp.CORRUPTIONS):
    for j, severity in enumerate(SEVERITIES):
      key = imagenet_cp.example_key(seed, name, severity, file_name)
      out[i, j] = np.asarray(imagenet_cp.corrupt(crop, name, severity, key))
  return crop, out


def sequences(image, file_name: str, seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
  """Yields (sequence, uint8 [T, 224, 224, 3]) for the 14 ImageNet-P sequences, one at a time.

  The key level is 1, as the benchmark's for difficulty 1 (``suites.corruption.sequence_key_level``).
  """
  resized = imagenet_cp.resize_short_side(_as_rgb(image))
  for name in imagenet_cp.PERTURBATIONS:
    key = imagenet_cp.example_key(seed, name, DIFFICULTY, file_name)
    yield name, np.asarray(imagenet_cp.perturb(resized, name, key, DIFFICULTY))


def row_labels() -> list[str]:
  return [name + (" (extra)" if name in imagenet_cp.EXTRA_CORRUPTIONS else "")
          for name in imagenet_cp.CORRUPTIONS]


def column_labels() -> list[str]:
  return ["clean"] + [f"severity {s}" for s in SEVERITIES]


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
  return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font: no files needed


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where each tile of gallery.png sits: a label column, then clean and the 5 severities."""
  label_width: int
  tile: int = CROP
  rows: int = len(imagenet_cp.CORRUPTIONS)
  cols: int = 1 + len(SEVERITIES)

  @property
  def size(self) -> tuple[int, int]:
    """(width, height) of the whole image."""
    return (self.label_width + self.cols * (self.tile + GAP) - GAP + PAD,
            HEADER + self.rows * (self.tile + GAP) - GAP + PAD)

  def box(self, row: int, col: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the tile of corruption ``row``, column ``col`` (0 = clean)."""
    left = self.label_width + col * (self.tile + GAP)
    top = HEADER + row * (self.tile + GAP)
    return left, top, left + self.tile, top + self.tile


def layout() -> Layout:
  font = _font()
  widest = max(font.getbbox(text)[2] for text in row_labels())
  return Layout(label_width=int(widest) + 2 * PAD)


def render_grid(crop: np.ndarray, corrupted: np.ndarray) -> Image.Image:
  """The labelled grid of ``corrupted_crops``'s output, as an RGB PIL image."""
  grid = layout()
  if corrupted.shape[:2] != (grid.rows, grid.cols - 1) or crop.shape != (grid.tile, grid.tile, 3):
    raise ValueError(f"expected a {grid.tile} px crop and [{grid.rows}, {grid.cols - 1}] tiles, "
                     f"got {crop.shape} and {corrupted.shape}")
  canvas = Image.new("RGB", grid.size, "white")
  draw = ImageDraw.Draw(canvas)
  font = _font()
  for col, text in enumerate(column_labels()):
    left, top, right, _ = grid.box(0, col)
    draw.text(((left + right) / 2, top / 2), text, fill="black", font=font, anchor="mm")
  clean = Image.fromarray(crop)
  for row, text in enumerate(row_labels()):
    left, top, _, bottom = grid.box(row, 0)
    draw.text((PAD, (top + bottom) / 2), text, fill="black", font=font, anchor="lm")
    canvas.paste(clean, (left, top))
    for col in range(1, grid.cols):
      canvas.paste(Image.fromarray(corrupted[row, col - 1]), grid.box(row, col)[:2])
  return canvas


def save_gif(frames: np.ndarray, path: str | os.PathLike, frame_ms: int = FRAME_MS,
             caption: str = "") -> None:
  """uint8 [T, H, W, 3] -> an endlessly looping GIF, each frame with its own 256-colour palette
  (dithered) and, under the image, a caption bar "<caption>  frame t/T-1".

  The bar also keeps every frame: Pillow merges a frame into the previous one when the two
  quantize to the same pixels, which happens to nearly equal neighbours (motion_blur).
  """
  count, height, width = frames.shape[:3]
  font = _font(CAPTION_FONT_SIZE)
  images = []
  for t, frame in enumerate(frames):
    canvas = Image.new("RGB", (width, height + CAPTION), "white")
    canvas.paste(Image.fromarray(frame), (0, 0))
    ImageDraw.Draw(canvas).text((PAD / 2, height + CAPTION / 2), f"{caption}  frame {t}/{count - 1}",
                                fill="black", font=font, anchor="lm")
    # fast octree: Pillow's default median cut is ~100x slower per frame
    images.append(canvas.quantize(256, method=Image.Quantize.FASTOCTREE))
  _save(path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True,
                                        append_images=images[1:], duration=frame_ms, loop=0))


def _save(path: str | os.PathLike, write: Callable[[str], None]) -> None:
  """``write(tmp)`` then renamed onto ``path``: a full disk leaves no truncated picture behind."""
  try:
    atomic_write(pathlib.Path(path), write, suffix=pathlib.Path(path).suffix)
  except StoreError as err:
    raise GalleryError(str(err)) from err


def write(image, out_dir: str | os.PathLike, *, file_name: str | None = None, seed: int = 0,
          frame_ms: int = FRAME_MS,
          log: Callable[[str], None] | None = None) -> dict[str, pathlib.Path]:
  """Writes gallery.png and the 14 ``<sequence>.gif`` into ``out_dir``; -> {"gallery" or sequence: path}.

  ``image``: an image file path, a PIL image or uint8 RGB [H, W, 3].  ``file_name`` enters the
  per-example keys (default: the file's name, or "photo" for an in-memory image).
  """
  if isinstance(image, (str, os.PathLike)):
    file_name = file_name if file_name is not None else pathlib.Path(image).name
    image = load_image(image)
  image = _as_rgb(image)
  file_name = file_name if file_name is not None else "photo"
  if frame_ms < 1:
    raise GalleryError(f"frame_ms must be >= 1, got {frame_ms}")
  out = pathlib.Path(out_dir)
  try:
    out.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    raise GalleryError(f"{out}: cannot create the output folder ({err})") from err
  log = log or (lambda message: None)
  start = time.perf_counter()
  paths = {"gallery": out / GRID_FILE}
  grid = render_grid(*corrupted_crops(image, file_name, seed))
  _save(paths["gallery"], lambda tmp: grid.save(tmp, format="PNG"))
  log(f"{paths['gallery']}: {len(imagenet_cp.CORRUPTIONS)} corruptions x {len(SEVERITIES)} "
      f"severities ({time.perf_counter() - start:.1f} s)")
  start = time.perf_counter()
  for name, frames in sequences(image, file_name, seed):
    paths[name] = out / f"{name}.gif"
    save_gif(frames, paths[name], frame_ms, caption=name)
  log(f"{out}/<sequence>.gif: {len(imagenet_cp.PERTURBATIONS)} ImageNet-P sequences "
      f"({time.perf_counter() - start:.1f} s)")
  return paths


def write_demo(out_dir: str | os.PathLike, *, seed: int = 0, frame_ms: int = FRAME_MS,
               log: Callable[[str], None] | None = None) -> dict[str, pathlib.Path]:
  """``write`` for the first demo photo, keyed by its demo file name (the demo's own inputs)."""
  photo = sources.DEMO_PHOTOS[0]
  return write(sources.demo_photo(photo.name), out_dir, seed=seed, frame_ms=frame_ms, log=log,
               file_name=f"{sources.DEMO_PREFIX}{photo.name}.png")


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description="Writes gallery.png (19 ImageNet-C corruptions x 5 severities) and one GIF "
                  "per ImageNet-P sequence for one photo.")
  parser.add_argument("image", help="any image file PIL can read")
  parser.add_argument("out_dir", help="output folder (created if missing)")
  parser.add_argument("--seed", type=int, default=0, help="root seed of the per-example keys")
  parser.add_argument("--frame_ms", type=int, default=FRAME_MS, help="GIF frame duration in ms")
  parser.add_argument("--file_name", default=None,
                      help="file name in the per-example keys (default: the image's file name)")
  args = parser.parse_args(argv)
  try:
    write(args.image, args.out_dir, file_name=args.file_name, seed=args.seed,
          frame_ms=args.frame_ms, log=print)
  except GalleryError as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
