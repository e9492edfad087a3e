"""Weather corruptions (snow, frost, fog, spatter) against the original ImageNet-C code.

The original (PyPI imagenet-c 0.0.3, shimmed by ``imagenet_cp.oracles.corruptions``) is fed our own draws
through a patched ``np.random``; ``Replay`` also checks it consumed exactly those draws.  The
OpenCV steps of spatter are checked one by one against cv2 itself.
"""
import cv2
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.filters import gaussian

import imagenet_cp
from imagenet_cp.oracles import corruptions as ref
from imagenet_cp.corruptions import weather
from imagenet_cp.ops import plasma
from imagenet_cp.ops import spatter as sp

from conftest import PHOTO_NAMES

NAMES = ("snow", "frost", "fog", "spatter")
SEVERITIES = (1, 2, 3, 4, 5)


def _keys(seed: int, n: int) -> jax.Array:
  return jax.random.split(jax.random.key(seed), n)


def _replay_kwargs(name: str, d) -> dict:
  """The original's np.random queues for our draws ``d`` of one image."""
  if name == "fog":
    return dict(uniform=np.asarray(d, np.float64), standard=("uniform",))
  if name == "spatter":
    return dict(normal=np.asarray(d, np.float64), standard=("normal",))
  if name == "snow":
    return dict(normal=np.asarray(d["z"], np.float64), uniform=[float(d["u"])], standard=True)
  if name == "frost":
    return dict(randint=[int(d["index"]), int(d["row"]), int(d["col"])])
  raise ValueError(name)


def _expected_calls(name: str, d) -> dict:
  if name == "fog":
    return {"uniform": 24}  # 8 levels x (squares, row diamonds, column diamonds)
  if name == "spatter":
    return {"normal": 1}
  if name == "snow":
    return {"normal": 1, "uniform": 1}
  h, w = weather.FROST_SHAPES[int(d["index"])]
  return {"randint": 3, "_args": [(0, 5, ()), (0, h - 224, ()), (0, w - 224, ())]}


@pytest.fixture(scope="module")
def batch(photos_224):
  return np.stack([photos_224[n] for n in PHOTO_NAMES])


@pytest.mark.parametrize("name", NAMES)
def test_matches_original_with_replayed_draws(name, batch):
  """All 5 severities x 4 photos through ``imagenet_cp.corrupt`` (one compile: severity traced)."""
  worst = {}
  for severity in SEVERITIES:
    keys = _keys(100 * severity + len(name), len(PHOTO_NAMES))
    ours = np.asarray(imagenet_cp.corrupt(batch, name, severity, keys))
    for i, photo in enumerate(PHOTO_NAMES):
      d = imagenet_cp.corruptions.draw(name, severity, keys[i])
      with ref.Replay(**_replay_kwargs(name, d)) as replay:
        theirs = ref.run_original(name, batch[i], severity)
      expected = _expected_calls(name, d)
      for fn, count in expected.items():
        if fn == "_args":
          assert replay.args["randint"] == count
        else:
          assert replay.calls[fn] == count, (fn, replay.calls)
      context = f"{name} s{severity} {photo}"
      if name == "frost":  # the blend is tabulated from the original's float64 arithmetic
        np.testing.assert_array_equal(ours[i], theirs, err_msg=context)
      fid = ref.assert_faithful(ours[i], theirs, context=context)
      if name == "spatter":
        # float32 vs float64 liquid layer: a value within ~4e-9 of the threshold could land on
        # the other side and move a Canny edge locally (measured: none in 400 images).
        assert fid["frac_gt2"] <= 1e-3, (context, fid)
      else:
        assert fid["max"] <= 1, (context, fid)  # measured: off by one at most (truncation)


