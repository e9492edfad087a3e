"""The lossy part of a baseline JPEG save + load, as Pillow 12.3 / libjpeg-turbo do it, in JAX.

``PIL.Image.save(f, 'JPEG', quality=q)`` then ``Image.open(f)`` loses information only in these
steps, all integer arithmetic in libjpeg(-turbo) and reproduced here with the same integers
(Huffman coding is lossless and skipped):

1. RGB -> YCbCr (jccolor.c, 16-bit fixed point):
   Y  = (19595 R + 38470 G + 7471 B + 2**15) >> 16,
   Cb = (-11059 R - 21709 G + 32768 B + 128 * 2**16 + 2**15 - 1) >> 16,
   Cr = (32768 R - 27439 G - 5329 B + 128 * 2**16 + 2**15 - 1) >> 16.
2. 4:2:0 chroma subsampling (Pillow's default at every quality; jcsample.c h2v2_downsample):
   the 2x2 sum plus a bias alternating 1, 2, 1, 2 along the row, ``>> 2``.
3. Level shift by -128 and the 8x8 forward DCT "islow" (jfdctint.c, libjpeg's default
   JDCT_ISLOW: 13-bit constants, 2 extra bits after the row pass; output 8x the true DCT).
4. Quantisation by the Annex K tables scaled by jpeg_quality_scaling (q < 50: 5000 / q, else
   200 - 2q; entry (t * scale + 50) // 100 clamped to 1..255 since Pillow forces baseline),
   rounding half away from zero: sign(c) * ((|c| + 4 t) // (8 t)).
5. Decoder: dequantise (c * t), inverse DCT islow (jidctint.c) with its range limit
   (+128, values wrapped to 10 bits then clamped to 0..255).
6. Fancy (triangle) chroma upsampling, Pillow's decoder default (jdsample.c
   h2v2_fancy_upsample): vertical 3 * near + far, then horizontal (3 * this + left + 8) >> 4 and
   (3 * this + right + 7) >> 4, edges replicated.  (libjpeg-turbo's merged upsampler is used only
   without fancy upsampling.)
7. YCbCr -> RGB (jdcolor.c): R = Y + ((91881 Cr' + 2**15) >> 16),
   G = Y + ((-22554 Cb' + 2**15 - 46802 Cr') >> 16), B = Y + ((116130 Cb' + 2**15) >> 16),
   Cb' = Cb - 128, Cr' = Cr - 128, clamped to 0..255.

Any height and width: the planes are padded by edge replication as the encoder pads them
(columns before downsampling, rows after it; blocks are independent, so extra blocks do not
change visible pixels) and the chroma planes are upsampled from their true size
ceil(H/2) x ceil(W/2), the decoder replicating their edges.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# ITU-T T.81 Annex K.1 tables (natural row-major order), as libjpeg's jcparam.c.
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99], np.int32).reshape(8, 8)
STD_CHROMINANCE = np.array([
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99], np.int32).reshape(8, 8)

# 13-bit DCT constants of jfdctint.c / jidctint.c: FIX(x) = round(x * 2**13).
CONST_BITS = 13
PASS1_BITS = 2
FIX_0_298631336 = 2446
FIX_0_390180644 = 3196
FIX_0_541196100 = 4433
FIX_0_765366865 = 6270
FIX_0_899976223 = 7373
FIX_1_175875602 = 9633
FIX_1_501321110 = 12299
FIX_1_847759065 = 15137
FIX_1_961570560 = 16069
FIX_2_053119869 = 16819
FIX_2_562915447 = 20995
FIX_3_072711026 = 25172


def _fix16(x: float) -> int:
  return int(x * (1 << 16) + 0.5)


def quant_tables(quality) -> jnp.ndarray:
  """libjpeg's jpeg_set_quality(q, force_baseline=TRUE): int32 [2, 8, 8] (luma, chroma).

  ``quality`` may be traced (int in 1..100).
  """
  q = jnp.clip(jnp.asarray(quality, jnp.int32), 1, 100)
  scale = jnp.where(q < 50, 5000 // q, 200 - 2 * q)
  base = jnp.asarray(np.stack([STD_LUMINANCE, STD_CHROMINANCE]))
  return jnp.clip((base * scale + 50) // 100, 1, 255)


# ------------------------------------------------------------------------------------------------
# colour conversion and chroma resampling


def rgb_to_ycc(rgb):
  """jccolor.c rgb_ycc_convert: uint8 [..., 3] -> int32 Y, Cb, Cr in 0..255 ([...] each)."""
  r, g, b = (rgb[..., i].astype(jnp.int32) for i in range(3))
  half = 1 << 15
  offset = 128 << 16
  y = (_fix16(0.29900) * r + _fix16(0.58700) * g + _fix16(0.11400) * b + half) >> 16
  cb = (-_fix16(0.16874) * r - _fix16(0.33126) * g + _fix16(0.5) * b + offset + half - 1) >> 16
  cr = (_fix16(0.5) * r - _fix16(0.41869) * g - _fix16(0.08131) * b + offset + half - 1) >> 16
  return y, cb, cr


def ycc_to_rgb(y, cb, cr):
  """jdcolor.c ycc_rgb_convert: int32 Y, Cb, Cr [...] -> uint8 [..., 3]."""
  half = 1 << 15
  cb = cb - 128
  cr = cr - 128
  r = y + ((_fix16(1.40200) * cr + half) >> 16)
  g = y + ((-_fix16(0.34414) * cb + half - _fix16(0.71414) * cr) >> 16)
  b = y + ((_fix16(1.77200) * cb + half) >> 16)
  return jnp.clip(jnp.stack([r, g, b], axis=-1), 0, 255).astype(jnp.uint8)


def downsample_h2v2(plane):
  """jcsample.c h2v2_downsample: int32 [..., 2H, 2W] -> [..., H, W], bias 1, 2, 1, 2, ... >> 2."""
  s = plane[..., 0::2, 0::2] + plane[..., 0::2, 1::2] + plane[..., 1::2, 0::2] + plane[..., 1::2, 1::2]
  bias = 1 + (jnp.arange(s.shape[-1]) & 1)
  return (s + bias) >> 2


def upsample_h2v2_fancy(plane):
  """jdsample.c h2v2_fancy_upsample: int32 [..., H, W] -> [..., 2H, 2W] (edges replicated)."""
  above = jnp.concatenate([plane[..., :1, :], plane[..., :-1, :]], axis=-2)
  below = jnp.concatenate([plane[..., 1:, :], plane[..., -1:, :]], axis=-2)
  # Output rows 2i (neighbour above) and 2i+1 (neighbour below): column sums 3 * this + that.
  colsum = jnp.stack([3 * plane + above, 3 * plane + below], axis=-2)  # [..., H, 2, W]
  left = jnp.concatenate([colsum[..., :1], colsum[..., :-1]], axis=-1)
  right = jnp.concatenate([colsum[..., 1:], colsum[..., -1:]], axis=-1)
  even = (3 * colsum + left + 8) >> 4
  odd = (3 * colsum + right + 7) >> 4
  out = jnp.stack([even, odd], axis=-1)  # [..., H, 2, W, 2]
  shape = plane.shape[:-2] + (2 * plane.shape[-2], 2 * plane.shape[-1])
  return jnp.reshape(out, shape)


# ------------------------------------------------------------------------------------------------
# 8x8 integer DCTs
#
# Each 1-D pass of libjpeg's islow DCTs is an exact integer linear map followed by one DESCALE
# (round half up by a right shift) per output: the butterflies only add, subtract and multiply by
# integer constants.  The passes are therefore integer 8x8 matrices (built here on the host by
# running the butterflies on unit vectors) applied with int32 dots, then the per-output shift.


def _descale(x, n):
  return (x + (1 << (n - 1))) >> n if n > 0 else x


def _fdct_butterfly(d, final: bool):
  """jpeg_fdct_islow's 1-D pass before its DESCALEs: (8 linear outputs, 8 shifts)."""
  tmp0, tmp7 = d[0] + d[7], d[0] - d[7]
  tmp1, tmp6 = d[1] + d[6], d[1] - d[6]
  tmp2, tmp5 = d[2] + d[5], d[2] - d[5]
  tmp3, tmp4 = d[3] + d[4], d[3] - d[4]
  tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
  tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
  out = [None] * 8
  shift = CONST_BITS + PASS1_BITS if final else CONST_BITS - PASS1_BITS
  if final:  # DESCALE(tmp10 +- tmp11, PASS1_BITS)
    out[0], out[4] = tmp10 + tmp11, tmp10 - tmp11
  else:  # (tmp10 +- tmp11) << PASS1_BITS
    out[0], out[4] = (tmp10 + tmp11) * (1 << PASS1_BITS), (tmp10 - tmp11) * (1 << PASS1_BITS)
  z1 = (tmp12 + tmp13) * FIX_0_541196100
  out[2] = z1 + tmp13 * FIX_0_765366865
  out[6] = z1 - tmp12 * FIX_1_847759065
  z1, z2, z3, z4 = tmp4 + tmp7, tmp5 + tmp6, tmp4 + tmp6, tmp5 + tmp7
  z5 = (z3 + z4) * FIX_1_175875602
  tmp4 = tmp4 * FIX_0_298631336
  tmp5 = tmp5 * FIX_2_053119869
  tmp6 = tmp6 * FIX_3_072711026
  tmp7 = tmp7 * FIX_1_501321110
  z1 = z1 * -FIX_0_899976223
  z2 = z2 * -FIX_2_562915447
  z3 = z3 * -FIX_1_961570560 + z5
  z4 = z4 * -FIX_0_390180644 + z5
  out[7] = tmp4 + z1 + z3
  out[5] = tmp5 + z2 + z4
  out[3] = tmp6 + z2 + z3
  out[1] = tmp7 + z1 + z4
  dc_shift = PASS1_BITS if final else 0
  return out, [dc_shift, shift, shift, shift, dc_shift, shift, shift, shift]


