"""The spatter rendering of ImageNet-C/P, with the OpenCV steps it uses re-done in JAX.

``spatter`` (ImageNet-C, "water" mode at severities 1-3) and the ImageNet-P ``spatter`` sequence
turn a thresholded liquid layer ``L`` (float, [H, W]) into a water mask with this OpenCV chain::

    L8   = (L * 255).astype(uint8)
    dist = 255 - cv2.Canny(L8, 50, 150)                 # 0 on edges
    dist = cv2.distanceTransform(dist, DIST_L2, 5)      # 5x5 chamfer, float32
    dist = cv2.threshold(dist, 20, 20, THRESH_TRUNC)    # min(dist, 20)
    dist = cv2.blur(dist, (3, 3)).astype(uint8)
    dist = cv2.equalizeHist(dist)
    dist = cv2.filter2D(dist, CV_8U, [[-2,-1,0],[-1,1,1],[0,1,2]])   # saturating
    dist = cv2.blur(dist, (3, 3)).astype(float32)
    m    = L8 * dist;  m /= max(m);  m *= intensity
    out  = clip(x + m * (175, 238, 238) / 255, 0, 1) * 255

Canny, equalizeHist, filter2D and the uint8 blur are integer arithmetic in OpenCV and are
reproduced bit for bit; the distance transform is OpenCV 5's two float32 raster passes of the
chamfer mask, reproduced bit for bit below the truncation (``chamfer_distance``); the float32
tail follows the original's order of float32 operations.  Each piece is tested against cv2 itself
on random inputs (tests/test_corruptions_weather.py); docs/fidelity/weather.md has the details.

``render_water`` is the public entry point (also used by the ImageNet-P spatter sequence);
ImageNet-C's mud mode (severities 4-5) is a Gaussian mask, in ``corruptions/weather.py``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.ops import border, fusion

# cv2.Canny's fixed-point tangent of 22.5 degrees: round(tan(22.5) * 2**15).
_CANNY_SHIFT = 15
_TG22 = int(0.4142135623730950488016887242097 * (1 << _CANNY_SHIFT) + 0.5)

# cv2.distanceTransform(DIST_L2, maskSize=5): chamfer weights (1, 1.4, 2.1969) for axial,
# diagonal and knight moves.  OpenCV 5 sweeps them in float32 (no fixed point).
_W_AXIAL, _W_DIAG, _W_KNIGHT = (float(np.float32(w)) for w in (1.0, 1.4, 2.1969))
# Distances are 0 or float32 values >= 1, hence exact multiples of 2**-23.
_DIST_FRAC_BITS = 23

WATER_COLOR = (175, 238, 238)  # applied to channels 0, 1, 2 (the original's "BGR" on RGB data)
MUD_COLOR = (63, 42, 20)  # ImageNet-C's mud mode (corruptions/weather.py)
WATER_KERNEL = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.int32)


def _correlate3x3_int(x: jax.Array, kernel: np.ndarray, mode: str) -> jax.Array:
  """Exact int32 3x3 correlation of int32 ``x`` [H, W] with a static int kernel."""
  h, w = x.shape
  p = border.pad_spatial(x, 1, mode)
  out = jnp.zeros((h, w), jnp.int32)
  for i in range(3):
    for j in range(3):
      if kernel[i, j]:
        out = out + int(kernel[i, j]) * p[i:i + h, j:j + w]
  return out


def _box3_sum_int(x: jax.Array) -> jax.Array:
  """Exact 3x3 box sum of int32 ``x`` [H, W] with BORDER_REFLECT_101 (separable)."""
  h, w = x.shape
  p = border.pad_spatial(x, 1, "reflect101")
  rows = p[:, :w] + p[:, 1:w + 1] + p[:, 2:]
  return rows[:h] + rows[1:h + 1] + rows[2:]


def sobel3(image_u8: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``cv2.Sobel(img, CV_16S, 1, 0, 3)`` and ``(0, 1)`` with BORDER_REPLICATE: int16 (dx, dy).

  Separable ([1, 2, 1] smoothing across, [-1, 0, 1] along) in int16, like OpenCV's CV_16S
  result (|d| <= 1020): half the bytes of int32 per vector (same edges).
  """
  p = jnp.pad(image_u8.astype(jnp.int16), 1, mode="edge")
  across_rows = p[:-2] + 2 * p[1:-1] + p[2:]           # [H, W + 2]
  across_cols = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # [H + 2, W]
  return across_rows[:, 2:] - across_rows[:, :-2], across_cols[2:] - across_cols[:-2]


