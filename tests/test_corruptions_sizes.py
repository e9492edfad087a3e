"""The 19 corruptions at 32 (CIFAR), 64 (Tiny-ImageNet / ImageNet 64x64) and 299 (Inception).

The oracle is ``imagenet_cp.oracles.corruptions_sizes``: each size's script written out line by
line (checked here against the PyPI package at 224, where both exist), fed our draws through
``Replay``.  Inputs are real photos brought to each script's input (``inputs``): 32 and 64 a
bilinear resize of the 4 photos, 299 the inception script's 0.875 centre crop + resize, one photo
(its glass_blur oracle is a pure-Python loop over up to 88,209 pixels per pass).
Measured figures: docs/fidelity/sizes.md.
"""
import functools
import io

import jax
import numpy as np
import pytest
import scipy.stats
from PIL import Image

import imagenet_cp
from imagenet_cp import assets
from imagenet_cp.corruptions import blur, digital, noise, sizes, weather
from imagenet_cp.corruptions import draw as draw_one
from imagenet_cp.oracles import corruptions as ref
from imagenet_cp.oracles import corruptions_sizes as orig
from imagenet_cp.ops import plasma

from conftest import PHOTO_NAMES, photo

SIZES = (32, 64, 299)
SEVERITIES = (1, 2, 3, 4, 5)
NAMES = imagenet_cp.CORRUPTIONS
# Bit-exact at every size (integer or host-tabulated arithmetic, as at 224).
EXACT = ("shot_noise", "impulse_noise", "frost", "contrast", "pixelate", "jpeg_compression")


def _photos(size: int) -> np.ndarray:
  names = PHOTO_NAMES[:1] if size == 299 else PHOTO_NAMES
  return np.stack([orig.inputs(photo(n), size) for n in names])


@pytest.fixture(scope="module")
def batches():
  return {size: _photos(size) for size in SIZES}


def _keys(seed: int, n: int) -> jax.Array:
  return jax.random.split(jax.random.key(seed), n)


_shot_counts = jax.jit(noise.shot_counts, static_argnums=3)


def replay_for(name: str, severity: int, size: int, image, d) -> ref.Replay:
  """The original's np.random queues for our draws ``d`` of one image."""
  if name in ("gaussian_noise", "speckle_noise", "spatter"):
    return ref.Replay(normal=np.asarray(d, np.float64), standard=("normal",))
  if name == "shot_noise":
    return ref.Replay(poisson=np.asarray(_shot_counts(image, d, severity, size)))
  if name == "impulse_noise":
    return ref.Replay(random=list(noise.impulse_replay_fields(d)))
  if name == "glass_blur":
    d = np.asarray(d)
    return ref.Replay(randint=orig.glass_blur_queue(d[..., 0], d[..., 1], severity, size))
  if name == "motion_blur":
    return ref.Replay(uniform=[float(d)])
  if name == "snow":
    return ref.Replay(normal=np.asarray(d["z"], np.float64), uniform=[float(d["u"])],
                      standard=True)
  if name == "frost":
    return ref.Replay(randint=[int(d["index"]), int(d["row"]), int(d["col"])])
  if name == "fog":
    return ref.Replay(uniform=np.asarray(d, np.float64), standard=("uniform",))
  if name == "elastic_transform":
    return ref.Replay(uniform=[np.asarray(d[k], np.float64) for k in ("affine", "dx", "dy")],
                      standard=True)
  return ref.Replay()  # deterministic: must draw nothing


def _check_calls(replay: ref.Replay, name: str, severity: int, size: int) -> None:
  """The original made exactly the calls the script makes, with the shapes it draws."""
  for queue, shapes in orig.expected_draws(name, severity, size).items():
    assert [args[-1] for args in replay.args[queue]] == shapes, (name, queue)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", SIZES)
def test_matches_original_with_replayed_draws(size, name, batches):
  """All 5 severities through ``imagenet_cp.corrupt`` (one compile), against the size's script."""
  batch = batches[size]
  for severity in SEVERITIES:
    keys = _keys(1000 * severity + size + NAMES.index(name), len(batch))
    ours = np.asarray(imagenet_cp.corrupt(batch, name, severity, keys))
    assert ours.shape == batch.shape and ours.dtype == np.uint8
    for i in range(len(batch)):
      d = draw_one(name, severity, keys[i], size)
      with replay_for(name, severity, size, batch[i], d) as replay:
        theirs = orig.run_original(name, batch[i], severity)
      _check_calls(replay, name, severity, size)
      context = f"{size}px {name} s{severity} photo {i}"
      if name in EXACT:
        np.testing.assert_array_equal(ours[i], theirs, err_msg=context)
      fid = ref.assert_faithful(ours[i], theirs, context=context)
      if name == "elastic_transform":  # 1/32-pixel warp (OpenCV <= 4.10) vs OpenCV 5's exact one
        assert fid["max"] <= 4, (context, fid)
      elif name == "spatter":  # a value at the float32 threshold could move a Canny edge
        assert fid["frac_gt2"] <= 1e-3, (context, fid)
      else:  # float32 vs float64 at a truncation step: one grey level
        assert fid["max"] <= 1, (context, fid)


