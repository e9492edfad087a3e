"""The original ImageNet-P generator, line by line, with injectable random draws (test oracle).

Written after hendrycks/robustness ``ImageNet-P/create_p/make_imagenet_p.py`` (every block of
that script, each of which the authors toggled on by hand), run on today's libraries:
torchvision 0.2.x's ``affine`` (the version the original ran; today's moved the rotation centre
and re-parametrised shear) is spelled out here on top of PIL's ``Image.transform(AFFINE)``;
``ToTensor`` / ``ToPILImage`` are their 0.2.x semantics in torch (``float().div(255)`` and
``mul(255).byte()``); Wand + ImageMagick for motion blur and snow; OpenCV for tilt and
spatter; scikit-image for brightness and gaussian blur.  Shims, as for ImageNet-C: binary
``np.fromstring`` -> ``np.frombuffer``; ``gaussian(multichannel=True)`` -> ``channel_axis=-1``.

Each sequence returns the frames the original wrote as PNGs (before the lossy H.264 step),
uint8 [T, 224, 224, 3].  The random draws can be injected (our JAX draws, so tests compare
pixel by pixel); without them the original's own RNG calls run (torch / np.random).

Test- and benchmark-only: needs torch, Wand + ImageMagick, OpenCV, scikit-image.
"""
from __future__ import annotations

import ctypes
import functools
import io
import math

import numpy as np
from PIL import Image as PILImage

NUM_FRAMES = 31


# ---------------------------------------------------------------------------------------------
# torchvision 0.2.x on PIL images (what the original called as trn / trn_F)


def center_crop(img: PILImage.Image, size: int = 224) -> PILImage.Image:
  """``trn.CenterCrop(224)``: offsets ``int(round((dim - size) / 2.))``."""
  w, h = img.size
  i = int(round((h - size) / 2.))
  j = int(round((w - size) / 2.))
  return img.crop((j, i, j + size, i + size))


def to_tensor(pic: PILImage.Image):
  """``trn.ToTensor()`` on an RGB PIL image: float32 CHW ``byte.float().div(255)``."""
  import torch
  arr = np.array(pic, dtype=np.uint8, copy=True)
  return torch.from_numpy(arr).permute(2, 0, 1).contiguous().float().div(255)


def to_pil_image(tensor) -> PILImage.Image:
  """``trn.ToPILImage()`` of a float CHW tensor: ``mul(255).byte()`` (truncation)."""
  npimg = np.transpose(tensor.mul(255).byte().numpy(), (1, 2, 0))
  return PILImage.fromarray(npimg, mode="RGB")


def _get_inverse_affine_matrix(center, angle, translate, scale, shear):
  """torchvision 0.2.x: inverse of M = T C RSS C^-1, as a 6-list for PIL's AFFINE."""
  angle = math.radians(angle)
  shear = math.radians(shear)
  scale = 1.0 / scale
  d = math.cos(angle + shear) * math.cos(angle) + math.sin(angle + shear) * math.sin(angle)
  matrix = [math.cos(angle + shear), math.sin(angle + shear), 0,
            -math.sin(angle), math.cos(angle), 0]
  matrix = [scale / d * m for m in matrix]
  matrix[2] += matrix[0] * (-center[0] - translate[0]) + matrix[1] * (-center[1] - translate[1])
  matrix[5] += matrix[3] * (-center[0] - translate[0]) + matrix[4] * (-center[1] - translate[1])
  matrix[2] += center[0]
  matrix[5] += center[1]
  return matrix


def affine(img: PILImage.Image, angle, translate, scale, shear, resample=0) -> PILImage.Image:
  """torchvision 0.2.x ``trn_F.affine``: centre ``(w/2 + 0.5, h/2 + 0.5)``, black fill."""
  assert isinstance(translate, (tuple, list)) and len(translate) == 2
  assert scale > 0.0
  output_size = img.size
  center = (img.size[0] * 0.5 + 0.5, img.size[1] * 0.5 + 0.5)
  matrix = _get_inverse_affine_matrix(center, angle, translate, scale, shear)
  return img.transform(output_size, PILImage.AFFINE, matrix, resample)


