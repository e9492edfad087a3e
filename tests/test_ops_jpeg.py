"""ops/jpeg.py against Pillow's JPEG save + open (libjpeg-turbo): bit-exact.

Measured on this machine (Pillow 12.3, libjpeg-turbo): identical pixels at qualities 7, 10, 15,
18, 25 and 85 on the 4 photos, on uniform and Gaussian noise and on odd sizes, so the tests
demand equality.
"""
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from imagenet_cp import workarounds
from imagenet_cp.ops import jpeg
from imagenet_cp.release import release_jpeg

QUALITIES = (7, 10, 15, 18, 25, 85)


def pil_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, "JPEG", quality=quality)
  return np.asarray(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def test_images(photos_224):
  rng = np.random.default_rng(0)
  uniform = rng.integers(0, 256, (224, 224, 3)).astype(np.uint8)
  gauss = np.clip(rng.normal(128, 60, (224, 224, 3)), 0, 255).astype(np.uint8)
  return np.stack(list(photos_224.values()) + [uniform, gauss])


@pytest.fixture(scope="module")
def roundtrip():
  return jax.jit(jpeg.jpeg_roundtrip)


@pytest.mark.parametrize("quality", QUALITIES)
def test_bit_exact_against_pil(test_images, roundtrip, quality):
  got = np.asarray(roundtrip(test_images, jnp.int32(quality)))
  for i, image in enumerate(test_images):
    np.testing.assert_array_equal(got[i], pil_roundtrip(image, quality), err_msg=f"image {i}")


def test_narrow_images_are_refused():
  # libjpeg-turbo upsamples chroma planes of width <= 2 by replication, not fancy upsampling.
  with pytest.raises(ValueError, match="at least 5 pixels wide"):
    jpeg.jpeg_roundtrip(np.zeros((8, 4, 3), np.uint8), 85)


@pytest.mark.parametrize("shape", [(17, 9), (100, 64), (231, 171), (18, 33), (33, 18), (30, 46),
                                   (299, 299), (1, 17), (15, 31)])
def test_odd_sizes_bit_exact(photos_224, roundtrip, shape):
  # Rows are padded after chroma downsampling, columns before it, as libjpeg does; an odd side
  # runs edge-padded to a multiple of 16 (ops.jpeg._pad_odd_sides), a side of 15 to 16 only.
  image = np.ascontiguousarray(np.tile(photos_224["coffee"], (2, 1, 1))[:shape[0], :shape[1]])
  # Texture up to the edges, where a wrong padding shows (the photo's corner is smooth).
  noise = np.random.default_rng(0).integers(0, 256, shape + (3,))
  texture = (np.cumsum(noise, axis=1) % 256).astype(np.uint8)
  for img in (image, texture):
    for quality in (10, 85):
      want = pil_roundtrip(img, quality)
      np.testing.assert_array_equal(np.asarray(roundtrip(img, jnp.int32(quality))), want)
      # The plain program (no odd-side padding, the fused decoder) too.
      with workarounds.override(computed_apart=False):
        np.testing.assert_array_equal(np.asarray(jpeg.jpeg_roundtrip(img, quality)), want)


@pytest.mark.parametrize("quality", QUALITIES + (1, 50, 100))
def test_quant_tables_and_subsampling_match_pil(quality):
  buf = io.BytesIO()
  Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buf, "JPEG", quality=quality)
  im = Image.open(buf)
  assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
  tables = np.asarray(jpeg.quant_tables(quality))
  for i in (0, 1):
    np.testing.assert_array_equal(tables[i].reshape(-1), np.asarray(im.quantization[i]))


def test_dct_pair_is_near_inverse():
  # islow FDCT (8x scaled) then IDCT of the 8x-dequantised coefficients reproduces the block
  # within libjpeg's rounding.
  rng = np.random.default_rng(1)
  blocks = rng.integers(-128, 128, (50, 8, 8)).astype(np.int32)
  pair = jax.jit(lambda b: jpeg.idct_islow(jpeg.quantize(jpeg.fdct_islow(b), jnp.ones((8, 8), jnp.int32))))
  back = np.asarray(pair(jnp.asarray(blocks)))
  assert np.abs(back - 128 - blocks).max() <= 1


def test_dct_magnitudes_fit_the_quantiser_and_int32():
  # The float32 quantiser is proven exact below 2^16 (next test); bound the islow FDCT's output
  # for any block of level-shifted samples in -128..127 by its passes' integer matrices.
  rows, row_shifts = jpeg.FDCT_ROWS
  cols, col_shifts = jpeg.FDCT_COLS
  row_max = (128 * np.abs(rows).sum(1) + (1 << row_shifts) // 2) >> row_shifts
  col_max = (np.abs(cols) @ np.full(8, row_max.max()) + (1 << col_shifts) // 2) >> col_shifts
  assert col_max.max() < 2**14
  # The IDCT's int32 sums cannot overflow: dequantised coefficients are at most
  # max|c| / 8 + t / 2 <= 1152 in magnitude.
  dq_max = col_max.max() // 8 + 255 // 2 + 1
  idct_cols, idct_col_shifts = jpeg.IDCT_COLS
  idct_rows, _ = jpeg.IDCT_ROWS
  col_sums = np.abs(idct_cols).sum(1) * dq_max
  row_sums = np.abs(idct_rows).sum(1) * ((col_sums.max() >> idct_col_shifts.min()) + 1)
  assert max(col_sums.max(), row_sums.max()) < 2**31


def test_float_quantiser_is_exact_for_every_step():
  # floor((|c| + 4t + 1/2) * fl(1 / 8t)) == (|c| + 4t) // 8t for every t and |c| < 2^16, in
  # float32 as numpy rounds it; then the jitted quantiser on every table entry 1..255 and
  # coefficients around every multiple of the step (where a rounding slip would show).
  t = np.arange(1, 256)[:, None]
  c = np.arange(1 << 16)[None, :]
  half = (4 * t + 0.5).astype(np.float32)
  recip = np.float32(1) / (8 * t).astype(np.float32)
  got = np.floor((c.astype(np.float32) + half) * recip)
  np.testing.assert_array_equal(got, (c + 4 * t) // (8 * t))
  steps = np.repeat(np.arange(1, 256), 40).reshape(-1, 40)
  k = np.arange(40) - 20
  coefs = np.clip(steps * 4 * (2 * (k // 2) + 1) + (k % 3) - 1, -(1 << 14), 1 << 14)
  want = np.sign(coefs) * ((np.abs(coefs) + 4 * steps) // (8 * steps))
  got = jax.jit(jpeg.quantize)(jnp.asarray(coefs, jnp.int32), jnp.asarray(steps, jnp.int32))
  np.testing.assert_array_equal(np.asarray(got), want)


def test_leading_axes_and_release_stage(test_images):
  batch = test_images[:4].reshape(2, 2, 224, 224, 3)
  out = np.asarray(release_jpeg(batch))
  assert out.shape == batch.shape and out.dtype == np.uint8
  np.testing.assert_array_equal(out[1, 0], pil_roundtrip(batch[1, 0], 85))


def test_bad_input_raises():
  with pytest.raises(ValueError):
    jpeg.jpeg_roundtrip(np.zeros((16, 16, 3), np.float32), 50)
  with pytest.raises(ValueError):
    jpeg.jpeg_roundtrip(np.zeros((16, 16), np.uint8), 50)
