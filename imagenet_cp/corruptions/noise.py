"""ImageNet-C noise corruptions: gaussian, shot, impulse and speckle noise.

Each follows Hendrycks's ``make_imagenet_c.py``; ``x01 = image / 255`` and the result is
``np.uint8(out)`` (truncation).  The arithmetic is done in 0..255 units in float32
(``clip(x01 + n, 0, 1) * 255 = clip(image + 255 n, 0, 255)``), which keeps float32 rounding
below the truncation steps except on a negligible set of values.  Severity is a traced index:
one compiled program serves all five severities.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.corruptions.base import Corruption
from imagenet_cp.ops import poisson, rng

SHAPE = (224, 224, 3)

GAUSSIAN_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
SHOT_PHOTONS = (60, 25, 12, 5, 3)
IMPULSE_AMOUNT = (0.03, 0.06, 0.09, 0.17, 0.27)
SPECKLE_STD = (0.15, 0.2, 0.35, 0.45, 0.6)


def _pick(values, severity) -> jax.Array:
  """``values[severity - 1]`` as float32 for a traced or static severity."""
  return jnp.asarray(np.asarray(values, np.float32))[jnp.asarray(severity) - 1]


def _to_uint8(x255) -> jax.Array:
  """``np.uint8(clip(x, 0, 1) * 255)`` for a float in 0..255 units: clip, then truncate."""
  return jnp.clip(x255, 0.0, 255.0).astype(jnp.uint8)


def float32_at_most(p: float) -> np.float32:
  """The largest float32 ``t`` with ``t <= p``: for float32 ``u``, ``u <= t`` iff ``u <= p``
  in float64, so comparisons of float32 draws agree exactly with the original's float64."""
  t = np.float32(p)
  return t if float(t) <= p else np.nextafter(t, np.float32(-np.inf))


# --- gaussian_noise: clip(x01 + N(0, c), 0, 1) * 255 ------------------------------------------


def standard_normal_draw(key, severity) -> jax.Array:
  """224*224*3 standard normals, float32 [224, 224, 3] (the original draws normal(scale=c))."""
  del severity
  return rng.normal(key, SHAPE)


def gaussian_noise_apply(image, z, severity) -> jax.Array:
  """``np.uint8(clip(x01 + c z, 0, 1) * 255)``, c = GAUSSIAN_STD[severity - 1]."""
  c = _pick(GAUSSIAN_STD, severity)
  return _to_uint8(image.astype(jnp.float32) + (255.0 * c) * z)


# --- shot_noise: clip(poisson(x01 * c) / c, 0, 1) * 255 ------------------------------------------


def shot_noise_draw(key, severity) -> jax.Array:
  """Uniforms, float32 [224, 224, 3], turned into Poisson counts by CDF inversion in ``apply``
  (the count depends on the image, the uniform does not).  The Poisson draw IS the output, so
  only its distribution is tested."""
  del severity
  return rng.uniform(key, SHAPE)


SHOT_TABLE_WIDTH = 64  # >= max(SHOT_PHOTONS) + 1 CDF entries


@functools.lru_cache(maxsize=None)
def shot_cdf_table() -> np.ndarray:
  """Poisson CDFs for every severity and grey level, float32 [5, 256, 64].

  ``table[s, v, k]`` is the largest float32 <= ``P(poisson(v / 255 * c) <= k)`` (float64, SciPy)
  for k <= c, and 2 (never reached by a uniform) beyond: for a float32 uniform ``u``,
  ``#{k : table[s, v, k] <= u} = min(K, c + 1)`` with ``K ~ poisson(v / 255 * c)``.
  """
  import scipy.stats
  table = np.full((len(SHOT_PHOTONS), 256, SHOT_TABLE_WIDTH), 2.0, np.float32)
  v = np.arange(256, dtype=np.float64)
  for s, c in enumerate(SHOT_PHOTONS):
    k = np.arange(c + 1)
    cdf = scipy.stats.poisson.cdf(k[None, :], (v / 255.0 * c)[:, None])
    table[s, :, :c + 1] = np.vectorize(float32_at_most)(cdf)
  return table


@functools.lru_cache(maxsize=None)
def shot_guide_table() -> tuple[np.ndarray, int]:
  """``ops.poisson.guide_table`` of ``shot_cdf_table``: int8 [5, 256, poisson.BUCKETS] and the
  search steps."""
  return poisson.guide_table(shot_cdf_table(), np.int8)


