"""ops/sampling.py against OpenCV (remap, warpAffine) and SciPy (map_coordinates order 1).

The installed OpenCV is 5.0, which samples at exact float coordinates; ``quantize=False`` must
equal it.  ``quantize=True`` (OpenCV <= 4.10, the original's 3.4: 1/32-pixel coordinates) must
equal it wherever the coordinates are already multiples of 1/32, and stay within the 1/64-pixel
position error elsewhere.  (Checked once against opencv-python-headless 4.10.0.84 installed
aside: remap bit-exact for float32 and uint8; see docs/fidelity/digital.md.)
"""
import cv2
import numpy as np
import pytest
import scipy.ndimage

from imagenet_cp.ops import sampling

BORDERS = {
    "constant": cv2.BORDER_CONSTANT, "reflect101": cv2.BORDER_REFLECT_101,
    "reflect": cv2.BORDER_REFLECT, "nearest": cv2.BORDER_REPLICATE, "wrap": cv2.BORDER_WRAP,
}
H, W = 40, 50
MATRIX = np.float64([[0.97, 0.1, 1.3], [-0.05, 1.02, -2.7]])


@pytest.fixture(scope="module")
def images():
  rng = np.random.default_rng(0)
  noise = rng.random((H, W, 3)).astype(np.float32)
  return noise, (noise * 255).astype(np.uint8)


def _maps(seed, shape=(30, 31), lo=-15.0, hi=65.0, grid=None):
  rng = np.random.default_rng(seed)
  mx = rng.uniform(lo, hi, shape)
  my = rng.uniform(lo, hi, shape)
  if grid:
    mx, my = np.round(mx * grid) / grid, np.round(my * grid) / grid
  return mx.astype(np.float32), my.astype(np.float32)


@pytest.mark.parametrize("border", sorted(BORDERS))
def test_remap_exact_matches_cv2(images, border):
  noise, noise8 = images
  mx, my = _maps(1)
  for img in (noise, noise8, noise[..., 0]):
    want = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=BORDERS[border])
    got = np.asarray(sampling.cv2_remap_bilinear(img, mx, my, border, quantize=False))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float64), want, atol=1e-5 if img.dtype != np.uint8 else 0)


@pytest.mark.parametrize("border", ["constant", "reflect101"])
def test_remap_quantized_on_the_1_32_grid_matches_cv2(images, border):
  noise, noise8 = images
  mx, my = _maps(2, grid=32)
  want = cv2.remap(noise, mx, my, cv2.INTER_LINEAR, borderMode=BORDERS[border])
  np.testing.assert_allclose(
      np.asarray(sampling.cv2_remap_bilinear(noise, mx, my, border)), want, atol=1e-6)
  # uint8: 15-bit fixed point rounds ties up, OpenCV 5's float path rounds them to even.
  want8 = cv2.remap(noise8, mx, my, cv2.INTER_LINEAR, borderMode=BORDERS[border])
  got8 = np.asarray(sampling.cv2_remap_bilinear(noise8, mx, my, border))
  diff = np.abs(got8.astype(int) - want8)
  assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_remap_quantized_moves_samples_by_at_most_1_64_pixel():
  # A linear ramp turns position errors into value errors: |err| <= slope / 64.
  yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
  ramp = 3.0 * xx + 2.0 * yy
  mx, my = _maps(3, lo=0.0, hi=38.0)
  want = 3.0 * mx + 2.0 * my
  got = np.asarray(sampling.cv2_remap_bilinear(ramp, mx, my, "reflect101"))
  err = np.abs(got - want)
  assert err.max() <= 5.0 / 64 + 1e-4
  assert err.max() > 0.0  # it does quantise


@pytest.mark.parametrize("border", sorted(BORDERS))
def test_warp_affine_matches_cv2(images, border):
  noise, noise8 = images
  size = (W + 3, H - 2)
  for img in (noise, noise8):
    want = cv2.warpAffine(img, MATRIX, size, borderMode=BORDERS[border])
    got = np.asarray(sampling.cv2_warp_affine(img, MATRIX, size, border, quantize=False))
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got.astype(np.float64), want, atol=2e-5 if img.dtype != np.uint8 else 0)
  # The 1/32-pixel path on a smooth image: within the position error.
  smooth = scipy.ndimage.gaussian_filter(noise, (3, 3, 0))
  want = cv2.warpAffine(smooth, MATRIX, size, borderMode=BORDERS[border])
  got = np.asarray(sampling.cv2_warp_affine(smooth, MATRIX, size, border))
  assert np.abs(got - want).max() < 0.01


