"""Geometric warps of ImageNet-P: torchvision 0.2.x ``affine`` through PIL, and ``tilt``.

The original (``ImageNet-P/create_p/make_imagenet_p.py``) transforms the whole Resize(256)
image and then takes ``CenterCrop(224)``; only the crop is ever looked at, so every function
here computes just the crop's pixels.

Images may sit on a zero-padded canvas ``[Hc, Wc, C]`` (a batch of photos of different widths);
``height``/``width`` are the true sizes (int scalars, may be traced), and the warps use them,
never the canvas size: the rotation centre, PIL's "outside the source" test and its edge
clamping, OpenCV's border, tilt's focal length and the crop offsets all depend on the true size.

torchvision 0.2.x ``affine(img, angle, translate, scale, shear, resample)``:
  centre ``(cx, cy) = (w/2 + 0.5, h/2 + 0.5)``; inverse linear part
  ``[cos(a+sh), sin(a+sh); -sin(a), cos(a)] * (1/scale) / d`` with
  ``d = cos(a+sh) cos(a) + sin(a+sh) sin(a)``; translation so that
  ``src = M_lin @ (dst - c - t) + c``; then ``PIL.Image.transform(size, AFFINE, matrix, resample)``,
  which maps the output pixel centre ``(x + 0.5, y + 0.5)`` through the matrix.
"""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from imagenet_cp.preprocess import CROP


def center_crop_offsets(height, width, size: int = CROP):
  """torchvision ``CenterCrop``: ``int(round((dim - size) / 2.))`` (Python 3 round: half to even).

  Works on Python ints and on traced int32 scalars; returns (top, left) of the same kind.
  """
  if isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)):
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
  top = jnp.round((jnp.asarray(height, jnp.float32) - size) / 2.0).astype(jnp.int32)
  left = jnp.round((jnp.asarray(width, jnp.float32) - size) / 2.0).astype(jnp.int32)
  return top, left


def tv02_inverse_linear(angle: float, scale: float, shear: float) -> np.ndarray:
  """torchvision 0.2.x ``_get_inverse_affine_matrix``'s linear part, float64 [4] = (a, b, d, e).

  ``[cos(a+sh), sin(a+sh), -sin(a), cos(a)] * (1/scale) / d``, angles in degrees (host side:
  the ImageNet-P frame parameters are constants).
  """
  a, sh = math.radians(angle), math.radians(shear)
  d = math.cos(a + sh) * math.cos(a) + math.sin(a + sh) * math.sin(a)
  coeffs = np.array([math.cos(a + sh), math.sin(a + sh), -math.sin(a), math.cos(a)])
  return coeffs * (1.0 / scale) / d


def tv02_affine_matrix(width: int, height: int, angle: float, translate, scale: float,
                       shear: float) -> list[float]:
  """The full 6-coefficient matrix torchvision 0.2.x hands to PIL (float64, for the reference)."""
  cx, cy = width * 0.5 + 0.5, height * 0.5 + 0.5
  a, b, d, e = tv02_inverse_linear(angle, scale, shear)
  tx, ty = translate
  return [a, b, a * (-cx - tx) + b * (-cy - ty) + cx,
          d, e, d * (-cx - tx) + e * (-cy - ty) + cy]


def _crop_grid(height, width, size: int):
  """Output pixel indices (y, x) of the centre crop in full-image coordinates, int32 [size]."""
  top, left = center_crop_offsets(height, width, size)
  return jnp.arange(size, dtype=jnp.int32) + top, jnp.arange(size, dtype=jnp.int32) + left


def pil_affine_source(height, width, linear, translate, size: int = CROP):
  """PIL AFFINE source coordinates (xin, yin), float32 [size, size], of the crop's pixels.

  ``xin = a (x + 0.5) + b (y + 0.5) + c`` with torchvision 0.2.x's c, f; written around the
  centre, ``xin = a (x - w/2 - tx) + b (y - h/2 - ty) + cx``, so float32 loses nothing at
  the image scale (x - w/2 is exact).
  """
  ys, xs = _crop_grid(height, width, size)
  h = jnp.asarray(height, jnp.float32)
  w = jnp.asarray(width, jnp.float32)
  linear = jnp.asarray(linear, jnp.float32)
  translate = jnp.asarray(translate, jnp.float32)
  u = xs.astype(jnp.float32)[None, :] - w * 0.5 - translate[0]
  v = ys.astype(jnp.float32)[:, None] - h * 0.5 - translate[1]
  xin = linear[0] * u + linear[1] * v + (w * 0.5 + 0.5)
  yin = linear[2] * u + linear[3] * v + (h * 0.5 + 0.5)
  return xin, yin


