"""The original ImageNet-C generators for the other sizes, line by line (test oracle).

Written after hendrycks/robustness ``ImageNet-C/create_c/``:

  32   make_cifar_c.py
  64   make_tinyimagenet_c.py and make_imagenet_64_c.py (the same corruption code and constants)
  224  make_imagenet_c.py (also run through the PyPI package by ``oracles.corruptions``; kept here
       so the tests can check this transcription against the package at 224)
  299  make_imagenet_c_inception.py

The scripts share one body of code; they differ in the constant lists, the size they hard-code
(loop bounds, crops, reshapes, shape checks), fog's ``plasma_fractal`` map size, frost's texture
resize (CIFAR 0.2, 64 0.3, else none) and elastic's constants.  So each corruption is written
once, as the scripts spell it, reading those from ``SCRIPTS[size]``, whose constants are typed
from the scripts (independently of ``imagenet_cp.corruptions.sizes``: the tests compare both).
What the -C and -P scripts define alike (``MotionImage``, ``clipped_zoom``, the snow layer, the
water drops, the 299 loader) is written once, in ``oracles.script_common``.

The global ``np.random`` is called as the scripts call it, so ``oracles.corruptions.Replay``
feeds these functions our draws.  Shims for today's libraries, as for the 224 oracle (each
renames an API, none changes an algorithm): ``np.float_`` -> ``np.float64``; binary
``np.fromstring`` -> ``np.frombuffer``; ``gaussian(..., multichannel=True)`` ->
``channel_axis=-1``; ``scipy.ndimage.interpolation.map_coordinates`` ->
``scipy.ndimage.map_coordinates``.  Frost textures: the packaged copies (or
``$IMAGENET_CP_FROST_DIR``), read with ``cv2.imread`` like the scripts.

The CIFAR script feeds ``trn.ToPILImage()(trn.ToTensor()(img))`` (``mul(255).byte()`` of
``v / 255`` in float32, the identity on every byte); the others a PIL image after their
preprocessing (``inputs``).  ``run_original`` returns ``np.uint8(out)``, what the scripts save
(CIFAR: into the .npy; the others: then JPEG q85).

Test-only: needs Wand + ImageMagick, OpenCV, SciPy and scikit-image.
"""
from __future__ import annotations

import dataclasses
import io
import pathlib
import warnings

import numpy as np
from PIL import Image as PILImage

from imagenet_cp.oracles import corruptions as _oracle224
from imagenet_cp.oracles import script_common
from imagenet_cp.oracles.script_common import clipped_zoom

NAMES = _oracle224.ORIGINAL_NAMES


@dataclasses.dataclass(frozen=True)
class Script:
  """What one script hard-codes: its size, fog's map size, frost's resize, and the constant
  lists of its corruption functions (``c = [...]``), as the script writes them."""
  size: int
  file: str
  mapsize: int
  frost_fx: float | None
  c: dict


