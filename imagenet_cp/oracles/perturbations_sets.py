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
``np.fromstring`` -> ``np.frombuffer``, ``multichannel=True`` -> ``channel_axis=-1``).  Each
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

import io
import numbers

import numpy as np
from PIL import Image as PILImage

from imagenet_cp.oracles.perturbations import (
    _brightness as brightness, _wand_blur_png, affine, center_crop, clipped_zoom, to_pil_image,
    to_tensor)


def _motion_blur_png(png_bytes, radius, sigma, angle, shape_check):
  """``MotionImage(blob).motion_blur(...)``, ``cv2.imdecode(IMREAD_UNCHANGED)``, then the
  scripts' shape test: a 2-D result equal to ``shape_check`` is grey (replicated), anything
  else is taken as BGR."""
  z = _wand_blur_png(png_bytes, radius, sigma, angle)
  if z.shape != shape_check:
    z = np.clip(z[..., [2, 1, 0]], 0, 255)  # BGR to RGB
  else:  # grayscale to RGB
    z = np.clip(np.array([z, z, z]).transpose((1, 2, 0)), 0, 255)
  return z


def _png(img: PILImage.Image) -> bytes:
  output = io.BytesIO()
  img.save(output, format="PNG")
  return output.getvalue()


def _torch_normals(normals_hwc):
  import torch
  return torch.from_numpy(np.ascontiguousarray(np.transpose(normals_hwc, (2, 0, 1)),
                                               dtype=np.float32))