def test_fog_draws_65535_uniforms_in_call_order():
  u = plasma.draw_uniforms(jax.random.key(0))
  assert u.shape == (65_535,) and plasma.num_uniforms() == 65_535
  u = np.asarray(u)
  assert u.min() >= 0 and u.max() < 1
  assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
  module = ref.load_original()
  for decay in (2.0, 1.7, 1.4):
    with ref.Replay(uniform=u.astype(np.float64), standard=("uniform",)) as replay:
      theirs = module.plasma_fractal(wibbledecay=decay)
    shapes = [shape for _, _, shape in replay.args["uniform"]]
    assert shapes[:6] == [(1, 1)] * 3 + [(2, 2)] * 3 and shapes[-1] == (128, 128)
    ours = np.asarray(jax.jit(plasma.plasma_fractal)(jnp.asarray(u), decay))
    assert ours.min() == 0 and ours.max() == 1
    np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_draw_distributions():
  keys = _keys(7, 2000)
  frost = jax.jit(jax.vmap(lambda k: weather.frost_draw(k, 1)))(keys)
  index = np.asarray(frost["index"])
  counts = np.bincount(index, minlength=6)
  assert counts[5] == 0 and 0 not in counts[:5]  # randint(5): frost6 is never used
  assert np.all(np.abs(counts[:5] / len(index) - 0.2) < 0.04)
  limits = np.asarray(weather.FROST_SHAPES)[index] - 224
  for k, coord in ((0, "row"), (1, "col")):
    offsets = np.asarray(frost[coord])
    assert offsets.min() >= 0 and np.all(offsets < limits[:, k])  # high bound exclusive
    assert np.all(offsets.max() > 0.9 * limits[:, k].min())
  snow = jax.jit(jax.vmap(lambda k: weather.snow_draw(k, 1)))(keys[:4])
  z = np.asarray(snow["z"])
  assert z.shape == (4, 224, 224) and abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
  u = jax.jit(jax.vmap(lambda k: weather.snow_draw(k, 1)["u"]))(keys)  # z is dead code here
  angles = -135 + 90 * np.asarray(u)
  assert angles.min() >= -135 and angles.max() < -45 and abs(angles.mean() + 90) < 2
  z = np.asarray(weather.spatter_draw(keys[0], 3))
  assert z.shape == (224, 224) and abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02


@pytest.mark.parametrize("name", NAMES)
def test_batch_independence(name, batch):
  """An image's output depends only on its pixels, key and severity, not on its batch-mates.

  Same batch shape as the fidelity test, so the compiled program is reused.
  """
  keys = _keys(11, 8)
  out = np.asarray(imagenet_cp.corrupt(batch, name, 2, keys[:4]))
  mates = np.asarray(imagenet_cp.corrupt(
      batch[[0, 3, 1, 2]], name, 2, keys[jnp.array([0, 5, 6, 7])]))
  np.testing.assert_array_equal(out[0], mates[0])
  assert out.dtype == np.uint8 and out.shape == (4, 224, 224, 3)
  assert not np.array_equal(out[1], mates[1])


def test_batch_of_two_equals_batch_of_four(batch):
  keys = _keys(12, 4)
  four = np.asarray(imagenet_cp.corrupt(batch, "fog", 3, keys))
  two = np.asarray(imagenet_cp.corrupt(batch[2:], "fog", 3, keys[2:]))
  np.testing.assert_array_equal(two, four[2:])


# --------------------------------------------------------------------------------------------
# spatter's OpenCV steps, each against cv2 on random inputs (they are deterministic)


def _liquid_layers(n: int, seed: int = 0) -> np.ndarray:
  """uint8 [n, 224, 224]: the original's ``(liquid * 255).astype(uint8)`` for s1-3 settings,
  plus a few general images (noise, binary, smooth)."""
  rng = np.random.default_rng(seed)
  out = []
  for k in range(n):
    sigma, threshold = [(4, 0.69), (3, 0.68), (2, 0.68)][k % 3]
    layer = gaussian(rng.normal(0.65, 0.3, (224, 224)), sigma=sigma)
    layer[layer < threshold] = 0
    out.append((layer * 255).astype(np.uint8))
  out.append(rng.integers(0, 256, (224, 224)).astype(np.uint8))
  out.append((rng.random((224, 224)) > 0.5).astype(np.uint8) * 200)
  out.append(cv2.GaussianBlur(rng.integers(0, 256, (224, 224)).astype(np.uint8), (7, 7), 2))
  return np.stack(out)


