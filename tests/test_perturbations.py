"""ImageNet-P API: shapes, keys and draws, batching on a padded canvas, difficulty, bad input."""
import numpy as np
import pytest
import scipy.special
import scipy.stats

import jax
import jax.numpy as jnp

import imagenet_cp
from conftest import photo_256
from imagenet_cp import perturbations as P
from imagenet_cp.ops import geometry, poisson
from imagenet_cp.perturbations import base, blur, geometric, noise, weather


def test_registry_lists_the_papers_sequences():
  assert imagenet_cp.PERTURBATIONS == P.PERTURBATIONS
  assert len(P.TEST_PERTURBATIONS) == 10 and len(P.VALIDATION_PERTURBATIONS) == 4
  assert set(P.REGISTRY) == set(P.PERTURBATIONS)
  assert {n: P.num_frames(n) for n in P.PERTURBATIONS} == {
      n: 41 if n == "translate" else 31 for n in P.PERTURBATIONS}


def _lowbias32_np(x):
  """Wellons' lowbias32 in NumPy uint32 arithmetic (independent of the JAX code)."""
  x = x.astype(np.uint32)
  x ^= x >> np.uint32(16)
  x *= np.uint32(0x7FEB352D)
  x ^= x >> np.uint32(15)
  x *= np.uint32(0x846CA68B)
  x ^= x >> np.uint32(16)
  return x


def test_frame_draws_come_from_fold_in():
  """Frame t's words: lowbias32(lowbias32(i + k0) ^ k1), (k0, k1) = fold_in(key, t)'s data;
  normals sqrt(2) erfinv(2u - 1) and uniforms u from the top 23 bits (jax.random's mapping)."""
  key = jax.random.key(3)
  normals = P.draw("gaussian_noise", key)
  uniforms = P.draw("shot_noise", key)
  assert normals.shape == uniforms.shape == (30, 224, 224, 3)
  assert normals.dtype == uniforms.dtype == jnp.float32
  counters = np.arange(224 * 224 * 3, dtype=np.uint32)
  for t in (1, 17, 30):
    k0, k1 = np.asarray(jax.random.key_data(jax.random.fold_in(key, t)))
    with np.errstate(over="ignore"):
      words = _lowbias32_np(_lowbias32_np(counters + k0) ^ k1).reshape(224, 224, 3)
    u = (words >> 9).astype(np.float64) / 2.0 ** 23
    np.testing.assert_array_equal(uniforms[t - 1], u.astype(np.float32))
    lo = np.nextafter(np.float32(-1), np.float32(0))  # (-1, 1) in float32, as jax.random does
    v = np.maximum(u.astype(np.float32) * (np.float32(1) - lo) + lo, lo).astype(np.float64)
    np.testing.assert_allclose(normals[t - 1], np.sqrt(2) * scipy.special.erfinv(v),
                               rtol=1e-6, atol=1e-9)
  layer = P.draw("snow", key)
  np.testing.assert_array_equal(layer, jax.random.normal(key, (224, 224)))


def test_normals_match_scipy_erfinv_on_every_uniform():
  """bits_to_normal on all 2^23 values of the 23-bit uniform, against float64 SciPy."""
  bits = np.arange(1 << 23, dtype=np.uint32) << np.uint32(9)
  z = np.asarray(jax.jit(noise.bits_to_normal)(bits), np.float64)
  lo = np.nextafter(np.float32(-1), np.float32(0))
  u = (bits >> np.uint32(9)).astype(np.float32) * np.float32(2.0 ** -23)
  v = np.maximum(u * (np.float32(1) - lo) + lo, lo).astype(np.float64)
  want = np.sqrt(2) * scipy.special.erfinv(v)
  assert np.all(np.abs(z - want) <= 1e-6 * np.maximum(np.abs(want), 1e-3))
  assert z.min() < -5.2 and z.max() > 5.2 and np.all(np.diff(z) >= 0)


def test_normal_draws_are_standard_and_independent_per_frame():
  z = np.asarray(P.draw("speckle_noise", jax.random.key(11)), np.float64)
  n = z[0].size
  assert abs(z.mean()) < 5 / np.sqrt(z.size)
  assert abs(z.std() - 1) < 0.005
  corr = np.corrcoef(z[0].ravel(), z[1].ravel())[0, 1]
  assert abs(corr) < 5 / np.sqrt(n)


