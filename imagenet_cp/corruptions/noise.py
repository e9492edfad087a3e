"""ImageNet-C noise corruptions: gaussian, shot, impulse and speckle noise.

Each follows Hendrycks's ``make_imagenet_c.py``; ``x01 = image / 255`` and the result is
``np.uint8(out)`` (truncation), with the constants of the image size's set
(``corruptions.sizes``: 32 CIFAR, 64 Tiny/64x64, 224 ImageNet, 299 Inception).  The arithmetic
is done in 0..255 units in float32 (``clip(x01 + n, 0, 1) * 255 = clip(image + 255 n, 0, 255)``),
which keeps float32 rounding below the truncation steps except on a negligible set of values.
Severity is a traced index: one compiled program serves all five severities.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.corruptions import sizes
from imagenet_cp.corruptions.base import CROP, Corruption, pick
from imagenet_cp.ops import poisson, rng
from imagenet_cp.ops.convert import uint8_clipped

# The 224 set's rows (every size's: ``sizes.constants(size)``).
GAUSSIAN_STD = sizes.IMAGENET.gaussian_noise
SHOT_PHOTONS = sizes.IMAGENET.shot_noise
IMPULSE_AMOUNT = sizes.IMAGENET.impulse_noise
SPECKLE_STD = sizes.IMAGENET.speckle_noise


def float32_at_most(p: float) -> np.float32:
  """The largest float32 ``t`` with ``t <= p``: for float32 ``u``, ``u <= t`` iff ``u <= p``
  in float64, so comparisons of float32 draws agree exactly with the original's float64."""
  t = np.float32(p)
  return t if float(t) <= p else np.nextafter(t, np.float32(-np.inf))


# --- gaussian_noise: clip(x01 + N(0, c), 0, 1) * 255 ------------------------------------------


def standard_normal_draw(key, severity, size: int = CROP) -> jax.Array:
  """size*size*3 standard normals, float32 [size, size, 3] (the original draws normal(scale=c))."""
  del severity
  return rng.normal(key, (size, size, 3))


def gaussian_noise_apply(image, z, severity) -> jax.Array:
  """``np.uint8(clip(x01 + c z, 0, 1) * 255)``, c = GAUSSIAN_STD[severity - 1]."""
  c = pick(sizes.of(image).gaussian_noise, severity)
  return uint8_clipped(image.astype(jnp.float32) + (255.0 * c) * z)


# --- shot_noise: clip(poisson(x01 * c) / c, 0, 1) * 255 ------------------------------------------


def shot_noise_draw(key, severity, size: int = CROP) -> jax.Array:
  """Uniforms, float32 [size, size, 3], turned into Poisson counts by CDF inversion in ``apply``
  (the count depends on the image, the uniform does not).  The Poisson draw IS the output, so
  only its distribution is tested."""
  del severity
  return rng.uniform(key, (size, size, 3))


