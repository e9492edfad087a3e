"""Noise corruptions (gaussian, shot, impulse, speckle) against the original ImageNet-C code.

Ours run through ``imagenet_cp.corrupt`` (one compile per corruption: severity is traced) on
the 4 photos at once; the original runs per photo with our draws replayed through a patched
``np.random`` (``imagenet_cp.oracles.corruptions.Replay``, which also checks the draws consumed).
shot_noise's Poisson draw is the output itself, so the draw is tested by its distribution and
the rest (counts -> pixels) against the original fed our counts.
"""
import jax
import numpy as np
import pytest
import scipy.stats

import imagenet_cp
from imagenet_cp.oracles import corruptions as ref
from imagenet_cp.corruptions import draw as draw_one
from imagenet_cp.corruptions import noise
from imagenet_cp.ops import poisson

from conftest import PHOTO_NAMES, check_batch_independence

NAMES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
SEVERITIES = (1, 2, 3, 4, 5)
SHAPE = (224, 224, 3)

_shot_counts = jax.jit(jax.vmap(noise.shot_counts, in_axes=(0, 0, None)))


@pytest.fixture(scope="module")
def batch(photos_224):
  return np.stack([photos_224[n] for n in PHOTO_NAMES])


def _keys(seed: int, n: int = len(PHOTO_NAMES)) -> jax.Array:
  return jax.random.split(jax.random.key(seed), n)


def _replay(name: str, d, counts=None) -> ref.Replay:
  if name in ("gaussian_noise", "speckle_noise"):
    return ref.Replay(normal=np.asarray(d, np.float64), standard=("normal",))
  if name == "impulse_noise":
    return ref.Replay(random=list(noise.impulse_replay_fields(d)))
  return ref.Replay(poisson=np.asarray(counts))


@pytest.mark.parametrize("name", NAMES)
def test_matches_original_with_replayed_draws(name, batch):
  for severity in SEVERITIES:
    keys = _keys(10 * severity + NAMES.index(name))
    ours = np.asarray(imagenet_cp.corrupt(batch, name, severity, keys))
    draws = [draw_one(name, severity, k) for k in keys]
    counts = None
    if name == "shot_noise":
      counts = np.asarray(_shot_counts(batch, np.stack(draws), severity))
    for i, photo in enumerate(PHOTO_NAMES):
      with _replay(name, draws[i], None if counts is None else counts[i]) as replay:
        theirs = ref.run_original(name, batch[i], severity)
      context = f"{name} s{severity} {photo}"
      if name == "impulse_noise":
        assert replay.calls == dict(replay.calls, default_rng=1, random=2), replay.calls
        assert replay.args["random"] == [(SHAPE,), (SHAPE,)]
        np.testing.assert_array_equal(ours[i], theirs, err_msg=context)
      elif name == "shot_noise":
        assert replay.calls["poisson"] == 1
        # Counts come from a separately compiled program: allow a rare float32 CDF flip.
        assert np.mean(ours[i] == theirs) >= 0.9999, context
      else:
        assert replay.calls["normal"] == 1
        assert replay.args["normal"][0][1] == pytest.approx(
            {"gaussian_noise": noise.GAUSSIAN_STD, "speckle_noise": noise.SPECKLE_STD}[name][
                severity - 1])
        # float32 vs float64 only moves values sitting on a truncation step, by one level.
        fid = ref.fidelity(ours[i], theirs)
        assert fid["max"] <= 1 and fid["mad"] <= 1e-3, (context, fid)
      ref.assert_faithful(ours[i], theirs, context=context)


def test_normal_draws_moments():
  z = np.asarray(draw_one("gaussian_noise", 3, jax.random.key(0)))
  assert z.shape == SHAPE and z.dtype == np.float32
  assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
  assert abs(scipy.stats.kurtosis(z.ravel())) < 0.05
  z2 = np.asarray(draw_one("speckle_noise", 3, jax.random.key(0)))
  np.testing.assert_array_equal(z, z2)  # same key, same standard normals; c is applied later


