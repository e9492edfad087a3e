"""ImageNet-C digital corruptions: brightness, contrast, elastic_transform, pixelate,
jpeg_compression, and the extra saturate.

Each follows ``imagenet_c/corruptions.py`` (Hendrycks, PyPI imagenet-c 0.0.3) with the
per-severity constants selected inside the program from a traced severity (one compile for all
five severities), from the image size's set (``corruptions.sizes``: 32, 64, 224, 299).  Outputs
are truncated to uint8 as the original's ``np.uint8`` save does.  Measured fidelity:
docs/fidelity/digital.md (other sizes: docs/fidelity/sizes.md).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.corruptions import sizes
from imagenet_cp.corruptions.base import CROP, Corruption, pick
from imagenet_cp.ops import color, filters, fusion, jpeg, resize, rng, sampling
from imagenet_cp.ops.convert import uint8_from_unit


# ------------------------------------------------------------------------------------------------
# contrast

CONTRAST = sizes.IMAGENET.contrast  # every size's: sizes.constants(size).contrast


def contrast(image, draws, severity):
  """``clip((x - mean) * c + mean, 0, 1) * 255``, x = image / 255, mean per channel."""
  del draws
  c = pick(sizes.of(image).contrast, severity)
  x = image.astype(jnp.float32) / 255.0
  means = jnp.mean(x, axis=(0, 1), keepdims=True)
  return uint8_from_unit((x - means) * c + means)


# ------------------------------------------------------------------------------------------------
# brightness and saturate (scikit-image HSV)

BRIGHTNESS = sizes.IMAGENET.brightness
SATURATE = sizes.IMAGENET.saturate


def _value_lut(offsets) -> np.ndarray:
  """uint8 [len(offsets), 256]: the original's float64 ``uint8(clip(x/255 + c, 0, 1) * 255)``.

  The output channel that equals HSV's V is exactly ``V * 255``; with c*255 an integer (e.g.
  brightness 0.2 -> +51) that product sits on an integer and float64 vs float32 rounding decides
  the truncation, so that channel is looked up from the original's float64 arithmetic.
  """
  x = np.arange(256, dtype=np.float64) / 255.0
  return np.stack([np.uint8(np.clip(x + c, 0, 1) * 255) for c in offsets])


@functools.lru_cache(maxsize=None)
def _brightness_lut(size: int = CROP) -> np.ndarray:
  return _value_lut(sizes.constants(size).brightness)


_IDENTITY_LUT = _value_lut((0.0,))[0]


def _hsv_adjusted(image, channel: int, adjust, v_lut):
  """skimage HSV of ``image / 255``, ``channel`` set to ``clip(adjust(channel), 0, 1)``, back to
  RGB, ``uint8(clip * 255)``; output channels equal to V take the exact ``v_lut[max(image)]``
  (``_value_lut``)."""
  hsv = color.rgb2hsv(image.astype(jnp.float32) / 255.0)
  hsv = hsv.at[..., channel].set(jnp.clip(adjust(hsv[..., channel]), 0.0, 1.0))
  v_uint8 = v_lut[jnp.max(image, axis=-1).astype(jnp.int32)]
  rgb = color.hsv2rgb(hsv)
  is_v = rgb == hsv[..., 2:3]
  return jnp.where(is_v, v_uint8[..., None], uint8_from_unit(rgb))


def brightness(image, draws, severity):
  """skimage HSV: ``V = clip(V + c, 0, 1)``, back to RGB, ``clip * 255``."""
  del draws
  size = sizes.of(image).size
  c = pick(sizes.constants(size).brightness, severity)
  return _hsv_adjusted(image, 2, lambda v: v + c, pick(_brightness_lut(size), severity, jnp.uint8))


def saturate(image, draws, severity):
  """skimage HSV: ``S = clip(S * c0 + c1, 0, 1)``, back to RGB, ``clip * 255``."""
  del draws
  c = pick(sizes.of(image).saturate, severity)
  return _hsv_adjusted(image, 1, lambda s: s * c[0] + c[1], jnp.asarray(_IDENTITY_LUT))


# ------------------------------------------------------------------------------------------------
# pixelate (PIL BOX down, BOX up)

PIXELATE = sizes.IMAGENET.pixelate
PIXELATE_SIZES = sizes.IMAGENET.pixelate_sizes()  # 134, 112, 89, 67, 56


@functools.lru_cache(maxsize=None)
def _pixelate_tables(size: int = CROP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per severity: the down pass (S -> n = int(S c), the same for width and height) as int32
  weights [5, n_max, k] and first taps [5, n_max] (rows past n all-zero; at 224 n_max = 134),
  and the up pass (n -> S) as an index table int32 [5, S].

  Upscaling, Pillow's BOX filter has support 1/2: each output pixel has exactly one tap, of
  weight 2^22 (asserted), so ``(2^21 + 2^22 v) >> 22 = v`` and the up pass is a plain copy of
  ``small[index]``.
  """
  small_sizes = sizes.constants(size).pixelate_sizes()
  n_max = max(small_sizes)
  weights, first = resize.stacked_box_coefficients([(size, n) for n in small_sizes])
  up = []
  for n in small_sizes:
    w, f = resize.box_coefficients(n, size)
    assert (w[:, 0] == 1 << resize.PRECISION_BITS).all() and not w[:, 1:].any()
    up.append(f)
  return weights[:, :n_max], first[:, :n_max], np.stack(up)


