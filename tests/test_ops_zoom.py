"""ops.zoom against scipy.ndimage.zoom and the original's clipped_zoom."""
import jax
import numpy as np
from scipy.ndimage import zoom as scizoom

from imagenet_cp.oracles import corruptions as ref
from imagenet_cp.corruptions import blur
from imagenet_cp.ops import zoom


def test_clipped_zoom_matches_the_original_for_every_zoom_blur_factor():
  original = ref.load_original().clipped_zoom
  x = np.random.default_rng(0).random((224, 224, 3)).astype(np.float32)
  factors = np.concatenate(blur.zoom_factors() + (np.array([2.0, 3.0, 4.0, 4.5, 2.5]),))
  tables = zoom.clipped_zoom_tables(224, factors)
  apply = jax.jit(lambda x, lo, frac: zoom.resample_axes(x, lo, frac))
  for j, z in enumerate(factors):
    theirs = original(x, z)
    assert theirs.dtype == np.float32
    ours = np.asarray(apply(x, tables[0][j], tables[1][j]))
    np.testing.assert_allclose(ours, theirs, atol=3e-7, err_msg=str(z))
  np.testing.assert_allclose(
      np.asarray(zoom.clipped_zoom(x[..., :1], 1.3)), original(x[..., :1], 1.3), atol=3e-7)
  indexed = zoom.clipped_zoom_indexed(x, tables, 20)
  np.testing.assert_allclose(np.asarray(indexed), original(x, factors[20]), atol=3e-7)


def test_zoom_linear_matches_scipy_corner_aligned():
  x = np.random.default_rng(1).random((100, 150, 3)).astype(np.float32)
  for factors in ((1.7, 0.6), (0.33, 2.1), (1.0, 1.0)):
    theirs = scizoom(x, factors + (1,), order=1)
    ours = np.asarray(zoom.zoom_linear(x, theirs.shape[:2]))
    np.testing.assert_allclose(ours, theirs, atol=3e-7, err_msg=str(factors))


def test_output_size_is_python_round():
  assert zoom.zoom_output_size(203, 1.1) == round(203 * 1.1)
  assert zoom.zoom_output_size(5, 1.5) == 8  # 7.5 -> 8 (half to even)
  assert zoom.zoom_output_size(3, 1.5) == 4  # 4.5 -> 4