def _idct_butterfly(d, final: bool):
  """jpeg_idct_islow's 1-D pass before its DESCALEs: (8 linear outputs, 8 shifts)."""
  z2, z3 = d[2], d[6]
  z1 = (z2 + z3) * FIX_0_541196100
  tmp2 = z1 - z3 * FIX_1_847759065
  tmp3 = z1 + z2 * FIX_0_765366865
  tmp0 = (d[0] + d[4]) * (1 << CONST_BITS)
  tmp1 = (d[0] - d[4]) * (1 << CONST_BITS)
  tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
  tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
  tmp0, tmp1, tmp2, tmp3 = d[7], d[5], d[3], d[1]
  z1, z2, z3, z4 = tmp0 + tmp3, tmp1 + tmp2, tmp0 + tmp2, tmp1 + tmp3
  z5 = (z3 + z4) * FIX_1_175875602
  tmp0 = tmp0 * FIX_0_298631336
  tmp1 = tmp1 * FIX_2_053119869
  tmp2 = tmp2 * FIX_3_072711026
  tmp3 = tmp3 * FIX_1_501321110
  z1 = z1 * -FIX_0_899976223
  z2 = z2 * -FIX_2_562915447
  z3 = z3 * -FIX_1_961570560 + z5
  z4 = z4 * -FIX_0_390180644 + z5
  tmp0 = tmp0 + z1 + z3
  tmp1 = tmp1 + z2 + z4
  tmp2 = tmp2 + z2 + z3
  tmp3 = tmp3 + z1 + z4
  shift = CONST_BITS + PASS1_BITS + 3 if final else CONST_BITS - PASS1_BITS
  out = [tmp10 + tmp3, tmp11 + tmp2, tmp12 + tmp1, tmp13 + tmp0,
         tmp13 - tmp0, tmp12 - tmp1, tmp11 - tmp2, tmp10 - tmp3]
  return out, [shift] * 8