@pytest.mark.parametrize("size", SIZES)
def test_elastic_exact_coordinates_match_opencv5(size, batches):
  """Everything but the 1/32-pixel warp quantisation, against the installed OpenCV 5: max 1."""
  cv2 = pytest.importorskip("cv2")
  if int(cv2.__version__.split(".")[0]) < 5:  # 4.10-4.14 still sample at 1/32 pixel
    pytest.skip(f"OpenCV {cv2.__version__} quantises warpAffine coordinates; exact ones are 5.x")
  batch = batches[size][:2]
  apply = jax.jit(jax.vmap(functools.partial(digital.elastic_transform, quantize=False),
                           in_axes=(0, 0, None)))
  for severity in SEVERITIES:
    keys = _keys(severity, len(batch))
    draws = [draw_one("elastic_transform", severity, k, size) for k in keys]
    ours = np.asarray(apply(batch, jax.tree.map(lambda *a: np.stack(a), *draws), severity))
    for i in range(len(batch)):
      with replay_for("elastic_transform", severity, size, batch[i], draws[i]):
        theirs = orig.run_original("elastic_transform", batch[i], severity)
      fid = ref.assert_faithful(ours[i], theirs)
      assert fid["max"] <= 1 and fid["mad"] <= 1e-3, (size, severity, i, fid)


def test_constants_are_the_scripts():
  """``corruptions.sizes`` against the oracle's own transcription of each script's lists."""
  for size in SIZES + (224,):
    ours, theirs = sizes.constants(size), orig.script(size)
    for name in NAMES:
      if name == "zoom_blur":
        for a, b in zip(ours.zoom_factors(), theirs.c[name]):
          np.testing.assert_array_equal(a, b)
      elif name == "elastic_transform":
        assert ours.elastic() == tuple(tuple(row) for row in theirs.c[name]), size
      else:
        assert list(getattr(ours, name)) == list(theirs.c[name]), (size, name)
    assert ours.plasma_mapsize == theirs.mapsize and ours.frost_scale == theirs.frost_fx
  assert [len(z) for z in sizes.CIFAR.zoom_factors()] == [7, 12, 16, 21, 26]
  assert sizes.TINY_IMAGENET.pixelate_sizes() == (57, 51, 44, 38, 32)
  assert sizes.INCEPTION.elastic_points().tolist() == [[248, 248], [248, 50], [50, 50]]
  assert not sizes.CIFAR.release_jpeg and sizes.TINY_IMAGENET.release_jpeg
  assert sizes.INCEPTION.release_jpeg and sizes.IMAGENET.release_jpeg


# The 224 transcription against the package, with the same draws (glass_blur at its cheapest
# severity: 48,400 loop steps).
_TRANSCRIPTION_CASES = [(n, s) for n in NAMES if n != "glass_blur" for s in (1, 4)]
_TRANSCRIPTION_CASES.append(("glass_blur", 2))


@pytest.mark.parametrize("name,severity", _TRANSCRIPTION_CASES)
def test_transcription_matches_the_package_at_224(name, severity, photos_224):
  image = photos_224["chelsea"]
  d = draw_one(name, severity, jax.random.key(severity), 224)
  outs = []
  for run in (ref.run_original, orig.run_original):
    with replay_for(name, severity, 224, image, d) as replay:
      outs.append(run(name, image, severity))
    _check_calls(replay, name, severity, 224)
  np.testing.assert_array_equal(outs[0], outs[1], err_msg=f"{name} s{severity}")


def test_unsupported_sizes_are_a_clear_error():
  key = jax.random.key(0)
  for shape in ((100, 100, 3), (64, 32, 3), (256, 256, 3)):
    with pytest.raises(ValueError, match=r"32x32.*64x64.*224x224.*299x299"):
      imagenet_cp.corrupt(np.zeros(shape, np.uint8), "fog", 1, key)
  with pytest.raises(ValueError, match="supported sizes"):
    sizes.constants(128)
  with pytest.raises(ValueError, match="supported sizes"):
    draw_one("fog", 1, key, 128)