def test_normal_draws_moments_tails_and_neighbours():
  """4.5 M normals of one key: the first four moments, the tails out to 4.5 sigma, and no
  correlation between neighbouring values (channels, columns, rows), frames, or keys."""
  key = jax.random.key(12)
  z = np.asarray(P.draw("gaussian_noise", key), np.float64)
  m = z.size
  assert abs(z.mean()) < 5 / np.sqrt(m)
  assert abs(z.var() - 1) < 5 * np.sqrt(2 / m)
  assert abs(scipy.stats.skew(z.ravel())) < 5 * np.sqrt(6 / m)
  assert abs(scipy.stats.kurtosis(z.ravel())) < 5 * np.sqrt(24 / m)
  for k in (1.0, 2.0, 3.0, 4.0, 4.5):  # two-sided tail counts against the binomial spread
    p = 2 * scipy.stats.norm.sf(k)
    assert abs((np.abs(z) > k).sum() - m * p) < 5 * np.sqrt(m * p * (1 - p)) + 1, k
  assert np.abs(z).max() < 6.5  # 23-bit uniforms reach 5.3 sigma; nothing spurious beyond
  other = np.asarray(P.draw("gaussian_noise", jax.random.fold_in(key, 1)), np.float64)
  pairs = {"channel": (z[..., :-1], z[..., 1:]), "column": (z[:, :, :-1], z[:, :, 1:]),
           "row": (z[:, :-1], z[:, 1:]), "frame": (z[:-1], z[1:]), "key": (z, other),
           "index 2^k apart": (z.reshape(-1)[:-4096], z.reshape(-1)[4096:])}
  for what, (a, b) in pairs.items():
    corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert abs(corr) < 5 / np.sqrt(a.size), (what, corr)


def test_uniform_draws_are_uniform_in_every_byte():
  """The uniforms' 23 bits: each of the top two bytes and the low 7 bits, chi-square."""
  u = np.asarray(P.draw("shot_noise", jax.random.key(13)), np.float64).ravel()
  bits = np.round(u * 2.0 ** 23).astype(np.int64)
  for shift, levels in ((15, 256), (7, 256), (0, 128)):
    observed = np.bincount((bits >> shift) % levels, minlength=levels)
    expected = u.size / levels
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < scipy.stats.chi2.ppf(0.9999, levels - 1), (shift, chi2)


def test_poisson_counts_have_the_poisson_distribution():
  """Shot noise's draw is the output: test the counts' distribution, not pixels."""
  image = photo_256("coffee")
  h, w = image.shape[:2]
  for difficulty, lam in ((1, 300.0), (3, 60.0)):
    uniforms = P.draw("shot_noise", jax.random.key(5), difficulty)
    counts = np.asarray(noise.shot_counts(image, h, w, uniforms, difficulty), np.float64)
    crop = np.asarray(imagenet_cp.preprocess(image), np.float64)
    rate = np.broadcast_to(crop * lam / 255.0, counts.shape)
    pos = rate > 0
    resid = (counts[pos] - rate[pos]) / np.sqrt(rate[pos])
    assert abs(resid.mean()) < 5 / np.sqrt(resid.size)
    assert abs(resid.var() - 1) < 0.01
    assert np.all(counts[~pos] == 0)
    # One rate in detail: the empirical pmf against scipy's, chi-square.
    level = int(np.bincount(crop.astype(int).ravel()).argmax())
    sample = counts[np.broadcast_to(crop == level, counts.shape)].astype(int)
    mu = lam * level / 255.0
    ks = np.arange(int(mu - 4 * np.sqrt(mu + 1)), int(mu + 4 * np.sqrt(mu + 1)) + 1)
    ks = ks[ks >= 0]
    observed = np.array([(sample == k).sum() for k in ks])
    expected = scipy.stats.poisson.pmf(ks, mu) * sample.size
    keep = expected > 5
    chi2 = (((observed - expected) ** 2 / expected)[keep]).sum()
    assert chi2 < scipy.stats.chi2.ppf(0.999, keep.sum() - 1), (difficulty, level, chi2)


def test_poisson_guided_search_equals_full_search():
  """The guide table + short search gives #{k : CDF(k) <= u} exactly, at the buckets' edges,
  both tails and random uniforms, for every difficulty."""
  rng = np.random.default_rng(0)
  powers = 1 << np.arange(23)
  m = np.concatenate([np.arange(64), (1 << 23) - 1 - np.arange(64), powers, powers - 1,
                      (1 << 23) - powers, (1 << 22) + np.arange(-64, 64),
                      rng.integers(0, 1 << 23, 20000)])
  u = m.astype(np.float32) * np.float32(2.0 ** -23)
  cdf = noise.poisson_cdf_table()
  for difficulty in (1, 2, 3):
    pixels = rng.integers(0, 256, u.size).astype(np.uint8)
    got = np.asarray(jax.jit(noise.poisson_counts)(u, pixels, jnp.int32(difficulty)))
    want = [np.searchsorted(cdf[difficulty - 1, p], x, side="right") for p, x in zip(pixels, u)]
    np.testing.assert_array_equal(got, want)