def _pass_matrix(butterfly, final: bool) -> tuple[np.ndarray, np.ndarray]:
  """(int32 [8 out, 8 in] matrix, int32 [8] shifts) of one 1-D pass."""
  eye = np.eye(8, dtype=np.int64)
  out, shifts = butterfly([eye[i] for i in range(8)], final)
  mat = np.stack(out)  # out[k][n] = coefficient of input n in output k
  assert np.abs(mat).max() < 2**31
  return mat.astype(np.int32), np.asarray(shifts, np.int32)


FDCT_ROWS = _pass_matrix(_fdct_butterfly, False)
FDCT_COLS = _pass_matrix(_fdct_butterfly, True)
IDCT_COLS = _pass_matrix(_idct_butterfly, False)
IDCT_ROWS = _pass_matrix(_idct_butterfly, True)


def _apply_pass(blocks, mat_shift, axis: int):
  """One 1-D pass along ``axis`` (-1 rows, -2 columns) of int32 [..., 8, 8] blocks."""
  mat, shifts = (jnp.asarray(a) for a in mat_shift)
  if axis == -1:
    y = jnp.einsum("...rc,kc->...rk", blocks, mat, precision=jax.lax.Precision.HIGHEST,
                   preferred_element_type=jnp.int32)
    sh = shifts[None, :]
  else:
    y = jnp.einsum("...rc,kr->...kc", blocks, mat, precision=jax.lax.Precision.HIGHEST,
                   preferred_element_type=jnp.int32)
    sh = shifts[:, None]
  half = jnp.where(sh > 0, jnp.left_shift(1, jnp.maximum(sh - 1, 0)), 0)
  return jnp.right_shift(y + half, sh)


def fdct_islow(blocks):
  """jpeg_fdct_islow: int32 [..., 8, 8] level-shifted samples -> int32 8x-scaled DCT.

  Row pass first, then the column pass.
  """
  return _apply_pass(_apply_pass(blocks, FDCT_ROWS, -1), FDCT_COLS, -2)