def test_equal_weight_disks_are_exact():
  """defocus's integer disk sums: the formula chosen for every size's equal-weight disks
  equals the host table of the original's float64 arithmetic for every possible sum."""
  seen = set()
  for size in SIZES + (224,):
    for radius, alias in sizes.constants(size).defocus_blur:
      tables = blur.disk_sum_tables(radius, alias)
      if tables is None or (radius, alias) in seen:
        continue
      seen.add((radius, alias))
      mask, table = tables
      total = np.arange(table.size, dtype=np.int32)
      got = np.asarray(jax.jit(lambda t: blur.disk_value(t, table, int(mask.sum())))(total))
      np.testing.assert_array_equal(got, table, err_msg=f"disk {radius}, {alias}")
  assert seen == {(1.5, 0.1), (1, 0.1), (2.5, 0.01), (3, 0.1), (4, 0.1)}


@pytest.mark.parametrize("size", (32, 64, 224, 299))
def test_release_jpeg_matches_pil_at_every_size(size):
  """``imagenet_cp.release_jpeg`` is PIL's q85 save + open at every size (the 64, 224 and 299
  scripts save that way; CIFAR saves raw uint8 and does not apply it)."""
  image = orig.inputs(photo("coffee"), size)
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, "JPEG", quality=85, optimize=True)
  theirs = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
  np.testing.assert_array_equal(np.asarray(imagenet_cp.release_jpeg(image)), theirs)


# ----------------------------------------------------------------------------------------------
# The draws' distributions against the originals' own draws at each size (two-sample tests).

P_MIN = 1e-3


def _draws(name: str, size: int, severity: int, n: int):
  keys = _keys(7 * size + severity, n)
  fn = jax.jit(jax.vmap(lambda k: imagenet_cp.corruptions.REGISTRY[name].draw(k, severity, size)))
  return jax.tree.map(np.asarray, fn(keys))


def _same_distribution(ours, theirs, what: str) -> None:
  p = scipy.stats.ks_2samp(np.ravel(ours), np.ravel(theirs), method="asymp").pvalue
  assert p > P_MIN, (what, p)


@pytest.mark.parametrize("size", SIZES)
def test_continuous_draws_match_the_originals(size):
  rng = np.random.default_rng(size)
  n = {32: 16, 64: 4, 299: 1}[size]
  sev = 3
  for name in ("gaussian_noise", "speckle_noise"):
    z = _draws(name, size, sev, n)
    assert z.shape == (n, size, size, 3)
    c = sizes.constants(size)
    scale = getattr(c, name)[sev - 1]
    _same_distribution(scale * z, rng.normal(size=z.shape, scale=scale), f"{size} {name}")
  z = _draws("spatter", size, sev, n)
  loc, scale = sizes.constants(size).spatter[sev - 1][:2]
  _same_distribution(loc + scale * z, rng.normal(size=z.shape, loc=loc, scale=scale), "spatter")
  snow = _draws("snow", size, sev, 200)
  loc, scale = sizes.constants(size).snow[sev - 1][:2]
  _same_distribution(loc + scale * snow["z"][:n],
                     rng.normal(size=(n, size, size), loc=loc, scale=scale), "snow layer")
  _same_distribution(-135 + 90 * snow["u"], rng.uniform(-135, -45, 200), "snow angle")
  angle = _draws("motion_blur", size, sev, 200)
  _same_distribution(angle, rng.uniform(-45, 45, 200), "motion angle")
  fog = _draws("fog", size, sev, n)
  assert fog.shape == (n, plasma.num_uniforms(sizes.constants(size).plasma_mapsize))
  _same_distribution(fog, rng.uniform(size=fog.shape), "fog uniforms")
  elastic = _draws("elastic_transform", size, sev, max(n, 8))
  assert elastic["dx"].shape[1:] == (size, size) and elastic["affine"].shape[1:] == (3, 2)
  for k in ("affine", "dx", "dy"):
    _same_distribution(2 * elastic[k] - 1, rng.uniform(-1, 1, elastic[k].shape), f"elastic {k}")
  impulse = _draws("impulse_noise", size, sev, n)
  amount = sizes.constants(size).impulse_noise[sev - 1]
  # The flip decision and salt/pepper against skimage's two rng.random fields' outcomes.
  flipped = impulse["u"] <= amount
  theirs = rng.random(flipped.shape) <= amount
  table = [[flipped.sum(), (~flipped).sum()], [theirs.sum(), (~theirs).sum()]]
  assert scipy.stats.chi2_contingency(table).pvalue > P_MIN
  assert abs(impulse["salted"].mean() - 0.5) < 5 * np.sqrt(0.25 / impulse["salted"].size)