def _liquid_frames(x_bgra, liquid_layer, drift):
  """The spatter loop shared by every script: 31 frames, ``np.convolve(col, drift, 'same')``."""
  import cv2
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
    with np.errstate(invalid="ignore", divide="ignore"):
      m /= np.max(m, axis=(0, 1))
    m *= 0.6
    # water is pale turquoise
    color = np.concatenate((175 / 255. * np.ones_like(m[..., :1]),
                            238 / 255. * np.ones_like(m[..., :1]),
                            238 / 255. * np.ones_like(m[..., :1])), axis=2)
    color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
    with np.errstate(invalid="ignore"):
      z = np.uint8(cv2.cvtColor(np.clip(x_bgra + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255)
    liquid_layer = np.apply_along_axis(
        lambda mat: np.convolve(mat, np.array(drift), mode="same"), axis=0, arr=liquid_layer)
    frames.append(z)
  return frames


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
  import cv2
  return cv2.warpPerspective(x, mat, dsize)


def _tilt_matrix(h, w, degrees):
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
  import torch
  seq = []
  x = _cifar_to_tensor(img)
  seq.append(img)
  for i in range(1, 31):
    noise = torch.randn_like(x) if normals is None else _torch_normals(normals[i - 1])
    z = _to_numpy(torch.clamp(x + CIFAR_GAUSSIAN[difficulty] * noise, 0, 1))
    seq.append(z)
  return seq


def cifar_shot_noise(img, difficulty=1, counts=None):
  lam = CIFAR_SHOT[difficulty]
  x = img
  seq = [img]
  for i in range(1, 31):
    z = np.array(x, copy=True) / 255.
    draw = np.random.poisson(z * lam) if counts is None else counts[i - 1]
    z = np.uint8(255 * np.clip(draw / float(lam), 0, 1))
    seq.append(z)
  return seq


def cifar_motion_blur(img, difficulty=1):
  del difficulty
  seq = []
  for i in range(0, 21):
    z = PILImage.fromarray(img)
    z = _motion_blur_png(_png(z), 6, 1.8, (i - 20) * 9, (32, 32))
    seq.append(np.uint8(z))
  return seq


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


def _snow(x, layer, size, zoom, radius, sigma):
  """The snow block of every script after ``x = crop / 255.`` and the layer's draw."""
  import cv2
  snow_layer = clipped_zoom(layer[..., np.newaxis], zoom)
  snow_layer[snow_layer < 0.5] = 0
  snow_layer = PILImage.fromarray((np.clip(snow_layer.squeeze(), 0, 1) * 255).astype(np.uint8),
                                  mode="L")
  output = _png(snow_layer)
  seq = []
  for i in range(0, 31):
    snow_layer = _wand_blur_png(output, radius, sigma, i * 4 - 150) / 255.
    snow_layer = snow_layer[..., np.newaxis]
    z = 0.85 * x + (1 - 0.85) * np.maximum(
        x, cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY).reshape(size, size, 1) * 1.5 + 0.5)
    z = np.uint8(np.clip(z + snow_layer + np.rot90(snow_layer, k=2), 0, 1) * 255)
    seq.append(z)
  return seq


def _layer(normals, size, loc, scale):
  if normals is None:
    return np.random.normal(size=(size, size), loc=loc, scale=scale)
  return loc + scale * np.asarray(normals, np.float64)


def cifar_snow(img, difficulty=1, normals=None):
  del difficulty
  x = np.array(img) / 255.
  return _snow(x, _layer(normals, 32, 0.05, 0.3), 32, 2, 10, 2)


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
  return [_warp_perspective(x, _tilt_matrix(h, w, 0.75 * (i - 15)), (w, h))
          for i in range(0, 31)]


def cifar_scale(img, difficulty=1):
  del difficulty
  x = PILImage.fromarray(img)
  return [np.array(center_crop(affine(x, angle=0, translate=(0, 0), scale=(i * 2 + 70) / 100.,
                                      shear=0, resample=PILImage.BILINEAR), 32))
          for i in range(0, 31)]


def cifar_speckle_noise(img, difficulty=1, normals=None):
  sigma = CIFAR_SPECKLE[difficulty]
  seq = [img]
  x = np.array(img) / 255.
  for i in range(1, 31):
    noise = (np.random.normal(size=x.shape, scale=sigma) if normals is None else
             sigma * np.asarray(normals[i - 1], np.float64))
    seq.append(np.uint8(255 * np.clip(x + x * noise, 0, 1)))
  return seq


def cifar_gaussian_blur(img, difficulty=1):
  from skimage.filters import gaussian
  del difficulty
  return [np.uint8(255 * gaussian(np.array(img, copy=True) / 255., sigma=0.3 + 0.015 * i,
                                  channel_axis=-1, truncate=7.0)) for i in range(0, 31)]


def cifar_spatter(img, difficulty=1, normals=None):
  import cv2
  from skimage.filters import gaussian
  del difficulty
  x = cv2.cvtColor(np.array(img, dtype=np.float32) / 255., cv2.COLOR_BGR2BGRA)
  liquid_layer = _layer(normals, 32, 0.6, 0.265)
  liquid_layer = gaussian(liquid_layer, sigma=1.75)
  liquid_layer[liquid_layer < 0.7] = 0
  return _liquid_frames(x, liquid_layer, [0.2, 0.8])


def cifar_shear(img, difficulty=1):
  del difficulty
  return [np.array(center_crop(affine(PILImage.fromarray(img), angle=0, translate=(0, 0),
                                      scale=1., shear=i - 15, resample=PILImage.BILINEAR), 32))
          for i in range(0, 31)]


# =============================================================================================
# make_tinyimagenet_p.py / make_imagenet_64_p.py: ``orig_img`` the PIL RGB photo, ``img`` its
# Resize(64) (Tiny) or Resize((64, 64)) (64x64)

TINY_GAUSSIAN = {1: 0.025, 2: 0.05, 3: 0.075}
TINY_SHOT = {1: 500, 2: 250, 3: 125}
TINY_SPECKLE = {1: 0.05, 2: 0.1, 3: 0.15}


def tv_resize(img, size):
  """torchvision 0.2.x ``Resize(size)`` on PIL: an int resizes the shorter side (returned as is
  when already that size), a pair (h, w) resizes to it; bilinear."""
  if isinstance(size, int):
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
      return img
    if w < h:
      return img.resize((size, int(size * h / w)), PILImage.BILINEAR)
    return img.resize((int(size * w / h), size), PILImage.BILINEAR)
  return img.resize(size[::-1], PILImage.BILINEAR)


def tiny_gaussian_noise(img, orig_img, difficulty=1, normals=None):
  import torch
  x = to_tensor(center_crop(img, 64))
  seq = [to_pil_image(x)]
  for i in range(1, 31):
    noise = torch.randn_like(x) if normals is None else _torch_normals(normals[i - 1])
    seq.append(to_pil_image(torch.clamp(x + TINY_GAUSSIAN[difficulty] * noise, 0, 1)))
  return seq


def tiny_shot_noise(img, orig_img, difficulty=1, counts=None):
  lam = TINY_SHOT[difficulty]
  x = center_crop(img, 64)
  seq = [x]
  for i in range(1, 31):
    z = np.array(x, copy=True) / 255.
    draw = np.random.poisson(z * lam) if counts is None else counts[i - 1]
    seq.append(PILImage.fromarray(np.uint8(255 * np.clip(draw / float(lam), 0, 1))))
  return seq


def tiny_motion_blur(img, orig_img, difficulty=1):
  del img, difficulty
  seq = []
  for i in range(0, 31):
    z = orig_img
    z = _motion_blur_png(_png(z), 14, 3, (i - 30) * 5, (64, 64))
    seq.append(tv_resize(PILImage.fromarray(z), 64))
  return seq


def tiny_zoom_blur(img, orig_img, difficulty=1):
  del orig_img, difficulty
  z = center_crop(img, 64)
  avg = to_tensor(z)
  seq = [z]
  for i in range(1, 31):
    z = center_crop(affine(img, angle=0, translate=(0, 0), scale=1 + 0.004 * i, shear=0,
                           resample=PILImage.BILINEAR), 64)
    avg += to_tensor(z)
    seq.append(to_pil_image(avg / (i + 1)))
  return seq


def tiny_snow(img, orig_img, difficulty=1, normals=None):
  del orig_img, difficulty
  x = center_crop(img, 64)
  x = np.array(x) / 255.
  return _snow(x, _layer(normals, 64, 0.05, 0.28), 64, 2, 10, 2.5)


def tiny_brightness(img, orig_img, difficulty=1):
  del orig_img, difficulty
  x = center_crop(img, 64)
  return [brightness(x, c=(i - 15) * 2 / 100.) for i in range(0, 31)]


def tiny_translate(img, orig_img, difficulty=1):
  del orig_img, difficulty
  return [center_crop(affine(img, angle=0, translate=(i - 15, 0), scale=1, shear=0), 64)
          for i in range(0, 31)]


def tiny_rotate(img, orig_img, difficulty=1):
  del orig_img, difficulty
  return [center_crop(affine(img, angle=i - 15, translate=(0, 0), scale=1., shear=0,
                             resample=PILImage.BILINEAR), 64) for i in range(0, 31)]


def tiny_tilt(img, orig_img, difficulty=1):
  del orig_img, difficulty
  x = np.array(img)
  h, w = x.shape[0:2]
  return [center_crop(PILImage.fromarray(_warp_perspective(x, _tilt_matrix(h, w, i - 15),
                                                             (w, h))), 64)
          for i in range(0, 31)]


def tiny_scale(img, orig_img, difficulty=1):
  del orig_img, difficulty
  return [center_crop(affine(img, angle=0, translate=(0, 0), scale=(i * 2.5 + 40) / 100.,
                             shear=0, resample=PILImage.BILINEAR), 64) for i in range(0, 31)]


def tiny_speckle_noise(img, orig_img, difficulty=1, normals=None):
  del orig_img
  sigma = TINY_SPECKLE[difficulty]
  x = center_crop(img, 64)
  seq = [x]
  x = np.array(x) / 255.
  for i in range(1, 31):
    noise = (np.random.normal(size=x.shape, scale=sigma) if normals is None else
             sigma * np.asarray(normals[i - 1], np.float64))
    seq.append(PILImage.fromarray(np.uint8(255 * np.clip(x + x * noise, 0, 1))))
  return seq


def tiny_gaussian_blur(img, orig_img, difficulty=1):
  from skimage.filters import gaussian
  del orig_img, difficulty
  x = center_crop(img, 64)
  return [PILImage.fromarray(np.uint8(255 * gaussian(
      np.array(x, copy=True) / 255., sigma=0.35 + 0.014 * i, channel_axis=-1, truncate=7.0)))
      for i in range(0, 31)]


def tiny_spatter(img, orig_img, difficulty=1, normals=None):
  import cv2
  from skimage.filters import gaussian
  del orig_img, difficulty
  x = center_crop(img, 64)
  x = cv2.cvtColor(np.array(x, dtype=np.float32) / 255., cv2.COLOR_BGR2BGRA)
  liquid_layer = _layer(normals, 64, 0.6, 0.25)
  liquid_layer = gaussian(liquid_layer, sigma=1.75)
  liquid_layer[liquid_layer < 0.7] = 0
  return _liquid_frames(x, liquid_layer, [0.2, 0.8])


def tiny_shear(img, orig_img, difficulty=1):
  del orig_img, difficulty
  return [center_crop(affine(img, angle=0, translate=(0, 0), scale=1., shear=i - 15,
                             resample=PILImage.BILINEAR), 64) for i in range(0, 31)]


# =============================================================================================
# make_imagenet_p_inception.py: ``img`` the PIL RGB photo

INCEPTION_GAUSSIAN = {1: 0.035, 2: 0.055, 3: 0.085}
INCEPTION_SHOT = {1: 250, 2: 100, 3: 50}
INCEPTION_SPECKLE = {1: 0.06, 2: 0.11, 3: 0.16}


def inception_resize(img, size, interpolation=PILImage.BILINEAR):
  """The script's own ``resize`` (torchvision's Resize as a function)."""
  if isinstance(size, int):
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
      return img
    if w < h:
      return img.resize((size, int(size * h / w)), interpolation)
    return img.resize((int(size * w / h), size), interpolation)
  return img.resize(size[::-1], interpolation)


def inception_center_crop(img, output_size):
  """The script's own ``center_crop``: a float is a fraction of each side (``int(h * f)``)."""
  w, h = img.size
  if isinstance(output_size, numbers.Number):
    if isinstance(output_size, float):
      if not 0.0 < output_size <= 1.0:
        raise ValueError("Invalid float output size. Range is (0.0, 1.0]")
      output_size = (output_size, output_size)
      th, tw = int(h * output_size[0]), int(w * output_size[1])
    else:
      output_size = (output_size, output_size)
      th, tw = output_size
  else:
    if isinstance(output_size[0], float):
      th, tw = int(h * output_size[0]), int(w * output_size[1])
    else:
      th, tw = output_size
  i = int(round((h - th) / 2.))
  j = int(round((w - tw) / 2.))
  return img.crop((j, i, j + tw, i + th))


def resized_center_crop(img, scale=0.875, size=(299, 299), interpolation=PILImage.BILINEAR):
  img = inception_center_crop(img, scale)
  img = inception_resize(img, size, interpolation)
  return img


def inception_gaussian_noise(img, difficulty=1, normals=None):
  import torch
  x = to_tensor(resized_center_crop(img))
  seq = [to_pil_image(x)]
  for i in range(1, 31):
    noise = torch.randn_like(x) if normals is None else _torch_normals(normals[i - 1])
    seq.append(to_pil_image(torch.clamp(x + INCEPTION_GAUSSIAN[difficulty] * noise, 0, 1)))
  return seq


def inception_shot_noise(img, difficulty=1, counts=None):
  lam = INCEPTION_SHOT[difficulty]
  x = resized_center_crop(img)
  seq = [x]
  for i in range(1, 31):
    z = np.array(x, copy=True) / 255.
    draw = np.random.poisson(z * lam) if counts is None else counts[i - 1]
    seq.append(PILImage.fromarray(np.uint8(255 * np.clip(draw / float(lam), 0, 1))))
  return seq


def inception_motion_blur(img, difficulty=1):
  del difficulty
  img_resized = resized_center_crop(img)
  seq = []
  for i in range(0, 31):
    z = img_resized.copy()
    # bumping from 10 to 13 since images are larger
    z = _motion_blur_png(_png(z), 13, 3, (i - 30) * 4, (299, 299))
    seq.append(PILImage.fromarray(z))
  return seq


def inception_zoom_blur(img, difficulty=1):
  del difficulty
  img_cropped = resized_center_crop(img)
  z = img_cropped
  avg = to_tensor(z)
  seq = [z]
  for i in range(1, 31):
    z = center_crop(affine(img_cropped, angle=0, translate=(0, 0), scale=1 + 0.004 * i, shear=0,
                           resample=PILImage.BILINEAR), 299)
    avg += to_tensor(z)
    seq.append(to_pil_image(avg / (i + 1)))
  return seq


def inception_snow(img, difficulty=1, normals=None):
  del difficulty
  x = resized_center_crop(img)
  x = np.array(x) / 255.
  return _snow(x, _layer(normals, 299, 0.05, 0.3), 299, 3, 14, 4)


def inception_brightness(img, difficulty=1):
  del difficulty
  x = resized_center_crop(img)
  return [brightness(x, c=(i - 15) * 2 / 100.) for i in range(0, 31)]


def inception_translate(img, difficulty=1):
  del difficulty
  return [resized_center_crop(affine(img, angle=0, translate=(i - 20, 0), scale=1, shear=0))
          for i in range(0, 41)]


def inception_rotate(img, difficulty=1):
  del difficulty
  return [resized_center_crop(affine(img, angle=i - 15, translate=(0, 0), scale=1., shear=0,
                                     resample=PILImage.BILINEAR)) for i in range(0, 31)]


def inception_tilt(img, difficulty=1):
  del difficulty
  x = np.array(img)
  h, w = x.shape[0:2]
  return [resized_center_crop(PILImage.fromarray(_warp_perspective(
      x, _tilt_matrix(h, w, i - 15), (w, h)))) for i in range(0, 31)]


def inception_scale(img, difficulty=1):
  del difficulty
  x = resized_center_crop(img)
  return [center_crop(affine(x, angle=0, translate=(0, 0), scale=(i * 2.5 + 40) / 100., shear=0,
                             resample=PILImage.BILINEAR), 299) for i in range(0, 31)]


def inception_speckle_noise(img, difficulty=1, normals=None):
  sigma = INCEPTION_SPECKLE[difficulty]
  x = resized_center_crop(img)
  seq = [x]
  x = np.array(x) / 255.
  for i in range(1, 31):
    noise = (np.random.normal(size=x.shape, scale=sigma) if normals is None else
             sigma * np.asarray(normals[i - 1], np.float64))
    seq.append(PILImage.fromarray(np.uint8(255 * np.clip(x + x * noise, 0, 1))))
  return seq


def inception_gaussian_blur(img, difficulty=1):
  from skimage.filters import gaussian
  del difficulty
  x = resized_center_crop(img)
  # 0.25 -> 0.35, as the images are larger than 224
  return [PILImage.fromarray(np.uint8(255 * gaussian(
      np.array(x, copy=True) / 255., sigma=0.35 + 0.035 * i, channel_axis=-1, truncate=6.0)))
      for i in range(0, 31)]


def inception_spatter(img, difficulty=1, normals=None):
  import cv2
  from skimage.filters import gaussian
  del difficulty
  x = resized_center_crop(img)
  x = cv2.cvtColor(np.array(x, dtype=np.float32) / 255., cv2.COLOR_BGR2BGRA)
  liquid_layer = _layer(normals, 299, 0.65, 0.3)  # 0.27 -> 0.3
  liquid_layer = gaussian(liquid_layer, sigma=4)  # 3.7 -> 4
  liquid_layer[liquid_layer < 0.69] = 0
  return _liquid_frames(x, liquid_layer, [0.05, 0.1, 0.15, 0.7])


def inception_shear(img, difficulty=1):
  del difficulty
  return [resized_center_crop(affine(img, angle=0, translate=(0, 0), scale=1., shear=i - 15,
                                     resample=PILImage.BILINEAR)) for i in range(0, 31)]


# =============================================================================================

NAMES = ("gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow", "brightness",
         "translate", "rotate", "tilt", "scale", "speckle_noise", "gaussian_blur", "spatter",
         "shear")
SEQUENCES = {
    "cifar": {n: globals()[f"cifar_{n}"] for n in NAMES},
    "tiny_imagenet": {n: globals()[f"tiny_{n}"] for n in NAMES},
    "imagenet64": {n: globals()[f"tiny_{n}"] for n in NAMES},
    "imagenet299": {n: globals()[f"inception_{n}"] for n in NAMES},
}
# Which sequences take injected draws, and what they are.
DRAW_KIND = {"gaussian_noise": "normals", "speckle_noise": "normals", "shot_noise": "counts",
             "snow": "normals", "spatter": "normals"}


def script_input(benchmark: str, source) -> PILImage.Image | np.ndarray:
  """What the script loads for a source photo: cifar the uint8 array itself; tiny_imagenet
  ``trn.Resize(64)(orig_img)``; imagenet64 ``trn.Resize((64, 64))(orig_img)``; imagenet299 the
  RGB photo (``resized_center_crop`` is inside each block)."""
  if benchmark == "cifar":
    arr = np.asarray(source, np.uint8)
    if arr.shape != (32, 32, 3):
      raise ValueError(f"make_cifar_p.py works on 32x32x3 test images, got {arr.shape}")
    return arr
  orig_img = PILImage.fromarray(np.asarray(source, np.uint8)).convert("RGB")
  if benchmark == "tiny_imagenet":
    return tv_resize(orig_img, 64)
  if benchmark == "imagenet64":
    return tv_resize(orig_img, (64, 64))
  return orig_img


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
  fn = SEQUENCES[benchmark][name]
  img = script_input(benchmark, source)
  args = (img,) if benchmark in ("cifar", "imagenet299") else (
      img, PILImage.fromarray(np.asarray(source, np.uint8)).convert("RGB"))
  if name in DRAW_KIND and draws is not None:
    frames = fn(*args, difficulty, draws)
  else:
    frames = fn(*args, difficulty)
  return np.stack([np.asarray(f.convert("RGB") if isinstance(f, PILImage.Image) else f, np.uint8)
                   for f in frames])