def pixelate(image, draws, severity):
  """PIL ``resize((n, n), BOX)`` then ``resize((S, S), BOX)``, n = int(S c), bit-exact.

  Pillow's two down passes (width first) into an n_max x n_max canvas (the small image is its
  top-left n x n corner), then the up passes as one copy (``_pixelate_tables``).  Each pass's
  result is computed apart: fused, every up-sampled pixel recomputed all its down-sampling taps.
  """
  del draws
  i = jnp.asarray(severity, jnp.int32) - 1
  weights, first, up = (jnp.asarray(t)[i] for t in _pixelate_tables(sizes.of(image).size))

  def down(x, axis):
    return fusion.computed_apart(
        lambda x: resize.resample_axis(x, weights, first, axis=axis), severity, x)

  small = down(down(image, 1), 0)
  return small[up[:, None], up[None, :]]


# ------------------------------------------------------------------------------------------------
# jpeg_compression

JPEG_QUALITY = sizes.IMAGENET.jpeg_compression


def jpeg_compression(image, draws, severity):
  """PIL ``save(JPEG, quality=c)`` then open: the lossy part of baseline JPEG (ops/jpeg.py)."""
  del draws
  quality = pick(sizes.of(image).jpeg_compression, severity, jnp.int32)
  return jpeg.jpeg_roundtrip(image, quality)


# ------------------------------------------------------------------------------------------------
# elastic_transform

# (alpha, sigma, affine) at 224; "244 should have been 224, but ultimately nothing is incorrect".
# Every size's: sizes.constants(size).elastic() (32, 64: IMSIZE * ...; 299: 360 * ...).
ELASTIC = sizes.IMAGENET.elastic()
# center_square = 112, square_size = 224 // 3 = 74: [[186, 186], [186, 38], [38, 38]].
ELASTIC_PTS1 = sizes.IMAGENET.elastic_points()


def elastic_draws(key, severity, size: int = CROP):
  """All of elastic_transform's randomness as standard uniforms in [0, 1).

  Returns:
    dict(affine=float32 [3, 2], dx=float32 [S, S], dy=float32 [S, S]); the original draws, in
    this order, ``uniform(-c2, c2, (3, 2))``, ``uniform(-1, 1, (S, S))`` twice, i.e.
    ``low + (high - low) * u``.
  """
  del severity
  k_affine, k_dx, k_dy = jax.random.split(key, 3)
  return dict(affine=rng.uniform(k_affine, (3, 2)), dx=rng.uniform(k_dx, (size, size)),
              dy=rng.uniform(k_dy, (size, size)))


