"""The original's other -P generators, line by line, with injectable random draws (test oracle).

Written after hendrycks/robustness ``ImageNet-P/create_p/``:

  cifar          make_cifar_p.py                the 32x32 test image; frames kept as np arrays
  tiny_imagenet  make_tinyimagenet_p.py         ``img = trn.Resize(64)(orig_img)``
  imagenet64     make_imagenet_64_p.py          the Tiny script with ``trn.Resize((64, 64))``
                                                (``diff`` shows nothing else but paths and the
                                                class filter), so the same blocks run here
  imagenet299    make_imagenet_p_inception.py   ``resized_center_crop`` of the photo

Every block of each script (the authors toggled them on by hand) is a function here, run on
today's libraries with the shims of ``oracles.perturbations`` (torchvision 0.2.x ``affine``
through PIL, ``ToTensor`` / ``ToPILImage`` in torch, Wand + ImageMagick, OpenCV, scikit-image;
``np.fromstring`` -> ``np.frombuffer``, ``multichannel=True`` -> ``channel_axis=-1``).  The
Tiny, 64x64 and 299 scripts are make_imagenet_p.py with other constants and crops: their
blocks are ``oracles.perturbations``' functions of their ``Script`` (``TINY``, ``IMAGENET64``,
``INCEPTION``), but for the Tiny / 64x64 motion blur, their own.  make_cifar_p.py keeps numpy
frames and writes its blocks its own way; what it shares with the others is theirs too.  Each
returns the frames the script wrote (PNG frames before the H.264 step; CIFAR's np.uint8 arrays),
uint8 [T, H, W, 3].  ``run_original`` takes the SOURCE photo and does the script's own loading,
so a comparison also checks ``imagenet_cp.perturbation_input``.

Injected draws (the units the original consumes, as in ``oracles.perturbations``): gaussian
noise standard normals [30, S, S, 3] (HWC; transposed to CHW for torch); speckle standard
normals (``normal(scale=s) = s * z``); shot noise Poisson counts; snow and spatter one standard
normal layer [S, S] (``loc + scale * z``).  None runs the original's own RNG calls.

Test- and benchmark-only: needs torch, Wand + ImageMagick, OpenCV, scikit-image.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
from PIL import Image as PILImage

from imagenet_cp.oracles.perturbations import DRAW_KIND  # noqa: F401  (the same for every set)
from imagenet_cp.oracles.perturbations import (
    FUNCTIONS, Script, _brightness as brightness, affine, blur_frames, center_crop,
    gaussian_frames, layer, run_sequence, shot_frames, snow_frames, spatter_frames,
    speckle_frames, tilt_matrix, to_pil_image, to_tensor, warp_perspective)
from imagenet_cp.oracles.script_common import (
    motion_blur_rgb, png_bytes, resized_center_crop, tv_resize)

NAMES = tuple(FUNCTIONS)


# Which cv2.warpPerspective the tilt blocks run: "3.4", the original's OpenCV (spelled out in
# ``warp_perspective_cv34``: OpenCV >= 4.11 samples at exact float coordinates instead), or
# "installed", the cv2 of this environment.
TILT_OPENCV = "3.4"


def warp_perspective_cv34(x, mat, dsize):
  """``cv2.warpPerspective(x, mat, dsize)`` (INTER_LINEAR, BORDER_CONSTANT 0) as OpenCV 3.4 does
  it for uint8 images: the inverse matrix (``invert``, double), per destination pixel the
  source point ``(M0 x + M1 y + M2) * (32 / W)`` rounded half to even (``saturate_cast<int>``),
  i.e. in 1/32 pixel; integer part ``>> 5``, fraction ``& 31``; bilinear weights
  ``(32 - a)(32 - b) * 32`` etc. (sum 2^15); ``(sum + 2^14) >> 15``; taps outside the image
  read 0."""
  w, h = dsize
  m = np.linalg.inv(np.asarray(mat, np.float64))
  ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
  big = np.iinfo(np.int32)
  weight = m[2, 0] * xs + m[2, 1] * ys + m[2, 2]
  weight = np.where(weight != 0, 32.0 / np.where(weight != 0, weight, 1.0), 0.0)
  fx = np.clip((m[0, 0] * xs + m[0, 1] * ys + m[0, 2]) * weight, big.min, big.max)
  fy = np.clip((m[1, 0] * xs + m[1, 1] * ys + m[1, 2]) * weight, big.min, big.max)
  ix, iy = np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64)
  x0, ax, y0, ay = ix >> 5, ix & 31, iy >> 5, iy & 31
  src = np.asarray(x)
  hi, wi = src.shape[:2]

  def tap(yy, xx):
    inside = (xx >= 0) & (xx < wi) & (yy >= 0) & (yy < hi)
    pix = src[np.clip(yy, 0, hi - 1), np.clip(xx, 0, wi - 1)].astype(np.int64)
    return np.where(inside[..., None], pix, 0)

  acc = (tap(y0, x0) * ((32 - ay) * (32 - ax) * 32)[..., None]
         + tap(y0, x0 + 1) * ((32 - ay) * ax * 32)[..., None]
         + tap(y0 + 1, x0) * (ay * (32 - ax) * 32)[..., None]
         + tap(y0 + 1, x0 + 1) * (ay * ax * 32)[..., None])
  return np.clip((acc + (1 << 14)) >> 15, 0, 255).astype(np.uint8)


def _warp_perspective(x, mat, dsize):
  if TILT_OPENCV == "3.4":
    return warp_perspective_cv34(x, mat, dsize)
  return warp_perspective(x, mat, dsize)


# =============================================================================================
# make_cifar_p.py: ``img`` is the uint8 [32, 32, 3] test image (``test_data.data``)

CIFAR_GAUSSIAN = {1: 0.02, 2: 0.04, 3: 0.06}
CIFAR_SHOT = {1: 700, 2: 400, 3: 200}
CIFAR_SPECKLE = {1: 0.05, 2: 0.07, 3: 0.1}


def _to_numpy(image):
  return np.uint8(image.numpy().transpose(1, 2, 0) * 255)


def _cifar_to_tensor(img):
  """``trn.ToTensor()`` of an HWC uint8 array (torchvision 0.2.x: transpose, then
  ``float().div(255)``)."""
  import torch
  return torch.from_numpy(np.ascontiguousarray(img.transpose((2, 0, 1)))).float().div(255)


def cifar_gaussian_noise(img, difficulty=1, normals=None):
  x = _cifar_to_tensor(img)
  return [img] + gaussian_frames(x, CIFAR_GAUSSIAN[difficulty], normals, _to_numpy)


def cifar_shot_noise(img, difficulty=1, counts=None):
  return [img] + shot_frames(img, CIFAR_SHOT[difficulty], counts)


def cifar_motion_blur(img, difficulty=1):
  del difficulty
  return [np.uint8(motion_blur_rgb(png_bytes(PILImage.fromarray(img)), 6, 1.8, (i - 20) * 9, 32))
          for i in range(0, 21)]


def cifar_zoom_blur(img, difficulty=1):
  del difficulty
  seq = [img]
  avg = _cifar_to_tensor(img)
  for i in range(1, 31):
    z = center_crop(affine(PILImage.fromarray(img), angle=0, translate=(0, 0), scale=1 + 0.004 * i,
                           shear=0, resample=PILImage.BILINEAR), 32)
    avg += to_tensor(z)
    seq.append(np.array(to_pil_image(avg / (i + 1))))
  return seq


def cifar_snow(img, difficulty=1, normals=None):
  del difficulty
  x = np.array(img) / 255.
  return snow_frames(x, layer(normals, 32, 0.05, 0.3), 32, 2, 10, 2)


def cifar_brightness(img, difficulty=1):
  del difficulty
  x = PILImage.fromarray(img)
  return [brightness(x, c=(i - 15) * 1.5 / 100.) for i in range(0, 31)]


def cifar_translate(img, difficulty=1):
  del difficulty
  x = PILImage.fromarray(img)
  return [np.array(affine(x, angle=0, translate=(i - 7, 0), scale=1, shear=0))
          for i in range(0, 16)]


def cifar_rotate(img, difficulty=1):
  del difficulty
  x = PILImage.fromarray(img)
  return [np.array(affine(x, angle=i - 15, translate=(0, 0), scale=1., shear=0,
                          resample=PILImage.BILINEAR)) for i in range(0, 31)]


def cifar_tilt(img, difficulty=1):
  del difficulty
  x = np.array(img)
  h, w = x.shape[0:2]
  return [_warp_perspective(x, tilt_matrix(h, w, 0.75 * (i - 15)), (w, h))
          for i in range(0, 31)]


def cifar_scale(img, difficulty=1):
  del difficulty
  x = PILImage.fromarray(img)
  return [np.array(center_crop(affine(x, angle=0, translate=(0, 0), scale=(i * 2 + 70) / 100.,
                                      shear=0, resample=PILImage.BILINEAR), 32))
          for i in range(0, 31)]


def cifar_speckle_noise(img, difficulty=1, normals=None):
  return [img] + speckle_frames(np.array(img) / 255., CIFAR_SPECKLE[difficulty], normals)


def cifar_gaussian_blur(img, difficulty=1):
  del difficulty
  return blur_frames(img, 0.3, 0.015, 7.0)


def cifar_spatter(img, difficulty=1, normals=None):
  del difficulty
  return spatter_frames(img, layer(normals, 32, 0.6, 0.265), 1.75, 0.7, [0.2, 0.8])


def cifar_shear(img, difficulty=1):
  del difficulty
  return [np.array(center_crop(affine(PILImage.fromarray(img), angle=0, translate=(0, 0),
                                      scale=1., shear=i - 15, resample=PILImage.BILINEAR), 32))
          for i in range(0, 31)]


# =============================================================================================
# make_tinyimagenet_p.py / make_imagenet_64_p.py: ``orig_img`` the PIL RGB photo, ``img`` its
# Resize(64) (Tiny) or Resize((64, 64)) (64x64)

TINY = Script(
    file="make_tinyimagenet_p.py", size=64, crop=functools.partial(center_crop, size=64),
    zoom_input=lambda img: img,
    gaussian_sigma={1: 0.025, 2: 0.05, 3: 0.075}, shot_lambda={1: 500, 2: 250, 3: 125},
    speckle_sigma={1: 0.05, 2: 0.1, 3: 0.15}, motion=(14, 3, 5), snow=(0.28, 2, 10, 2.5),
    translate=(15, 31), blur=(0.35, 0.014, 7.0),
    spatter=(0.6, 0.25, 1.75, 0.7, [0.2, 0.8]), warp=_warp_perspective)
IMAGENET64 = dataclasses.replace(TINY, file="make_imagenet_64_p.py")


def tiny_motion_blur(s: Script, orig_img, difficulty=1):
  """The Tiny / 64x64 block: blurs the source photo and ``trn.Resize(64)``s each frame."""
  del difficulty
  radius, sigma, a = s.motion
  seq = []
  for i in range(0, 31):
    z = orig_img
    z = motion_blur_rgb(png_bytes(z), radius, sigma, (i - 30) * a, s.size)
    seq.append(tv_resize(PILImage.fromarray(z), 64))
  return seq


# =============================================================================================
# make_imagenet_p_inception.py: ``img`` the PIL RGB photo

INCEPTION = Script(
    file="make_imagenet_p_inception.py", size=299, crop=resized_center_crop,
    zoom_input=resized_center_crop,
    gaussian_sigma={1: 0.035, 2: 0.055, 3: 0.085}, shot_lambda={1: 250, 2: 100, 3: 50},
    speckle_sigma={1: 0.06, 2: 0.11, 3: 0.16},
    motion=(13, 3, 4),  # bumping from 10 to 13 since images are larger
    snow=(0.3, 3, 14, 4), translate=(20, 41),
    blur=(0.35, 0.035, 6.0),  # 0.25 -> 0.35, as the images are larger than 224
    spatter=(0.65, 0.3, 4, 0.69, [0.05, 0.1, 0.15, 0.7]),  # 0.27 -> 0.3, 3.7 -> 4
    warp=_warp_perspective)


# =============================================================================================


def _script_sequences(s: Script, **own):
  return {n: functools.partial(own.get(n, FUNCTIONS[n]), s) for n in NAMES}


SEQUENCES = {
    "cifar": {n: globals()[f"cifar_{n}"] for n in NAMES},
    "tiny_imagenet": _script_sequences(TINY, motion_blur=tiny_motion_blur),
    "imagenet64": _script_sequences(IMAGENET64, motion_blur=tiny_motion_blur),
    "imagenet299": _script_sequences(INCEPTION),
}


def script_input(benchmark: str, source, name: str | None = None) -> PILImage.Image | np.ndarray:
  """What the script loads for a source photo (for sequence ``name``, what that block starts
  from): cifar the uint8 array itself; tiny_imagenet ``trn.Resize(64)(orig_img)``; imagenet64
  ``trn.Resize((64, 64))(orig_img)`` (both: motion_blur the RGB photo ``orig_img``);
  imagenet299 the RGB photo (``resized_center_crop`` is inside each block)."""
  if benchmark == "cifar":
    arr = np.asarray(source, np.uint8)
    if arr.shape != (32, 32, 3):
      raise ValueError(f"make_cifar_p.py works on 32x32x3 test images, got {arr.shape}")
    return arr
  orig_img = PILImage.fromarray(np.asarray(source, np.uint8)).convert("RGB")
  if benchmark == "imagenet299" or name == "motion_blur":
    return orig_img
  if benchmark == "tiny_imagenet":
    return tv_resize(orig_img, 64)
  return tv_resize(orig_img, (64, 64))


def run_original(benchmark: str, name: str, source, difficulty: int = 1, draws=None) -> np.ndarray:
  """The script's frames for one source photo: uint8 [T, H, W, 3].

  Args:
    benchmark: 'cifar', 'tiny_imagenet', 'imagenet64' or 'imagenet299'.
    name: one of the 14 sequence names.
    source: uint8 [H, W, 3]: the 32x32 image for cifar, the photo for the others.
    difficulty: 1..3 (the ``_2`` / ``_3`` blocks of the noise sequences).
    draws: our draws in the original's units (module docstring); None runs the original's RNG.
  """
  if benchmark not in SEQUENCES or name not in NAMES:
    raise ValueError(f"unknown set or sequence {benchmark!r}, {name!r}")
  return run_sequence(SEQUENCES[benchmark][name], script_input(benchmark, source, name), name,
                      difficulty, draws)