def idct_islow(coefs):
  """jpeg_idct_islow: dequantised int32 [..., 8, 8] -> int32 samples 0..255 [..., 8, 8].

  Column pass first (into the workspace), then the row pass; the result is
  range_limit[x + 128] with x wrapped to 10 bits (libjpeg's ``& RANGE_MASK``).
  """
  x = _apply_pass(_apply_pass(coefs, IDCT_COLS, -2), IDCT_ROWS, -1)
  x = ((x + 512) & 1023) - 512
  return jnp.clip(x + 128, 0, 255)


_RECIPROCALS = np.float32(1.0 / (8.0 * np.maximum(np.arange(256), 1)))  # [t] = 1 / (8 t)


def quantize(coefs, table):
  """libjpeg's quantize(): round half away from zero of coef / (8 t) ([..., 8, 8] int32)."""
  div = 8 * table
  num = jnp.abs(coefs) + (div >> 1)
  # floor(num / div) without an integer division (5x the cost of the rest on CPU) and without
  # an in-program float division (XLA CPU may compile it to an approximate reciprocal: measured
  # not bit-exact under jit): num times the correctly rounded float32 1 / div from a host table
  # is within 1e-3 of the quotient for num < 2^20, so the floor is off by at most one, which
  # the integer comparisons correct exactly.
  recip = jnp.asarray(_RECIPROCALS)[jnp.clip(table, 1, 255)]
  mag = (num.astype(jnp.float32) * recip).astype(jnp.int32)
  mag = mag + (num >= (mag + 1) * div).astype(jnp.int32) - (num < mag * div).astype(jnp.int32)
  return jnp.where(coefs < 0, -mag, mag)


def _to_blocks(plane):
  """[..., 8m, 8n] -> [..., m, n, 8, 8]."""
  *lead, h, w = plane.shape
  x = jnp.reshape(plane, (*lead, h // 8, 8, w // 8, 8))
  return jnp.swapaxes(x, -3, -2)


def _from_blocks(blocks):
  """[..., m, n, 8, 8] -> [..., 8m, 8n]."""
  *lead, m, n, _, _ = blocks.shape
  return jnp.reshape(jnp.swapaxes(blocks, -3, -2), (*lead, 8 * m, 8 * n))


def lossy_plane(plane, table):
  """Level shift, FDCT, quantise, dequantise, IDCT of int32 [..., 8m, 8n] with table [8, 8]."""
  coefs = fdct_islow(_to_blocks(plane - 128))
  recon = idct_islow(quantize(coefs, table) * table)
  return _from_blocks(recon)


def _pad_edge(plane, h, w):
  """Replicate the last row / column of [..., H, W] up to [..., h, w]."""
  ph, pw = h - plane.shape[-2], w - plane.shape[-1]
  if ph == 0 and pw == 0:
    return plane
  pad = [(0, 0)] * (plane.ndim - 2) + [(0, ph), (0, pw)]
  return jnp.pad(plane, pad, mode="edge")


def jpeg_roundtrip(images_uint8, quality) -> jax.Array:
  """PIL ``save(JPEG, quality)`` then ``open``: uint8 [..., H, W, 3] -> uint8 [..., H, W, 3].

  Args:
    images_uint8: uint8 RGB, any leading batch axes.
    quality: int 1..100 (may be a traced int32 scalar).

  Compiled once per input shape (quality is a traced argument), so eager callers such as
  ``imagenet_cp.release_jpeg`` do not run it op by op.
  """
  images = jnp.asarray(images_uint8)
  if images.dtype != jnp.uint8 or images.ndim < 3 or images.shape[-1] != 3:
    raise ValueError(f"jpeg_roundtrip needs uint8 [..., H, W, 3], got {images.dtype} {images.shape}")
  return _roundtrip(images, jnp.asarray(quality, jnp.int32))


@jax.jit
def _roundtrip(images, quality):
  h, w = images.shape[-3], images.shape[-2]
  # Encoder padding (jcsample.c expand_right_edge, jcprepct.c expand_bottom_edge): columns are
  # replicated before downsampling, up to whole chroma blocks; rows only up to an even count
  # before downsampling, then each component's last row is replicated up to whole blocks.
  wp = -(-w // 16) * 16
  tables = quant_tables(quality)
  y, cb, cr = (_pad_edge(p, h + h % 2, wp) for p in rgb_to_ycc(images))
  y = _pad_edge(y, -(-h // 8) * 8, wp)
  y = lossy_plane(y, tables[0])[..., :h, :w]
  ch, cw = -(-h // 2), -(-w // 2)
  chroma = []
  for plane in (cb, cr):
    small = downsample_h2v2(plane)
    small = _pad_edge(small, -(-ch // 8) * 8, wp // 2)
    small = lossy_plane(small, tables[1])[..., :ch, :cw]
    chroma.append(upsample_h2v2_fancy(small)[..., :h, :w])
  return ycc_to_rgb(y, *chroma)
