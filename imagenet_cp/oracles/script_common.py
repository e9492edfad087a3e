"""What the hendrycks/robustness generator scripts each define (or write inline) the same way,
written once for the oracles of every size (``corruptions_sizes``, ``perturbations``,
``perturbations_sets``).

The ``create_c`` and ``create_p`` scripts are copies of one another: ``MotionImage``,
``clipped_zoom``, the ImageMagick round trip with its grey/BGR shape test, the snow layer and
whitened scene, the spatter water drops, and the 299 scripts' own ``resize`` / ``center_crop``
/ ``resized_center_crop`` (the same in ``make_imagenet_c_inception.py`` and
``make_imagenet_p_inception.py``) are the same lines in each.  Each function says where the
scripts' copies differ, as arguments.  Shim, as in the oracles: binary ``np.fromstring`` ->
``np.frombuffer``.

Test- and benchmark-only: needs Wand + ImageMagick, OpenCV, SciPy.
"""
from __future__ import annotations

import ctypes
import functools
import io
import numbers

import numpy as np
from PIL import Image as PILImage


@functools.lru_cache(maxsize=None)
def motion_image_class():
  """The scripts' ``MotionImage``: Wand's image with ImageMagick's ``MagickMotionBlurImage``."""
  from wand.api import library as wandlibrary
  from wand.image import Image as WandImage
  wandlibrary.MagickMotionBlurImage.argtypes = (ctypes.c_void_p,  # wand
                                                ctypes.c_double,  # radius
                                                ctypes.c_double,  # sigma
                                                ctypes.c_double)  # angle

  class MotionImage(WandImage):
    def motion_blur(self, radius=0.0, sigma=0.0, angle=0.0):
      wandlibrary.MagickMotionBlurImage(self.wand, radius, sigma, angle)

  return MotionImage


def png_bytes(img: PILImage.Image) -> bytes:
  """``output = BytesIO(); img.save(output, format='PNG'); output.getvalue()``."""
  output = io.BytesIO()
  img.save(output, format="PNG")
  return output.getvalue()


def wand_motion_blur(png, radius, sigma, angle) -> np.ndarray:
  """``MotionImage(blob=png).motion_blur(radius, sigma, angle)``, decoded with
  ``cv2.imdecode(np.fromstring(make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)``."""
  import cv2
  z = motion_image_class()(blob=png)
  z.motion_blur(radius=radius, sigma=sigma, angle=angle)
  return cv2.imdecode(np.frombuffer(z.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)


def motion_blur_rgb(png, radius, sigma, angle, size: int) -> np.ndarray:
  """``wand_motion_blur``, then the scripts' shape test: a result of shape ``(size, size)`` is
  grey (replicated to 3 channels), anything else is taken as BGR."""
  z = wand_motion_blur(png, radius, sigma, angle)
  if z.shape != (size, size):
    return np.clip(z[..., [2, 1, 0]], 0, 255)  # BGR to RGB
  else:  # greyscale to RGB
    return np.clip(np.array([z, z, z]).transpose((1, 2, 0)), 0, 255)


def clipped_zoom(img, zoom_factor):
  """The scripts' ``clipped_zoom`` (SciPy zoom, order 1, of the centre square, trimmed)."""
  from scipy.ndimage import zoom as scizoom
  h = img.shape[0]
  ch = int(np.ceil(h / zoom_factor))
  top = (h - ch) // 2
  img = scizoom(img[top:top + ch, top:top + ch], (zoom_factor, zoom_factor, 1), order=1)
  trim_top = (img.shape[0] - h) // 2
  return img[trim_top:trim_top + h, trim_top:trim_top + h]


def snow_layer_png(snow_layer, zoom, threshold) -> bytes:
  """The drawn snow layer [S, S] -> ``clipped_zoom``, values below ``threshold`` to 0, an 'L'
  image of ``clip(layer, 0, 1) * 255``, PNG bytes (what ``MotionImage`` then blurs)."""
  snow_layer = clipped_zoom(snow_layer[..., np.newaxis], zoom)
  snow_layer[snow_layer < threshold] = 0
  snow_layer = PILImage.fromarray((np.clip(snow_layer.squeeze(), 0, 1) * 255).astype(np.uint8),
                                  mode="L")
  return png_bytes(snow_layer)


def snowy_scene(x, mix, size: int):
  """``mix * x + (1 - mix) * max(x, grey(x) * 1.5 + 0.5)`` of the image in [0, 1]; grey is
  ``cv2.cvtColor(np.float32(x), COLOR_RGB2GRAY)`` (the -C scripts' x is float32 already)."""
  import cv2
  return mix * x + (1 - mix) * np.maximum(
      x, cv2.cvtColor(np.float32(x), cv2.COLOR_RGB2GRAY).reshape(size, size, 1) * 1.5 + 0.5)


def water(liquid_layer, x_bgra, intensity):
  """The spatter scripts' water drops (-C's ``c[5] == 0`` branch, every -P frame): edges of the
  liquid layer's bytes, distance to them (truncated at 20), blurred, equalised, embossed and
  blurred again; times the layer, normalised to ``intensity``; pale turquoise added to the
  BGRA image.  Returns the BGR image, float32 in [0, 1] (NaN where the layer has no edges)."""
  import cv2
  liquid_layer = (liquid_layer * 255).astype(np.uint8)
  dist = 255 - cv2.Canny(liquid_layer, 50, 150)
  dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
  _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
  dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
  dist = cv2.equalizeHist(dist)
  ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
  dist = cv2.filter2D(dist, cv2.CV_8U, ker)
  dist = cv2.blur(dist, (3, 3)).astype(np.float32)
  m = cv2.cvtColor(liquid_layer * dist, cv2.COLOR_GRAY2BGRA)
  with np.errstate(invalid="ignore", divide="ignore"):  # no edges: 0 / 0, NaN as the original
    m /= np.max(m, axis=(0, 1))
  m *= intensity
  # water is pale turquoise
  color = np.concatenate((175 / 255. * np.ones_like(m[..., :1]),
                          238 / 255. * np.ones_like(m[..., :1]),
                          238 / 255. * np.ones_like(m[..., :1])), axis=2)
  color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
  return cv2.cvtColor(np.clip(x_bgra + m * color, 0, 1), cv2.COLOR_BGRA2BGR)


# ---------------------------------------------------------------------------------------------
# The 299 scripts' loader (make_imagenet_c_inception.py, make_imagenet_p_inception.py)


def tv_resize(img, size, interpolation=PILImage.BILINEAR):
  """torchvision 0.2.x ``Resize(size)`` on PIL (the 299 scripts' own ``resize`` is a copy): an
  int resizes the shorter side (returned as is when already that size), a pair (h, w) resizes
  to it."""
  if isinstance(size, int):
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
      return img
    if w < h:
      return img.resize((size, int(size * h / w)), interpolation)
    return img.resize((int(size * w / h), size), interpolation)
  return img.resize(size[::-1], interpolation)


def inception_center_crop(img, output_size):
  """The 299 scripts' own ``center_crop``: a float is a fraction of each side (``int(h * f)``)."""
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
  img = tv_resize(img, size, interpolation)
  return img
