"""ops.motion_blur against ImageMagick itself (Wand, the original's MotionImage call)."""
import io

import cv2
import jax
import numpy as np
import pytest
from PIL import Image

from imagenet_cp.oracles import corruptions as ref
from imagenet_cp.ops import motion_blur as mb


def wand_motion_blur(image: np.ndarray, radius, sigma, angle) -> np.ndarray:
  """The original's PNG -> MagickMotionBlurImage -> PNG -> cv2.imdecode path."""
  module = ref.load_original()
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG")
  wand = module.MotionImage(blob=buf.getvalue())
  wand.motion_blur(radius=radius, sigma=sigma, angle=angle)
  out = cv2.imdecode(np.frombuffer(wand.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)
  if image.ndim == 2:
    return out if out.ndim == 2 else out[..., 0]
  return out[..., ::-1] if out.ndim == 3 else np.stack([out] * 3, axis=-1)


_blur = jax.jit(mb.motion_blur_uint8, static_argnames="max_radius")


@pytest.mark.parametrize("radius,sigma", ((10, 3), (20, 15), (14, 4)))
def test_matches_imagemagick(radius, sigma, photos_224):
  image = photos_224["chelsea"]
  for angle in (-45.0, 0.0, 17.3, 44.99, -120.0):
    theirs = wand_motion_blur(image, radius, sigma, angle)
    if angle == -120.0:  # half-integer taps (cos = -1/2): exact only with float64 offsets
      ours = np.asarray(mb.motion_blur_uint8(image, radius, sigma, angle))
    else:
      ours = np.asarray(_blur(image, radius, sigma, np.float32(angle), max_radius=20))
    diff = np.abs(ours.astype(int) - theirs)
    assert diff.max() <= 1 and np.mean(diff > 0) < 2e-4, (radius, sigma, angle, diff.mean())


def test_grayscale_layer_matches_imagemagick():
  """snow's 'L' PNG layer: sparse bright flakes on black."""
  rng = np.random.default_rng(0)
  layer = np.where(rng.random((224, 224)) < 0.05, rng.integers(100, 256, (224, 224)), 0)
  layer = layer.astype(np.uint8)
  theirs = wand_motion_blur(layer, 12, 8, -97.0)
  ours = np.asarray(_blur(layer, 12, 8, np.float32(-97.0), max_radius=12))
  assert ours.shape == (224, 224)
  diff = np.abs(ours.astype(int) - theirs)
  assert diff.max() <= 1 and np.mean(diff > 0) < 2e-4


def test_taps_follow_imagemagick_formulas():
  for angle in (-45.0, -10.0, 0.0, 30.0, 45.0, 135.0):
    dy, dx = (np.asarray(t) for t in mb.tap_offsets(np.float32(angle), 41))
    i = np.arange(41)
    a = np.deg2rad(angle)
    np.testing.assert_array_equal(dx, np.ceil(i * np.cos(a) - 0.5).astype(int))
    np.testing.assert_array_equal(dy, np.ceil(i * np.sin(a) - 0.5).astype(int))
  k = np.asarray(mb.tap_weights(10.0, 3.0, 41))
  expected = np.exp(-np.arange(21) ** 2 / 18.0)
  np.testing.assert_allclose(k[:21], expected / expected.sum(), rtol=1e-6)
  assert np.all(k[21:] == 0) and mb.kernel_width(10) == 21


def test_quantisation_is_q16_round_then_truncate():
  v = np.array([0.0, 0.5, 1.0 - 1 / 514 + 1e-6, 1.0 - 1 / 514 - 1e-6, 254.999, 255.0, 300.0, -3.0])
  q = np.floor(np.clip(v * 257, 0, 65535) + 0.5)
  np.testing.assert_array_equal(np.asarray(mb.quantize_q16_to_uint8(v)), (q // 257).astype(np.uint8))


def test_quantisation_divides_every_q16_value_exactly():
  """``q // 257`` as a float32 floor of ``(q + 0.5) / 257``, compiled, for all 65536 q (each is
  ``257 v`` rounded for v = q / 257, which the rounding maps back to q)."""
  q = np.arange(65536)
  got = np.asarray(jax.jit(mb.quantize_q16_to_uint8)(q.astype(np.float32) / np.float32(257)))
  v = q.astype(np.float32) / np.float32(257)
  rounded = np.floor(np.clip(v * np.float32(257), 0, 65535) + np.float32(0.5)).astype(np.int64)
  np.testing.assert_array_equal(rounded, q)
  np.testing.assert_array_equal(got, q // 257)