def canny_candidates(image_u8: jax.Array, low: float, high: float):
  """Non-maximum suppression of ``cv2.Canny`` (aperture 3, L1 gradient): (weak, strong) bool.

  ``weak``: pixels with ``|dx| + |dy| > floor(low)`` that are a maximum along the gradient's
  sector (OpenCV's integer test with ``tan 22.5`` in Q15; ``>`` on one side, ``>=`` on the other;
  magnitudes outside the image count as 0).  ``strong``: those with magnitude ``> floor(high)``.
  Magnitudes (<= 2040) stay int16; only the Q15 sector test needs int32.
  """
  dx, dy = sobel3(image_u8)
  mag = jnp.abs(dx) + jnp.abs(dy)
  h, w = mag.shape
  padded = jnp.pad(mag, 1)  # one pad, eight windows (a pad per shift cost 5-15% more CPU)
  m = lambda dr, dc: padded[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]  # noqa: E731
  ax = jnp.abs(dx).astype(jnp.int32)
  ay = jnp.abs(dy).astype(jnp.int32) << _CANNY_SHIFT
  tg22x = ax * _TG22
  tg67x = tg22x + (ax << (_CANNY_SHIFT + 1))
  horizontal = ay < tg22x
  vertical = ~horizontal & (ay > tg67x)
  same_sign = (dx ^ dy) >= 0  # OpenCV: s = (xs ^ ys) < 0 ? -1 : 1
  max_h = (mag > m(0, -1)) & (mag >= m(0, 1))
  max_v = (mag > m(-1, 0)) & (mag >= m(1, 0))
  max_d = jnp.where(same_sign,
                    (mag > m(-1, -1)) & (mag > m(1, 1)),
                    (mag > m(-1, 1)) & (mag > m(1, -1)))
  is_max = jnp.where(horizontal, max_h, jnp.where(vertical, max_v, max_d))
  weak = is_max & (mag > int(np.floor(low)))
  strong = weak & (mag > int(np.floor(high)))
  return weak, strong


_WORD = 32  # rows per packed uint32 word