def test_bucket_and_position_of_every_uniform():
  """All 2^23 uniforms of the grid: the bucket whose bounds hold ``m`` and ``m`` minus its
  smallest ``m`` (``ops.poisson.bucket_and_position`` reads ``m`` from the bits of u + 1)."""
  m = np.arange(1 << 23)
  u = (m * 2.0 ** -23).astype(np.float32)
  bucket, position = map(np.asarray, jax.jit(poisson.bucket_and_position)(u))
  lo, hi = poisson.bucket_bounds()
  np.testing.assert_array_equal(np.asarray(jax.jit(poisson.uniform_bucket)(u)), bucket)
  assert np.all((lo[bucket] <= m) & (m <= hi[bucket]))
  np.testing.assert_array_equal(position, m - lo[bucket])


def test_shot_step_table_steps_where_the_full_search_does():
  """Every bucket of every difficulty and grey level: the count (byte) at the bucket's first and
  last uniform and on both sides of its step equals the full search's, so (counts being
  monotone in u) every one of the 2^23 uniforms gets the full search's count."""
  lo, hi = poisson.bucket_bounds()
  cdf = noise.poisson_cdf_table()
  count, position = poisson.step_table(cdf)
  table = noise.shot_step_table()
  byte = noise.shot_frame_bytes()
  rows_table = jnp.asarray(table.reshape(-1, poisson.BUCKETS))
  lookup = jax.jit(lambda u, row: poisson.stepped_lookup(rows_table, row, u))
  for difficulty in (1, 2, 3):
    rows = cdf[difficulty - 1]
    step = np.minimum(lo[None] + position[difficulty - 1], hi[None])
    for m in (np.broadcast_to(lo, step.shape), np.broadcast_to(hi, step.shape),
              np.maximum(step - 1, lo[None]), step):
      u = m.astype(np.float32) * np.float32(2.0 ** -23)
      want = np.stack([np.searchsorted(r, x, side="right") for r, x in zip(rows, u)])
      got = count[difficulty - 1] + (m - lo[None] >= position[difficulty - 1])
      np.testing.assert_array_equal(got, want)
      levels = (difficulty - 1) * 256 + np.arange(256)[:, None]
      payload, stepped = map(np.asarray, lookup(u, np.broadcast_to(levels, u.shape)))
      frame = (payload >> noise.GROWTH_BITS) + np.where(stepped, payload & 7, 0)
      np.testing.assert_array_equal(frame, byte[difficulty - 1, want])


def test_shot_frames_are_the_bytes_of_the_searched_counts():
  """shot_noise's one-look-up frames equal the original's ``np.uint8(255 * clip(k / lam, 0, 1))``
  of the guided search's counts, bit for bit, at every difficulty; those bytes equal the
  float32 formula too."""
  image = photo_256("chelsea")
  h, w = image.shape[:2]
  for difficulty, lam in zip((1, 2, 3), noise.SHOT_LAMBDA):
    k = np.arange(noise.POISSON_MAX, dtype=np.float32)
    f32 = np.floor(np.float32(255) * np.clip(k / np.float32(lam), 0, 1)).astype(np.uint8)
    np.testing.assert_array_equal(noise.shot_frame_bytes()[difficulty - 1], f32)
    uniforms = P.draw("shot_noise", jax.random.key(11), difficulty)
    counts = np.asarray(noise.shot_counts(image, h, w, uniforms, difficulty))
    frames = np.asarray(P.apply(image, "shot_noise", uniforms, difficulty))
    np.testing.assert_array_equal(frames[1:], noise.shot_frame_bytes()[difficulty - 1][counts])


