"""ImageNet-P noise sequences: gaussian_noise, shot_noise, speckle_noise (31 frames each).

Frame 0 is the clean centre crop; frames 1..30 are drawn independently from the clean crop
(not from the previous frame).  ``difficulty`` 2 and 3 are the original's separate ``_2`` /
``_3`` datasets, which only change the noise level.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from imagenet_cp.ops import poisson, rng
from imagenet_cp.ops.convert import uint8_clipped
from imagenet_cp.perturbations import base, sets

NUM_FRAMES = 31
NOISY_FRAMES = tuple(range(1, NUM_FRAMES))

# Per difficulty 1..3: the imagenet row of the -P constant tables (perturbations.sets).
GAUSSIAN_SIGMA = sets.IMAGENET.gaussian_sigma
SHOT_LAMBDA = sets.IMAGENET.shot_lambda
SPECKLE_SIGMA = sets.IMAGENET.speckle_sigma

# Poisson sampling by inverse CDF: the rate is lambda * u / 255 for a pixel value u, so there
# are only 256 rates per difficulty and their CDFs are a small table.  At ImageNet-P's rates a
# count never exceeds POISSON_MAX - 1 (P(N >= 511 | rate 300) < 1e-25).
POISSON_BITS = 9
POISSON_MAX = 1 << POISSON_BITS


# The frames' random words: a counter-based generator keyed by the frame's threefry key.
# Wellons' lowbias32 (hash-prospector: xorshift-multiply, bias 0.17, a bijection of uint32),
# twice, with one key word folded in before each round.
_LOWBIAS32 = ((16, 0x7FEB352D), (15, 0x846CA68B), (16, None))


def lowbias32(x) -> jax.Array:
  """Wellons' lowbias32 integer hash of uint32 ``x`` (elementwise, a bijection)."""
  for shift, multiplier in _LOWBIAS32:
    x = x ^ (x >> np.uint32(shift))
    if multiplier is not None:
      x = x * np.uint32(multiplier)
  return x


def hash_words(k0, k1, counters) -> jax.Array:
  """``lowbias32(lowbias32(counters + k0) ^ k1)``: uint32 words, one per counter.

  A counter-based generator: the per-frame key (k0, k1) comes from threefry
  (``fold_in(key, t)``), and each value's word is a keyed bijective hash of its own index, so
  a word depends on nothing but (key, index) and XLA fuses it into the consumer (no 18 MB
  array of draws per image and sequence; see docs/fidelity/perturbations.md, "Randomness").
  """
  return lowbias32(lowbias32(counters + k0) ^ k1)


def frame_bits(frame_key: jax.Array) -> jax.Array:
  """uint32 [224, 224, 3]: ``hash_words(key_data(frame_key), 0..150527)`` in HWC order."""
  k0, k1 = jax.random.key_data(frame_key)
  counters = jnp.arange(int(np.prod(base.CROP_SHAPE)), dtype=jnp.uint32)
  return jnp.reshape(hash_words(k0, k1, counters), base.CROP_SHAPE)


# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011), single precision:
# erfinv(x) = x p(w), w = -log(1 - x^2), p a polynomial in w - 2.5 (w < 5) or sqrt(w) - 3.
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _horner(coefficients, w) -> jax.Array:
  p = jnp.full_like(w, np.float32(coefficients[0]))
  for c in coefficients[1:]:
    p = p * w + np.float32(c)
  return p


def erfinv(x) -> jax.Array:
  """float32 erfinv for x in (-1, 1): Giles' polynomials, both evaluated, one select.

  ``1 - x^2`` is formed as ``(1 - x)(1 + x)`` (1 - x is exact near 1), which keeps the tails
  accurate: within 3e-7 relative of SciPy on every value ``bits_to_normal`` can produce,
  where ``lax.erf_inv`` (the same polynomials after ``log1p(-x * x)``) is within 6e-6; and
  cheaper than ``lax.erf_inv``'s lowering here.
  """
  w = -jnp.log((1.0 - x) * (1.0 + x))
  central = _horner(_ERFINV_CENTRAL, w - 2.5)
  tail = _horner(_ERFINV_TAIL, jnp.sqrt(w) - 3.0)
  return jnp.where(w < 5.0, central, tail) * x


def bits_to_normal(bits) -> jax.Array:
  """uint32 -> float32 standard normal: ``jax.random.normal``'s mapping of the top 23 bits
  (``ops.rng.normal_from_bits``) with ``erfinv`` above."""
  return rng.normal_from_bits(bits, erfinv)