def pack_rows(x: jax.Array) -> jax.Array:
  """bool [H, W] -> uint32 [ceil(H / 32), W]: bit b of word j in column c is row 32 j + b
  (rows past H are 0)."""
  h, w = x.shape
  n = -(-h // _WORD)
  x = jnp.pad(x, ((0, n * _WORD - h), (0, 0))).reshape(n, _WORD, w).astype(jnp.uint32)
  # An OR of 32 slices, not a reduction over the middle axis: XLA fuses the producer (Canny's
  # candidates) into either, and ran it as scalar code inside the reduction.
  words = x[:, 0]
  for b in range(1, _WORD):
    words = words | (x[:, b] << b)
  return words


def unpack_rows(words: jax.Array, h: int) -> jax.Array:
  """The inverse of ``pack_rows``: uint32 [n, W] -> bool [h, W]."""
  bits = jnp.arange(_WORD, dtype=jnp.uint32)[:, None]
  x = (words[:, None, :] >> bits) & 1
  return x.reshape(-1, words.shape[-1])[:h] != 0


def _dilate8_packed(x: jax.Array) -> jax.Array:
  """Boolean 3x3 dilation (8-neighbourhood, False outside) of a ``pack_rows`` image: the
  vertical neighbours are the word's bits shifted by one (with the bit that crosses into the
  word above or below), the horizontal ones the neighbouring columns."""
  n, w = x.shape
  p = jnp.pad(x, ((1, 1), (0, 0)))
  v = x | (x << 1) | (x >> 1) | (p[:n] >> (_WORD - 1)) | (p[2:] << (_WORD - 1))
  q = jnp.pad(v, ((0, 0), (1, 1)))
  return q[:, :w] | q[:, 1:w + 1] | q[:, 2:]


def hysteresis(weak: jax.Array, strong: jax.Array) -> jax.Array:
  """Pixels of ``weak`` 8-connected (through ``weak``) to a ``strong`` pixel, bool [H, W].

  OpenCV grows edges from a stack; the fixed point of ``edges = weak & dilate(edges)`` from
  ``strong`` is the same set, reached here with a ``lax.while_loop`` of one dilation per trip
  on the rows packed 32 to a uint32 word (``pack_rows``), cheaper than the same loop on bool
  pixels (more dilations per trip were slower: XLA fused them and recomputed the earlier ones
  for every neighbour; docs/speed.md).
  """
  weak_words = pack_rows(weak)

  def body(state):
    edges, _ = state
    new = weak_words & _dilate8_packed(edges)
    return new, jnp.any(new != edges)

  edges, _ = jax.lax.while_loop(lambda s: s[1], body, (pack_rows(strong), jnp.bool_(True)))
  return unpack_rows(edges, weak.shape[0])


def canny(image_u8: jax.Array, low: float = 50, high: float = 150) -> jax.Array:
  """``cv2.Canny(image_u8, low, high)`` (aperture 3, L2gradient=False): uint8 [H, W], 0 or 255."""
  weak, strong = canny_candidates(image_u8, low, high)
  return jnp.where(hysteresis(weak, strong), jnp.uint8(255), jnp.uint8(0))


# Float32 y + m equals m additions of 1 one at a time (OpenCV's in-row moves) for every float32 y
# in {0} U [1, 48) and m <= 6; m = 7 differs for 2**20 values of y (checked exhaustively,
# tests/test_corruptions_weather.py): the sum crosses at most one power of two that rounds apart.
_EXACT_AXIAL_JUMP = 6


def _doubling_jumps(reach: int) -> list[int]:
  """Jumps m_1, m_2, ... of a doubling min-plus chain that covers 0..``reach`` moves.

  After jumps m_1..m_k every run of 0..(m_1 + .. + m_k) moves is represented, so a jump may be
  at most one more than the runs covered so far; jumps are capped at ``_EXACT_AXIAL_JUMP``.
  """
  jumps, covered = [], 0
  while covered < reach:
    m = min(_EXACT_AXIAL_JUMP, covered + 1, reach - covered)
    jumps.append(m)
    covered += m
  return jumps


def _row_chain(t: jax.Array, big, reach: int, from_right: bool) -> jax.Array:
  """``d[c] = min(t[c], fl32(d[c -+ 1] + 1))`` along the last axis, swept from the left (or the
  right), exact wherever ``d < reach + 1``.

  The sequential sweep's value at c is the minimum over k of ``t[c - k]`` plus k axial moves
  (float32 additions of 1 one at a time; monotone, so they commute with the minimum).  Doubling
  computes it in ``len(_doubling_jumps(reach))`` steps instead of ``reach``: step m takes
  ``min(d[c], d[c - m] + m)``, and one float32 addition of m <= 6 rounds exactly as m additions
  of 1 (``_EXACT_AXIAL_JUMP``), so the result is OpenCV's bit for bit, by construction.  Runs of
  more than ``reach`` moves only give values > reach.  (An earlier doubling with jumps up to 8
  was not exact: y + 8 rounds once where 8 additions of 1 round up to four times.)
  """
  pad = [(0, 0)] * (t.ndim - 1) + [(0, reach) if from_right else (reach, 0)]
  d = jnp.pad(t, pad, constant_values=big)
  for m in _doubling_jumps(reach):
    if from_right:
      d = jnp.minimum(d[..., :-m], d[..., m:] + jnp.float32(m * _W_AXIAL))
    else:
      d = jnp.minimum(d[..., m:], d[..., :-m] + jnp.float32(m * _W_AXIAL))
  return d


def _chamfer_sweep(rows: jax.Array, big, reach: int, reverse: bool) -> jax.Array:
  """One of OpenCV's two raster passes of the 5x5 mask over ``rows`` [H, ..., W].

  Forward (top to bottom, left to right): each pixel takes the minimum of itself, the pixel
  to its left + 1 and, from the two rows above, (r-1, c) + 1, (r-1, c-+1) + 1.4, (r-1, c-+2)
  and (r-2, c-+1) + 2.1969.  Backward (``reverse``): the mirrored mask, bottom to top, right to
  left.  One ``lax.scan`` step per row, vectorised over the columns and the leading batch axes.
  """
  w = rows.shape[-1]
  pad = [(0, 0)] * (rows.ndim - 2) + [(2, 2)]

  def row(carry, current):
    far, near = carry
    pn = jnp.pad(near, pad, constant_values=big)
    pf = jnp.pad(far, pad, constant_values=big)
    axial = pn[..., 2:w + 2]
    diagonal = jnp.minimum(pn[..., 1:w + 1], pn[..., 3:w + 3])
    knight = jnp.minimum(jnp.minimum(pn[..., 0:w], pn[..., 4:w + 4]),
                         jnp.minimum(pf[..., 1:w + 1], pf[..., 3:w + 3]))
    t = jnp.minimum(jnp.minimum(current, axial + jnp.float32(_W_AXIAL)),
                    jnp.minimum(diagonal + jnp.float32(_W_DIAG), knight + jnp.float32(_W_KNIGHT)))
    out = _row_chain(t, big, reach, from_right=reverse)
    return (near, out), out

  outside = jnp.full(rows.shape[1:], big, jnp.float32)
  # Two rows per loop trip: fewer loop and copy steps; 3 or 4 rows were much slower (XLA fused
  # the chains of consecutive rows and recomputed them; docs/speed.md).
  _, swept = jax.lax.scan(row, (outside, outside), rows, reverse=reverse, unroll=2)
  return swept


def chamfer_distance(zero: jax.Array, cap: float = 20.0) -> jax.Array:
  """``min(cv2.distanceTransform(src, DIST_L2, 5), cap)``: float32 [..., H, W].

  ``zero`` is bool [..., H, W] (any leading batch axes), True where ``src == 0``.  OpenCV's own
  algorithm: a forward and a backward raster pass of the 5x5 chamfer mask (weights 1, 1.4,
  2.1969 for axial, diagonal and knight moves) in float32, with the same additions in the same
  order, so the distances <= ``cap`` are OpenCV's bit for bit and the larger ones stay > cap
  (pixels outside the image are never zero).  The scan runs over the rows; within a row the
  left-to-right dependence is resolved by doubling over runs of up to ``ceil(cap) - 1`` moves
  (``_row_chain``), far fewer operations than ``ceil(cap)`` rounds of parallel relaxation over
  the whole 5x5 mask (an earlier version, equal to within 2 ulps); batching more frames into one
  call did not help (the per-row work is compute-bound, not loop overhead).
  """
  # A distance below cap is a path of fewer than cap moves (each adds >= 1); longer in-row runs
  # give values >= cap, which the cap maps to cap whatever they are.
  reach = int(np.ceil(cap)) - 1
  big = jnp.float32(cap + 8.0)  # anything > cap; + any weight stays > cap
  d0 = jnp.moveaxis(jnp.where(zero, jnp.float32(0), big), -2, 0)
  d = _chamfer_sweep(_chamfer_sweep(d0, big, reach, False), big, reach, True)
  return jnp.minimum(jnp.moveaxis(d, 0, -2), jnp.float32(cap))


def _round_up_margin(max_value: int) -> np.ndarray:
  """For k = 0..max_value+1: half the float32 spacing just below k, in units of 2**-23 / 9.

  A mean ``S / 9`` (S in units of 2**-23) within this margin below the integer k rounds to k
  when OpenCV casts it to float32.
  """
  k = np.arange(max_value + 2, dtype=np.float32)
  below = k - np.nextafter(k, np.float32(-1))
  return np.floor(below.astype(np.float64) * 2**_DIST_FRAC_BITS * 9 / 2).astype(np.int64)


def blur3_trunc_u8(dist: jax.Array, cap: int = 20) -> jax.Array:
  """``cv2.blur(dist, (3, 3)).astype(uint8)`` for float32 distances (0 or in [1, cap]).

  OpenCV sums the float32 box in double (exactly), multiplies by 1/9, rounds to float32, and
  numpy truncates.  Distances are multiples of 2**-23, so the sum ``S`` is an exact int32 and
  the result is ``S // (9 * 2**23)``, plus one where the float32 rounding reaches the next
  integer.  BORDER_REFLECT_101.
  """
  fixed = jnp.round(dist * jnp.float32(2**_DIST_FRAC_BITS)).astype(jnp.int32)
  total = _box3_sum_int(fixed)
  unit = 9 << _DIST_FRAC_BITS
  q = total // unit
  r = total - q * unit
  return (q + (r >= unit - _margin_at(q + 1, cap))).astype(jnp.uint8)


def _margin_at(k: jax.Array, max_value: int) -> jax.Array:
  """``_round_up_margin(max_value)[k]`` as a few compares: the table is a step function (the
  float32 spacing doubles at each power of two), and a select chain is 3x cheaper on CPU than
  gathering from it."""
  table = _round_up_margin(max_value)
  assert np.all(np.diff(table) >= 0)
  margin = jnp.full(k.shape, int(table[0]), jnp.int32)
  for i in np.flatnonzero(np.diff(table)) + 1:
    margin = jnp.where(k >= int(i), jnp.int32(int(table[i])), margin)
  return margin


def distance_blur_u8(zero: jax.Array, cap: float = 20.0) -> jax.Array:
  """``cv2.blur(threshold(distanceTransform(.), cap, TRUNC), (3, 3)).astype(uint8)``."""
  return blur3_trunc_u8(chamfer_distance(zero, cap), int(cap))


def equalize_hist(image_u8: jax.Array, levels: int = 256) -> jax.Array:
  """``cv2.equalizeHist``: uint8 [H, W] -> uint8 [H, W].

  With ``i`` the lowest occupied level: ``lut[i] = 0``, ``lut[j] = cvRound(float32(sum of
  hist[i+1..j]) * float32(255 / (total - hist[i])))`` (round half to even); a constant image is
  returned as it is.  ``levels``: a bound on the values (all < levels; the water mask's blurred
  distances are <= 20); below 256 the LUT is applied as a chain of selects, not a gather.
  """
  v = image_u8.astype(jnp.int32)
  hist = jnp.bincount(v.reshape(-1), length=levels)
  total = v.size
  first = jnp.argmax(hist > 0)
  h_first = hist[first]
  scale = jnp.float32(255.0) / (total - h_first).astype(jnp.float32)
  running = (jnp.cumsum(hist) - h_first).astype(jnp.float32)
  lut = jnp.clip(jnp.round(running * scale), 0, 255)
  lut = jnp.where(jnp.arange(levels) <= first, 0, lut).astype(jnp.uint8)

  def apply(x):
    if levels == 256:
      return lut[v]
    out = jnp.full_like(x, lut[levels - 1])
    for level in range(levels - 2, -1, -1):
      out = jnp.where(x <= level, lut[level], out)
    return out

  # A constant image is returned as it is.  ``applied_if`` keeps the result in memory on CPU,
  # where a select let XLA fuse the LUT gather and the distance blur before it into every tap
  # of the 3x3 filters that follow (docs/speed.md, "CPU workarounds").
  return fusion.applied_if(h_first != total, apply, image_u8)


def filter2d_u8(image_u8: jax.Array, kernel: np.ndarray) -> jax.Array:
  """``cv2.filter2D(img, CV_8U, kernel)`` for a 3x3 integer kernel: exact sum, saturated."""
  total = _correlate3x3_int(image_u8.astype(jnp.int32), np.asarray(kernel), "reflect101")
  return jnp.clip(total, 0, 255).astype(jnp.uint8)


def box_blur3_u8(image_u8: jax.Array) -> jax.Array:
  """``cv2.blur(img_u8, (3, 3))``: the rounded mean (BORDER_REFLECT_101), uint8."""
  total = _box3_sum_int(image_u8.astype(jnp.int32))
  # total / 9 is never k + 1/2, so rounding half-up in integers equals OpenCV's cvRound.
  return ((total * 2 + 9) // 18).astype(jnp.uint8)


def liquid_to_u8(liquid: jax.Array) -> jax.Array:
  """``(liquid * 255).astype(np.uint8)`` for liquid >= 0: truncation, then modulo 256.

  The smoothed layer can exceed 1 (a corner pixel weighs heavily under the 'nearest' border);
  NumPy's float -> uint8 cast then wraps (260.4 -> 4 on x86, *measured*), and so does this.
  """
  return (jnp.floor(liquid * jnp.float32(255)).astype(jnp.int32) & 255).astype(jnp.uint8)


def water_dist(liquid_u8: jax.Array) -> jax.Array:
  """The float32 ``dist`` of the water mask (everything between Canny and the last blur)."""
  edges = canny(liquid_u8, 50, 150)
  dist = distance_blur_u8(edges == 255, 20.0)
  dist = equalize_hist(dist, levels=21)
  dist = filter2d_u8(dist, WATER_KERNEL)
  return box_blur3_u8(dist).astype(jnp.float32)


def water_mask(liquid_u8: jax.Array, intensity) -> jax.Array:
  """``m = L8 * dist; m /= max(m); m *= intensity``: float32 [H, W] (NaN everywhere if max is 0)."""
  m = liquid_u8.astype(jnp.float32) * water_dist(liquid_u8)
  m = m / jnp.max(m)
  return m * jnp.asarray(intensity, jnp.float32)


def render_water(image01: jax.Array, liquid: jax.Array, intensity) -> jax.Array:
  """Pale-turquoise water drops: float32 [H, W, 3] = ``clip(x + m * color, 0, 1) * 255``.

  Args:
    image01: float32 [H, W, 3], the clean image / 255 (``np.array(x, float32) / 255.``).
    liquid: float [H, W] >= 0, the thresholded liquid layer (before ``* 255``).
    intensity: scalar (may be traced): 0.6 / 0.6 / 0.5 in ImageNet-C s1-3, 0.6 in ImageNet-P.

  Returns:
    float32 [H, W, 3] in [0, 255] before the caller's ``np.uint8`` truncation.  When the liquid
    layer has no edges at all the original divides 0 by 0 (NaN); ``np.uint8`` of that NaN image
    is all zeros on x86, and this function returns 0 there explicitly.
  """
  m = water_mask(liquid_to_u8(liquid), intensity)[..., None]
  color = jnp.asarray(np.float32(np.array(WATER_COLOR, np.float64) / 255.0))
  out = jnp.clip(image01 + m * color, 0, 1) * jnp.float32(255)
  return jnp.where(jnp.isnan(out), jnp.float32(0), out)
