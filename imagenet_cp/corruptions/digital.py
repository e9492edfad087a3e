"""ImageNet-C digital corruptions: brightness, contrast, elastic_transform, pixelate,
jpeg_compression, and the extra saturate.

Each follows ``imagenet_c/corruptions.py`` (Hendrycks, PyPI imagenet-c 0.0.3) with the
per-severity constants selected inside the program from a traced severity (one compile for all
five severities).  Outputs are truncated to uint8 as the original's ``np.uint8`` save does.
Measured fidelity: docs/fidelity/digital.md.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.corruptions.base import Corruption
from imagenet_cp.ops import color, filters, fusion, jpeg, resize, rng, sampling

SIZE = 224


def _pick(table, severity):
  """Row ``severity - 1`` of a per-severity constant table (severity traced or int)."""
  return jnp.asarray(np.asarray(table, np.float32))[jnp.asarray(severity, jnp.int32) - 1]


def _to_uint8(x01):
  """``np.uint8(np.clip(x, 0, 1) * 255)``: float in [0, 1] scale -> uint8 (truncation)."""
  return (jnp.clip(x01, 0.0, 1.0) * 255.0).astype(jnp.uint8)


# ------------------------------------------------------------------------------------------------
# contrast

CONTRAST = (0.4, .3, .2, .1, .05)


def contrast(image, draws, severity):
  """``clip((x - mean) * c + mean, 0, 1) * 255``, x = image / 255, mean per channel."""
  del draws
  c = _pick(CONTRAST, severity)
  x = image.astype(jnp.float32) / 255.0
  means = jnp.mean(x, axis=(0, 1), keepdims=True)
  return _to_uint8((x - means) * c + means)


# ------------------------------------------------------------------------------------------------
# brightness and saturate (scikit-image HSV)

BRIGHTNESS = (.1, .2, .3, .4, .5)
SATURATE = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))


def _value_lut(offsets) -> np.ndarray:
  """uint8 [len(offsets), 256]: the original's float64 ``uint8(clip(x/255 + c, 0, 1) * 255)``.

  The output channel that equals HSV's V is exactly ``V * 255``; with c*255 an integer (e.g.
  brightness 0.2 -> +51) that product sits on an integer and float64 vs float32 rounding decides
  the truncation, so that channel is looked up from the original's float64 arithmetic.
  """
  x = np.arange(256, dtype=np.float64) / 255.0
  return np.stack([np.uint8(np.clip(x + c, 0, 1) * 255) for c in offsets])


_BRIGHTNESS_LUT = _value_lut(BRIGHTNESS)
_IDENTITY_LUT = _value_lut((0.0,))[0]


def _hsv_to_uint8(hsv, v_uint8):
  """hsv2rgb then uint8(clip * 255); channels equal to V take the exact ``v_uint8`` [H, W]."""
  rgb = color.hsv2rgb(hsv)
  out = _to_uint8(rgb)
  is_v = rgb == hsv[..., 2:3]
  return jnp.where(is_v, v_uint8[..., None], out)


def brightness(image, draws, severity):
  """skimage HSV: ``V = clip(V + c, 0, 1)``, back to RGB, ``clip * 255``."""
  del draws
  c = _pick(BRIGHTNESS, severity)
  hsv = color.rgb2hsv(image.astype(jnp.float32) / 255.0)
  hsv = hsv.at[..., 2].set(jnp.clip(hsv[..., 2] + c, 0.0, 1.0))
  lut = jnp.asarray(_BRIGHTNESS_LUT)[jnp.asarray(severity, jnp.int32) - 1]
  v_uint8 = lut[jnp.max(image, axis=-1).astype(jnp.int32)]
  return _hsv_to_uint8(hsv, v_uint8)


def saturate(image, draws, severity):
  """skimage HSV: ``S = clip(S * c0 + c1, 0, 1)``, back to RGB, ``clip * 255``."""
  del draws
  c = _pick(SATURATE, severity)
  hsv = color.rgb2hsv(image.astype(jnp.float32) / 255.0)
  hsv = hsv.at[..., 1].set(jnp.clip(hsv[..., 1] * c[0] + c[1], 0.0, 1.0))
  v_uint8 = jnp.asarray(_IDENTITY_LUT)[jnp.max(image, axis=-1).astype(jnp.int32)]
  return _hsv_to_uint8(hsv, v_uint8)


# ------------------------------------------------------------------------------------------------
# pixelate (PIL BOX down, BOX up)

PIXELATE = (0.6, 0.5, 0.4, 0.3, 0.25)
PIXELATE_SIZES = tuple(int(SIZE * c) for c in PIXELATE)  # 134, 112, 89, 67, 56


def _pixelate_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per severity: the down pass (224 -> n, the same for width and height) as int32 weights
  [5, 134, k] and first taps [5, 134] (rows past n all-zero), and the up pass (n -> 224) as an
  index table int32 [5, 224].

  Upscaling, Pillow's BOX filter has support 1/2: each output pixel has exactly one tap, of
  weight 2^22 (asserted), so ``(2^21 + 2^22 v) >> 22 = v`` and the up pass is a plain copy of
  ``small[index]``.
  """
  n_max = max(PIXELATE_SIZES)
  weights, first = resize.stacked_box_coefficients([(SIZE, n) for n in PIXELATE_SIZES])
  up = []
  for n in PIXELATE_SIZES:
    w, f = resize.box_coefficients(n, SIZE)
    assert (w[:, 0] == 1 << resize.PRECISION_BITS).all() and not w[:, 1:].any()
    up.append(f)
  return weights[:, :n_max], first[:, :n_max], np.stack(up)


