"""ops.filters against SciPy, scikit-image and OpenCV themselves."""
import cv2
import functools

import jax
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters

from imagenet_cp.ops import border, filters


@functools.partial(jax.jit, static_argnames=("sigma", "mode", "truncate"))
def _gauss(x, sigma, mode, truncate):
  return filters.gaussian_filter(x, sigma, mode=mode, truncate=truncate)


@pytest.mark.parametrize("mode", border.BORDERS)
def test_gaussian_filter_matches_scipy_all_modes(mode):
  """Small and large sigmas, including kernels longer than the image (radius 512 > 40)."""
  x = np.random.default_rng(0).random((37, 41, 2))
  scipy_mode = {"reflect101": "mirror"}.get(mode, mode)
  for sigma, truncate in ((0.7, 4.0), (3.0, 4.0), (170.8, 3.0)):
    theirs = ndi.gaussian_filter(x, (sigma, sigma, 0), mode=scipy_mode, truncate=truncate)
    ours = np.asarray(_gauss(x, sigma, mode, truncate))
    np.testing.assert_allclose(ours, theirs, atol=2e-6, err_msg=f"{mode} {sigma}")


def test_gaussian_filter_long_axis_shifted_sums():
  """Axes longer than MATRIX_MAX_LENGTH take the padded shifted-sum path (and the switch)."""
  x = np.random.default_rng(6).random((filters.MATRIX_MAX_LENGTH + 88, 5))
  for mode in ("nearest", "reflect", "constant"):
    theirs = ndi.gaussian_filter(x, 2.5, mode=mode)
    np.testing.assert_allclose(np.asarray(_gauss(x, 2.5, mode, 4.0)), theirs, atol=2e-6)
  switched = filters.gaussian_filter_switch(x, (1.0, 2.5), 1, mode="reflect")
  np.testing.assert_allclose(np.asarray(switched), ndi.gaussian_filter(x, 2.5, mode="reflect"),
                             atol=2e-6)


def test_gaussian_filter_matches_skimage_gaussian():
  """The original's ``gaussian(x, sigma, multichannel=True)``: nearest, truncate 4, per channel."""
  x = np.random.default_rng(1).random((224, 224, 3))
  for sigma in (1, 6):
    theirs = skimage.filters.gaussian(x, sigma=sigma, channel_axis=-1)
    np.testing.assert_allclose(np.asarray(_gauss(x, sigma, "nearest", 4.0)), theirs, atol=2e-6)


def test_gaussian_filter_2d_and_reflect_large_sigma_on_224():
  """elastic_transform's field smoothing: sigma 170.8, mode 'reflect', truncate 3, 2-D."""
  x = np.random.default_rng(2).uniform(-1, 1, (224, 224))
  theirs = skimage.filters.gaussian(x, sigma=170.8, mode="reflect", truncate=3.0)
  np.testing.assert_allclose(np.asarray(_gauss(x, 170.8, "reflect", 3.0)), theirs, atol=1e-6)


def test_gaussian_filter_switch_selects_by_traced_index():
  x = np.random.default_rng(3).random((30, 30, 3)).astype(np.float32)
  f = jax.jit(lambda x, i: filters.gaussian_filter_switch(x, (1.0, 2.5), i))
  for i, sigma in enumerate((1.0, 2.5)):
    np.testing.assert_allclose(
        np.asarray(f(x, i)), ndi.gaussian_filter(x, (sigma, sigma, 0), mode="nearest"), atol=2e-6)


def test_gaussian_planes_transposed_is_the_transposed_filter():
  """[C, A, B] channels-first planes, a traced sigma index, a non-square shape: transposed
  ``ndi.gaussian_filter`` per plane; applied twice, the planes come back upright."""
  x = np.random.default_rng(4).random((3, 30, 37)).astype(np.float32)
  f = jax.jit(lambda x, i: filters.gaussian_planes_transposed(x, (0.7, 2.5), i))
  for i, sigma in enumerate((0.7, 2.5)):
    once = np.asarray(f(x, i))
    assert once.shape == (3, 37, 30)
    theirs = ndi.gaussian_filter(x, (0, sigma, sigma), mode="nearest")
    np.testing.assert_allclose(once, np.swapaxes(theirs, 1, 2), atol=2e-6)
    twice = ndi.gaussian_filter(theirs, (0, sigma, sigma), mode="nearest")
    np.testing.assert_allclose(np.asarray(f(once, i)), twice, atol=2e-6)


