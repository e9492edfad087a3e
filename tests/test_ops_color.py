"""ops/color.py against scikit-image's HSV and OpenCV's RGB2GRAY."""
import cv2
import numpy as np
import pytest
import skimage.color

from imagenet_cp.ops import color


def _rgb_cases(seed=0):
  """uint8 [N, 3]: random colours plus greys, ties between channels, black and white."""
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (4000, 3))
  grey = np.repeat(np.arange(256)[:, None], 3, axis=1)
  ties = rng.integers(0, 256, (600, 3))
  ties[:200, 1] = ties[:200, 0]  # R == G
  ties[200:400, 2] = ties[200:400, 1]  # G == B
  ties[400:, 2] = ties[400:, 0]  # R == B
  return np.concatenate([x, grey, ties, [[0, 0, 0], [255, 255, 255], [255, 0, 0]]]).astype(np.uint8)


def test_rgb2hsv_matches_skimage():
  rgb = _rgb_cases() / 255.0
  want = skimage.color.rgb2hsv(rgb[None])[0]
  got = np.asarray(color.rgb2hsv(rgb))
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, want, atol=2e-7, rtol=0)


def test_hsv2rgb_matches_skimage_and_round_trips():
  rng = np.random.default_rng(1)
  hsv = rng.random((5000, 3))
  hsv[:100, 0] = np.arange(100) / 6 % 1.0  # sector boundaries
  hsv[100:200, 1] = 0.0
  want = skimage.color.hsv2rgb(hsv[None])[0]
  np.testing.assert_allclose(np.asarray(color.hsv2rgb(hsv)), want, atol=1e-6, rtol=0)
  rgb = _rgb_cases(2) / 255.0
  np.testing.assert_allclose(np.asarray(color.hsv2rgb(color.rgb2hsv(rgb))), rgb, atol=1e-6)


def test_hsv_leading_axes():
  rgb = (_rgb_cases()[:24] / 255.0).reshape(2, 3, 4, 3)
  np.testing.assert_allclose(
      np.asarray(color.rgb2hsv(rgb)).reshape(-1, 3), np.asarray(color.rgb2hsv(rgb.reshape(-1, 3))))


def test_rgb2gray_uint8_matches_cv2_exactly():
  # Every value of each channel against every value of the others would be 2**24 triples; a
  # random 2**18 plus all greys and the corners cover the fixed-point rounding.
  rng = np.random.default_rng(3)
  rgb = np.concatenate([rng.integers(0, 256, (1 << 18, 3)), _rgb_cases()]).astype(np.uint8)
  want = cv2.cvtColor(rgb[:, None, :], cv2.COLOR_RGB2GRAY)[:, 0]
  got = np.asarray(color.rgb2gray_uint8(rgb))
  assert got.dtype == np.uint8
  np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_rgb2gray_float_matches_cv2(scale):
  rgb = (_rgb_cases() / 255.0 * scale).astype(np.float32)
  want = cv2.cvtColor(rgb[:, None, :], cv2.COLOR_RGB2GRAY)[:, 0]
  np.testing.assert_allclose(np.asarray(color.rgb2gray(rgb)), want, rtol=1e-6, atol=1e-6 * scale)