def _gather(canvas, yy, xx):
  """canvas [Hc, Wc, C] at integer (yy, xx) [...] -> [..., C] (indices already in range)."""
  wc = canvas.shape[1]
  flat = jnp.reshape(canvas, (-1, canvas.shape[-1]))
  return jnp.take(flat, yy * wc + xx, axis=0, mode="clip")


def pil_sample_nearest(canvas, height, width, xin, yin):
  """PIL NEAREST (``nearest_filter``): ``(int) v`` (-1 below 0), black outside the source.

  canvas uint8 [Hc, Wc, C]; xin, yin float32 [...]; returns uint8 [..., C].
  """
  xi = jnp.floor(xin).astype(jnp.int32)
  yi = jnp.floor(yin).astype(jnp.int32)
  inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
  pix = _gather(canvas, jnp.clip(yi, 0, height - 1), jnp.clip(xi, 0, width - 1))
  return jnp.where(inside[..., None], pix, jnp.zeros_like(pix))


def pil_edge_padded(canvas, height, width):
  """The true image with a 1-pixel replicated border, flattened, then a block of black pixels.

  canvas uint8 [Hc, Wc, C] -> [(Hc + 2) (Wc + 2) + Wc + 4, C]: pixel (y, x) of the image, for
  y in [-1, h] and x in [-1, w], sits at row ``(y + 1) (Wc + 2) + x + 1``, values clamped to
  the image (PIL's edge clamping of the bilinear taps); the last ``Wc + 4`` rows are zero, so
  the 2x2 taps of ``pil_black_tap`` read only black.  Built once per image, shared by frames.
  """
  hc, wc, c = canvas.shape
  rows = jnp.clip(jnp.arange(hc + 2) - 1, 0, height - 1)
  cols = jnp.clip(jnp.arange(wc + 2) - 1, 0, width - 1)
  padded = jnp.reshape(canvas[rows][:, cols], (-1, c))
  return jnp.concatenate([padded, jnp.zeros((wc + 4, c), canvas.dtype)])


def pil_black_tap(canvas_shape) -> int:
  """The first black row of ``pil_edge_padded`` (an outside sample's top-left tap)."""
  return (canvas_shape[0] + 2) * (canvas_shape[1] + 2)


def pil_bilinear_taps(canvas_shape, height, width, xin, yin):
  """PIL BILINEAR's top-left tap (a row of ``pil_edge_padded``) and fractions (dx, dy).

  PIL samples at ``(xin - 0.5, yin - 0.5)`` and returns black outside [0, w) x [0, h); inside,
  the taps' columns x0, x0 + 1 lie in [-1, w] (rows likewise), which the padded image's
  replicated border turns into PIL's clamped indices.  Outside samples point at the black
  block.  Returns (int32, float32, float32), each of xin's shape.
  """
  inside = (xin >= 0) & (xin < width) & (yin >= 0) & (yin < height)
  xs, ys = xin - 0.5, yin - 0.5
  x0, y0 = jnp.floor(xs), jnp.floor(ys)
  stride = canvas_shape[1] + 2
  tap = (y0.astype(jnp.int32) + 1) * stride + x0.astype(jnp.int32) + 1
  tap = jnp.where(inside, tap, pil_black_tap(canvas_shape))
  return tap, xs - x0, ys - y0


def pil_interpolate(padded, canvas_shape, tap, dx, dy):
  """PIL's ``bilinear_filter32RGB`` from the 2x2 taps at ``tap`` of ``pil_edge_padded``:
  rows then columns (``a + (b - a) * d``), truncated to uint8 [..., C]."""
  stride = canvas_shape[1] + 2
  pixel = lambda i: jnp.take(padded, i, axis=0, mode="clip").astype(jnp.float32)
  dx, dy = dx[..., None], dy[..., None]
  p00, p01 = pixel(tap), pixel(tap + 1)
  p10, p11 = pixel(tap + stride), pixel(tap + stride + 1)
  top = p00 + (p01 - p00) * dx
  bottom = p10 + (p11 - p10) * dx
  value = top + (bottom - top) * dy
  return jnp.clip(jnp.floor(value), 0, 255).astype(jnp.uint8)


