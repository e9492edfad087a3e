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

from imagenet_cp.perturbations import base

NUM_FRAMES = 31
NOISY_FRAMES = tuple(range(1, NUM_FRAMES))
SHAPE = (base.CROP, base.CROP, 3)

GAUSSIAN_SIGMA = (0.03, 0.05, 0.08)
SHOT_LAMBDA = (300.0, 120.0, 60.0)
SPECKLE_SIGMA = (0.05, 0.10, 0.15)

# Poisson sampling by inverse CDF: the rate is lambda * u / 255 for a pixel value u, so there
# are only 256 rates per difficulty and their CDFs are a small table.  A count never exceeds
# POISSON_MAX - 1 (P(N >= 511 | rate 300) < 1e-25).
POISSON_BITS = 9
POISSON_MAX = 1 << POISSON_BITS


# Threefry-2x32 (Random123, 20 rounds): rotation constants of the even / odd groups of four
# rounds, and the key-schedule parity constant.
_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_THREEFRY_PARITY = np.uint32(0x1BD11BDA)


def threefry2x32_block(k0, k1, x0, x1):
  """Threefry-2x32 of counter words (x0, x1) under key (k0, k1), all uint32: the algorithm of
  ``jax.extend.random.threefry_2x32``, written as plain integer arithmetic.

  Same bits (tests/test_perturbations.py), but XLA on CPU fuses this into one vectorised loop,
  where the library's lowering ran 4x slower here; the noise sequences are bound by their
  4.5 M random words.
  """
  ks = (k0, k1, k0 ^ k1 ^ _THREEFRY_PARITY)
  x0, x1 = x0 + ks[0], x1 + ks[1]
  for group in range(5):
    for r in _THREEFRY_ROTATIONS[group % 2]:
      x0 = x0 + x1
      x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
      x1 = x1 ^ x0
    x0 = x0 + ks[(group + 1) % 3]
    x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
  return x0, x1


def frame_bits(frame_key: jax.Array) -> jax.Array:
  """uint32 [224, 224, 3]: ``threefry_2x32(key, iota)``, both output words used.

  This is ``jax.random.bits(frame_key, SHAPE)`` as JAX draws it with
  ``jax_threefry_partitionable=False`` (one threefry block per two words; today's default,
  partitionable mode, spends one block per word plus a counter hash and was 4-5x slower here):
  the counters 0..n-1 are split in halves, block i takes (i, i + n/2), and the first output
  words come first.
  """
  count = int(np.prod(SHAPE))
  assert count % 2 == 0  # jax pads odd counts; SHAPE never needs it
  half = count // 2
  k0, k1 = jax.random.key_data(frame_key)
  counters = jnp.arange(half, dtype=jnp.uint32)
  first, second = threefry2x32_block(k0, k1, counters, counters + np.uint32(half))
  # The barrier keeps the block's loop to itself: fused with the concatenation and the
  # consumers (erf_inv), XLA's CPU loop ran 2-5x slower here.
  first, second = jax.lax.optimization_barrier((first, second))
  return jnp.reshape(jnp.concatenate([first, second]), SHAPE)


def bits_to_uniform(bits) -> jax.Array:
  """uint32 -> float32 in [0, 1) from the top 23 bits (``jax.random.uniform``'s mapping)."""
  one_to_two = jax.lax.bitcast_convert_type((bits >> 9) | np.uint32(0x3F800000), jnp.float32)
  return one_to_two - np.float32(1.0)


def bits_to_normal(bits) -> jax.Array:
  """uint32 -> float32 standard normal: ``sqrt(2) erfinv(u)``, u uniform on (-1, 1)
  (``jax.random.normal``'s mapping)."""
  lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
  u = jnp.maximum(lo, bits_to_uniform(bits) * (np.float32(1.0) - lo) + lo)
  return np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)


def standard_normal_draws(key: jax.Array, difficulty) -> jax.Array:
  """Frames 1..30 of standard normals, float32 [30, 224, 224, 3]; frame t from fold_in(key, t).

  Equal to ``jax.random.normal(fold_in(key, t), (224, 224, 3))`` under
  ``jax.threefry_partitionable(False)`` (tests/test_perturbations.py).
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
  return base.truncate_uint8(jnp.concatenate([x[None], noisy]) * 255.0)


def speckle_noise(canvas, height, width, normals, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(x + x * normal(scale=sigma), 0, 1))``, x = crop / 255.

  normals float32 [30, 224, 224, 3] standard normals (``normal(scale=s)`` is ``s * z``).
  """
  crop = base.center_crop(canvas, height, width)
  x = base.to_unit(crop)
  sigma = base.pick(SPECKLE_SIGMA, difficulty)
  noisy = jnp.clip(x[None] + x[None] * (sigma * normals), 0.0, 1.0)
  return base.with_clean_frame(crop, base.truncate_uint8(255.0 * noisy))