def test_warp_affine_inverse_map_and_batched(images):
  noise, _ = images
  inv = cv2.invertAffineTransform(MATRIX)
  np.testing.assert_allclose(np.asarray(sampling.invert_affine(MATRIX)), inv, atol=1e-6)
  a = np.asarray(sampling.cv2_warp_affine(noise, inv, (W, H), inverse_map=True, quantize=False))
  b = np.asarray(sampling.cv2_warp_affine(noise, MATRIX, (W, H), quantize=False))
  np.testing.assert_allclose(a, b, atol=1e-5)
  batch = np.stack([noise, noise[::-1]])
  mats = np.stack([MATRIX, MATRIX * [[1, 1, 0], [1, 1, 1]]])
  out = np.asarray(sampling.warp_affine_batched(batch, mats, (W, H)))
  for i in range(2):
    np.testing.assert_allclose(out[i], np.asarray(sampling.cv2_warp_affine(batch[i], mats[i], (W, H))))


def test_get_affine_transform_matches_cv2():
  rng = np.random.default_rng(4)
  src = np.float32([[186, 186], [186, 38], [38, 38]])
  for _ in range(5):
    dst = src + rng.uniform(-48.8, 48.8, (3, 2)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(sampling.get_affine_transform(src, dst)), cv2.getAffineTransform(src, dst),
        atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["reflect", "nearest", "grid-wrap", "grid-constant"])
def test_map_coordinates_order1_matches_scipy(images, mode):
  noise, _ = images
  rng = np.random.default_rng(5)
  # Far outside too: SciPy's reflect keeps folding (period 2n).
  yy = rng.uniform(-150, 150, (25, 26))
  xx = rng.uniform(-150, 150, (25, 26))
  want = np.stack([scipy.ndimage.map_coordinates(noise[..., c], (yy, xx), order=1, mode=mode)
                   for c in range(3)], axis=-1)
  got = np.asarray(sampling.map_coordinates_order1(noise, yy, xx, mode))
  np.testing.assert_allclose(got, want, atol=2e-5)


def test_unknown_modes_raise():
  with pytest.raises(ValueError):
    sampling.map_coordinates_order1(np.zeros((4, 4)), np.zeros(2), np.zeros(2), "constant")
  with pytest.raises(ValueError):
    sampling.cv2_remap_bilinear(np.zeros((4, 4)), np.zeros(2), np.zeros(2), "transparent")


def test_warp_affine_quantized_coordinates_follow_opencv_4():
  # OpenCV <= 4.10 (checked against 4.10.0.84 once, docs/fidelity/digital.md): per-row and
  # per-column offsets rounded to 1/1024 pixel, summed, floored to 1/32 pixel.  Model it in
  # float64 and compare the 1/32-pixel coordinates we sample at: equal except where float32
  # lands on the other side of a 1/1024 rounding boundary.
  inv = cv2.invertAffineTransform(MATRIX)
  yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
  ix = (np.rint((inv[0, 1] * yy + inv[0, 2]) * 1024).astype(np.int64)
        + np.rint(inv[0, 0] * xx * 1024).astype(np.int64) + 16) >> 5
  iy = (np.rint((inv[1, 1] * yy + inv[1, 2]) * 1024).astype(np.int64)
        + np.rint(inv[1, 0] * xx * 1024).astype(np.int64) + 16) >> 5
  # Encode each output pixel's source coordinate in a ramp image: sampling it returns the
  # coordinate itself, so a mismatch of 1/32 pixel shows up directly.
  ramp_x = np.tile(np.arange(W, dtype=np.float32), (H, 1))
  got_x = np.asarray(sampling.cv2_warp_affine(ramp_x, MATRIX, (W, H), "nearest"))
  inside = (ix >= 0) & (ix < 32 * (W - 1)) & (iy >= 0) & (iy < 32 * (H - 1))
  err = np.abs(got_x - ix / 32.0)[inside]
  assert err.max() <= 1 / 32 + 1e-5
  assert (err > 1e-5).mean() < 0.01


def test_remap_fixed_black_equals_the_constant_border_remap():
  """The zero-padded fast path gives cv2_remap_fixed(..., 'constant', 0) exactly, for samples
  inside, across the edges and far outside (both sides, both axes)."""
  rng = np.random.default_rng(3)
  image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
  ix = rng.integers(-40 * 32, 95 * 32, (64, 64)).astype(np.int32)
  iy = rng.integers(-30 * 32, 70 * 32, (64, 64)).astype(np.int32)
  want = np.asarray(sampling.cv2_remap_fixed(image, ix, iy, "constant", 0.0))
  got = np.asarray(sampling.cv2_remap_fixed_black(image, ix, iy))
  np.testing.assert_array_equal(got, want)
  assert 0 < (want == 0).all(axis=-1).mean() < 1  # some samples are outside, some inside