_PIXELATE_TABLES = _pixelate_tables()


def pixelate(image, draws, severity):
  """PIL ``resize((n, n), BOX)`` then ``resize((224, 224), BOX)``, n = int(224 c), bit-exact.

  Pillow's two down passes (width first) into a 134 x 134 canvas (the small image is its
  top-left n x n corner), then the up passes as one copy (``_pixelate_tables``).  Each pass's
  result is computed apart: fused, every up-sampled pixel recomputed all its down-sampling taps.
  """
  del draws
  i = jnp.asarray(severity, jnp.int32) - 1
  weights, first, up = (jnp.asarray(t)[i] for t in _PIXELATE_TABLES)

  def down(x, axis):
    return fusion.computed_apart(
        lambda x: resize.resample_axis(x, weights, first, axis=axis), severity, x)

  small = down(down(image, 1), 0)
  return small[up[:, None], up[None, :]]


# ------------------------------------------------------------------------------------------------
# jpeg_compression

JPEG_QUALITY = (25, 18, 15, 10, 7)


def jpeg_compression(image, draws, severity):
  """PIL ``save(JPEG, quality=c)`` then open: the lossy part of baseline JPEG (ops/jpeg.py)."""
  del draws
  quality = jnp.asarray(JPEG_QUALITY, jnp.int32)[jnp.asarray(severity, jnp.int32) - 1]
  return jpeg.jpeg_roundtrip(image, quality)


# ------------------------------------------------------------------------------------------------
# elastic_transform

# (alpha, sigma, affine); "244 should have been 224, but ultimately nothing is incorrect".
ELASTIC = ((244 * 2, 244 * 0.7, 244 * 0.1),
           (244 * 2, 244 * 0.08, 244 * 0.2),
           (244 * 0.05, 244 * 0.01, 244 * 0.02),
           (244 * 0.07, 244 * 0.01, 244 * 0.02),
           (244 * 0.12, 244 * 0.01, 244 * 0.02))
# center_square = 112, square_size = 224 // 3 = 74.
ELASTIC_PTS1 = np.float32([[186, 186], [186, 38], [38, 38]])