@functools.lru_cache(maxsize=None)
def poisson_cdf_table() -> np.ndarray:
  """CDFs of Poisson(lambda_d * u / 255), float32 [3, 256, POISSON_MAX]; last entry forced to 1."""
  k = np.arange(POISSON_MAX, dtype=np.float64)
  rates = np.asarray(SHOT_LAMBDA)[:, None] * (np.arange(256) / 255.0)[None, :]
  cdf = scipy.stats.poisson.cdf(k[None, None, :], rates[..., None])
  cdf[..., -1] = 1.0
  return cdf.astype(np.float32)


# The first steps of the binary search compare against entries that depend on the pixel only,
# so they are looked up once per pixel rather than once per frame and value.
POISSON_PIXEL_STEPS = 3


def poisson_counts(uniforms, pixels_uint8, difficulty) -> jax.Array:
  """Poisson(lambda * u / 255) counts by inverse CDF: #{k : CDF(k) <= uniform}, int32.

  A binary search over the tabulated CDF (POISSON_BITS steps); exact in distribution up to
  the float32 CDF.  uniforms float32 [..., H, W, C] in [0, 1) (e.g. one row per frame),
  pixels uint8 [H, W, C] (or uniforms' shape).  The first ``POISSON_PIXEL_STEPS`` steps can
  only reach 2^steps - 1 table entries per pixel: those are gathered once per pixel and
  selected per value (the same comparisons, far fewer gathers); the rest gather per value.
  """
  table = jnp.asarray(poisson_cdf_table())[jnp.clip(difficulty, 1, 3) - 1].reshape(-1)
  row = pixels_uint8.astype(jnp.int32) * POISSON_MAX
  count = jnp.zeros(uniforms.shape, jnp.int32)
  for level in range(POISSON_PIXEL_STEPS):
    step = 1 << (POISSON_BITS - 1 - level)
    # Candidates of this step, in order of the count reached so far (0, 2 step, 4 step, ...).
    candidates = [table[row + base + (step - 1)] for base in range(0, POISSON_MAX, 2 * step)]
    while len(candidates) > 1:  # select by the bits decided so far, most significant first
      decided = count & (1 << (POISSON_BITS - 1 - level + len(candidates).bit_length() - 1))
      half = len(candidates) // 2
      candidates = [jnp.where(decided != 0, hi, lo)
                    for lo, hi in zip(candidates[:half], candidates[half:])]
    count = jnp.where(candidates[0] <= uniforms, count + step, count)
  for bit in reversed(range(POISSON_BITS - POISSON_PIXEL_STEPS)):
    step = 1 << bit
    below = table[row + count + (step - 1)] <= uniforms
    count = jnp.where(below, count + step, count)
  return count


def shot_noise_draws(key: jax.Array, difficulty) -> jax.Array:
  """Frames 1..30 of uniforms in [0, 1), float32 [30, 224, 224, 3]; ``apply`` turns them into
  Poisson counts of the image's rates (the draw's distribution depends on the image)."""
  del difficulty
  return jax.vmap(lambda k: bits_to_uniform(frame_bits(k)))(base.frame_keys(key, NOISY_FRAMES))


def shot_frames_from_counts(crop_uint8, counts, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(counts / lambda, 0, 1))`` with the clean crop as frame 0."""
  lam = base.pick(SHOT_LAMBDA, difficulty)
  noisy = jnp.clip(counts.astype(jnp.float32) / lam, 0.0, 1.0)
  return base.with_clean_frame(crop_uint8, base.truncate_uint8(255.0 * noisy))


def shot_noise(canvas, height, width, uniforms, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(poisson(x * lambda) / lambda, 0, 1))``, x = crop / 255."""
  crop = base.center_crop(canvas, height, width)
  counts = poisson_counts(uniforms, crop, difficulty)
  return shot_frames_from_counts(crop, counts, difficulty)


def shot_counts(canvas, height, width, uniforms, difficulty) -> jax.Array:
  """The Poisson counts int32 [30, 224, 224, 3] that ``shot_noise`` uses (for tests)."""
  crop = base.center_crop(canvas, height, width)
  return poisson_counts(uniforms, crop, difficulty)


PERTURBATIONS = {
    "gaussian_noise": base.Perturbation("gaussian_noise", NUM_FRAMES, gaussian_noise,
                                        standard_normal_draws),
    "shot_noise": base.Perturbation("shot_noise", NUM_FRAMES, shot_noise, shot_noise_draws),
    "speckle_noise": base.Perturbation("speckle_noise", NUM_FRAMES, speckle_noise,
                                       standard_normal_draws),
}
