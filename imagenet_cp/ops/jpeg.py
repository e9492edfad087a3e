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

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp import workarounds
from imagenet_cp.ops import fusion

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


def _host_quant_tables(quality: int) -> np.ndarray:
  """jpeg_set_quality(q, force_baseline=TRUE) on the host: int32 [2, 8, 8] (luma, chroma)."""
  q = min(max(int(quality), 1), 100)
  scale = 5000 // q if q < 50 else 200 - 2 * q
  base = np.stack([STD_LUMINANCE, STD_CHROMINANCE]).astype(np.int64)
  return np.clip((base * scale + 50) // 100, 1, 255).astype(np.int32)


# Every quality's tables, and the float32 constants of the exact quantiser (``quantize``):
# 4 t + 1/2 and the correctly rounded 1 / (8 t).  Host constants indexed by the (traced)
# quality, so no table arithmetic is repeated per coefficient inside the program.
_TABLES = np.stack([_host_quant_tables(q) for q in range(1, 101)])  # [100, 2, 8, 8]
_HALF_STEP = (4 * _TABLES + 0.5).astype(np.float32)
_RECIPROCAL = (np.float32(1.0) / (8 * _TABLES).astype(np.float32)).astype(np.float32)


_RECIPROCAL_OF_STEP = (np.float32(1.0) / (8 * np.maximum(np.arange(256), 1)).astype(np.float32)
                       ).astype(np.float32)  # [t] = fl(1 / (8 t))


def quant_tables(quality) -> jnp.ndarray:
  """libjpeg's jpeg_set_quality(q, force_baseline=TRUE): int32 [2, 8, 8] (luma, chroma).

  ``quality`` may be traced (int, clipped to 1..100).
  """
  return jnp.asarray(_TABLES)[_quality_index(quality)]


def _quality_index(quality):
  return jnp.clip(jnp.asarray(quality, jnp.int32), 1, 100) - 1


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


def ycc_to_rgb(y, cb, cr, axis: int = -1):
  """jdcolor.c ycc_rgb_convert: int32 Y, Cb, Cr [...] -> uint8 R, G, B stacked on ``axis``."""
  half = 1 << 15
  cb = cb - 128
  cr = cr - 128
  r = y + ((_fix16(1.40200) * cr + half) >> 16)
  g = y + ((-_fix16(0.34414) * cb + half - _fix16(0.71414) * cr) >> 16)
  b = y + ((_fix16(1.77200) * cb + half) >> 16)
  return jnp.clip(jnp.stack([r, g, b], axis=axis), 0, 255).astype(jnp.uint8)


def downsample_h2v2(plane):
  """jcsample.c h2v2_downsample: int32 [..., 2H, 2W] -> [..., H, W], bias 1, 2, 1, 2, ... >> 2."""
  s = plane[..., 0::2, 0::2] + plane[..., 0::2, 1::2] + plane[..., 1::2, 0::2] + plane[..., 1::2, 1::2]
  bias = 1 + (jnp.arange(s.shape[-1]) & 1)
  return (s + bias) >> 2


def _edge_shift(plane, step: int, axis: int):
  """``plane`` moved by one sample along ``axis`` (step +1: the next sample, -1: the previous
  one), the edge sample replicated."""
  n = plane.shape[axis]
  inner = jax.lax.slice_in_dim(plane, max(step, 0), n + min(step, 0), axis=axis)
  edge = jax.lax.slice_in_dim(plane, n - 1 if step > 0 else 0, n if step > 0 else 1, axis=axis)
  parts = [inner, edge] if step > 0 else [edge, inner]
  return jnp.concatenate(parts, axis=axis)


def upsample_phases(plane):
  """jdsample.c h2v2_fancy_upsample as its 4 phases: int32 [..., H, W] -> ``out[a][b]``, the
  output samples (2i + a, 2j + b), each [..., H, W] (edges replicated).

  Row 2i + a weighs the nearer input row 3 : 1 against row i - 1 (a = 0) or i + 1 (a = 1);
  the horizontal step is (3 * this + left + 8) >> 4 (b = 0) or (3 * this + right + 7) >> 4.
  Phases keep every array the size of the input: no interleaving until the colour conversion.
  """
  out = []
  for a in (0, 1):
    colsum = 3 * plane + _edge_shift(plane, 2 * a - 1, -2)
    out.append([(3 * colsum + _edge_shift(colsum, 2 * b - 1, -1) + (7 if b else 8)) >> 4
                for b in (0, 1)])
  return out


def _interleave(phases, ndim_rest: int):
  """``phases[a][b]`` [..., H, W, *rest] -> [..., 2H, 2W, *rest] (sample (2i + a, 2j + b));
  ``rest`` has ``ndim_rest`` axes."""
  rows = [jnp.stack(phases[a], axis=-1 - ndim_rest) for a in (0, 1)]  # [..., H, W, 2, *rest]
  out = jnp.stack(rows, axis=-3 - ndim_rest)  # [..., H, 2, W, 2, *rest]
  *lead, h, _, w, _ = out.shape[:out.ndim - ndim_rest]
  return jnp.reshape(out, (*lead, 2 * h, 2 * w) + out.shape[out.ndim - ndim_rest:])


def _interleave_planar(planar):
  """uint8 [..., 2 (a), 2 (b), 3, H, W] -> [..., 2H, 2W, 3], sample (2i + a, 2j + b)."""
  nd = planar.ndim - 5
  lead = planar.shape[:nd]
  h, w = planar.shape[-2:]
  out = jnp.transpose(planar, (*range(nd), nd + 3, nd, nd + 4, nd + 1, nd + 2))
  return jnp.reshape(out, (*lead, 2 * h, 2 * w, 3))


# ------------------------------------------------------------------------------------------------
# 8x8 integer DCTs
#
# Each 1-D pass of libjpeg's islow DCTs only adds, subtracts and multiplies by integer constants,
# then rounds each output once (DESCALE: round half up by a right shift).  The butterflies below
# are run on whole arrays (one slice per input sample), in int32 as libjpeg's INT32 workspace.
# ``_pass_matrix`` turns a pass into its exact integer 8x8 matrix (used to bound magnitudes).


def _descale(x, n):
  return (x + (1 << (n - 1))) >> n if n > 0 else x


def _even_part(p, q):
  """The islow DCTs' even-part rotation (jfdctint.c / jidctint.c): ``(z1 + p c0, z1 - q c1)``
  with ``z1 = (p + q) FIX(0.541196100)``, c0 = FIX(0.765366865), c1 = FIX(1.847759065)."""
  z1 = (p + q) * FIX_0_541196100
  return z1 + p * FIX_0_765366865, z1 - q * FIX_1_847759065


def _odd_part(a, b, c, d):
  """The islow DCTs' odd-part rotation, the same in both directions: the forward DCT's
  tmp4..tmp7 give its outputs 7, 5, 3, 1; the inverse DCT's inputs 7, 5, 3, 1 give its
  tmp0..tmp3."""
  z1, z2, z3, z4 = a + d, b + c, a + c, b + d
  z5 = (z3 + z4) * FIX_1_175875602
  z1 = z1 * -FIX_0_899976223
  z2 = z2 * -FIX_2_562915447
  z3 = z3 * -FIX_1_961570560 + z5
  z4 = z4 * -FIX_0_390180644 + z5
  return (a * FIX_0_298631336 + z1 + z3, b * FIX_2_053119869 + z2 + z4,
          c * FIX_3_072711026 + z2 + z3, d * FIX_1_501321110 + z1 + z4)


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
  out[2], out[6] = _even_part(tmp13, tmp12)
  out[7], out[5], out[3], out[1] = _odd_part(tmp4, tmp5, tmp6, tmp7)
  dc_shift = PASS1_BITS if final else 0
  return out, [dc_shift, shift, shift, shift, dc_shift, shift, shift, shift]


def _idct_butterfly(d, final: bool):
  """jpeg_idct_islow's 1-D pass before its DESCALEs: (8 linear outputs, 8 shifts)."""
  tmp3, tmp2 = _even_part(d[2], d[6])
  tmp0 = (d[0] + d[4]) * (1 << CONST_BITS)
  tmp1 = (d[0] - d[4]) * (1 << CONST_BITS)
  tmp10, tmp13 = tmp0 + tmp3, tmp0 - tmp3
  tmp11, tmp12 = tmp1 + tmp2, tmp1 - tmp2
  tmp0, tmp1, tmp2, tmp3 = _odd_part(d[7], d[5], d[3], d[1])
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


def _dct_pass(x, butterfly, final: bool, axis: int):
  """One 1-D pass of ``butterfly`` over the 8 samples along ``axis`` of int32 ``x``."""
  samples = [jax.lax.index_in_dim(x, i, axis, keepdims=False) for i in range(8)]
  out, shifts = butterfly(samples, final)
  return jnp.stack([_descale(o, s) for o, s in zip(out, shifts)], axis=axis)


def _row_pass(x, butterfly, final: bool):
  """A pass along each block row of int32 [..., 8n] (the 8 samples of a block are adjacent)."""
  *lead, w = x.shape
  y = _dct_pass(jnp.reshape(x, (*lead, w // 8, 8)), butterfly, final, -1)
  return jnp.reshape(y, x.shape)


def fdct_islow(blocks):
  """jpeg_fdct_islow: int32 [..., 8, 8] level-shifted samples -> int32 8x-scaled DCT.

  Row pass first, then the column pass.
  """
  return _dct_pass(_dct_pass(blocks, _fdct_butterfly, False, -1), _fdct_butterfly, True, -2)


def _range_limit(x):
  """libjpeg's range_limit[x + 128] with x wrapped to 10 bits (``& RANGE_MASK``)."""
  return jnp.clip((((x + 512) & 1023) - 512) + 128, 0, 255)


def idct_islow(coefs):
  """jpeg_idct_islow: dequantised int32 [..., 8, 8] -> int32 samples 0..255 [..., 8, 8].

  Column pass first (into the workspace), then the row pass and the range limit.
  """
  x = _dct_pass(_dct_pass(coefs, _idct_butterfly, False, -2), _idct_butterfly, True, -1)
  return _range_limit(x)


def quantize(coefs, table, half_step=None, reciprocal=None):
  """libjpeg's quantize(): round half away from zero of coef / (8 t), int32 [..., 8, 8] (or
  any shape ``table`` broadcasts to).

  Computed exactly in float32 as floor((|c| + 4 t + 1/2) * fl(1 / (8 t))): for |c| < 2^16 and
  t in 1..255 this equals (|c| + 4 t) // (8 t) (checked exhaustively in
  tests/test_ops_jpeg.py; the 1/2 keeps the product clear of the integers that a rounded
  reciprocal could otherwise fall just short of).  islow FDCT outputs are below 2^13 + 1.
  ``half_step`` and ``reciprocal`` are those float32 constants when the caller has them.
  """
  if half_step is None:
    # A reciprocal table, not an in-program division (XLA:CPU may compile that to an
    # approximate reciprocal: measured not bit-exact under jit).
    half_step = 4 * table.astype(jnp.float32) + 0.5
    reciprocal = jnp.asarray(_RECIPROCAL_OF_STEP)[jnp.clip(table, 1, 255)]
  mag = jnp.floor((jnp.abs(coefs).astype(jnp.float32) + half_step) * reciprocal)
  return jnp.where(coefs < 0, -mag, mag).astype(jnp.int32)


# ------------------------------------------------------------------------------------------------
# the whole codec
#
# All three components go through the DCT together as one int32 array [..., M, 8, W]: the luma
# plane's block rows, then those of Cb and Cr side by side (each chroma plane is W / 2 wide).
# Block rows stay in image order, so the passes need no transposes: the column passes work on
# whole rows of the array, the row passes on the 8 adjacent samples of each block.  One array
# instead of three cut the program's passes over memory threefold.


def lossy_blocks(rows, table, half_step, reciprocal):
  """Level shift, FDCT, quantise, dequantise, IDCT of int32 [..., M, 8, W] block rows.

  ``table`` int32, ``half_step`` and ``reciprocal`` float32: [M, 8, W] (or broadcastable).
  """
  x = _row_pass(rows - 128, _fdct_butterfly, False)
  x = _dct_pass(x, _fdct_butterfly, True, -2)
  # Materialised (a one-trip loop, ``fusion.computed_apart``; the trip count comes from the
  # table, t >= 1): fused into the IDCT's column pass, the quantiser ran once per tap, 8 times
  # per coefficient (docs/speed.md).
  x = fusion.computed_apart(
      lambda c: quantize(c, table, half_step, reciprocal) * table, jnp.ravel(table)[0], x)
  x = _dct_pass(x, _idct_butterfly, False, -2)
  return _range_limit(_row_pass(x, _idct_butterfly, True))


def _pad_edge(plane, h, w):
  """Replicate the last row / column of [..., H, W] up to [..., h, w]."""
  ph, pw = h - plane.shape[-2], w - plane.shape[-1]
  if ph == 0 and pw == 0:
    return plane
  pad = [(0, 0)] * (plane.ndim - 2) + [(0, ph), (0, pw)]
  return jnp.pad(plane, pad, mode="edge")


def _block_row_constants(quality, luma_rows: int, chroma_rows: int, width: int):
  """(t int32, 4 t + 1/2 float32, 1 / (8 t) float32), each [M, 8, W] for the stacked planes.

  Materialised apart (``fusion.computed_apart``): fused into the quantiser, the table look-ups
  ran once per coefficient and per IDCT tap (docs/speed.md).
  """
  is_chroma = np.arange(luma_rows + chroma_rows) >= luma_rows

  def build(index):
    out = []
    for table in (_TABLES, _HALF_STEP, _RECIPROCAL):
      luma, chroma = (jnp.tile(jnp.asarray(table)[index, c], (1, width // 8)) for c in (0, 1))
      out.append(jnp.where(is_chroma[:, None, None], chroma[None], luma[None]))
    return tuple(out)

  index = _quality_index(quality)
  return fusion.computed_apart(build, index + 1, index)


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
  if images.shape[-2] < 5:
    # jdsample.c: chroma planes of width <= 2 are upsampled by replication, not reproduced here.
    raise ValueError(f"jpeg_roundtrip needs images at least 5 pixels wide, got {images.shape}")
  return _roundtrip(images, jnp.asarray(quality, jnp.int32),
                    apart=workarounds.enabled(fusion.WORKAROUND, images))


def _encode_planes(images):
  """Colour conversion, encoder padding and chroma downsampling: (int32 [..., hy + hc, wp],
  hy, hc, wp), luma rows on top of Cb | Cr side by side."""
  h, w = images.shape[-3], images.shape[-2]
  # Encoder padding (jcsample.c expand_right_edge, jcprepct.c expand_bottom_edge): columns are
  # replicated before downsampling, up to whole chroma blocks; rows only up to an even count
  # before downsampling, then each component's last row is replicated up to whole blocks.
  wp = -(-w // 16) * 16
  ch = -(-h // 2)  # chroma rows
  hy, hc = -(-h // 8) * 8, -(-ch // 8) * 8
  y, cb, cr = (_pad_edge(p, h + h % 2, wp) for p in rgb_to_ycc(images))
  chroma = [_pad_edge(downsample_h2v2(p), hc, wp // 2) for p in (cb, cr)]
  planes = jnp.concatenate([_pad_edge(y, hy, wp), jnp.concatenate(chroma, axis=-1)], axis=-2)
  return planes, hy, hc, wp


# From this image width on, the ``computed_apart`` workaround decodes planar (``_decode_planes``):
# 304-px planes in 4-image chunks 1.3-1.4x faster, 224 px vmapped over 16 1.2x slower, than the
# fused interleaving decoder (docs/fidelity/sizes.md).
PLANAR_DECODE_MIN_WIDTH = 256


def _decode_planes(planes, h, w, hy, wp, trips, planar: bool):
  """Fancy upsampling and YCbCr -> RGB of the decoded planes: uint8 [..., h, w, 3].

  Plain: one fusion writes the interleaved image, each output sample running its own
  upsampling and conversion.  ``planar`` (the ``computed_apart`` workaround, on images at least
  ``PLANAR_DECODE_MIN_WIDTH`` wide): the conversion writes planar [..., a, b, RGB, H/2, W/2]
  (computed apart; ``trips`` >= 1, traced) and one transpose interleaves it.
  """
  ch, cw = -(-h // 2), -(-w // 2)

  def phases(planes, axis: int):
    cb = planes[..., hy:hy + ch, :cw]
    cr = planes[..., hy:hy + ch, wp // 2:wp // 2 + cw]
    cb_phases, cr_phases = upsample_phases(cb), upsample_phases(cr)
    y = planes[..., :2 * ch, :2 * cw]
    return [[ycc_to_rgb(y[..., a::2, b::2], cb_phases[a][b], cr_phases[a][b], axis=axis)
             for b in (0, 1)] for a in (0, 1)]

  if not planar:
    return _interleave(phases(planes, -1), 1)[..., :h, :w, :]
  planar = fusion.computed_apart(
      lambda p: jnp.stack([jnp.stack(row, axis=-4) for row in phases(p, -3)], axis=-5),
      trips, planes)
  return _interleave_planar(planar)[..., :h, :w, :]


@functools.partial(jax.jit, static_argnames=("apart",))
def _roundtrip(images, quality, apart: bool):
  """``apart``: the ``computed_apart`` workaround's switch, resolved by the caller (a static
  argument, so that a change of the switch retraces this jit)."""
  with workarounds.override(computed_apart=apart):
    return _roundtrip_traced(images, quality)


def _roundtrip_traced(images, quality):
  h, w = images.shape[-3], images.shape[-2]
  apart = workarounds.enabled(fusion.WORKAROUND, images)
  if apart:
    images = _pad_odd_sides(images)
  planes, hy, hc, wp = _encode_planes(images)
  table, half_step, reciprocal = _block_row_constants(quality, hy // 8, hc // 8, wp)
  lead = planes.shape[:-2]
  rows = jnp.reshape(planes, (*lead, (hy + hc) // 8, 8, wp))
  decoded = jnp.reshape(lossy_blocks(rows, table, half_step, reciprocal), planes.shape)
  width = images.shape[-2]
  decoded = _decode_planes(decoded, images.shape[-3], width, hy, wp, _quality_index(quality) + 1,
                           planar=apart and width >= PLANAR_DECODE_MIN_WIDTH)
  return decoded[..., :h, :w, :]


def _pad_odd_sides(images):
  """uint8 [..., H, W, 3] with an odd side edge-padded to a multiple of 16 (with the
  ``computed_apart`` workaround on, the switch of this module's CPU measures), which gives the same
  pixels in the image's area: the encoder replicates the last row / column before
  downsampling as this padding does, and the decoder's upsampling reaches the extra chroma
  sample only for output samples beyond an odd side.  Why: block-aligned arrays (299 -> 304 px)
  ran 1.2-1.3x faster on XLA:CPU (docs/fidelity/sizes.md); even sides keep the encoder's own
  padding, which differs from this one there.  One gather of clamped indices: ``jnp.pad``'s
  concatenates, fused with the slice of ``corrupt``'s chunk loop, cost about a sixth of the round
  trip (0.92 vs 0.75 ms per 299-px image)."""
  h, w = images.shape[-3], images.shape[-2]
  rows = np.minimum(np.arange(h + (-h % 16 if h % 2 else 0)), h - 1)
  cols = np.minimum(np.arange(w + (-w % 16 if w % 2 else 0)), w - 1)
  if len(rows) == h and len(cols) == w:
    return images
  return images[..., rows[:, None], cols[None, :], :]