# ---------------------------------------------------------------------------------------------
# Wand motion blur (the original's MotionImage)


@functools.lru_cache(maxsize=None)
def _motion_image_class():
  from wand.api import library as wandlibrary
  from wand.image import Image as WandImage
  wandlibrary.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double,
                                                ctypes.c_double, ctypes.c_double)

  class MotionImage(WandImage):

    def motion_blur(self, radius=0.0, sigma=0.0, angle=0.0):
      wandlibrary.MagickMotionBlurImage(self.wand, radius, sigma, angle)

  return MotionImage


def clipped_zoom(img, zoom_factor):
  """The original's ``clipped_zoom`` (scipy zoom, order 1, square crop)."""
  from scipy.ndimage import zoom as scizoom
  h = img.shape[0]
  ch = int(np.ceil(h / zoom_factor))
  top = (h - ch) // 2
  img = scizoom(img[top:top + ch, top:top + ch], (zoom_factor, zoom_factor, 1), order=1)
  trim_top = (img.shape[0] - h) // 2
  return img[trim_top:trim_top + h, trim_top:trim_top + h]


# ---------------------------------------------------------------------------------------------
# The sequences.  ``img`` is the Resize(256) PIL RGB image.

GAUSSIAN_SIGMA = {1: 0.03, 2: 0.05, 3: 0.08}
SHOT_LAMBDA = {1: 300, 2: 120, 3: 60}
SPECKLE_SIGMA = {1: 0.05, 2: 0.10, 3: 0.15}


def gaussian_noise(img, difficulty=1, normals=None):
  """normals: float [30, 224, 224, 3] (HWC) standard normals for frames 1..30, or None."""
  import torch
  x = to_tensor(center_crop(img))
  frames = [to_pil_image(x)]
  for i in range(1, 31):
    noise = (torch.randn_like(x) if normals is None else
             torch.from_numpy(np.ascontiguousarray(
                 np.transpose(normals[i - 1], (2, 0, 1)), dtype=np.float32)))
    frames.append(to_pil_image(torch.clamp(x + GAUSSIAN_SIGMA[difficulty] * noise, 0, 1)))
  return frames


def shot_noise(img, difficulty=1, counts=None):
  """counts: int [30, 224, 224, 3] Poisson counts for frames 1..30, or None (np.random)."""
  lam = SHOT_LAMBDA[difficulty]
  x = center_crop(img)
  frames = [x]
  for i in range(1, 31):
    z = np.array(x, copy=True) / 255.
    draw = np.random.poisson(z * lam) if counts is None else counts[i - 1]
    frames.append(PILImage.fromarray(np.uint8(255 * np.clip(draw / float(lam), 0, 1))))
  return frames


def speckle_noise(img, difficulty=1, normals=None):
  """normals: float [30, 224, 224, 3] standard normals (``normal(scale=s) = s * z``), or None."""
  sigma = SPECKLE_SIGMA[difficulty]
  x = center_crop(img)
  frames = [x]
  x = np.array(x) / 255.
  for i in range(1, 31):
    noise = (np.random.normal(size=x.shape, scale=sigma) if normals is None else
             sigma * np.asarray(normals[i - 1], np.float64))
    frames.append(PILImage.fromarray(np.uint8(255 * np.clip(x + x * noise, 0, 1))))
  return frames