def pil_sample_bilinear(canvas, height, width, xin, yin):
  """PIL BILINEAR (``bilinear_filter32RGB``): zero outside [0, w) x [0, h), edge-clamped taps.

  PIL samples at ``(xin - 0.5, yin - 0.5)``, clamps tap indices to the image, interpolates
  rows then columns (``a + (b - a) * d``) and truncates to uint8.  canvas uint8 [Hc, Wc, C];
  returns uint8 [..., C].  The clamping and the black outside come from the padded image
  (``pil_edge_padded``) instead of per-tap index clamps and a select: the same values, and no
  canvas-sized work is repeated per frame when this is vmapped over frames of one canvas.
  """
  padded = pil_edge_padded(canvas, height, width)
  tap, dx, dy = pil_bilinear_taps(canvas.shape, height, width, xin, yin)
  return pil_interpolate(padded, canvas.shape, tap, dx, dy)


def tv02_affine_crop(canvas, height, width, linear, translate, *, bilinear: bool,
                     size: int = CROP):
  """``CenterCrop(size)(trn_F.affine(img, ...))`` of torchvision 0.2.x on PIL.

  canvas uint8 [Hc, Wc, C] (true image in the top-left ``height x width``); linear float [4]
  from ``tv02_inverse_linear``; translate float [2] (tx, ty).  Returns uint8 [size, size, C].
  """
  xin, yin = pil_affine_source(height, width, linear, translate, size)
  sample = pil_sample_bilinear if bilinear else pil_sample_nearest
  return sample(canvas, height, width, xin, yin)


# ---------------------------------------------------------------------------------------------
# tilt: the original's perspective matrix and cv2.warpPerspective's inverse map


def tilt_rotation(degrees: float) -> np.ndarray:
  """``(RX @ RY)[:3, :3]`` of the original, ``phi = theta = deg2rad(degrees)``: float64 [3, 3]."""
  t = np.deg2rad(degrees)
  c, s = np.cos(t), np.sin(t)
  rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
  ry = np.array([[c, 0, -s], [0, 1, 0], [s, 0, c]])
  return rx @ ry


def _inverse_3x3(m):
  """Adjugate of a 3x3 matrix (the inverse up to a scale, which the homography divides out)."""
  cof = lambda r0, r1, c0, c1: m[r0, c0] * m[r1, c1] - m[r0, c1] * m[r1, c0]
  return jnp.array([
      [cof(1, 2, 1, 2), -cof(0, 2, 1, 2), cof(0, 1, 1, 2)],
      [-cof(1, 2, 0, 2), cof(0, 2, 0, 2), -cof(0, 1, 0, 2)],
      [cof(1, 2, 0, 1), -cof(0, 2, 0, 1), cof(0, 1, 0, 1)],
  ])


def tilt_source(height, width, rotation, size: int = CROP):
  """cv2.warpPerspective's source coordinates (float32 [size, size] each) for the crop pixels.

  In coordinates centred on (w/2, h/2) the original's matrix is the homography
  ``[[f R00, f R01, f R02], [f R10, f R11, f R12], [R20, R21, R22 + f]]`` (R = RX @ RY, the
  source point is (x, y, 1) after P1); divided by f its entries are O(1), so its float32
  inverse is accurate.  OpenCV evaluates the inverse map at integer destination pixels.
  """
  ys, xs = _crop_grid(height, width, size)
  h = jnp.asarray(height, jnp.float32)
  w = jnp.asarray(width, jnp.float32)
  f = jnp.sqrt(w * w + h * h)
  r = jnp.asarray(rotation, jnp.float32)
  hom = jnp.stack([r[0], r[1], jnp.stack([r[2, 0] / f, r[2, 1] / f, (r[2, 2] + f) / f])])
  inv = _inverse_3x3(hom)
  u = xs.astype(jnp.float32)[None, :] - w * 0.5
  v = ys.astype(jnp.float32)[:, None] - h * 0.5
  sx = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
  sy = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
  sw = inv[2, 0] * u + inv[2, 1] * v + inv[2, 2]
  sw = jnp.where(sw == 0, jnp.inf, sw)  # OpenCV: W = W ? 1/W : 0
  return sx / sw + w * 0.5, sy / sw + h * 0.5


def zero_outside(canvas, height, width):
  """Zeroes the canvas beyond the true ``height x width`` (so padding reads as a black border)."""
  rows = jnp.arange(canvas.shape[0])[:, None, None] < height
  cols = jnp.arange(canvas.shape[1])[None, :, None] < width
  return jnp.where(rows & cols, canvas, jnp.zeros_like(canvas))