def test_to_unit_by_parts_is_the_correctly_rounded_division():
  """zoom_blur's ``u * head + u * tail`` equals ToTensor's float32 ``u / 255`` for all 256 u,
  compiled, and with the head's product fused into the sum (an FMA) as well."""
  u = np.arange(256, dtype=np.float32)
  want = u / np.float32(255)
  np.testing.assert_array_equal(np.asarray(jax.jit(base.to_unit_by_parts)(u.astype(np.uint8))),
                                want)
  exact_head = u.astype(np.float64) * np.float64(base.UNIT_HEAD)
  assert np.all(exact_head.astype(np.float32) == exact_head)  # u * head is exact
  fused = (exact_head + (u * base.UNIT_TAIL).astype(np.float64)).astype(np.float32)
  np.testing.assert_array_equal(fused, want)
  exact = exact_head + u.astype(np.float64) * np.float64(base.UNIT_TAIL)  # the tail's FMA
  np.testing.assert_array_equal(exact.astype(np.float32), want)


def test_noise_frames_are_drawn_from_the_clean_frame():
  """Each noisy frame = f(clean crop, its own draw); frame 0 is the clean crop."""
  image = photo_256("rocket")
  h, w = image.shape[:2]
  normals = P.draw("speckle_noise", jax.random.key(2))
  frames = np.asarray(noise.speckle_noise(image, h, w, normals, 1))
  np.testing.assert_array_equal(frames[0], imagenet_cp.preprocess(image))
  # Replacing frame 5's draw changes frame 5 only.
  other = normals.at[4].set(jax.random.normal(jax.random.key(9), normals.shape[1:]))
  frames2 = np.asarray(noise.speckle_noise(image, h, w, other, 1))
  changed = [t for t in range(31) if not np.array_equal(frames[t], frames2[t])]
  assert changed == [5]


def test_spatter_drift_is_np_convolve_same():
  layer = np.random.default_rng(0).random((12, 5)).astype(np.float32)
  ours = np.asarray(weather.drift_down(jnp.asarray(layer)))
  want = np.apply_along_axis(
      lambda c: np.convolve(c, np.array([0.05, 0.1, 0.15, 0.7]), mode="same"), 0,
      layer.astype(np.float64))
  np.testing.assert_allclose(ours, want, atol=1e-6)


def test_spatter_chamfer_equals_cv2_distance_transform_bit_for_bit():
  """OpenCV's two raster passes with the in-row dependence unrolled 20 moves deep: every
  distance <= 20 is cv2's float32 value exactly, larger ones are capped, on drifting spatter
  layers (frames 0, 10, 30) and on a few isolated sources (long chains along rows)."""
  cv2 = pytest.importorskip("cv2")
  from imagenet_cp.ops import spatter as sp
  layer = weather.liquid_layer(weather.layer_draw(jax.random.key(3), 1))
  layers = []
  for t in range(31):
    if t in (0, 10, 30):
      layers.append(np.asarray(sp.liquid_to_u8(layer)))
    layer = weather.drift_down(layer)
  edges = [cv2.Canny(x, 50, 150) == 255 for x in layers]
  edges.append(np.random.default_rng(4).random((224, 224)) > 0.9995)
  zero = np.stack(edges)
  ours = np.asarray(jax.jit(jax.vmap(sp.chamfer_distance))(zero))
  for i, z in enumerate(zero):
    want = np.minimum(cv2.distanceTransform(np.where(z, 0, 255).astype(np.uint8),
                                            cv2.DIST_L2, 5), np.float32(20))
    np.testing.assert_array_equal(ours[i], want, err_msg=f"layer {i}")


def test_magick_offsets_at_exact_half_angles():
  """-60 degrees: i cos(a) = i / 2 exactly; ImageMagick's double arithmetic decides the ceil."""
  dy, dx = blur.magick_tap_offsets(-60.0, 21)
  a = np.pi * -60.0 / 180.0
  px, py = 21 * np.sin(a), 21 * np.cos(a)
  i = np.arange(21)
  np.testing.assert_array_equal(dx, np.ceil(i * py / np.hypot(px, py) - 0.5))
  np.testing.assert_array_equal(dy, np.ceil(i * px / np.hypot(px, py) - 0.5))


def test_tv02_affine_matrix_and_centre():
  """torchvision 0.2.x: centre (w/2 + 0.5, h/2 + 0.5) is a fixed point of every rotation."""
  w, h = 384, 256
  m = geometry.tv02_affine_matrix(w, h, 13.0, (0, 0), 0.7, 5.0)
  cx, cy = w * 0.5 + 0.5, h * 0.5 + 0.5
  np.testing.assert_allclose([m[0] * cx + m[1] * cy + m[2], m[3] * cx + m[4] * cy + m[5]],
                             [cx, cy], atol=1e-9)
  a, s = np.radians(13.0), np.radians(5.0)
  d = np.cos(a + s) * np.cos(a) + np.sin(a + s) * np.sin(a)
  np.testing.assert_allclose(
      [m[0], m[1], m[3], m[4]],
      np.array([np.cos(a + s), np.sin(a + s), -np.sin(a), np.cos(a)]) / 0.7 / d)


