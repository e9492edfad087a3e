"""Bilinear sampling with the border modes of SciPy and OpenCV, in JAX.

Three users: elastic_transform (cv2.warpAffine then scipy map_coordinates), and ImageNet-P's tilt
(cv2.warpPerspective, built on ``cv2_remap_bilinear``).

OpenCV versions differ here.  Up to 4.10 (the original ran 3.4.2) ``remap``/``warpAffine``/
``warpPerspective`` with INTER_LINEAR quantise source coordinates to 1/32 pixel (INTER_BITS=5) and
interpolate uint8 images with 15-bit fixed-point weights; OpenCV >= 4.11 (5.0 is installed here)
samples at the exact float coordinates and rounds uint8 results.  ``quantize=True`` (default)
follows the original's OpenCV, ``quantize=False`` today's; the two differ by at most 1/64 pixel of
position (measured in tests/test_ops_sampling.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.ops.border import border_index, check_border

INTER_BITS = 5  # cv2: source coordinates in 1/32 pixel
INTER_TAB_SIZE = 1 << INTER_BITS
_REMAP_COEF_BITS = 15  # cv2: uint8 bilinear weights scaled by 2**15
_AB_BITS = 10  # cv2.warpAffine: per-row / per-column offsets in 1/1024 pixel


def _gather_corners(image, y0, x0, border, cval):
  """The 4 neighbours (y0|y0+1, x0|x0+1) of each sample: float32 [4, ..., C], order 00, 01, 10, 11."""
  h, w, c = image.shape
  flat = jnp.reshape(image, (h * w, c))
  constant = check_border(border) == "constant"
  # 'constant' reads the nearest pixel and replaces the samples outside by cval.
  index = lambda i, n: border_index(i, n, "nearest" if constant else border)  # noqa: E731
  inside = lambda i, n: (i >= 0) & (i < n)  # noqa: E731
  corners = []
  for dy in (0, 1):
    for dx in (0, 1):
      v = jnp.take(flat, index(y0 + dy, h) * w + index(x0 + dx, w), axis=0).astype(jnp.float32)
      if constant:
        v = jnp.where((inside(y0 + dy, h) & inside(x0 + dx, w))[..., None], v, jnp.float32(cval))
      corners.append(v)
  return corners


def _as_hwc(image):
  image = jnp.asarray(image)
  if image.ndim == 2:
    return image[..., None], True
  if image.ndim != 3:
    raise ValueError(f"image must be [H, W] or [H, W, C], got shape {image.shape}")
  return image, False


def sample_bilinear(image, y, x, border: str = "reflect", cval: float = 0.0) -> jnp.ndarray:
  """Bilinear interpolation at float coordinates (pixel centres at integers).

  Args:
    image: [H, W, C] or [H, W], any real dtype (read as float32).
    y, x: float row / column coordinates, same shape S.
    border: how the neighbours of samples near or past the edge are found (``border.BORDERS``).
    cval: the value outside the image for 'constant'.

  Returns:
    float32 [*S, C] (or [*S] for a 2-D image):
    (1-fy)((1-fx) I[y0,x0] + fx I[y0,x0+1]) + fy((1-fx) I[y0+1,x0] + fx I[y0+1,x0+1]).
  """
  image, squeeze = _as_hwc(image)
  y = jnp.asarray(y, jnp.float32)
  x = jnp.asarray(x, jnp.float32)
  y0f = jnp.floor(y)
  x0f = jnp.floor(x)
  fy = (y - y0f)[..., None]
  fx = (x - x0f)[..., None]
  v00, v01, v10, v11 = _gather_corners(
      image, y0f.astype(jnp.int32), x0f.astype(jnp.int32), border, cval)
  out = (v00 * ((1 - fx) * (1 - fy)) + v01 * (fx * (1 - fy))
         + v10 * ((1 - fx) * fy) + v11 * (fx * fy))
  return out[..., 0] if squeeze else out


def map_coordinates_order1(image, y, x, mode: str = "reflect", cval: float = 0.0) -> jnp.ndarray:
  """scipy.ndimage.map_coordinates(image, (y, x[, c]), order=1, mode=mode) per channel.

  For order 1, SciPy's continuous extension of 'reflect' (half-sample symmetric about -0.5 and
  n-0.5), 'nearest', 'wrap' ('grid-wrap') and 'grid-constant' equal bilinear interpolation with
  the neighbours' integer indices mapped by the same rule, which is what this does.

  Args:
    image: [H, W, C] or [H, W].
    y, x: float coordinates, shape S.
    mode: 'reflect', 'nearest', 'wrap' or 'grid-constant' ('constant' is not SciPy's
      'constant' near the edges and is refused).

  Returns:
    float32 [*S, C] (or [*S]).
  """
  border = {"reflect": "reflect", "nearest": "nearest", "grid-wrap": "wrap", "wrap": "wrap",
            "grid-constant": "constant"}.get(mode)
  if border is None:
    raise ValueError(f"map_coordinates mode {mode!r} not supported")
  return sample_bilinear(image, y, x, border, cval)


def _cv2_fixed_weights(ay, ax):
  """cv2's 15-bit bilinear weights for 1/32-pixel fractions ay, ax (int32): [4, ...], sum 2**15."""
  scale = (1 << _REMAP_COEF_BITS) // (INTER_TAB_SIZE * INTER_TAB_SIZE)  # 32: products are exact
  by, bx = INTER_TAB_SIZE - ay, INTER_TAB_SIZE - ax
  return by * bx * scale, by * ax * scale, ay * bx * scale, ay * ax * scale