def shot_counts(image, u, severity) -> jax.Array:
  """``min(poisson(x01 * c), c + 1)`` by CDF inversion, int32 [224, 224, 3].

  Only counts up to c matter (``k / c`` is clipped to 1).  The grey level has 256 values, so the
  CDFs are tabulated on the host in float64 (``shot_cdf_table``): count = #{k <= c : CDF(k) <= u},
  found by ``ops.poisson.guided_counts`` (the count at the uniform's bucket, then a short binary
  search: 1 + steps gathers per value instead of a 6-step bisection; the same counts).
  """
  guide, steps = shot_guide_table()
  row = (jnp.asarray(severity) - 1) * 256 + image.astype(jnp.int32)
  table = shot_cdf_table()
  return poisson.guided_counts(jnp.asarray(table.reshape(-1, table.shape[-1])),
                               jnp.asarray(guide.reshape(-1, poisson.BUCKETS)), row, u, steps)


def shot_lut() -> np.ndarray:
  """``np.uint8(clip(k / c, 0, 1) * 255)`` in float64 for k = 0..61, uint8 [5, 62].

  float32 ``k / c * 255`` lands just below the integer where the float64 original lands on
  it (or above) for ~15% of the values at c = 25, and truncation turns that into a whole grey
  level, so the original's float64 values are tabulated on the host (k > c saturates).
  """
  k = np.arange(max(SHOT_PHOTONS) + 2, dtype=np.float64)
  return np.stack([np.uint8(np.clip(k / float(c), 0, 1) * 255) for c in SHOT_PHOTONS])


def shot_noise_from_counts(counts, severity) -> jax.Array:
  """``np.uint8(clip(k / c, 0, 1) * 255)`` for Poisson counts ``k`` (exact, via ``shot_lut``)."""
  table = jnp.asarray(shot_lut())[jnp.asarray(severity) - 1]
  return table[jnp.clip(counts, 0, max(SHOT_PHOTONS) + 1)]


def shot_noise_apply(image, u, severity) -> jax.Array:
  """``np.uint8(clip(poisson(x01 * c) / c, 0, 1) * 255)``, c = SHOT_PHOTONS[severity - 1]."""
  return shot_noise_from_counts(shot_counts(image, u, severity), severity)


# --- impulse_noise: skimage.util.random_noise(x01, mode='s&p', amount=c) ------------------------


def impulse_noise_draw(key, severity) -> dict:
  """scikit-image >= 0.20's two ``rng.random((224, 224, 3))`` fields, "flipped" (``u <= amount``)
  and "salted" (``u <= 0.5``).

  ``u``: float32 [224, 224, 3] uniforms for "flipped".  ``salted``: bool [224, 224, 3], one
  random bit per value (P = 1/2, as ``u <= 0.5`` is up to 2^-53); the original only compares
  that field with 0.5, so one bit stands for it (``impulse_replay_fields`` turns it back into
  uniforms on the right side of 0.5).  Both come from ONE random word per value: ``u`` from its
  top 23 bits, ``salted`` from its lowest bit, which the uniform does not use (independent).
  """
  del severity
  words = rng.bits(key, SHAPE)
  salted = (words & jnp.uint32(1)).astype(bool)
  return {"u": rng.uniform_from_bits(words), "salted": salted}


def impulse_replay_fields(draws) -> tuple[np.ndarray, np.ndarray]:
  """The two uniform fields the original's ``rng.random`` calls return for our draws: ``u``,
  and 0.25 where salted / 0.75 where not."""
  salted = np.asarray(draws["salted"])
  return np.asarray(draws["u"], np.float64), np.where(salted, 0.25, 0.75)


def impulse_noise_apply(image, draws, severity) -> jax.Array:
  """Flipped values become 1 (salted) or 0 (peppered); ``(v / 255) * 255 == v`` exactly in
  float64 for every uint8 v, so untouched values stay as they are."""
  amount = jnp.asarray(np.array([float32_at_most(a) for a in IMPULSE_AMOUNT], np.float32))
  flipped = draws["u"] <= amount[jnp.asarray(severity) - 1]
  noisy = jnp.where(draws["salted"], jnp.uint8(255), jnp.uint8(0))
  return jnp.where(flipped, noisy, image.astype(jnp.uint8))


# --- speckle_noise: clip(x01 + x01 * N(0, c), 0, 1) * 255 ----------------------------------------


def speckle_noise_apply(image, z, severity) -> jax.Array:
  """``np.uint8(clip(x01 + x01 c z, 0, 1) * 255)``, c = SPECKLE_STD[severity - 1]."""
  c = _pick(SPECKLE_STD, severity)
  x = image.astype(jnp.float32)
  return _to_uint8(x + x * (c * z))


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": Corruption("gaussian_noise", gaussian_noise_apply, standard_normal_draw),
    "shot_noise": Corruption("shot_noise", shot_noise_apply, shot_noise_draw),
    "impulse_noise": Corruption("impulse_noise", impulse_noise_apply, impulse_noise_draw),
    "speckle_noise": Corruption("speckle_noise", speckle_noise_apply, standard_normal_draw),
}