def test_impulse_draws_and_flip_rates():
  d = draw_one("impulse_noise", 5, jax.random.key(1))
  u, salted = np.asarray(d["u"]), np.asarray(d["salted"])
  assert u.shape == SHAPE and u.dtype == np.float32 and salted.shape == SHAPE
  assert u.min() >= 0 and u.max() < 1
  assert abs(u.mean() - 0.5) < 0.005 and abs(salted.mean() - 0.5) < 0.005
  assert abs(np.corrcoef(u.ravel(), salted.ravel())[0, 1]) < 0.01
  # Neighbouring bits of one random word are independent too.
  assert abs(np.mean(salted.ravel()[:-1] == salted.ravel()[1:]) - 0.5) < 0.005
  grey = np.full((4,) + SHAPE, 128, np.uint8)
  for severity, amount in zip(SEVERITIES, noise.IMPULSE_AMOUNT):
    out = np.asarray(imagenet_cp.corrupt(grey, "impulse_noise", severity, _keys(severity)))
    assert set(np.unique(out)) <= {0, 128, 255}
    se = np.sqrt(amount * (1 - amount) / out.size)
    assert abs(np.mean(out != 128) - amount) < 5 * se
    assert abs(np.mean(out == 255) - amount / 2) < 5 * se


def test_float32_threshold_matches_float64_comparison():
  for p in noise.IMPULSE_AMOUNT:
    t = noise.float32_at_most(p)
    assert float(t) <= p < float(np.nextafter(t, np.float32(np.inf)))


def _shot_output_pmf(lam: float, c: int) -> tuple[np.ndarray, np.ndarray]:
  """Exact distribution of the original's uint8 output for one pixel: values, probabilities."""
  k = np.arange(c + 1)
  values = np.uint8(np.clip(k / float(c), 0, 1) * 255).astype(np.float64)
  probs = scipy.stats.poisson.pmf(k, lam)
  return np.append(values, 255.0), np.append(probs, scipy.stats.poisson.sf(c, lam))


def test_shot_noise_distribution_per_intensity():
  """Output mean and variance per grey level equal the exact Poisson figures (5 sigma)."""
  levels = (0, 30, 128, 255)
  images = np.stack([np.full(SHAPE, v, np.uint8) for v in levels])
  for severity, c in zip(SEVERITIES, noise.SHOT_PHOTONS):
    out = np.asarray(imagenet_cp.corrupt(images, "shot_noise", severity, _keys(50 + severity)))
    for i, v in enumerate(levels):
      values, probs = _shot_output_pmf(v / 255.0 * c, c)
      mean = float(values @ probs)
      var = float((values - mean) ** 2 @ probs)
      sample = out[i].astype(np.float64).ravel()
      if var == 0:
        assert np.all(sample == mean), (severity, v)
        continue
      assert abs(sample.mean() - mean) < 5 * np.sqrt(var / sample.size), (severity, v)
      assert abs(sample.var() / var - 1) < 5 * np.sqrt(2.0 / sample.size) + 0.01, (severity, v)


def test_shot_lut_is_the_float64_formula():
  lut = noise.shot_lut()
  for s, c in enumerate(noise.SHOT_PHOTONS):
    k = np.arange(lut.shape[1])
    np.testing.assert_array_equal(lut[s], np.uint8(np.clip(k / float(c), 0, 1) * 255))


def test_batch_axes_and_independence(batch):
  """Leading batch axes are flattened; an image's output does not depend on its batch-mates."""
  check_batch_independence(batch, _keys(7), NAMES, 2, np.array([2, 0, 3, 1]))


def test_shot_counts_guide_search_is_exact():
  """The guided search gives #{k : CDF(k) <= u} of the host table for uniforms on a stride of
  the 23-bit grid and at every bucket's ends, at all severities, for dark, mid and bright
  pixels."""
  lo, hi = poisson.bucket_bounds()
  m = np.unique(np.concatenate([np.arange(0, 1 << 23, 61), lo, hi]))
  u = (m * 2.0 ** -23).astype(np.float32)
  counts = jax.jit(noise.shot_counts, static_argnums=2)
  table = noise.shot_cdf_table()
  for severity in SEVERITIES:
    for v in (0, 1, 9, 128, 254, 255):
      ours = np.asarray(counts(np.full(u.shape, v, np.uint8), u, severity))
      theirs = np.searchsorted(table[severity - 1, v], u, side="right")
      np.testing.assert_array_equal(ours, theirs, err_msg=f"severity {severity}, pixel {v}")