def test_gaussian_filter_taps_matches_scipy():
  """Shifted-window sums of the padded field, a sigma picked by a traced index; a kernel wider
  than the field takes the exact matrices instead."""
  x = np.random.default_rng(7).random((60, 70)).astype(np.float32)
  f = jax.jit(lambda x, i: filters.gaussian_filter_taps(x, (1.5, 4.0), i))
  for i, sigma in enumerate((1.5, 4.0)):
    np.testing.assert_allclose(np.asarray(f(x, i)), ndi.gaussian_filter(x, sigma, mode="nearest"),
                               atol=2e-6)
  small = x[:10, :12]
  np.testing.assert_allclose(np.asarray(filters.gaussian_filter_taps(small, (4.0,), 0)),
                             ndi.gaussian_filter(small, 4.0, mode="nearest"), atol=2e-6)


def test_border_index_modes():
  k = np.arange(-5, 9)
  np.testing.assert_array_equal(border.border_index(k, 4, "nearest"), np.clip(k, 0, 3))
  np.testing.assert_array_equal(
      border.border_index(k, 4, "reflect"), [3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0])
  np.testing.assert_array_equal(
      border.border_index(k, 4, "reflect101"), [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2])
  np.testing.assert_array_equal(border.border_index(k, 4, "wrap"), k % 4)
  assert list(border.border_index(np.array([-1, 0, 4]), 4, "constant")) == [-1, 0, -1]
  for mode in border.BORDERS:  # the same map on traced indices (jnp) as on the host
    traced = jax.jit(lambda k: border.border_index(k, 4, mode))(k.astype(np.int32))
    np.testing.assert_array_equal(np.asarray(traced), border.border_index(k, 4, mode))
  with pytest.raises(ValueError, match="border mode"):
    filters.gaussian_filter(np.zeros((4, 4)), 1.0, mode="bogus")
  with pytest.raises(ValueError, match="border mode"):
    border.border_index(k, 4, "mirror")


@pytest.mark.parametrize("method", ("direct", "fft"))
def test_filter2d_reflect101_matches_cv2(method):
  rng = np.random.default_rng(4)
  x = rng.random((224, 224, 3))
  for shape in ((3, 3), (17, 17), (21, 21), (5, 9)):
    kernel = rng.random(shape)
    theirs = np.stack([cv2.filter2D(x[..., c], -1, kernel) for c in range(3)], axis=-1)
    ours = np.asarray(jax.jit(filters.filter2d_reflect101, static_argnames="method")(
        x, kernel, method=method))
    np.testing.assert_allclose(ours, theirs, atol=2e-5 * np.abs(kernel).sum(), err_msg=str(shape))
  gray = np.asarray(filters.filter2d_reflect101(x[..., 0], np.ones((3, 3)) / 9, method=method))
  np.testing.assert_allclose(gray, cv2.filter2D(x[..., 0], -1, np.ones((3, 3)) / 9), atol=1e-6)


def test_filter2d_with_host_spectrum_matches_cv2():
  rng = np.random.default_rng(6)
  x = rng.random((100, 77, 3))
  for shape in ((3, 3), (21, 21), (5, 9)):
    kernel = rng.random(shape)
    theirs = np.stack([cv2.filter2D(x[..., c], -1, kernel) for c in range(3)], axis=-1)
    spectrum = filters.correlation_spectrum(kernel, 100, 77)
    ours = np.asarray(jax.jit(filters.filter2d_reflect101_spectrum, static_argnums=2)(
        x, spectrum, shape))
    np.testing.assert_allclose(ours, theirs, atol=2e-5 * np.abs(kernel).sum(), err_msg=str(shape))


def test_box_blur_matches_cv2():
  rng = np.random.default_rng(5)
  u8 = rng.integers(0, 256, (50, 61), dtype=np.uint8)
  for ksize in ((3, 3), (3, 5), (5, 3)):
    out = np.asarray(filters.box_blur(u8, ksize))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, cv2.blur(u8, ksize))
  f32 = rng.random((50, 61)).astype(np.float32) * 30
  np.testing.assert_allclose(np.asarray(filters.box_blur(f32, (3, 3))), cv2.blur(f32, (3, 3)),
                             atol=1e-5)