def elastic_draws(key, severity):
  """All of elastic_transform's randomness as standard uniforms in [0, 1).

  Returns:
    dict(affine=float32 [3, 2], dx=float32 [224, 224], dy=float32 [224, 224]); the original
    draws, in this order, ``uniform(-c2, c2, (3, 2))``, ``uniform(-1, 1, (224, 224))`` twice,
    i.e. ``low + (high - low) * u``.
  """
  del severity
  k_affine, k_dx, k_dy = jax.random.split(key, 3)
  return dict(affine=rng.uniform(k_affine, (3, 2)), dx=rng.uniform(k_dx, (SIZE, SIZE)),
              dy=rng.uniform(k_dy, (SIZE, SIZE)))


def _displacement(u, severity):
  """``gaussian(uniform(-1, 1), sigma, mode='reflect', truncate=3) * alpha`` as float32.

  sigma 170.8 at s1 has a 512-pixel radius (more than the image; SciPy keeps reflecting):
  filters.gaussian_filter handles it with an exact [224, 224] matrix.
  """
  field = 2.0 * u - 1.0
  sigmas = [c[1] for c in ELASTIC]
  smooth = filters.gaussian_filter_switch(
      field, sigmas, jnp.asarray(severity, jnp.int32) - 1, mode="reflect", truncate=3.0)
  return smooth * _pick([c[0] for c in ELASTIC], severity)


def elastic_transform(image, draws, severity, *, quantize: bool = True):
  """Random affine (cv2.warpAffine, REFLECT_101) then a smooth random displacement.

  ``pts2 = pts1 + uniform(-c2, c2)``; ``warpAffine(x, getAffineTransform(pts1, pts2))`` on the
  float32 image; ``map_coordinates(x, (y + dy, x + dx), order=1, mode='reflect')``;
  ``clip * 255``.  cv2.warpAffine as OpenCV <= 4.10 (the original's 3.4) does it, at 1/32-pixel
  coordinates; ``quantize=False`` samples at exact coordinates as OpenCV >= 4.11 does.
  """
  c_affine = _pick([c[2] for c in ELASTIC], severity)
  x = image.astype(jnp.float32) / 255.0
  shift = (-c_affine + 2.0 * c_affine * draws["affine"]).astype(jnp.float32)
  matrix = sampling.get_affine_transform(ELASTIC_PTS1, ELASTIC_PTS1 + shift)
  # Computed apart: fused into map_coordinates' four taps, the warp's own four taps were
  # recomputed per tap (measured 7.7 vs 2.5 ms/image).
  x = fusion.computed_apart(
      lambda x, m: sampling.cv2_warp_affine(x, m, (SIZE, SIZE), "reflect101", quantize=quantize),
      severity, x, matrix)
  # The sampling coordinates computed apart too: fused, their arithmetic ran again in each of
  # map_coordinates' four taps (measured 4.2-5.5 vs 3.8-4.9 ms/image).
  y, x_coords = fusion.computed_apart(
      _sample_coordinates, severity, draws["dx"], draws["dy"], severity)
  out = sampling.map_coordinates_order1(x, y, x_coords, mode="reflect")
  return _to_uint8(out)


def _sample_coordinates(u_dx, u_dy, severity):
  """map_coordinates' (rows + dy, cols + dx), float32 [224, 224] each."""
  rows = jnp.arange(SIZE, dtype=jnp.float32)[:, None]
  cols = jnp.arange(SIZE, dtype=jnp.float32)[None, :]
  return rows + _displacement(u_dy, severity), cols + _displacement(u_dx, severity)


CORRUPTIONS: dict[str, Corruption] = {
    "brightness": Corruption("brightness", brightness),
    "contrast": Corruption("contrast", contrast),
    "elastic_transform": Corruption("elastic_transform", elastic_transform, elastic_draws, chunk=2),
    "pixelate": Corruption("pixelate", pixelate, chunk=2),
    "jpeg_compression": Corruption("jpeg_compression", jpeg_compression),
    "saturate": Corruption("saturate", saturate, chunk=2),
}