def _wand_blur_png(png_bytes, radius, sigma, angle):
  """PNG in, ImageMagick motion blur, PNG out, decoded with cv2 IMREAD_UNCHANGED."""
  import cv2
  z = _motion_image_class()(blob=png_bytes)
  z.motion_blur(radius=radius, sigma=sigma, angle=angle)
  return cv2.imdecode(np.frombuffer(z.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)


def motion_blur(img, difficulty=1):
  del difficulty
  frames = []
  for i in range(0, 31):
    z = center_crop(img)
    output = io.BytesIO()
    z.save(output, format="PNG")
    z = _wand_blur_png(output.getvalue(), 10, 3, (i - 30) * 4)
    if z.shape != (224, 224):
      z = np.clip(z[..., [2, 1, 0]], 0, 255)  # BGR to RGB
    else:  # grayscale to RGB
      z = np.clip(np.array([z, z, z]).transpose((1, 2, 0)), 0, 255)
    frames.append(PILImage.fromarray(z))
  return frames


def zoom_blur(img, difficulty=1):
  del difficulty
  z = center_crop(img)
  avg = to_tensor(z)
  frames = [z]
  for i in range(1, 31):
    z = center_crop(affine(img, angle=0, translate=(0, 0), scale=1 + 0.004 * i, shear=0,
                           resample=PILImage.BILINEAR))
    avg += to_tensor(z)
    frames.append(to_pil_image(avg / (i + 1)))
  return frames


def snow(img, difficulty=1, normals=None):
  """normals: float [224, 224] standard normals of the one snow layer, or None (np.random)."""
  import cv2
  del difficulty
  x = center_crop(img)
  x = np.array(x) / 255.
  snow_layer = (np.random.normal(size=(224, 224), loc=0.05, scale=0.3) if normals is None else
                0.05 + 0.3 * np.asarray(normals, np.float64))
  snow_layer = clipped_zoom(snow_layer[..., np.newaxis], 3)
  snow_layer[snow_layer < 0.5] = 0
  snow_layer = PILImage.fromarray(
      (np.clip(snow_layer.squeeze(), 0, 1) * 255).astype(np.uint8), mode="L")
  output = io.BytesIO()
  snow_layer.save(output, format="PNG")
  output = output.getvalue()
  frames = []
  for i in range(0, 31):
    snow_layer = _wand_blur_png(output, 14, 4, i * 4 - 150) / 255.
    snow_layer = snow_layer[..., np.newaxis]
    z = 0.85 * x + (1 - 0.85) * np.maximum(
        x, cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY).reshape(224, 224, 1) * 1.5 + 0.5)
    z = np.uint8(np.clip(z + snow_layer + np.rot90(snow_layer, k=2), 0, 1) * 255)
    frames.append(PILImage.fromarray(z))
  return frames


def _brightness(_x, c=0.):
  import skimage.color as skcolor
  _x = np.array(_x, copy=True) / 255.
  _x = skcolor.rgb2hsv(_x)
  _x[:, :, 2] = np.clip(_x[:, :, 2] + c, 0, 1)
  _x = skcolor.hsv2rgb(_x)
  return np.uint8(_x * 255)


def brightness(img, difficulty=1):
  del difficulty
  x = center_crop(img)
  return [PILImage.fromarray(_brightness(x, c=(i - 15) * 2 / 100.)) for i in range(0, 31)]


def translate(img, difficulty=1):
  del difficulty
  return [center_crop(affine(img, angle=0, translate=(i - 20, 0), scale=1, shear=0))
          for i in range(0, 41)]


def rotate(img, difficulty=1):
  del difficulty
  return [center_crop(affine(img, angle=i - 15, translate=(0, 0), scale=1., shear=0,
                             resample=PILImage.BILINEAR)) for i in range(0, 31)]


def tilt(img, difficulty=1):
  import cv2
  del difficulty
  x = np.array(img)
  h, w = x.shape[0:2]
  frames = []
  for i in range(0, 31):
    phi, theta = np.deg2rad(i - 15), np.deg2rad(i - 15)
    f = np.sqrt(w ** 2 + h ** 2)
    p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
    rx = np.array([[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0],
                   [0, np.sin(theta), np.cos(theta), 0], [0, 0, 0, 1]])
    ry = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0],
                   [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])
    t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
    p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
    mat = p2 @ t @ rx @ ry @ p1
    frames.append(center_crop(PILImage.fromarray(cv2.warpPerspective(x, mat, (w, h)))))
  return frames