def test_batch_matches_single_and_ignores_canvas():
  """An image's frames do not depend on the canvas size or on its batch-mates."""
  images = [photo_256("coffee"), photo_256("rocket")]
  keys = jax.random.split(jax.random.key(1), 2)
  for name in ("tilt", "snow"):
    canvas, sizes = P.pad_to_canvas(images)
    big, big_sizes = P.pad_to_canvas(images[::-1], canvas_hw=(320, 448))
    batch = np.asarray(P.perturb_batch(canvas, sizes, name, keys))
    batch_big = np.asarray(P.perturb_batch(big, big_sizes, name, keys[::-1]))
    for n, image in enumerate(images):
      single = np.asarray(P.perturb(image, name, keys[n]))
      np.testing.assert_array_equal(batch[n], single)
      np.testing.assert_array_equal(batch_big[1 - n], single)


def test_difficulty_only_changes_noise_levels():
  image = photo_256("chelsea")
  key = jax.random.key(4)
  np.testing.assert_array_equal(P.perturb(image, "translate", key, 1),
                                P.perturb(image, "translate", key, 3))
  d1 = np.asarray(P.perturb(image, "gaussian_noise", key, 1), np.float64)
  d3 = np.asarray(P.perturb(image, "gaussian_noise", key, 3), np.float64)
  clean = np.asarray(imagenet_cp.preprocess(image), np.float64)
  np.testing.assert_array_equal(d1[0], d3[0])
  spread1, spread3 = np.abs(d1[1:] - clean).mean(), np.abs(d3[1:] - clean).mean()
  assert 2.0 < spread3 / spread1 < 3.0  # sigma 0.08 / 0.03, less clipping at the bounds


def test_geometric_identity_frames_are_the_clean_crop():
  image = photo_256("astronaut")
  clean = imagenet_cp.preprocess(image)
  key = jax.random.key(0)
  np.testing.assert_array_equal(P.perturb(image, "translate", key)[20], clean)
  np.testing.assert_array_equal(P.perturb(image, "rotate", key)[15], clean)


def test_translate_windows_equal_pil_nearest_affine():
  """The fast path of translate equals the general PIL NEAREST sampler on the same frames."""
  image = photo_256("rocket")
  h, w = image.shape[:2]
  fast = geometric.translate(jnp.asarray(image), h, w, (), 1)
  general = geometric.affine_sequence(jnp.asarray(image), h, w, geometric.TRANSLATE_PARAMS,
                                      bilinear=False)
  np.testing.assert_array_equal(fast, general)


@pytest.mark.parametrize("image,match", [
    (np.zeros((224, 224, 3), np.uint8), "already cropped to 224"),
    (np.zeros((300, 400, 3), np.uint8), "shorter side 256"),
    (np.zeros((256, 300), np.uint8), r"\[H, W, 3\]"),
    (np.zeros((256, 300, 3), np.float32), "uint8"),
])
def test_bad_image(image, match):
  with pytest.raises(ValueError, match=match):
    P.perturb(image, "rotate", jax.random.key(0))


@pytest.mark.parametrize("name,difficulty,match", [
    ("blur", 1, "unknown perturbation"), ("Rotate", 1, "unknown perturbation"),
    ("rotate", 0, "1..3"), ("rotate", 4, "1..3"), ("rotate", 1.0, "1..3"),
    ("rotate", True, "1..3")])
def test_bad_name_or_difficulty(name, difficulty, match):
  with pytest.raises(ValueError, match=match):
    P.perturb(photo_256("coffee"), name, jax.random.key(0), difficulty)


def test_bad_batch():
  canvas, sizes = P.pad_to_canvas([photo_256("coffee")])
  keys = jax.random.split(jax.random.key(0), 1)
  with pytest.raises(ValueError, match="exceeds the canvas"):
    P.perturb_batch(canvas, np.array([[256, 900]]), "rotate", keys)
  with pytest.raises(ValueError, match="one key per image"):
    P.perturb_batch(canvas, sizes, "rotate", jax.random.split(jax.random.key(0), 2))
  with pytest.raises(ValueError, match="shorter side 256"):
    P.perturb_batch(canvas, np.array([[250, 384]]), "rotate", keys)
  with pytest.raises(ValueError, match="uint8"):
    P.perturb_batch(canvas.astype(np.float32), sizes, "rotate", keys)
