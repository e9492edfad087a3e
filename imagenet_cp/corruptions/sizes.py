"""The per-size constant sets of the ImageNet-C family: one table per image size, rows by severity.

hendrycks/robustness generates each dataset with its own copy of the corruption code
(``ImageNet-C/create_c/``); the copies differ only in the constants and in a few size-specific
steps, all of which are data here:

  size  dataset                     script                                        release stage
  32    CIFAR-10-C / CIFAR-100-C    make_cifar_c.py                               np.uint8 (no JPEG)
  64    Tiny-ImageNet-C, ImageNet   make_tinyimagenet_c.py, make_imagenet_64_c.py  JPEG q85
        64x64-C                     (identical corruption code and constants)
  224   ImageNet-C                  make_imagenet_c.py                            JPEG q85
  299   ImageNet-C 299 (Inception)  make_imagenet_c_inception.py                  JPEG q85

``corrupt`` picks the set from the images' height and width (``constants(size)``).  Every
per-severity field is a tuple of five rows (row ``s - 1`` is severity ``s``), written as the
script writes it; the size-specific steps that are not per-severity constants are fields too
(``plasma_mapsize``, ``frost_scale``, ``elastic_scale``; the loop bounds, crops and shape checks
that the scripts hard-code to their size follow from ``size``).  The Tiny and 64 scripts leave
most corruptions commented out of their ``d`` table (Tiny: only frost); the author said there is
no reason not to use them (hendrycks/robustness#42), so all 19 are available at every size.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

Rows = tuple


@dataclasses.dataclass(frozen=True)
class SizeSet:
  """One script's constants.  Per-severity fields: 5 rows, row ``s - 1`` for severity ``s``."""
  size: int
  dataset: str
  script: str
  preprocessing: str
  release_jpeg: bool  # the script saves JPEG q85 (True) or raw np.uint8 arrays (False)

  gaussian_noise: Rows   # std
  shot_noise: Rows       # photons
  impulse_noise: Rows    # amount
  speckle_noise: Rows    # std
  gaussian_blur: Rows    # sigma
  glass_blur: Rows       # (sigma, max_delta, iterations)
  defocus_blur: Rows     # (radius, alias_blur)
  motion_blur: Rows      # (radius, sigma)
  zoom_blur: Rows        # (stop, step) of np.arange(1, stop, step)
  snow: Rows             # (loc, scale, zoom, threshold, blur radius, blur sigma, image weight)
  frost: Rows            # (image weight, frost weight)
  fog: Rows              # (strength, wibbledecay)
  spatter: Rows          # (loc, scale, sigma, threshold, intensity or mud sigma, mode)
  contrast: Rows
  brightness: Rows
  saturate: Rows         # (scale, offset) of HSV saturation
  jpeg_compression: Rows  # quality
  pixelate: Rows         # fraction of the side
  elastic_transform: Rows  # (alpha, sigma, affine) in units of ``elastic_scale``

  plasma_mapsize: int           # fog's diamond-square map, cropped to [:size, :size]
  frost_scale: Optional[float]  # cv2.resize(frost, fx=fy=scale) before the crop; None: not resized
  elastic_scale: float          # IMSIZE (32, 64), 244 ("should have been 224") or 360

  def zoom_factors(self) -> tuple[np.ndarray, ...]:
    """zoom_blur's ``np.arange(1, stop, step)`` lists (float arange: see ``zoom_blur_lengths``)."""
    return tuple(np.arange(1, stop, step) for stop, step in self.zoom_blur)

  def elastic(self) -> tuple[tuple[float, float, float], ...]:
    """(alpha, sigma, affine) per severity, multiplied out as the scripts write them
    (``244 * 0.7``, ``IMSIZE * 0.05``)."""
    return tuple(tuple(self.elastic_scale * m for m in row) for row in self.elastic_transform)

  def elastic_points(self) -> np.ndarray:
    """``pts1`` of elastic_transform's random affine, float32 [3, 2]: the centre
    ``float32(size) // 2`` plus and minus ``size // 3``."""
    center = np.float32([self.size, self.size]) // 2
    square = self.size // 3
    return np.float32([center + square, [center[0] + square, center[1] - square],
                       center - square])

  def pixelate_sizes(self) -> tuple[int, ...]:
    """The BOX-downscaled side per severity, ``int(size * c)``."""
    return tuple(int(self.size * c) for c in self.pixelate)