def _cifar_constants(imsize):
  return dict(
      gaussian_noise=[0.04, 0.06, .08, .09, .10],
      shot_noise=[500, 250, 100, 75, 50],
      impulse_noise=[.01, .02, .03, .05, .07],
      speckle_noise=[.06, .1, .12, .16, .2],
      gaussian_blur=[.4, .6, 0.7, .8, 1],
      glass_blur=[(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
      defocus_blur=[(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)],
      motion_blur=[(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
      zoom_blur=[np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
                 np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)],
      fog=[(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)],
      frost=[(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
      snow=[(0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
      spatter=[(0.62, 0.1, 0.7, 0.7, 0.5, 0),
               (0.65, 0.1, 0.8, 0.7, 0.5, 0),
               (0.65, 0.3, 1, 0.69, 0.5, 0),
               (0.65, 0.1, 0.7, 0.69, 0.6, 1),
               (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
      contrast=[.75, .5, .4, .3, 0.15],
      brightness=[.05, .1, .15, .2, .3],
      saturate=[(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
      jpeg_compression=[80, 65, 58, 50, 40],
      pixelate=[0.95, 0.9, 0.85, 0.75, 0.65],
      elastic_transform=[(imsize * 0, imsize * 0, imsize * 0.08),
                         (imsize * 0.05, imsize * 0.2, imsize * 0.07),
                         (imsize * 0.08, imsize * 0.06, imsize * 0.06),
                         (imsize * 0.1, imsize * 0.04, imsize * 0.05),
                         (imsize * 0.1, imsize * 0.03, imsize * 0.03)],
  )


def _tiny_constants(imsize):
  return dict(
      gaussian_noise=[0.04, 0.08, .12, .15, .18],
      shot_noise=[250, 100, 50, 30, 15],
      impulse_noise=[.01, .02, .05, .08, .14],
      speckle_noise=[.15, .2, 0.25, 0.3, 0.35],
      gaussian_blur=[.5, .75, 1, 1.25, 1.5],
      glass_blur=[(0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)],
      defocus_blur=[(0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)],
      motion_blur=[(10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)],
      zoom_blur=[np.arange(1, 1.06, 0.01), np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01),
                 np.arange(1, 1.21, 0.01), np.arange(1, 1.26, 0.01)],
      fog=[(.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)],
      frost=[(1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)],
      snow=[(0.1, 0.2, 1, 0.6, 8, 3, 0.8),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)],
      spatter=[(0.62, 0.1, 0.7, 0.7, 0.6, 0),
               (0.65, 0.1, 0.8, 0.7, 0.6, 0),
               (0.65, 0.3, 1, 0.69, 0.6, 0),
               (0.65, 0.1, 0.7, 0.68, 0.6, 1),
               (0.65, 0.1, 0.5, 0.67, 0.6, 1)],
      contrast=[.4, .3, .2, .1, 0.05],
      brightness=[.1, .2, .3, .4, .5],
      saturate=[(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)],
      jpeg_compression=[65, 58, 50, 40, 25],
      pixelate=[0.9, 0.8, 0.7, 0.6, 0.5],
      elastic_transform=[(imsize * 0, imsize * 0, imsize * 0.08),
                         (imsize * 0.05, imsize * 0.3, imsize * 0.06),
                         (imsize * 0.1, imsize * 0.08, imsize * 0.06),
                         (imsize * 0.1, imsize * 0.03, imsize * 0.03),
                         (imsize * 0.16, imsize * 0.03, imsize * 0.02)],
  )


def _imagenet_constants():
  return dict(
      gaussian_noise=[.08, .12, 0.18, 0.26, 0.38],
      shot_noise=[60, 25, 12, 5, 3],
      impulse_noise=[.03, .06, .09, 0.17, 0.27],
      speckle_noise=[.15, .2, 0.35, 0.45, 0.6],
      gaussian_blur=[1, 2, 3, 4, 6],
      glass_blur=[(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
      defocus_blur=[(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)],
      motion_blur=[(10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
      zoom_blur=[np.arange(1, 1.11, 0.01),
                 np.arange(1, 1.16, 0.01),
                 np.arange(1, 1.21, 0.02),
                 np.arange(1, 1.26, 0.02),
                 np.arange(1, 1.31, 0.03)],
      fog=[(1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)],
      frost=[(1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)],
      snow=[(0.1, 0.3, 3, 0.5, 10, 4, 0.8),
            (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
            (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
            (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
            (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)],
      spatter=[(0.65, 0.3, 4, 0.69, 0.6, 0),
               (0.65, 0.3, 3, 0.68, 0.6, 0),
               (0.65, 0.3, 2, 0.68, 0.5, 0),
               (0.65, 0.3, 1, 0.65, 1.5, 1),
               (0.67, 0.4, 1, 0.65, 1.5, 1)],
      contrast=[0.4, .3, .2, .1, .05],
      brightness=[.1, .2, .3, .4, .5],
      saturate=[(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
      jpeg_compression=[25, 18, 15, 10, 7],
      pixelate=[0.6, 0.5, 0.4, 0.3, 0.25],
      elastic_transform=[(244 * 2, 244 * 0.7, 244 * 0.1),
                         (244 * 2, 244 * 0.08, 244 * 0.2),
                         (244 * 0.05, 244 * 0.01, 244 * 0.02),
                         (244 * 0.07, 244 * 0.01, 244 * 0.02),
                         (244 * 0.12, 244 * 0.01, 244 * 0.02)],
  )


def _inception_constants():
  return dict(
      _imagenet_constants(),
      gaussian_noise=[.09, .13, 0.19, 0.27, 0.40],
      shot_noise=[50, 20, 10, 5, 3],
      impulse_noise=[.04, .07, .10, 0.18, 0.28],
      speckle_noise=[.16, .21, 0.36, 0.46, 0.61],
      gaussian_blur=[1.5, 2.5, 3.5, 4.5, 6.5],
      glass_blur=[(0.8, 1, 3), (1, 3, 1), (1.1, 2, 4), (1.2, 4, 2), (1.6, 5, 2)],
      defocus_blur=[(4, 0.1), (5, 0.5), (7, 0.5), (10, 0.5), (12, 0.5)],
      motion_blur=[(12, 4), (17, 6), (17, 9), (17, 13), (22, 16)],
      fog=[(1.5, 2), (2, 2), (2.5, 1.8), (2.5, 1.6), (3, 1.5)],
      spatter=[(0.65, 0.3, 4, 0.69, 0.9, 0),
               (0.65, 0.3, 3.5, 0.68, 0.9, 0),
               (0.65, 0.3, 3, 0.68, 0.8, 0),
               (0.65, 0.3, 1.2, 0.65, 1.8, 1),
               (0.67, 0.4, 1.2, 0.65, 1.8, 1)],
      jpeg_compression=[23, 16, 13, 8, 5],
      pixelate=[0.5, 0.4, 0.3, 0.25, 0.2],
      elastic_transform=[(360 * 2, 360 * 0.7, 360 * 0.1),
                         (360 * 2, 360 * 0.08, 360 * 0.2),
                         (360 * 0.05, 360 * 0.01, 360 * 0.02),
                         (360 * 0.07, 360 * 0.01, 360 * 0.02),
                         (360 * 0.12, 360 * 0.01, 360 * 0.02)],
  )


SCRIPTS = {
    32: Script(32, "make_cifar_c.py", 32, 0.2, _cifar_constants(32)),
    64: Script(64, "make_tinyimagenet_c.py", 64, 0.3, _tiny_constants(64)),
    224: Script(224, "make_imagenet_c.py", 256, None, _imagenet_constants()),
    299: Script(299, "make_imagenet_c_inception.py", 512, None, _inception_constants()),
}
SIZES = tuple(SCRIPTS)


def script(size: int) -> Script:
  if size not in SCRIPTS:
    raise ValueError(f"no original script for size {size}; known: {SIZES}")
  return SCRIPTS[size]


# ---------------------------------------------------------------------------------------------
# The scripts' inputs


def inputs(photo, size: int) -> np.ndarray:
  """uint8 [size, size, 3] as each script's loader hands it to the corruption.

  32: ``Resize((32, 32))`` (PIL bilinear; CIFAR's own images are 32x32 already); 64:
  ``trn.Resize((64, 64))``; 224: ``Resize(256)`` + ``CenterCrop(224)``; 299: the inception
  script's ``resized_center_crop``: ``center_crop(0.875)`` (``int(h * 0.875)``, offsets
  ``int(round((h - th) / 2.))``) then ``img.resize((299, 299), BILINEAR)``.
  """
  img = PILImage.fromarray(np.asarray(photo, np.uint8)).convert("RGB")
  if size in (32, 64):
    return np.asarray(script_common.tv_resize(img, (size, size)))
  if size == 224:
    from imagenet_cp.preprocess import preprocess
    return preprocess(img)
  if size == 299:
    return np.asarray(script_common.resized_center_crop(img))
  raise ValueError(f"no input pipeline for size {size}; known: {SIZES}")


# ---------------------------------------------------------------------------------------------
# Helpers, as the scripts define them


def _gaussian(image, sigma, multichannel=None, **kwargs):
  """skimage ``gaussian``; the removed ``multichannel=True`` is ``channel_axis=-1``."""
  from skimage.filters import gaussian
  if multichannel:
    kwargs["channel_axis"] = -1
  return gaussian(image, sigma=sigma, **kwargs)


def disk(radius, alias_blur=0.1, dtype=np.float32):
  import cv2
  if radius <= 8:
    L = np.arange(-8, 8 + 1)
    ksize = (3, 3)
  else:
    L = np.arange(-radius, radius + 1)
    ksize = (5, 5)
  X, Y = np.meshgrid(L, L)
  aliased_disk = np.array((X ** 2 + Y ** 2) <= radius ** 2, dtype=dtype)
  aliased_disk /= np.sum(aliased_disk)
  return cv2.GaussianBlur(aliased_disk, ksize=ksize, sigmaX=alias_blur)


def plasma_fractal(mapsize, wibbledecay=3):
  """Diamond-square heightmap, side ``mapsize`` (the script's default argument), in [0, 1]."""
  assert (mapsize & (mapsize - 1) == 0)
  maparray = np.empty((mapsize, mapsize), dtype=np.float64)  # np.float_
  maparray[0, 0] = 0
  stepsize = mapsize
  wibble = 100

  def wibbledmean(array):
    return array / 4 + wibble * np.random.uniform(-wibble, wibble, array.shape)

  def fillsquares():
    cornerref = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
    squareaccum = cornerref + np.roll(cornerref, shift=-1, axis=0)
    squareaccum += np.roll(squareaccum, shift=-1, axis=1)
    maparray[stepsize // 2:mapsize:stepsize,
             stepsize // 2:mapsize:stepsize] = wibbledmean(squareaccum)

  def filldiamonds():
    mapsize = maparray.shape[0]
    drgrid = maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize]
    ulgrid = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
    ldrsum = drgrid + np.roll(drgrid, 1, axis=0)
    lulsum = ulgrid + np.roll(ulgrid, -1, axis=1)
    ltsum = ldrsum + lulsum
    maparray[0:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(ltsum)
    tdrsum = drgrid + np.roll(drgrid, 1, axis=1)
    tulsum = ulgrid + np.roll(ulgrid, -1, axis=0)
    ttsum = tdrsum + tulsum
    maparray[stepsize // 2:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(ttsum)

  while stepsize >= 2:
    fillsquares()
    filldiamonds()
    stepsize //= 2
    wibble /= wibbledecay

  maparray -= maparray.min()
  return maparray / maparray.max()


# ---------------------------------------------------------------------------------------------
# The corruptions.  ``x`` is the PIL RGB image, ``s`` the script.


def gaussian_noise(s, x, severity=1):
  c = s.c["gaussian_noise"][severity - 1]
  x = np.array(x) / 255.
  return np.clip(x + np.random.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(s, x, severity=1):
  c = s.c["shot_noise"][severity - 1]
  x = np.array(x) / 255.
  return np.clip(np.random.poisson(x * c) / c, 0, 1) * 255


def impulse_noise(s, x, severity=1):
  import skimage.util
  c = s.c["impulse_noise"][severity - 1]
  x = skimage.util.random_noise(np.array(x) / 255., mode='s&p', amount=c)
  return np.clip(x, 0, 1) * 255


def speckle_noise(s, x, severity=1):
  c = s.c["speckle_noise"][severity - 1]
  x = np.array(x) / 255.
  return np.clip(x + x * np.random.normal(size=x.shape, scale=c), 0, 1) * 255


def gaussian_blur(s, x, severity=1):
  c = s.c["gaussian_blur"][severity - 1]
  x = _gaussian(np.array(x) / 255., sigma=c, multichannel=True)
  return np.clip(x, 0, 1) * 255


def glass_blur(s, x, severity=1):
  # sigma, max_delta, iterations
  c = s.c["glass_blur"][severity - 1]
  x = np.uint8(_gaussian(np.array(x) / 255., sigma=c[0], multichannel=True) * 255)
  # locally shuffle pixels
  for i in range(c[2]):
    for h in range(s.size - c[1], c[1], -1):
      for w in range(s.size - c[1], c[1], -1):
        dx, dy = np.random.randint(-c[1], c[1], size=(2,))
        h_prime, w_prime = h + dy, w + dx
        # swap
        x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
  return np.clip(_gaussian(x / 255., sigma=c[0], multichannel=True), 0, 1) * 255


def defocus_blur(s, x, severity=1):
  import cv2
  c = s.c["defocus_blur"][severity - 1]
  x = np.array(x) / 255.
  kernel = disk(radius=c[0], alias_blur=c[1])
  channels = []
  for d in range(3):
    channels.append(cv2.filter2D(x[:, :, d], -1, kernel))
  channels = np.array(channels).transpose((1, 2, 0))  # 3xSxS -> SxSx3
  return np.clip(channels, 0, 1) * 255


def motion_blur(s, x, severity=1):
  c = s.c["motion_blur"][severity - 1]
  return script_common.motion_blur_rgb(script_common.png_bytes(x), c[0], c[1],
                                       np.random.uniform(-45, 45), s.size)


def zoom_blur(s, x, severity=1):
  c = s.c["zoom_blur"][severity - 1]
  x = (np.array(x) / 255.).astype(np.float32)
  out = np.zeros_like(x)
  for zoom_factor in c:
    out += clipped_zoom(x, zoom_factor)
  x = (x + out) / (len(c) + 1)
  return np.clip(x, 0, 1) * 255


def fog(s, x, severity=1):
  c = s.c["fog"][severity - 1]
  x = np.array(x) / 255.
  max_val = x.max()
  x += c[0] * plasma_fractal(s.mapsize, wibbledecay=c[1])[:s.size, :s.size][..., np.newaxis]
  return np.clip(x * max_val / (max_val + c[0]), 0, 1) * 255


def frost(s, x, severity=1, frost_dir=None):
  import cv2
  c = s.c["frost"][severity - 1]
  idx = np.random.randint(5)
  folder = pathlib.Path(frost_dir) if frost_dir else _oracle224.frost_dir_default()
  filename = [str(folder / f) for f in _oracle224.FROST_FILES][idx]
  frost = cv2.imread(filename)
  if s.frost_fx is not None:  # CIFAR 0.2, 64: 0.3; the 224 and 299 scripts do not resize
    frost = cv2.resize(frost, (0, 0), fx=s.frost_fx, fy=s.frost_fx)
  # randomly crop and convert to rgb
  x_start, y_start = (np.random.randint(0, frost.shape[0] - s.size),
                      np.random.randint(0, frost.shape[1] - s.size))
  frost = frost[x_start:x_start + s.size, y_start:y_start + s.size][..., [2, 1, 0]]
  return np.clip(c[0] * np.array(x) + c[1] * frost, 0, 255)


def snow(s, x, severity=1):
  c = s.c["snow"][severity - 1]
  x = np.array(x, dtype=np.float32) / 255.
  snow_layer = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])  # [:2] for monochrome
  output = script_common.snow_layer_png(snow_layer, c[2], c[3])
  snow_layer = script_common.wand_motion_blur(output, c[4], c[5],
                                              np.random.uniform(-135, -45)) / 255.
  snow_layer = snow_layer[..., np.newaxis]
  x = script_common.snowy_scene(x, c[6], s.size)
  return np.clip(x + snow_layer + np.rot90(snow_layer, k=2), 0, 1) * 255


def spatter(s, x, severity=1):
  import cv2
  c = s.c["spatter"][severity - 1]
  x = np.array(x, dtype=np.float32) / 255.
  liquid_layer = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
  liquid_layer = _gaussian(liquid_layer, sigma=c[2])
  liquid_layer[liquid_layer < c[3]] = 0
  if c[5] == 0:
    return script_common.water(liquid_layer, cv2.cvtColor(x, cv2.COLOR_BGR2BGRA), c[4]) * 255
  else:
    m = np.where(liquid_layer > c[3], 1, 0)
    m = _gaussian(m.astype(np.float32), sigma=c[4])
    m[m < 0.8] = 0
    # mud brown
    color = np.concatenate((63 / 255. * np.ones_like(x[..., :1]),
                            42 / 255. * np.ones_like(x[..., :1]),
                            20 / 255. * np.ones_like(x[..., :1])), axis=2)
    color *= m[..., np.newaxis]
    x *= (1 - m[..., np.newaxis])
    return np.clip(x + color, 0, 1) * 255


def contrast(s, x, severity=1):
  c = s.c["contrast"][severity - 1]
  x = np.array(x) / 255.
  means = np.mean(x, axis=(0, 1), keepdims=True)
  return np.clip((x - means) * c + means, 0, 1) * 255


def brightness(s, x, severity=1):
  import skimage.color
  c = s.c["brightness"][severity - 1]
  x = np.array(x) / 255.
  x = skimage.color.rgb2hsv(x)
  x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
  x = skimage.color.hsv2rgb(x)
  return np.clip(x, 0, 1) * 255


def saturate(s, x, severity=1):
  import skimage.color
  c = s.c["saturate"][severity - 1]
  x = np.array(x) / 255.
  x = skimage.color.rgb2hsv(x)
  x[:, :, 1] = np.clip(x[:, :, 1] * c[0] + c[1], 0, 1)
  x = skimage.color.hsv2rgb(x)
  return np.clip(x, 0, 1) * 255


def jpeg_compression(s, x, severity=1):
  c = s.c["jpeg_compression"][severity - 1]
  output = io.BytesIO()
  x.save(output, 'JPEG', quality=c)
  x = PILImage.open(output)
  return x


def pixelate(s, x, severity=1):
  c = s.c["pixelate"][severity - 1]
  x = x.resize((int(s.size * c), int(s.size * c)), PILImage.BOX)
  x = x.resize((s.size, s.size), PILImage.BOX)
  return x


def elastic_transform(s, image, severity=1):
  import cv2
  from scipy.ndimage import map_coordinates  # scipy.ndimage.interpolation
  c = s.c["elastic_transform"][severity - 1]
  image = np.array(image, dtype=np.float32) / 255.
  shape = image.shape
  shape_size = shape[:2]
  # random affine
  center_square = np.float32(shape_size) // 2
  square_size = min(shape_size) // 3
  pts1 = np.float32([center_square + square_size,
                     [center_square[0] + square_size, center_square[1] - square_size],
                     center_square - square_size])
  pts2 = pts1 + np.random.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
  M = cv2.getAffineTransform(pts1, pts2)
  image = cv2.warpAffine(image, M, shape_size[::-1], borderMode=cv2.BORDER_REFLECT_101)
  dx = (_gaussian(np.random.uniform(-1, 1, size=shape[:2]),
                  c[1], mode='reflect', truncate=3) * c[0]).astype(np.float32)
  dy = (_gaussian(np.random.uniform(-1, 1, size=shape[:2]),
                  c[1], mode='reflect', truncate=3) * c[0]).astype(np.float32)
  dx, dy = dx[..., np.newaxis], dy[..., np.newaxis]
  x, y, z = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
  indices = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1)), np.reshape(z, (-1, 1))
  return np.clip(map_coordinates(image, indices, order=1, mode='reflect').reshape(shape),
                 0, 1) * 255


FUNCTIONS = {f.__name__: f for f in (
    gaussian_noise, shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur, zoom_blur,
    snow, frost, fog, brightness, contrast, elastic_transform, pixelate, jpeg_compression,
    speckle_noise, gaussian_blur, spatter, saturate)}


def run_original(name: str, image, severity: int, size: int | None = None,
                 frost_dir=None) -> np.ndarray:
  """The script's pixels for one image: ``np.uint8(method(PIL image, severity))``.

  Args:
    name: one of the 19 names.
    image: uint8 [S, S, 3] with S in 32, 64, 224, 299 (``inputs``).
    severity: 1..5.
    size: the script (default: the image's side).
    frost_dir: frost textures folder (default as ``oracles.corruptions``).

  Returns:
    uint8 [S, S, 3] (a 2-D result repeated over 3 channels), before any JPEG save.
  """
  if name not in FUNCTIONS:
    raise ValueError(f"unknown corruption {name!r}; expected one of {', '.join(NAMES)}")
  if int(severity) not in (1, 2, 3, 4, 5):
    raise ValueError(f"severity must be in 1..5, got {severity}")
  image = np.asarray(image)
  s = script(image.shape[0] if size is None else size)
  if image.dtype != np.uint8 or image.shape != (s.size, s.size, 3):
    raise ValueError(f"run_original expects uint8 [{s.size}, {s.size}, 3], got "
                     f"{image.dtype} {image.shape}")
  kwargs = {"frost_dir": frost_dir} if name == "frost" else {}
  with warnings.catch_warnings():  # the scripts ran with UserWarnings off
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", RuntimeWarning)  # np.uint8 of NaN (spatter, no edges)
    out = FUNCTIONS[name](s, PILImage.fromarray(image), int(severity), **kwargs)
    if not isinstance(out, np.ndarray):
      out = np.asarray(out)
    out = np.uint8(out)
  if out.ndim == 2:
    out = np.repeat(out[..., None], 3, axis=-1)
  if out.shape != (s.size, s.size, 3):
    raise AssertionError(f"{s.file} {name} returned shape {out.shape}")
  return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------------------------
# The scripts' np.random calls, for Replay


def expected_draws(name: str, severity: int, size: int) -> dict[str, list[tuple]]:
  """The script's np.random calls for one image: queue -> the shape of each call, in order
  (as ``oracles.corruptions.expected_draws``, for every size)."""
  s = script(size)
  image, plane = (size, size, 3), (size, size)
  levels = []
  n = 1
  while n < s.mapsize:
    levels += [(n, n)] * 3
    n *= 2
  table = {
      "gaussian_noise": {"normal": [image]},
      "speckle_noise": {"normal": [image]},
      "shot_noise": {"poisson": [image]},
      "impulse_noise": {"random": [image, image]},
      "glass_blur": {"randint": [(2,)] * glass_blur_calls(severity, size)},
      "motion_blur": {"uniform": [()]},
      "snow": {"normal": [plane], "uniform": [()]},
      "frost": {"randint": [(), (), ()]},
      "fog": {"uniform": levels},
      "elastic_transform": {"uniform": [(3, 2), plane, plane]},
      "spatter": {"normal": [plane]},
  }
  if name not in FUNCTIONS:
    raise ValueError(f"unknown corruption {name!r}")
  return table.get(name, {})


def glass_blur_calls(severity: int, size: int) -> int:
  """``randint(-d, d, size=(2,))`` calls of glass_blur: iterations * (size - 2d)**2."""
  _, d, iterations = script(size).c["glass_blur"][severity - 1]
  return iterations * (size - 2 * d) ** 2


def glass_blur_queue(dx, dy, severity: int, size: int) -> np.ndarray:
  """The randint queue from per-pixel offsets dx, dy int [>= iterations, size, size]: in the
  script's order (iteration, then h and w from size - d down to d + 1), pairs (dx, dy)."""
  _, d, iterations = script(size).c["glass_blur"][severity - 1]
  dx, dy = np.asarray(dx)[:iterations], np.asarray(dy)[:iterations]
  if dx.shape != (iterations, size, size) or dy.shape != dx.shape:
    raise ValueError(f"glass_blur_queue: need dx, dy [>= {iterations}, {size}, {size}], got "
                     f"{dx.shape}, {dy.shape}")
  loop = slice(size - d, d, -1)
  pairs = np.stack([dx[:, loop, loop], dy[:, loop, loop]], axis=-1)
  return pairs.reshape(-1).astype(np.int64)