@pytest.mark.parametrize("size", SIZES)
def test_shot_counts_match_numpy_poisson(size):
  """Counts (capped at c + 1, where the output saturates) against ``np.random.poisson``."""
  rng = np.random.default_rng(size)
  for severity, c in zip(SEVERITIES, sizes.constants(size).shot_noise):
    u = _draws("shot_noise", size, severity, 1)[0]
    for level in (3, 128, 250):
      image = np.full((size, size, 3), level, np.uint8)
      ours = np.asarray(_shot_counts(image, u, severity, size))
      theirs = np.minimum(rng.poisson(level / 255.0 * c, ours.shape), c + 1)
      _same_distribution(ours, theirs, f"{size} s{severity} c={c} level {level}")


@pytest.mark.parametrize("size", SIZES)
def test_discrete_draws_match_the_originals(size):
  rng = np.random.default_rng(size)
  for severity, (_, d, iterations) in zip(SEVERITIES, sizes.constants(size).glass_blur):
    offsets = _draws("glass_blur", size, severity, 1)[0][:iterations]
    inner = offsets[:, d + 1:size - d + 1, d + 1:size - d + 1].reshape(-1, 2)  # the loop region
    assert inner.min() >= -d and inner.max() <= d - 1
    pair = (inner[:, 0] + d) * 2 * d + inner[:, 1] + d
    counts = np.bincount(pair, minlength=4 * d * d)
    theirs = rng.integers(-d, d, inner.shape)
    counts_theirs = np.bincount((theirs[:, 0] + d) * 2 * d + theirs[:, 1] + d,
                                minlength=4 * d * d)
    p = scipy.stats.chi2_contingency(np.stack([counts, counts_theirs])).pvalue
    assert p > P_MIN, (size, severity, p)
  frost = _draws("frost", size, 1, 2000)
  shapes = np.asarray(weather.frost_shapes(size))
  counts = np.bincount(frost["index"], minlength=5)
  assert counts.size == 5  # randint(5): frost6 is never used
  p = scipy.stats.chi2_contingency(np.stack([counts, np.bincount(rng.integers(0, 5, 2000))])).pvalue
  assert p > P_MIN, p
  for k, coord in enumerate(("row", "col")):
    high = shapes[frost["index"], k] - size
    assert frost[coord].min() >= 0 and np.all(frost[coord] < high)
    _same_distribution(frost[coord] / high, rng.integers(0, high) / high, f"frost {coord}")


def test_frost_textures_resized_as_the_scripts():
  """CIFAR and 64 crop from ``cv2.resize(frost, fx=fy=0.2 / 0.3)``; 224 and 299 from the files."""
  import cv2
  assert weather.frost_shapes(32) == ((120, 180), (63, 112), (63, 112), (70, 105), (99, 132))
  assert weather.frost_shapes(299) == weather.FROST_SHAPES
  stack = weather.frost_stack(64)
  textures = assets.frost_textures()
  for i, shape in enumerate(weather.frost_shapes(64)):
    theirs = cv2.resize(textures[i], (0, 0), fx=0.3, fy=0.3)
    np.testing.assert_array_equal(stack[i, :shape[0], :shape[1]], theirs)


@pytest.mark.parametrize("size", SIZES)
def test_jittable_without_host_callbacks(size):
  """Under an outer jit, every corruption traces to one program with no host callback."""
  images = np.zeros((2, size, size, 3), np.uint8)
  keys = _keys(size, 2)
  for name in NAMES:
    text = str(jax.make_jaxpr(jax.jit(lambda x, k: imagenet_cp.corrupt(x, name, 3, k)))(
        images, keys))
    assert "callback" not in text, (size, name)


@pytest.mark.parametrize("size", (32, 64, 224, 299))
def test_corruption_input_is_each_scripts_loader(size):
  """The public helper equals the oracle's copy of each script's loader, on every photo shape."""
  for name in PHOTO_NAMES:
    np.testing.assert_array_equal(imagenet_cp.corruption_input(photo(name), size),
                                  orig.inputs(photo(name), size))
  tiny = np.zeros((size, size, 3), np.uint8) + 7
  if size in (32, 64):  # CIFAR's and Tiny-ImageNet's own images pass through unchanged
    np.testing.assert_array_equal(imagenet_cp.corruption_input(tiny, size), tiny)
  with pytest.raises(ValueError, match="sizes are 32, 64, 224 and 299"):
    imagenet_cp.corruption_input(tiny, 128)