CIFAR = SizeSet(
    size=32, dataset="CIFAR-10-C / CIFAR-100-C", script="make_cifar_c.py",
    preprocessing="the 32x32 test images as they are", release_jpeg=False,
    gaussian_noise=(0.04, 0.06, .08, .09, .10),
    shot_noise=(500, 250, 100, 75, 50),
    impulse_noise=(.01, .02, .03, .05, .07),
    speckle_noise=(.06, .1, .12, .16, .2),
    gaussian_blur=(.4, .6, 0.7, .8, 1),
    glass_blur=((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    defocus_blur=((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    motion_blur=((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    zoom_blur=((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    snow=((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
          (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
          (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    frost=((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    fog=((.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    spatter=((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0),
             (0.65, 0.3, 1, 0.69, 0.5, 0), (0.65, 0.1, 0.7, 0.69, 0.6, 1),
             (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
    contrast=(.75, .5, .4, .3, 0.15),
    brightness=(.05, .1, .15, .2, .3),
    saturate=((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    jpeg_compression=(80, 65, 58, 50, 40),
    pixelate=(0.95, 0.9, 0.85, 0.75, 0.65),
    elastic_transform=((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05),
                       (0.1, 0.03, 0.03)),
    plasma_mapsize=32, frost_scale=0.2, elastic_scale=32,
)

TINY_IMAGENET = SizeSet(
    size=64, dataset="Tiny-ImageNet-C / ImageNet 64x64-C",
    script="make_tinyimagenet_c.py, make_imagenet_64_c.py",
    preprocessing="torchvision Resize((64, 64)) of the bounding-box crop (Tiny) or the whole "
                  "val image (64x64)", release_jpeg=True,
    gaussian_noise=(0.04, 0.08, .12, .15, .18),
    shot_noise=(250, 100, 50, 30, 15),
    impulse_noise=(.01, .02, .05, .08, .14),
    speckle_noise=(.15, .2, 0.25, 0.3, 0.35),
    gaussian_blur=(.5, .75, 1, 1.25, 1.5),
    glass_blur=((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
    defocus_blur=((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
    motion_blur=((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
    zoom_blur=((1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)),
    snow=((0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
          (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
          (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)),
    frost=((1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)),
    fog=((.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)),
    spatter=((0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0),
             (0.65, 0.3, 1, 0.69, 0.6, 0), (0.65, 0.1, 0.7, 0.68, 0.6, 1),
             (0.65, 0.1, 0.5, 0.67, 0.6, 1)),
    contrast=(.4, .3, .2, .1, 0.05),
    brightness=(.1, .2, .3, .4, .5),
    saturate=((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)),
    jpeg_compression=(65, 58, 50, 40, 25),
    pixelate=(0.9, 0.8, 0.7, 0.6, 0.5),
    elastic_transform=((0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03),
                       (0.16, 0.03, 0.02)),
    plasma_mapsize=64, frost_scale=0.3, elastic_scale=64,
)

IMAGENET = SizeSet(
    size=224, dataset="ImageNet-C", script="make_imagenet_c.py",
    preprocessing="Resize(256) + CenterCrop(224) (imagenet_cp.preprocess)", release_jpeg=True,
    gaussian_noise=(.08, .12, 0.18, 0.26, 0.38),
    shot_noise=(60, 25, 12, 5, 3),
    impulse_noise=(.03, .06, .09, 0.17, 0.27),
    speckle_noise=(.15, .2, 0.35, 0.45, 0.6),
    gaussian_blur=(1, 2, 3, 4, 6),
    glass_blur=((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)),
    defocus_blur=((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
    motion_blur=((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)),
    zoom_blur=((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)),
    snow=((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
          (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
          (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
    frost=((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
    fog=((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    spatter=((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0),
             (0.65, 0.3, 2, 0.68, 0.5, 0), (0.65, 0.3, 1, 0.65, 1.5, 1),
             (0.67, 0.4, 1, 0.65, 1.5, 1)),
    contrast=(0.4, .3, .2, .1, .05),
    brightness=(.1, .2, .3, .4, .5),
    saturate=((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
    jpeg_compression=(25, 18, 15, 10, 7),
    pixelate=(0.6, 0.5, 0.4, 0.3, 0.25),
    elastic_transform=((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02),
                       (0.12, 0.01, 0.02)),
    plasma_mapsize=256, frost_scale=None, elastic_scale=244,
)

INCEPTION = SizeSet(
    size=299, dataset="ImageNet-C 299 (Inception)", script="make_imagenet_c_inception.py",
    preprocessing="centre crop of 0.875 of each side, then resize to 299x299 (PIL bilinear)",
    release_jpeg=True,
    gaussian_noise=(.09, .13, 0.19, 0.27, 0.40),
    shot_noise=(50, 20, 10, 5, 3),
    impulse_noise=(.04, .07, .10, 0.18, 0.28),
    speckle_noise=(.16, .21, 0.36, 0.46, 0.61),
    gaussian_blur=(1.5, 2.5, 3.5, 4.5, 6.5),
    glass_blur=((0.8, 1, 3), (1, 3, 1), (1.1, 2, 4), (1.2, 4, 2), (1.6, 5, 2)),
    defocus_blur=((4, 0.1), (5, 0.5), (7, 0.5), (10, 0.5), (12, 0.5)),
    motion_blur=((12, 4), (17, 6), (17, 9), (17, 13), (22, 16)),
    zoom_blur=IMAGENET.zoom_blur,
    snow=IMAGENET.snow,
    frost=IMAGENET.frost,
    fog=((1.5, 2), (2, 2), (2.5, 1.8), (2.5, 1.6), (3, 1.5)),
    spatter=((0.65, 0.3, 4, 0.69, 0.9, 0), (0.65, 0.3, 3.5, 0.68, 0.9, 0),
             (0.65, 0.3, 3, 0.68, 0.8, 0), (0.65, 0.3, 1.2, 0.65, 1.8, 1),
             (0.67, 0.4, 1.2, 0.65, 1.8, 1)),
    contrast=IMAGENET.contrast,
    brightness=IMAGENET.brightness,
    saturate=IMAGENET.saturate,
    jpeg_compression=(23, 16, 13, 8, 5),
    pixelate=(0.5, 0.4, 0.3, 0.25, 0.2),
    elastic_transform=IMAGENET.elastic_transform,
    plasma_mapsize=512, frost_scale=None, elastic_scale=360,
)

SETS: dict[int, SizeSet] = {s.size: s for s in (CIFAR, TINY_IMAGENET, IMAGENET, INCEPTION)}
SIZES = tuple(SETS)


def supported() -> str:
  """The supported sizes in words, for error messages."""
  return ", ".join(f"{s.size}x{s.size} ({s.dataset})" for s in SETS.values())


def constants(size) -> SizeSet:
  """The constant set for square ``size`` x ``size`` images, else ValueError naming the sizes."""
  try:
    return SETS[int(size)]
  except (KeyError, TypeError, ValueError):
    raise ValueError(f"no ImageNet-C constant set for {size}x{size} images; supported sizes: "
                     f"{supported()}") from None


def of(image) -> SizeSet:
  """The constant set of one image [S, S, C] or [S, S] (its static height and width)."""
  h, w = image.shape[0], image.shape[1]
  if h != w:
    raise ValueError(f"images must be square, got {h}x{w}; supported sizes: {supported()}")
  return constants(h)