def _displacement(u, severity):
  """``gaussian(uniform(-1, 1), sigma, mode='reflect', truncate=3) * alpha`` as float32.

  sigma 170.8 at 224 s1 (252 at 299) has a 512-pixel radius (more than the image; SciPy keeps
  reflecting): filters.gaussian_filter handles it with an exact [S, S] matrix.  The 32 and 64
  sets' s1 has sigma 0 and alpha 0 (no displacement; SciPy's filter is then the identity).
  """
  field = 2.0 * u - 1.0
  table = sizes.constants(u.shape[0]).elastic()
  sigmas = [c[1] for c in table]
  smooth = filters.gaussian_filter_switch(
      field, sigmas, jnp.asarray(severity, jnp.int32) - 1, mode="reflect", truncate=3.0)
  return smooth * pick([c[0] for c in table], severity)


def elastic_transform(image, draws, severity, *, quantize: bool = True):
  """Random affine (cv2.warpAffine, REFLECT_101) then a smooth random displacement.

  ``pts2 = pts1 + uniform(-c2, c2)``; ``warpAffine(x, getAffineTransform(pts1, pts2))`` on the
  float32 image; ``map_coordinates(x, (y + dy, x + dx), order=1, mode='reflect')``;
  ``clip * 255``.  cv2.warpAffine as OpenCV <= 4.10 (the original's 3.4) does it, at 1/32-pixel
  coordinates; ``quantize=False`` samples at exact coordinates as OpenCV >= 4.11 does.
  """
  table = sizes.of(image)
  size = table.size
  c_affine = pick([c[2] for c in table.elastic()], severity)
  x = image.astype(jnp.float32) / 255.0
  shift = (-c_affine + 2.0 * c_affine * draws["affine"]).astype(jnp.float32)
  pts1 = table.elastic_points()
  matrix = sampling.get_affine_transform(pts1, pts1 + shift)
  # Computed apart: fused into map_coordinates' four taps, the warp's own four taps were
  # recomputed per tap (docs/speed.md, "CPU workarounds").
  x = fusion.computed_apart(
      lambda x, m: sampling.cv2_warp_affine(x, m, (size, size), "reflect101", quantize=quantize),
      severity, x, matrix)
  # The sampling coordinates computed apart too: fused, their arithmetic ran again in each of
  # map_coordinates' four taps.
  y, x_coords = fusion.computed_apart(
      _sample_coordinates, severity, draws["dx"], draws["dy"], severity)
  out = sampling.map_coordinates_order1(x, y, x_coords, mode="reflect")
  return uint8_from_unit(out)


def _sample_coordinates(u_dx, u_dy, severity):
  """map_coordinates' (rows + dy, cols + dx), float32 [S, S] each."""
  size = u_dx.shape[0]
  rows = jnp.arange(size, dtype=jnp.float32)[:, None]
  cols = jnp.arange(size, dtype=jnp.float32)[None, :]
  return rows + _displacement(u_dy, severity), cols + _displacement(u_dx, severity)


REGISTRY: dict[str, Corruption] = {
    "brightness": Corruption("brightness", brightness),
    "contrast": Corruption("contrast", contrast),
    "elastic_transform": Corruption("elastic_transform", elastic_transform, elastic_draws, chunk=2),
    "pixelate": Corruption("pixelate", pixelate, chunk=2),
    # 299 px in 4-image chunks: vmapped over 16, 2x slower (docs/fidelity/sizes.md).
    "jpeg_compression": Corruption("jpeg_compression", jpeg_compression, chunk={299: 4}),
    "saturate": Corruption("saturate", saturate, chunk=2),
}