def shot_table_width(size: int = CROP) -> int:
  """CDF entries per row: >= max(photons) + 1, rounded up to a multiple of 8 (64 at 224)."""
  return -(-(max(sizes.constants(size).shot_noise) + 1) // 8) * 8


@functools.lru_cache(maxsize=None)
def shot_cdf_table(size: int = CROP) -> np.ndarray:
  """Poisson CDFs for every severity and grey level, float32 [5, 256, shot_table_width(size)].

  ``table[s, v, k]`` is the largest float32 <= ``P(poisson(v / 255 * c) <= k)`` (float64, SciPy)
  for k <= c, and 2 (never reached by a uniform) beyond: for a float32 uniform ``u``,
  ``#{k : table[s, v, k] <= u} = min(K, c + 1)`` with ``K ~ poisson(v / 255 * c)``.
  """
  import scipy.stats
  photons = sizes.constants(size).shot_noise
  table = np.full((len(photons), 256, shot_table_width(size)), 2.0, np.float32)
  v = np.arange(256, dtype=np.float64)
  for s, c in enumerate(photons):
    k = np.arange(c + 1)
    cdf = scipy.stats.poisson.cdf(k[None, :], (v / 255.0 * c)[:, None])
    table[s, :, :c + 1] = np.vectorize(float32_at_most)(cdf)
  return table


@functools.lru_cache(maxsize=None)
def shot_guide_table(size: int = CROP) -> tuple[np.ndarray, int]:
  """``ops.poisson.guide_table`` of ``shot_cdf_table``: [5, 256, poisson.BUCKETS] counts (int8,
  or int16 where they pass 127: CIFAR's 500 photons) and the search steps."""
  table = shot_cdf_table(size)
  return poisson.guide_table(table, np.int8 if table.shape[-1] <= 128 else np.int16)


def shot_counts(image, u, severity, size: int = CROP) -> jax.Array:
  """``min(poisson(x01 * c), c + 1)`` by CDF inversion, int32 of ``image``'s shape, with the
  photons c of the ``size`` set.

  Only counts up to c matter (``k / c`` is clipped to 1).  The grey level has 256 values, so the
  CDFs are tabulated on the host in float64 (``shot_cdf_table``): count = #{k <= c : CDF(k) <= u},
  found by ``ops.poisson.guided_counts`` (the count at the uniform's bucket, then a short binary
  search: 1 + steps gathers per value instead of a 6-step bisection; the same counts).
  """
  guide, steps = shot_guide_table(size)
  row = (jnp.asarray(severity) - 1) * 256 + image.astype(jnp.int32)
  table = shot_cdf_table(size)
  return poisson.guided_counts(jnp.asarray(table.reshape(-1, table.shape[-1])),
                               jnp.asarray(guide.reshape(-1, poisson.BUCKETS)), row, u, steps)


def shot_lut(size: int = CROP) -> np.ndarray:
  """``np.uint8(clip(k / c, 0, 1) * 255)`` in float64 for k = 0..max(c) + 1, uint8
  [5, max(c) + 2] (at 224: [5, 62]).

  float32 ``k / c * 255`` lands just below the integer where the float64 original lands on
  it (or above) for ~15% of the values at c = 25, and truncation turns that into a whole grey
  level, so the original's float64 values are tabulated on the host (k > c saturates).
  """
  photons = sizes.constants(size).shot_noise
  k = np.arange(max(photons) + 2, dtype=np.float64)
  return np.stack([np.uint8(np.clip(k / float(c), 0, 1) * 255) for c in photons])


def shot_noise_from_counts(counts, severity, size: int = CROP) -> jax.Array:
  """``np.uint8(clip(k / c, 0, 1) * 255)`` for Poisson counts ``k`` (exact, via ``shot_lut``)."""
  lut = shot_lut(size)
  table = pick(lut, severity, jnp.uint8)
  return table[jnp.clip(counts, 0, lut.shape[1] - 1)]


def shot_noise_apply(image, u, severity) -> jax.Array:
  """``np.uint8(clip(poisson(x01 * c) / c, 0, 1) * 255)``, c = SHOT_PHOTONS[severity - 1]."""
  size = sizes.of(image).size
  return shot_noise_from_counts(shot_counts(image, u, severity, size), severity, size)


# --- impulse_noise: skimage.util.random_noise(x01, mode='s&p', amount=c) ------------------------


def impulse_noise_draw(key, severity, size: int = CROP) -> dict:
  """scikit-image >= 0.20's two ``rng.random((size, size, 3))`` fields, "flipped"
  (``u <= amount``) and "salted" (``u <= 0.5``).

  ``u``: float32 [size, size, 3] uniforms for "flipped".  ``salted``: bool [size, size, 3], one
  random bit per value (P = 1/2, as ``u <= 0.5`` is up to 2^-53); the original only compares
  that field with 0.5, so one bit stands for it (``impulse_replay_fields`` turns it back into
  uniforms on the right side of 0.5).  Both come from ONE random word per value: ``u`` from its
  top 23 bits, ``salted`` from its lowest bit, which the uniform does not use (independent).
  """
  del severity
  words = rng.bits(key, (size, size, 3))
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
  amounts = sizes.of(image).impulse_noise
  flipped = draws["u"] <= pick([float32_at_most(a) for a in amounts], severity)
  noisy = jnp.where(draws["salted"], jnp.uint8(255), jnp.uint8(0))
  return jnp.where(flipped, noisy, image.astype(jnp.uint8))


# --- speckle_noise: clip(x01 + x01 * N(0, c), 0, 1) * 255 ----------------------------------------


def speckle_noise_apply(image, z, severity) -> jax.Array:
  """``np.uint8(clip(x01 + x01 c z, 0, 1) * 255)``, c = SPECKLE_STD[severity - 1]."""
  c = pick(sizes.of(image).speckle_noise, severity)
  x = image.astype(jnp.float32)
  return uint8_clipped(x + x * (c * z))


REGISTRY: dict[str, Corruption] = {
    "gaussian_noise": Corruption("gaussian_noise", gaussian_noise_apply, standard_normal_draw),
    "shot_noise": Corruption("shot_noise", shot_noise_apply, shot_noise_draw),
    "impulse_noise": Corruption("impulse_noise", impulse_noise_apply, impulse_noise_draw),
    "speckle_noise": Corruption("speckle_noise", speckle_noise_apply, standard_normal_draw),
}
