"""Blur corruptions (defocus, glass, motion, zoom, gaussian) against the original ImageNet-C code.

Ours run through ``imagenet_cp.corrupt`` (one compile per corruption: severity is traced) on
the 4 photos at once; the original runs per photo, with our draws replayed through a patched
``np.random`` where it draws (glass: one ``randint(-d, d, 2)`` per visited pixel; motion: one
``uniform(-45, 45)``).  motion_blur's oracle is ImageMagick itself through Wand.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import imagenet_cp
from imagenet_cp.oracles import corruptions as ref
from imagenet_cp.corruptions import blur
from imagenet_cp.corruptions import draw as draw_one

from conftest import PHOTO_NAMES, check_batch_independence

NAMES = ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur")
SEVERITIES = (1, 2, 3, 4, 5)
SHAPE = (224, 224, 3)

# Measured worst figures over the 4 photos x 5 severities, with a margin (docs/fidelity/
# noise_blur.md).  All differences come from float32 vs the original's float64 (or
# ImageMagick's double) arithmetic meeting a uint8 truncation step: at most one grey level.
BOUNDS = {  # name: (mad, max)
    "defocus_blur": (0.001, 1),
    "glass_blur": (0.01, 1),
    "motion_blur": (0.001, 1),
    "zoom_blur": (0.001, 1),
    "gaussian_blur": (0.01, 1),
}


@pytest.fixture(scope="module")
def batch(photos_224):
  return np.stack([photos_224[n] for n in PHOTO_NAMES])


def _keys(seed: int, n: int = len(PHOTO_NAMES)) -> jax.Array:
  return jax.random.split(jax.random.key(seed), n)


def _replay(name: str, severity: int, d) -> ref.Replay:
  if name == "glass_blur":
    _, iterations = ref.glass_blur_iterations(severity)
    d = np.asarray(d)[:iterations]
    return ref.Replay(randint=ref.glass_blur_queue(d[..., 0], d[..., 1], severity))
  if name == "motion_blur":
    return ref.Replay(uniform=[float(d)])
  return ref.Replay()


@pytest.mark.parametrize("name", NAMES)
def test_matches_original_with_replayed_draws(name, batch):
  mad_bound, max_bound = BOUNDS[name]
  for severity in SEVERITIES:
    keys = _keys(10 * severity + NAMES.index(name))
    ours = np.asarray(imagenet_cp.corrupt(batch, name, severity, keys))
    for i, photo in enumerate(PHOTO_NAMES):
      d = draw_one(name, severity, keys[i])
      with _replay(name, severity, d) as replay:
        theirs = ref.run_original(name, batch[i], severity)
      if name == "glass_blur":
        assert replay.calls["randint"] == ref.glass_blur_calls(severity)
        dmax, _ = ref.glass_blur_iterations(severity)
        assert replay.args["randint"][0] == (-dmax, dmax, (2,))
      if name == "motion_blur":
        assert replay.args["uniform"] == [(-45, 45, ())]
      context = f"{name} s{severity} {photo}"
      fid = ref.assert_faithful(ours[i], theirs, context=context)
      if name == "defocus_blur" and severity == 1:  # an exact integer disk sum
        np.testing.assert_array_equal(ours[i], theirs, err_msg=context)
      assert fid["mad"] <= mad_bound and fid["max"] <= max_bound, (context, fid)


def test_glass_offsets_range_and_moments():
  for severity, (_, d, _) in zip(SEVERITIES, blur.GLASS):
    offsets = np.asarray(draw_one("glass_blur", severity, jax.random.key(severity)))
    assert offsets.shape == (3, 224, 224, 2) and offsets.dtype == np.int32
    # randint(-d, d): values -d..d-1, all of them, uniform (mean -1/2).
    np.testing.assert_array_equal(np.unique(offsets), np.arange(-d, d))
    assert abs(offsets.mean() + 0.5) < 0.01
    counts = np.bincount((offsets + d).ravel())
    assert counts.min() / counts.max() > 0.97


def test_motion_angle_range():
  angles = np.asarray(jax.vmap(lambda k: blur.motion_blur_draw(k, 1))(_keys(3, 400)))
  assert angles.shape == (400,) and angles.dtype == np.float32
  np.testing.assert_array_equal(angles[5], draw_one("motion_blur", 1, _keys(3, 400)[5]))
  assert angles.min() >= -45 and angles.max() < 45
  assert abs(angles.mean()) < 4 and abs(angles.std() - 90 / np.sqrt(12)) < 3


def test_zoom_factor_lists_match_the_original_arange():
  assert [len(z) for z in blur.zoom_factors()] == [12, 16, 11, 13, 11]
  assert blur.zoom_factors()[0][-1] == pytest.approx(1.11)
  lo, frac, mask, count = blur.zoom_tables()
  np.testing.assert_array_equal(count, [12, 16, 11, 13, 11])
  assert lo.shape == (5, blur.MAX_ZOOMS, 224) and frac.shape == lo.shape


def test_defocus_kernels_are_the_original_disks():
  module = ref.load_original()
  stacked = blur.defocus_kernels()
  for s, (radius, alias) in enumerate(blur.DEFOCUS):
    theirs = module.disk(radius=radius, alias_blur=alias)
    assert theirs.shape == ((21, 21) if radius > 8 else (17, 17))
    np.testing.assert_array_equal(blur.disk_kernel(radius, alias), theirs)
    p = (21 - theirs.shape[0]) // 2
    np.testing.assert_array_equal(stacked[s, p:21 - p, p:21 - p], theirs)
    assert stacked[s].sum() == pytest.approx(theirs.sum())


def test_defocus_s1_value_formula_equals_the_table():
  # The float32 ceiling formula replaces the float64 table for every possible disk sum.
  mask, table = blur.defocus_s1_tables()
  total = jnp.arange(table.size, dtype=jnp.int32)
  got = np.asarray(jax.jit(blur._disk_s1_value, static_argnums=1)(total, int(mask.sum())))
  np.testing.assert_array_equal(got, table)


def test_defocus_spectra_are_the_kernels():
  # Inverse FFT of each host spectrum gives back the (conjugated) zero-padded kernel.
  kernels = blur.defocus_kernels()
  spectra = blur.defocus_spectra()
  for kernel, spectrum in zip(kernels, spectra):
    taps = np.fft.irfft2(np.conj(spectrum.astype(np.complex128)), s=(250, 250))
    np.testing.assert_allclose(taps[:21, :21], kernel, atol=1e-7)
    assert np.abs(taps[21:]).max() < 1e-7 and np.abs(taps[:, 21:]).max() < 1e-7


def test_defocus_flat_images_s1_s4_s5():
  """The kernels sum to 1 - 3.7e-9 (s1) and 1.013 / 1.011 (s4, s5) in float64: a flat v comes out
  as v - 1 at s1 (exact integer disk sum) and v * 1.013 at s4-s5.  (s2-s3, sums 1 - 3.4e-8 and
  1 - 6.4e-9, are the documented float32 exception on flat regions.)"""
  levels = (0, 37, 100, 255)
  images = np.stack([np.full(SHAPE, v, np.uint8) for v in levels])
  for severity in (1, 4, 5):
    ours = np.asarray(imagenet_cp.corrupt(images, "defocus_blur", severity, _keys(0)))
    for i, v in enumerate(levels):
      theirs = ref.run_original("defocus_blur", images[i], severity)
      np.testing.assert_array_equal(ours[i], theirs, err_msg=f"s{severity} v={v}")


def test_batch_axes_and_independence(batch):
  """Leading batch axes are flattened; an image's output does not depend on its batch-mates."""
  check_batch_independence(batch, _keys(7), NAMES, 4, np.array([3, 1, 0, 2]))


def test_chunked_batches_of_any_size(batch):
  """glass_blur runs in 2-image chunks (odd batches padded): outputs do not depend on the batch
  size, for batches of 1, 3 and 4."""
  assert imagenet_cp.corruptions.get("glass_blur").chunk == 2
  keys = _keys(9)
  four = np.asarray(imagenet_cp.corrupt(batch, "glass_blur", 2, keys))
  for n in (1, 3):
    part = np.asarray(imagenet_cp.corrupt(batch[:n], "glass_blur", 2, keys[:n]))
    np.testing.assert_array_equal(part, four[:n], err_msg=f"batch of {n}")