def scale(img, difficulty=1):
  del difficulty
  return [center_crop(affine(img, angle=0, translate=(0, 0), scale=(i * 2.5 + 40) / 100.,
                             shear=0, resample=PILImage.BILINEAR)) for i in range(0, 31)]


def gaussian_blur(img, difficulty=1):
  from skimage.filters import gaussian
  del difficulty
  x = center_crop(img)
  frames = []
  for i in range(0, 31):
    z = np.uint8(255 * gaussian(np.array(x, copy=True) / 255., sigma=0.25 + 0.035 * i,
                                channel_axis=-1, truncate=6.0))
    frames.append(PILImage.fromarray(z))
  return frames


def spatter(img, difficulty=1, normals=None):
  """normals: float [224, 224] standard normals of the one liquid layer, or None (np.random)."""
  import cv2
  from skimage.filters import gaussian
  del difficulty
  x = center_crop(img)
  x = cv2.cvtColor(np.array(x, dtype=np.float32) / 255., cv2.COLOR_BGR2BGRA)
  liquid_layer = (np.random.normal(size=x.shape[:2], loc=0.65, scale=0.27) if normals is None
                  else 0.65 + 0.27 * np.asarray(normals, np.float64))
  liquid_layer = gaussian(liquid_layer, sigma=3.7)
  liquid_layer[liquid_layer < 0.69] = 0
  frames = []
  for i in range(0, 31):
    liquid_layer_i = (liquid_layer * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(liquid_layer_i, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    dist = cv2.filter2D(dist, cv2.CV_8U, ker)
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    m = cv2.cvtColor(liquid_layer_i * dist, cv2.COLOR_GRAY2BGRA)
    m /= np.max(m, axis=(0, 1))
    m *= 0.6
    # water is pale turquoise
    color = np.concatenate((175 / 255. * np.ones_like(m[..., :1]),
                            238 / 255. * np.ones_like(m[..., :1]),
                            238 / 255. * np.ones_like(m[..., :1])), axis=2)
    color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
    z = np.uint8(cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255)
    liquid_layer = np.apply_along_axis(
        lambda mat: np.convolve(mat, np.array([0.05, 0.1, 0.15, 0.7]), mode="same"),
        axis=0, arr=liquid_layer)
    frames.append(PILImage.fromarray(z))
  return frames


def shear(img, difficulty=1):
  del difficulty
  return [center_crop(affine(img, angle=0, translate=(0, 0), scale=1., shear=i - 15,
                             resample=PILImage.BILINEAR)) for i in range(0, 31)]


SEQUENCES = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "motion_blur": motion_blur,
    "zoom_blur": zoom_blur, "snow": snow, "brightness": brightness, "translate": translate,
    "rotate": rotate, "tilt": tilt, "scale": scale, "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur, "spatter": spatter, "shear": shear,
}
# Which sequences take injected draws, and what they are.
DRAW_KIND = {"gaussian_noise": "normals", "speckle_noise": "normals", "shot_noise": "counts",
             "snow": "normals", "spatter": "normals"}


def run_original(name: str, image256, difficulty: int = 1, draws=None) -> np.ndarray:
  """The original's frames for one Resize(256) image: uint8 [T, 224, 224, 3].

  Args:
    name: one of the 14 sequence names.
    image256: uint8 [H, W, 3], shorter side 256 (what ``trn.Resize(256)`` gave the original).
    difficulty: 1..3 (the ``_2`` / ``_3`` blocks of the noise sequences).
    draws: for the random sequences, our draws in the original's units (see each function);
      None runs the original's own RNG.
  """
  if name not in SEQUENCES:
    raise ValueError(f"unknown perturbation {name!r}")
  img = PILImage.fromarray(np.asarray(image256, np.uint8)).convert("RGB")
  fn = SEQUENCES[name]
  if name in DRAW_KIND and draws is not None:
    frames = fn(img, difficulty, draws)
  else:
    frames = fn(img, difficulty)
  return np.stack([np.asarray(f.convert("RGB"), np.uint8) for f in frames])
