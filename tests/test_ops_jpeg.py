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


@pytest.mark.parametrize("shape", [(17, 9), (100, 64), (231, 171)])
def test_odd_sizes_bit_exact(photos_224, roundtrip, shape):
  # Rows are padded after chroma downsampling, columns before it, as libjpeg does.
  image = np.ascontiguousarray(np.tile(photos_224["coffee"], (2, 1, 1))[:shape[0], :shape[1]])
  for quality in (10, 85):
    np.testing.assert_array_equal(
        np.asarray(roundtrip(image, jnp.int32(quality))), pil_roundtrip(image, quality))


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