def cv2_remap_fixed(image, ix, iy, border: str, cval: float = 0.0) -> jnp.ndarray:
  """cv2 INTER_LINEAR remap at coordinates already in 1/32 pixel (int32 ix, iy; shape S).

  The common back end of ``cv2_remap_bilinear`` and ``cv2_warp_affine`` (OpenCV <= 4.10):
  integer part ``i >> 5``, fraction ``i & 31``.  float images: weights (1-a/32)(1-b/32) etc.
  (exact in float32), result float32.  uint8 images: weights scaled by 2**15 and
  ``(sum + 2**14) >> 15``, result uint8.

  Returns:
    [*S, C] (or [*S]) float32 for float input, uint8 for uint8 input.
  """
  image, squeeze = _as_hwc(image)
  x0, ax = ix >> INTER_BITS, ix & (INTER_TAB_SIZE - 1)
  y0, ay = iy >> INTER_BITS, iy & (INTER_TAB_SIZE - 1)
  corners = _gather_corners(image, y0, x0, border, cval)
  if image.dtype == jnp.uint8:
    weights = _cv2_fixed_weights(ay, ax)
    acc = sum(v.astype(jnp.int32) * w[..., None] for v, w in zip(corners, weights))
    out = jnp.clip((acc + (1 << (_REMAP_COEF_BITS - 1))) >> _REMAP_COEF_BITS, 0, 255)
    out = out.astype(jnp.uint8)
  else:
    fy = (ay.astype(jnp.float32) / INTER_TAB_SIZE)[..., None]
    fx = (ax.astype(jnp.float32) / INTER_TAB_SIZE)[..., None]
    v00, v01, v10, v11 = corners
    out = (v00 * ((1 - fy) * (1 - fx)) + v01 * ((1 - fy) * fx)
           + v10 * (fy * (1 - fx)) + v11 * (fy * fx))
  return out[..., 0] if squeeze else out


def zero_padded_taps(image):
  """``image`` [H, W, C] with a 1-pixel black border, flattened, then a block of black pixels:
  [(H + 2) (W + 2) + W + 4, C].  Pixel (y, x), y in [-1, H], x in [-1, W], is row
  ``(y + 1) (W + 2) + x + 1``; the 2x2 taps from row ``(H + 2) (W + 2)`` on are all black."""
  h, w, c = image.shape
  padded = jnp.pad(image, ((1, 1), (1, 1), (0, 0)))
  return jnp.concatenate([jnp.reshape(padded, (-1, c)), jnp.zeros((w + 4, c), image.dtype)])