def test_spatter_opencv_steps_match_cv2():
  layers = _liquid_layers(24)
  kernel = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
  edges = np.asarray(jax.jit(jax.vmap(sp.canny))(layers))
  blurred = np.asarray(jax.jit(jax.vmap(sp.distance_blur_u8))(jnp.asarray(layers) > 127))
  dist = np.asarray(jax.jit(jax.vmap(sp.water_dist))(layers))
  equalized = np.asarray(jax.jit(jax.vmap(sp.equalize_hist))(layers))
  filtered = np.asarray(jax.jit(jax.vmap(lambda x: sp.filter2d_u8(x, sp.WATER_KERNEL)))(layers))
  box = np.asarray(jax.jit(jax.vmap(sp.box_blur3_u8))(layers))
  for i, layer in enumerate(layers):
    np.testing.assert_array_equal(edges[i], cv2.Canny(layer, 50, 150), err_msg=f"canny {i}")
    d = cv2.distanceTransform(np.where(layer > 127, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    _, d = cv2.threshold(d, 20, 20, cv2.THRESH_TRUNC)
    np.testing.assert_array_equal(blurred[i], cv2.blur(d, (3, 3)).astype(np.uint8),
                                  err_msg=f"distance {i}")
    np.testing.assert_array_equal(equalized[i], cv2.equalizeHist(layer), err_msg=f"equalize {i}")
    np.testing.assert_array_equal(filtered[i], cv2.filter2D(layer, cv2.CV_8U, kernel))
    np.testing.assert_array_equal(box[i], cv2.blur(layer, (3, 3)))
    # The whole chain from the liquid layer to the float32 dist.
    e = cv2.Canny(layer, 50, 150)
    d = cv2.distanceTransform(255 - e, cv2.DIST_L2, 5)
    _, d = cv2.threshold(d, 20, 20, cv2.THRESH_TRUNC)
    d = cv2.equalizeHist(cv2.blur(d, (3, 3)).astype(np.uint8))
    d = cv2.blur(cv2.filter2D(d, cv2.CV_8U, kernel), (3, 3)).astype(np.float32)
    np.testing.assert_array_equal(dist[i], d, err_msg=f"water dist {i}")


def test_sobel_matches_cv2_on_extremes():
  # 0/255 noise reaches |d| = 1020, the int16 range OpenCV's CV_16S result needs.
  rng = np.random.default_rng(5)
  images = np.concatenate([rng.integers(0, 256, (2, 37, 53)),
                           255 * rng.integers(0, 2, (2, 37, 53))]).astype(np.uint8)
  dx, dy = jax.jit(jax.vmap(sp.sobel3))(images)
  for i, image in enumerate(images):
    np.testing.assert_array_equal(dx[i], cv2.Sobel(image, cv2.CV_16S, 1, 0, ksize=3,
                                                   borderType=cv2.BORDER_REPLICATE))
    np.testing.assert_array_equal(dy[i], cv2.Sobel(image, cv2.CV_16S, 0, 1, ksize=3,
                                                   borderType=cv2.BORDER_REPLICATE))
  assert np.abs(np.asarray(dx)).max() == 1020


def test_chamfer_distance_matches_cv2_below_cap():
  # Sparse sources (long in-row runs, up to the cap) to dense ones, bit for bit below the cap.
  rng = np.random.default_rng(3)
  zero = np.concatenate([rng.random((2, 224, 224)) > p for p in (0.9995, 0.999, 0.99, 0.9, 0.5)])
  ours = np.asarray(jax.jit(jax.vmap(sp.chamfer_distance))(zero))
  for i in range(len(zero)):
    d = cv2.distanceTransform(np.where(zero[i], 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    np.testing.assert_array_equal(ours[i], np.minimum(d, 20), err_msg=f"frame {i}")


def test_one_float32_addition_of_up_to_six_rounds_like_that_many_additions_of_one():
  """What the chamfer's doubling relies on (``spatter._EXACT_AXIAL_JUMP``), over every float32
  in [1, 48): y + m == ((y + 1) + 1) ... for m <= 6; m = 7 differs (so the bound is tight)."""
  first, stop = np.float32(1).view(np.uint32), np.float32(48).view(np.uint32)
  differs = {}
  for start in range(int(first), int(stop), 1 << 22):
    y = np.arange(start, min(start + (1 << 22), int(stop)), dtype=np.uint32).view(np.float32)
    one_at_a_time = y.copy()
    for m in range(1, sp._EXACT_AXIAL_JUMP + 2):
      one_at_a_time += np.float32(1)
      differs[m] = differs.get(m, 0) + int(np.count_nonzero(one_at_a_time != y + np.float32(m)))
  assert all(differs[m] == 0 for m in range(1, sp._EXACT_AXIAL_JUMP + 1)), differs
  assert differs[sp._EXACT_AXIAL_JUMP + 1] > 0


def test_liquid_to_u8_wraps_like_numpy():
  """The smoothed liquid can exceed 1 near corners; NumPy's uint8 cast then wraps modulo 256."""
  liquid = np.float32([0, 0.5, 0.68, 0.99999, 1.0, 1.0213877, 1.06, 1.9])
  expected = (liquid.astype(np.float64) * 255).astype(np.uint8)
  np.testing.assert_array_equal(np.asarray(sp.liquid_to_u8(jnp.asarray(liquid))), expected)
  assert expected[5] == 4


def test_equalize_hist_constant_and_two_level_images():
  for image in (np.full((224, 224), 37, np.uint8),
                np.where(np.arange(224)[:, None] < 100, 3, 250).astype(np.uint8) * np.ones(
                    (1, 224), np.uint8)):
    np.testing.assert_array_equal(np.asarray(sp.equalize_hist(jnp.asarray(image))),
                                  cv2.equalizeHist(image))


def test_spatter_without_edges_matches_original_black_image(photos_224):
  """No liquid above the threshold: the original divides 0 by 0 and np.uint8(NaN) is 0."""
  image = photos_224["chelsea"]
  z = np.full((224, 224), -10.0, np.float32)
  apply = jax.jit(weather.spatter_apply)  # severity traced: one compile for both modes
  for severity in (1, 4):
    ours = np.asarray(apply(jnp.asarray(image), jnp.asarray(z), jnp.int32(severity)))
    with ref.Replay(normal=z.astype(np.float64), standard=("normal",)):
      theirs = ref.run_original("spatter", image, severity)
    np.testing.assert_array_equal(ours, theirs)
    assert (ours.max() == 0) == (severity == 1)  # mud mode has no division


def test_render_water_matches_the_opencv_chain(photos_224):
  """``render_water`` (shared with ImageNet-P's spatter) against the original's water code, run
  here with cv2 on the same float32-representable liquid layers (incl. ImageNet-P-like layers
  smeared downwards by ``np.convolve(col, [0.05, 0.1, 0.15, 0.7], 'same')``)."""
  rng = np.random.default_rng(5)
  x = np.array(photos_224["coffee"], dtype=np.float32) / 255.
  render = jax.jit(sp.render_water)
  for k in range(4):
    liquid = gaussian(rng.normal(0.65, 0.27, (224, 224)), sigma=3.7)
    liquid[liquid < 0.69] = 0
    for _ in range(k * 3):
      liquid = np.apply_along_axis(
          lambda col: np.convolve(col, [0.05, 0.1, 0.15, 0.7], mode="same"), 0, liquid)
    liquid = liquid.astype(np.float32).astype(np.float64)
    l8 = (liquid * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(l8, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.equalizeHist(cv2.blur(dist, (3, 3)).astype(np.uint8))
    dist = cv2.filter2D(dist, cv2.CV_8U, np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]))
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    m = cv2.cvtColor(l8 * dist, cv2.COLOR_GRAY2BGRA)
    m /= np.max(m, axis=(0, 1))
    m *= 0.6
    color = np.concatenate([v / 255. * np.ones_like(m[..., :1]) for v in (175, 238, 238)], axis=2)
    color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
    expected = np.uint8(cv2.cvtColor(
        np.clip(cv2.cvtColor(x, cv2.COLOR_BGR2BGRA) + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255)
    ours = np.asarray(render(jnp.asarray(x), jnp.asarray(liquid, jnp.float32), 0.6))
    np.testing.assert_array_equal(np.floor(ours).astype(np.uint8), expected, err_msg=f"{k}")