def standard_normal_draws(key: jax.Array, difficulty) -> jax.Array:
  """Frames 1..30 of standard normals, float32 [30, 224, 224, 3]; frame t from fold_in(key, t).

  ``jax.random.normal``'s mapping of the words (``bits_to_normal``) applied to ``frame_bits``.
  """
  del difficulty
  return jax.vmap(lambda k: bits_to_normal(frame_bits(k)))(base.frame_keys(key, NOISY_FRAMES))


def gaussian_noise(canvas, height, width, normals, difficulty) -> jax.Array:
  """``ToPILImage(clamp(x + sigma * randn_like(x), 0, 1))``, x = ToTensor(crop).

  ToPILImage truncates (``mul(255).byte()``), frame 0 included (``ToPILImage(x)``).
  normals float32 [30, 224, 224, 3] (HWC; the original's torch draw is CHW).
  """
  x = base.to_unit(base.center_crop(canvas, height, width))
  sigma = base.pick(GAUSSIAN_SIGMA, difficulty)
  noisy = jnp.clip(x[None] + sigma * normals, 0.0, 1.0)
  return uint8_clipped(jnp.concatenate([x[None], noisy]) * 255.0)


def speckle_noise(canvas, height, width, normals, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(x + x * normal(scale=sigma), 0, 1))``, x = crop / 255.

  normals float32 [30, 224, 224, 3] standard normals (``normal(scale=s)`` is ``s * z``).
  """
  crop = base.center_crop(canvas, height, width)
  x = base.to_unit(crop)
  sigma = base.pick(SPECKLE_SIGMA, difficulty)
  noisy = jnp.clip(x[None] + x[None] * (sigma * normals), 0.0, 1.0)
  return base.with_clean_frame(crop, uint8_clipped(255.0 * noisy))


def poisson_table_size(lambdas: tuple[float, ...] = SHOT_LAMBDA) -> int:
  """K, the counts the tables hold: the smallest power of two with P(N >= K) < 1e-25 at the
  largest rate (POISSON_MAX at ImageNet-P's)."""
  top = max(lambdas)
  k_max = 1 << int(np.ceil(np.log2(top + 1)))
  while scipy.stats.poisson.sf(k_max - 1, top) >= 1e-25:
    k_max *= 2
  return k_max


@functools.lru_cache(maxsize=None)
def poisson_cdf_table(lambdas: tuple[float, ...] = SHOT_LAMBDA) -> np.ndarray:
  """CDFs of Poisson(lambda_d * u / 255) for every difficulty d and grey level u, float32
  [3, 256, K] (``poisson_table_size``); last entry forced to 1, subnormal entries to 0."""
  k = np.arange(poisson_table_size(lambdas), dtype=np.float64)
  rates = np.asarray(lambdas)[:, None] * (np.arange(256) / 255.0)[None, :]
  cdf = scipy.stats.poisson.cdf(k[None, None, :], rates[..., None])
  cdf[..., -1] = 1.0
  cdf = cdf.astype(np.float32)
  # XLA on CPU compares subnormals as zero; flushed here, host and device searches agree.
  cdf[cdf < np.finfo(np.float32).tiny] = 0.0
  return cdf


@functools.lru_cache(maxsize=None)
def poisson_guide_table(lambdas: tuple[float, ...] = SHOT_LAMBDA) -> tuple[np.ndarray, int]:
  """``ops.poisson.guide_table`` of ``poisson_cdf_table``: int16 [3, 256, poisson.BUCKETS] (int32
  from K = 2^15 on) and the search steps."""
  cdf = poisson_cdf_table(lambdas)
  return poisson.guide_table(cdf, np.int16 if cdf.shape[-1] < 1 << 15 else np.int32)


def poisson_counts(uniforms, pixels_uint8, difficulty,
                   lambdas: tuple[float, ...] = SHOT_LAMBDA) -> jax.Array:
  """Poisson(lambda * u / 255) counts by inverse CDF: #{k : CDF(k) <= uniform}, int32.

  Exact in distribution up to the float32 CDF.  uniforms float32 [..., H, W, C] in [0, 1)
  (multiples of 2^-23, as ``ops.rng.uniform_from_bits`` makes them), pixels uint8 [H, W, C] (or
  uniforms' shape).  ``ops.poisson.guided_counts``: the count at the start of the uniform's
  bucket from the guide table, then a short binary search (1 step for ImageNet-P's tables): 2
  gathers per value, where a plain binary search over the 512 entries needs 9.
  """
  d = jnp.clip(difficulty, 1, 3) - 1
  guide, steps = poisson_guide_table(lambdas)
  table = poisson_cdf_table(lambdas)
  row = d * 256 + pixels_uint8.astype(jnp.int32)
  return poisson.guided_counts(jnp.asarray(table.reshape(-1, table.shape[-1])),
                               jnp.asarray(guide.reshape(-1, poisson.BUCKETS)), row, uniforms,
                               steps)


def shot_noise_draws(key: jax.Array, difficulty) -> jax.Array:
  """Frames 1..30 of uniforms in [0, 1), float32 [30, 224, 224, 3]; ``apply`` turns them into
  Poisson counts of the image's rates (the draw's distribution depends on the image)."""
  del difficulty
  return jax.vmap(lambda k: rng.uniform_from_bits(frame_bits(k)))(
      base.frame_keys(key, NOISY_FRAMES))


# ``shot_step_table``'s payload: the frame byte of the bucket's count, then how much the byte
# grows at the bucket's step (at most ceil(255 / 60) = 5), in GROWTH_BITS bits.
GROWTH_BITS = 3


@functools.lru_cache(maxsize=None)
def shot_frame_bytes(lambdas: tuple[float, ...] = SHOT_LAMBDA) -> np.ndarray:
  """The original's frame value ``np.uint8(255 * clip(k / lam, 0, 1))`` (float64) of every
  count k < K (``poisson_table_size``): uint8 [3, K] (the float32 formula gives the same
  bytes)."""
  k = np.arange(poisson_table_size(lambdas), dtype=np.float64)
  return np.stack([np.uint8(255 * np.clip(k / float(lam), 0, 1)) for lam in lambdas])


@functools.lru_cache(maxsize=None)
def shot_step_table() -> np.ndarray:
  """int32 [3, 256, poisson.BUCKETS]: for every difficulty, grey level and uniform bucket, the
  frame byte of the bucket's count and its growth at the bucket's step, packed with the step's
  position (``ops.poisson.step_table``; every bucket of these tables holds at most two counts)."""
  count, position = poisson.step_table(poisson_cdf_table())
  byte = shot_frame_bytes().astype(np.int64)
  d = np.arange(len(SHOT_LAMBDA))[:, None, None]
  first = byte[d, count]
  growth = byte[d, np.minimum(count + 1, POISSON_MAX - 1)] - first
  assert growth.min() >= 0 and growth.max() < 1 << GROWTH_BITS
  return poisson.pack_steps((first << GROWTH_BITS) | growth, position)


def shot_frame(uniforms, pixels_uint8, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(poisson(x * lambda) / lambda, 0, 1))`` of uniforms float32
  [..., H, W, C] (the ``shot_noise_draws``), pixels uint8 [H, W, C]: uint8.

  The count by inverse CDF (``poisson_counts``) turned into the frame byte in one table
  look-up per value (``ops.poisson.stepped_lookup`` of ``shot_step_table``): the bucket's byte,
  plus its growth where the uniform lies past the bucket's step.  The same bytes as the count
  search followed by the division (``shot_counts``, tests), for less CPU: one gather instead
  of two, and no float work per value.
  """
  d = jnp.clip(difficulty, 1, 3) - 1
  row = d * 256 + pixels_uint8.astype(jnp.int32)
  table = jnp.asarray(shot_step_table().reshape(-1, poisson.BUCKETS))
  payload, stepped = poisson.stepped_lookup(table, row, uniforms)
  growth = jnp.where(stepped, payload & ((1 << GROWTH_BITS) - 1), 0)
  return ((payload >> GROWTH_BITS) + growth).astype(jnp.uint8)


def shot_noise(canvas, height, width, uniforms, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(poisson(x * lambda) / lambda, 0, 1))``, x = crop / 255.

  One frame at a time over the materialised uniforms (fused with the hash, the table look-up
  ran as scalar code), written into the sequence started from the clean crop
  (``base.frames_after_clean``).
  """
  crop = base.center_crop(canvas, height, width)

  def noisy(t, carry):
    return carry, shot_frame(uniforms[t], crop, difficulty)

  return base.frames_after_clean(crop, uniforms.shape[0], noisy)


def shot_counts(canvas, height, width, uniforms, difficulty) -> jax.Array:
  """The Poisson counts int32 [30, 224, 224, 3] that ``shot_noise`` uses (for tests)."""
  crop = base.center_crop(canvas, height, width)
  return poisson_counts(uniforms, crop, difficulty)


REGISTRY = {
    "gaussian_noise": base.Perturbation("gaussian_noise", NUM_FRAMES, gaussian_noise,
                                        standard_normal_draws),
    "shot_noise": base.Perturbation("shot_noise", NUM_FRAMES, shot_noise, shot_noise_draws,
                                    one_image_at_a_time=True),
    "speckle_noise": base.Perturbation("speckle_noise", NUM_FRAMES, speckle_noise,
                                       standard_normal_draws),
}