def cv2_remap_fixed_black(image, ix, iy) -> jnp.ndarray:
  """``cv2_remap_fixed(image, ix, iy, 'constant', 0)`` for uint8 [H, W, C] images.

  The same values without per-tap border tests: taps come from ``zero_padded_taps`` (built
  once, e.g. outside a vmap over frames of one image), a sample whose 2x2 neighbourhood lies
  wholly outside reads the black block.  int32 ix, iy in 1/32 pixel, shape S; returns uint8
  [*S, C].
  """
  h, w, _ = image.shape
  padded = zero_padded_taps(image)
  x0, ax = ix >> INTER_BITS, ix & (INTER_TAB_SIZE - 1)
  y0, ay = iy >> INTER_BITS, iy & (INTER_TAB_SIZE - 1)
  near = (x0 >= -1) & (x0 < w) & (y0 >= -1) & (y0 < h)
  stride = w + 2
  tap = jnp.where(near, (y0 + 1) * stride + x0 + 1, (h + 2) * stride)
  # Products and sums stay below 2**24 (255 * 2**15), so float32 is exact here and cheaper
  # than int32 multiplies on CPU; 2**-15 is exact too.
  pixel = lambda i: jnp.take(padded, i, axis=0, mode="clip").astype(jnp.float32)
  corners = (pixel(tap), pixel(tap + 1), pixel(tap + stride), pixel(tap + stride + 1))
  weights = [wt.astype(jnp.float32)[..., None] for wt in _cv2_fixed_weights(ay, ax)]
  acc = sum(v * wt for v, wt in zip(corners, weights))
  out = jnp.floor((acc + (1 << (_REMAP_COEF_BITS - 1))) * (1.0 / (1 << _REMAP_COEF_BITS)))
  return jnp.clip(out, 0, 255).astype(jnp.uint8)


def _cv2_exact(image, map_x, map_y, border, cval):
  """OpenCV >= 4.11: bilinear at the float coordinates; uint8 results rounded half to even."""
  image, squeeze = _as_hwc(image)
  out = sample_bilinear(image, map_y, map_x, border, cval)
  if image.dtype == jnp.uint8:
    out = jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)
  return out[..., 0] if squeeze else out


def cv2_remap_bilinear(image, map_x, map_y, border: str = "reflect101", cval: float = 0.0, *,
                       quantize: bool = True) -> jnp.ndarray:
  """cv2.remap(image, map_x, map_y, INTER_LINEAR, borderMode=border, borderValue=cval).

  Args:
    image: [H, W, C] or [H, W], uint8 or float.
    map_x, map_y: float source column / row of each output pixel, shape S (cv2's float maps).
    border: one of ``border.BORDERS`` (OpenCV's names there).
    cval: border value for 'constant'.
    quantize: True = OpenCV <= 4.10 (coordinates rounded to 1/32 pixel with cvRound, uint8
      fixed-point weights), False = OpenCV >= 4.11 (exact float coordinates).

  Returns:
    [*S, C] (or [*S]): uint8 for uint8 input, else float32.
  """
  if not quantize:
    return _cv2_exact(image, map_x, map_y, border, cval)
  ix, iy = cv2_quantize(map_x), cv2_quantize(map_y)
  return cv2_remap_fixed(image, ix, iy, border, cval)


def cv2_quantize(coordinate):
  """A float source coordinate in cv2's 1/32-pixel fixed point (cvRound), int32."""
  return _cv2_round(jnp.asarray(coordinate, jnp.float32) * INTER_TAB_SIZE)


