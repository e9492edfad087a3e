"""The original ImageNet-P generator, line by line, with injectable random draws (test oracle).

Written after hendrycks/robustness ``ImageNet-P/create_p/make_imagenet_p.py`` (every block of
that script, each of which the authors toggled on by hand), run on today's libraries:
torchvision 0.2.x's ``affine`` (the version the original ran; today's moved the rotation centre
and re-parametrised shear) is spelled out here on top of PIL's ``Image.transform(AFFINE)``;
``ToTensor`` / ``ToPILImage`` are their 0.2.x semantics in torch (``float().div(255)`` and
``mul(255).byte()``); Wand + ImageMagick for motion blur and snow; OpenCV for tilt and
spatter; scikit-image for brightness and gaussian blur.  Shims, as for ImageNet-C: binary
``np.fromstring`` -> ``np.frombuffer``; ``gaussian(multichannel=True)`` -> ``channel_axis=-1``.

The Tiny / 64x64 and 299 scripts are copies of this one with other constants and crops, so
each sequence is one function of a ``Script`` (this script's is ``IMAGENET``; the others' are
in ``oracles.perturbations_sets``); what every generator script defines alike is in
``oracles.script_common``.

Each sequence returns the frames the original wrote as PNGs (before the lossy H.264 step),
uint8 [T, 224, 224, 3].  The random draws can be injected (our JAX draws, so tests compare
pixel by pixel); without them the original's own RNG calls run (torch / np.random).

Test- and benchmark-only: needs torch, Wand + ImageMagick, OpenCV, scikit-image.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import numpy as np
from PIL import Image as PILImage

from imagenet_cp.oracles import script_common

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
# The sequences.  make_imagenet_p.py's code is also that of the Tiny / 64x64 and 299 scripts,
# which change only the constants, the crop and (Tiny) motion blur: each sequence is written
# once, as make_imagenet_p.py spells it, reading those from a ``Script``
# (``oracles.perturbations_sets`` holds the other scripts').


def warp_perspective(x, mat, dsize):
  """``cv2.warpPerspective(x, mat, dsize)`` of the installed OpenCV."""
  import cv2
  return cv2.warpPerspective(x, mat, dsize)


@dataclasses.dataclass(frozen=True)
class Script:
  """What one copy of the sequence code sets: the frame side, ``crop`` (the set input -> a
  frame, also taken after the geometric warps: ``trn.CenterCrop(S)``, the 299 script's
  ``resized_center_crop``), ``zoom_input`` (what zoom_blur and scale warp before their
  ``CenterCrop(S)``: the set input, the 299 script's crop of it), tilt's ``warp`` and the
  constants, as the script writes them."""
  file: str
  size: int
  crop: Callable
  zoom_input: Callable
  gaussian_sigma: dict   # difficulty -> torch.randn_like std
  shot_lambda: dict      # difficulty -> photons
  speckle_sigma: dict    # difficulty -> np.random.normal scale
  motion: tuple          # (radius, sigma, a): angle (i - 30) * a
  snow: tuple            # (scale, zoom, radius, sigma) of the layer normal(0.05, scale)
  translate: tuple       # (shift, frames): translate i - shift, i < frames
  blur: tuple            # (sigma_0, step, truncate): sigma_0 + step * i
  spatter: tuple         # (loc, scale, sigma, threshold, drift)
  warp: Callable = warp_perspective


def torch_normals(normals_hwc):
  """Injected standard normals [S, S, 3] (HWC) as the CHW float32 tensor ``randn_like`` gives."""
  import torch
  return torch.from_numpy(np.ascontiguousarray(np.transpose(normals_hwc, (2, 0, 1)),
                                               dtype=np.float32))


def layer(normals, size, loc, scale):
  """snow's and spatter's ``np.random.normal(size=(S, S), loc, scale)``, or ``loc + scale * z``
  of injected standard normals."""
  if normals is None:
    return np.random.normal(size=(size, size), loc=loc, scale=scale)
  return loc + scale * np.asarray(normals, np.float64)


def gaussian_frames(x, sigma, normals, to_frame):
  """Frames 1..30: ``to_frame(torch.clamp(x + sigma * torch.randn_like(x), 0, 1))`` of the
  ToTensor image ``x``; normals: float [30, S, S, 3] (HWC) standard normals, or None (torch)."""
  import torch
  frames = []
  for i in range(1, 31):
    noise = torch.randn_like(x) if normals is None else torch_normals(normals[i - 1])
    frames.append(to_frame(torch.clamp(x + sigma * noise, 0, 1)))
  return frames


def shot_frames(x, lam, counts):
  """Frames 1..30, uint8: ``np.uint8(255 * clip(np.random.poisson(z * lam) / lam, 0, 1))`` of
  ``z = np.array(x, copy=True) / 255.``; counts: int [30, S, S, 3] Poisson counts, or None."""
  frames = []
  for i in range(1, 31):
    z = np.array(x, copy=True) / 255.
    draw = np.random.poisson(z * lam) if counts is None else counts[i - 1]
    frames.append(np.uint8(255 * np.clip(draw / float(lam), 0, 1)))
  return frames


def speckle_frames(x, sigma, normals):
  """Frames 1..30, uint8: ``np.uint8(255 * clip(x + x * normal(size, scale=sigma), 0, 1))`` of
  x in [0, 1]; normals: float [30, S, S, 3] standard normals (``normal(scale=s) = s * z``)."""
  frames = []
  for i in range(1, 31):
    noise = (np.random.normal(size=x.shape, scale=sigma) if normals is None else
             sigma * np.asarray(normals[i - 1], np.float64))
    frames.append(np.uint8(255 * np.clip(x + x * noise, 0, 1)))
  return frames


def blur_frames(x, sigma_0, step, truncate):
  """Frames 0..30, uint8: ``np.uint8(255 * gaussian(x / 255., sigma_0 + step * i,
  multichannel=True, truncate))``."""
  from skimage.filters import gaussian
  return [np.uint8(255 * gaussian(np.array(x, copy=True) / 255., sigma=sigma_0 + step * i,
                                  channel_axis=-1, truncate=truncate)) for i in range(0, 31)]


def snow_frames(x, snow_layer, size, zoom, radius, sigma):
  """The snow block after ``x = crop / 255.`` and the layer's draw: the layer zoomed,
  thresholded at 0.5 and blurred at ``i * 4 - 150`` degrees, with its 180-degree rotation, on
  the whitened scene (0.85): 31 uint8 frames."""
  output = script_common.snow_layer_png(snow_layer, zoom, 0.5)
  frames = []
  for i in range(0, 31):
    snow_layer = script_common.wand_motion_blur(output, radius, sigma, i * 4 - 150) / 255.
    snow_layer = snow_layer[..., np.newaxis]
    z = script_common.snowy_scene(x, 0.85, size)
    z = np.uint8(np.clip(z + snow_layer + np.rot90(snow_layer, k=2), 0, 1) * 255)
    frames.append(z)
  return frames


def spatter_frames(x, liquid_layer, sigma, threshold, drift):
  """The spatter block after the layer's draw: ``gaussian(layer, sigma)`` thresholded, then 31
  frames of its water drops on x (uint8 RGB), the layer drifted by ``np.convolve(column, drift,
  'same')`` after each."""
  import cv2
  from skimage.filters import gaussian
  x = cv2.cvtColor(np.array(x, dtype=np.float32) / 255., cv2.COLOR_BGR2BGRA)
  liquid_layer = gaussian(liquid_layer, sigma=sigma)
  liquid_layer[liquid_layer < threshold] = 0
  frames = []
  for i in range(0, 31):
    with np.errstate(invalid="ignore"):  # NaN of a layer without edges, as the original
      z = np.uint8(script_common.water(liquid_layer, x, 0.6) * 255)
    liquid_layer = np.apply_along_axis(
        lambda mat: np.convolve(mat, np.array(drift), mode="same"), axis=0, arr=liquid_layer)
    frames.append(z)
  return frames


def tilt_matrix(h, w, degrees):
  """``P2 @ T @ RX @ RY @ P1`` with ``phi = theta = np.deg2rad(degrees)``."""
  phi, theta = np.deg2rad(degrees), np.deg2rad(degrees)
  f = np.sqrt(w ** 2 + h ** 2)
  p1 = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1], [0, 0, 1]])
  rx = np.array([[1, 0, 0, 0], [0, np.cos(theta), -np.sin(theta), 0],
                 [0, np.sin(theta), np.cos(theta), 0], [0, 0, 0, 1]])
  ry = np.array([[np.cos(phi), 0, -np.sin(phi), 0], [0, 1, 0, 0],
                 [np.sin(phi), 0, np.cos(phi), 0], [0, 0, 0, 1]])
  t = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, f], [0, 0, 0, 1]])
  p2 = np.array([[f, 0, w / 2, 0], [0, f, h / 2, 0], [0, 0, 1, 0]])
  return p2 @ t @ rx @ ry @ p1


def gaussian_noise(s: Script, img, difficulty=1, normals=None):
  """normals: float [30, S, S, 3] (HWC) standard normals for frames 1..30, or None."""
  x = to_tensor(s.crop(img))
  return [to_pil_image(x)] + gaussian_frames(x, s.gaussian_sigma[difficulty], normals,
                                             to_pil_image)


def shot_noise(s: Script, img, difficulty=1, counts=None):
  """counts: int [30, S, S, 3] Poisson counts for frames 1..30, or None (np.random)."""
  x = s.crop(img)
  return [x] + [PILImage.fromarray(z) for z in shot_frames(x, s.shot_lambda[difficulty], counts)]


def speckle_noise(s: Script, img, difficulty=1, normals=None):
  """normals: float [30, S, S, 3] standard normals (``normal(scale=s) = s * z``), or None."""
  x = s.crop(img)
  return [x] + [PILImage.fromarray(z) for z in
                speckle_frames(np.array(x) / 255., s.speckle_sigma[difficulty], normals)]


def motion_blur(s: Script, img, difficulty=1):
  del difficulty
  radius, sigma, a = s.motion
  frames = []
  for i in range(0, 31):
    z = s.crop(img)
    z = script_common.motion_blur_rgb(script_common.png_bytes(z), radius, sigma, (i - 30) * a,
                                      s.size)
    frames.append(PILImage.fromarray(z))
  return frames


def zoom_blur(s: Script, img, difficulty=1):
  del difficulty
  z = s.crop(img)
  avg = to_tensor(z)
  frames = [z]
  for i in range(1, 31):
    z = center_crop(affine(s.zoom_input(img), angle=0, translate=(0, 0), scale=1 + 0.004 * i,
                           shear=0, resample=PILImage.BILINEAR), s.size)
    avg += to_tensor(z)
    frames.append(to_pil_image(avg / (i + 1)))
  return frames


def snow(s: Script, img, difficulty=1, normals=None):
  """normals: float [S, S] standard normals of the one snow layer, or None (np.random)."""
  del difficulty
  scale, zoom, radius, sigma = s.snow
  x = np.array(s.crop(img)) / 255.
  return snow_frames(x, layer(normals, s.size, 0.05, scale), s.size, zoom, radius, sigma)


def _brightness(_x, c=0.):
  import skimage.color as skcolor
  _x = np.array(_x, copy=True) / 255.
  _x = skcolor.rgb2hsv(_x)
  _x[:, :, 2] = np.clip(_x[:, :, 2] + c, 0, 1)
  _x = skcolor.hsv2rgb(_x)
  return np.uint8(_x * 255)


def brightness(s: Script, img, difficulty=1):
  del difficulty
  x = s.crop(img)
  return [PILImage.fromarray(_brightness(x, c=(i - 15) * 2 / 100.)) for i in range(0, 31)]


def translate(s: Script, img, difficulty=1):
  del difficulty
  shift, n = s.translate
  return [s.crop(affine(img, angle=0, translate=(i - shift, 0), scale=1, shear=0))
          for i in range(0, n)]


def rotate(s: Script, img, difficulty=1):
  del difficulty
  return [s.crop(affine(img, angle=i - 15, translate=(0, 0), scale=1., shear=0,
                        resample=PILImage.BILINEAR)) for i in range(0, 31)]


def tilt(s: Script, img, difficulty=1):
  del difficulty
  x = np.array(img)
  h, w = x.shape[0:2]
  return [s.crop(PILImage.fromarray(s.warp(x, tilt_matrix(h, w, i - 15), (w, h))))
          for i in range(0, 31)]


def scale(s: Script, img, difficulty=1):
  del difficulty
  return [center_crop(affine(s.zoom_input(img), angle=0, translate=(0, 0),
                             scale=(i * 2.5 + 40) / 100., shear=0, resample=PILImage.BILINEAR),
                      s.size) for i in range(0, 31)]


def gaussian_blur(s: Script, img, difficulty=1):
  del difficulty
  return [PILImage.fromarray(z) for z in blur_frames(s.crop(img), *s.blur)]


def spatter(s: Script, img, difficulty=1, normals=None):
  """normals: float [S, S] standard normals of the one liquid layer, or None (np.random)."""
  del difficulty
  loc, scale_, sigma, threshold, drift = s.spatter
  return [PILImage.fromarray(z) for z in spatter_frames(
      s.crop(img), layer(normals, s.size, loc, scale_), sigma, threshold, drift)]


def shear(s: Script, img, difficulty=1):
  del difficulty
  return [s.crop(affine(img, angle=0, translate=(0, 0), scale=1., shear=i - 15,
                        resample=PILImage.BILINEAR)) for i in range(0, 31)]


FUNCTIONS = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "motion_blur": motion_blur,
    "zoom_blur": zoom_blur, "snow": snow, "brightness": brightness, "translate": translate,
    "rotate": rotate, "tilt": tilt, "scale": scale, "speckle_noise": speckle_noise,
    "gaussian_blur": gaussian_blur, "spatter": spatter, "shear": shear,
}
# Which sequences take injected draws, and what they are.
DRAW_KIND = {"gaussian_noise": "normals", "speckle_noise": "normals", "shot_noise": "counts",
             "snow": "normals", "spatter": "normals"}

IMAGENET = Script(
    file="make_imagenet_p.py", size=224, crop=center_crop, zoom_input=lambda img: img,
    gaussian_sigma={1: 0.03, 2: 0.05, 3: 0.08}, shot_lambda={1: 300, 2: 120, 3: 60},
    speckle_sigma={1: 0.05, 2: 0.10, 3: 0.15}, motion=(10, 3, 4), snow=(0.3, 3, 14, 4),
    translate=(20, 41), blur=(0.25, 0.035, 6.0),
    spatter=(0.65, 0.27, 3.7, 0.69, [0.05, 0.1, 0.15, 0.7]))
SEQUENCES = {name: functools.partial(fn, IMAGENET) for name, fn in FUNCTIONS.items()}


def run_sequence(fn, img, name: str, difficulty: int, draws) -> np.ndarray:
  """``fn(img, difficulty[, draws])`` stacked as uint8 [T, H, W, 3] (PIL frames as RGB)."""
  if name in DRAW_KIND and draws is not None:
    frames = fn(img, difficulty, draws)
  else:
    frames = fn(img, difficulty)
  return np.stack([np.asarray(f.convert("RGB") if isinstance(f, PILImage.Image) else f, np.uint8)
                   for f in frames])


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
  return run_sequence(SEQUENCES[name], img, name, difficulty, draws)