def _cv2_round(v):
  """cvRound / saturate_cast<int>: round half to even into int32 (saturating)."""
  lim = float(np.iinfo(np.int32).max // 2)  # keep ``>> 5`` arithmetic away from overflow
  return jnp.round(jnp.clip(v, -lim, lim)).astype(jnp.int32)


def invert_affine(matrix):
  """cv2.invertAffineTransform: float [2, 3] -> float32 [2, 3]."""
  m = jnp.asarray(matrix, jnp.float32)
  det = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
  inv_det = jnp.where(det != 0, 1.0 / jnp.where(det != 0, det, 1.0), 0.0)
  a11, a22 = m[1, 1] * inv_det, m[0, 0] * inv_det
  a12, a21 = -m[0, 1] * inv_det, -m[1, 0] * inv_det
  b1 = -a11 * m[0, 2] - a12 * m[1, 2]
  b2 = -a21 * m[0, 2] - a22 * m[1, 2]
  return jnp.stack([jnp.stack([a11, a12, b1]), jnp.stack([a21, a22, b2])])


def get_affine_transform(src, dst):
  """cv2.getAffineTransform: the [2, 3] float32 M with M @ [src_i, 1] = dst_i for 3 point pairs.

  Args:
    src, dst: float [3, 2] (x, y) points.
  """
  src = jnp.asarray(src, jnp.float32)
  dst = jnp.asarray(dst, jnp.float32)
  a = jnp.concatenate([src, jnp.ones((3, 1), jnp.float32)], axis=1)  # [3, 3]
  return jnp.linalg.solve(a, dst).T


def cv2_warp_affine(image, matrix_2x3, out_size, border: str = "reflect101", cval: float = 0.0, *,
                    inverse_map: bool = False, quantize: bool = True) -> jnp.ndarray:
  """cv2.warpAffine(image, M, out_size, flags=INTER_LINEAR, borderMode=border).

  Output pixel (x, y) samples the source at Minv @ (x, y, 1), Minv = invertAffineTransform(M)
  (or M itself with ``inverse_map``, cv2.WARP_INVERSE_MAP).  With ``quantize`` (OpenCV <= 4.10)
  the coordinate is formed as cv2 does, in 1/1024 pixel then floored to 1/32 pixel:
  X = (round(1024 (m01 y + m02)) + round(1024 m00 x) + 16) >> 5, likewise Y.

  Args:
    image: [H, W, C] or [H, W], uint8 or float.
    matrix_2x3: float [2, 3] (may be traced).
    out_size: (width, height), static, cv2's dsize order.
    border, cval: as ``cv2_remap_bilinear``.

  Returns:
    [height, width, C] (or [height, width]): uint8 for uint8 input, else float32.
  """
  width, height = out_size
  m = jnp.asarray(matrix_2x3, jnp.float32)
  if not inverse_map:
    m = invert_affine(m)
  xs = jnp.arange(width, dtype=jnp.float32)[None, :]
  ys = jnp.arange(height, dtype=jnp.float32)[:, None]
  if not quantize:
    map_x = m[0, 0] * xs + (m[0, 1] * ys + m[0, 2])
    map_y = m[1, 0] * xs + (m[1, 1] * ys + m[1, 2])
    return _cv2_exact(image, map_x, map_y, border, cval)
  ab_scale = float(1 << _AB_BITS)
  round_delta = (1 << _AB_BITS) // INTER_TAB_SIZE // 2
  shift = _AB_BITS - INTER_BITS
  ix = (_cv2_round((m[0, 1] * ys + m[0, 2]) * ab_scale) + _cv2_round(m[0, 0] * xs * ab_scale)
        + round_delta) >> shift
  iy = (_cv2_round((m[1, 1] * ys + m[1, 2]) * ab_scale) + _cv2_round(m[1, 0] * xs * ab_scale)
        + round_delta) >> shift
  return cv2_remap_fixed(image, ix, iy, border, cval)


def warp_affine_batched(images, matrices, out_size, border: str = "reflect101", **kwargs):
  """``cv2_warp_affine`` over leading batch axes: images [..., H, W, C], matrices [..., 2, 3]."""
  fn = lambda im, m: cv2_warp_affine(im, m, out_size, border, **kwargs)
  lead = images.shape[:-3]
  flat = jax.vmap(fn)(jnp.reshape(images, (-1,) + images.shape[-3:]),
                      jnp.reshape(matrices, (-1, 2, 3)))
  return jnp.reshape(flat, lead + flat.shape[1:])
