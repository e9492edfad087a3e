"""ImageNet-C blur corruptions: defocus, glass, motion, zoom and gaussian blur.

Each follows Hendrycks's ``make_imagenet_c.py`` (``x01 = image / 255``; the saved image is
``np.uint8(out)``, a truncation).  Severity is a traced index everywhere (one compile for all
five severities): per-severity constants are picked inside the program; filters whose size
depends on the severity are zero-padded to the largest one (defocus, motion) or picked from
stacked [224, 224] matrices (the Gaussians); zoom_blur and defocus s1 switch to branches with
static tables.  Fidelity and speed figures: docs/fidelity/noise_blur.md.
"""
from __future__ import annotations

import functools

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.corruptions.base import Corruption
from imagenet_cp.ops import filters, glass, motion_blur as motion, rng, zoom

SIZE = 224

DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))  # (radius, alias_blur)
GLASS = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))  # (sigma, d, iterations)
MOTION = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))  # (radius, sigma)
MOTION_ANGLE = (-45.0, 45.0)
GAUSSIAN_SIGMA = (1, 2, 3, 4, 6)


def zoom_factors() -> tuple[np.ndarray, ...]:
  """The original's float ``np.arange`` lists; lengths 12, 16, 11, 13, 11 (s1 ends at 1.11)."""
  return (np.arange(1, 1.11, 0.01), np.arange(1, 1.16, 0.01), np.arange(1, 1.21, 0.02),
          np.arange(1, 1.26, 0.02), np.arange(1, 1.31, 0.03))


def _pick(values, severity, dtype=np.float32) -> jax.Array:
  return jnp.asarray(np.asarray(values, dtype))[jnp.asarray(severity) - 1]


def _to_uint8(x255) -> jax.Array:
  """``np.uint8(clip(x, 0, 1) * 255)`` for a float in 0..255 units."""
  return jnp.clip(x255, 0.0, 255.0).astype(jnp.uint8)


# --- defocus_blur -------------------------------------------------------------------------------


def disk_kernel(radius: int, alias_blur: float) -> np.ndarray:
  """The original's ``disk``: a normalised disk on a 17x17 grid (r <= 8) or (2r+1)^2, then
  ``cv2.GaussianBlur(ksize=(3,3) or (5,5), sigmaX=alias_blur)``, NOT renormalised.  float32."""
  if radius <= 8:
    grid, ksize = np.arange(-8, 9), (3, 3)
  else:
    grid, ksize = np.arange(-radius, radius + 1), (5, 5)
  xx, yy = np.meshgrid(grid, grid)
  disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
  disk /= np.sum(disk)
  return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


@functools.lru_cache(maxsize=None)
def defocus_kernels() -> np.ndarray:
  """The five kernels zero-padded to the largest, float32 [5, 21, 21]."""
  kernels = [disk_kernel(r, a) for r, a in DEFOCUS]
  size = max(k.shape[0] for k in kernels)
  out = np.zeros((len(kernels), size, size), np.float32)
  for i, k in enumerate(kernels):
    p = (size - k.shape[0]) // 2
    out[i, p:p + k.shape[0], p:p + k.shape[1]] = k
  return out


@functools.lru_cache(maxsize=None)
def defocus_s1_tables() -> tuple[np.ndarray, np.ndarray]:
  """severity 1 as an integer sum: (disk mask float32 [k, k], int32 table over the disk sum).

  The s1 kernel (radius 3, alias_blur 0.1) is 29 equal float32 weights ``w`` on the disk plus
  ~1e-22 from the 3x3 Gaussian; ``29 w = 1 - 3.7e-9`` in float64.  So the original's value is
  ``w * sum(disk)`` up to ~1e-18, and where the sum is a multiple of 29 (~1/29 of all values)
  it lands just below an integer and truncates down.  float32 cannot see that, so the integer
  disk sum is computed exactly and looked up in ``np.uint8(clip(w * sum / 255, 0, 1) * 255)``.
  """
  kernel = disk_kernel(*DEFOCUS[0]).astype(np.float64)
  mask = kernel > kernel.max() * 1e-6
  weights = np.unique(kernel[mask])
  assert weights.size == 1, "the s1 disk weights are expected to be equal"
  rows, cols = np.nonzero(mask)
  c = kernel.shape[0] // 2
  half = int(max(np.abs(rows - c).max(), np.abs(cols - c).max()))
  mask = mask[c - half:c + half + 1, c - half:c + half + 1].astype(np.float32)
  total = np.arange(int(mask.sum()) * 255 + 1, dtype=np.float64)
  table = np.uint8(np.clip(weights[0] * (total / 255.0), 0, 1) * 255).astype(np.int32)
  return mask, table


def _defocus_s1(x) -> jax.Array:
  """Severity 1 from exact integer disk sums, uint8 [224, 224, 3]."""
  mask, _ = defocus_s1_tables()
  half = mask.shape[0] // 2
  h, w = x.shape[:2]
  # Exact integer disk sums: one shifted int32 slice per disk tap, fused into one loop.
  padded = filters.pad_axis(filters.pad_axis(x, half, 0, "mirror"), half, 1, "mirror")
  padded = padded.astype(jnp.int32)
  total = functools.reduce(
      jnp.add, [padded[i:i + h, j:j + w] for i, j in zip(*np.nonzero(mask))])
  return _disk_s1_value(total, int(mask.sum()))


def _disk_s1_value(total, count: int) -> jax.Array:
  """``defocus_s1_tables``'s table without a gather: ``count`` equal weights just below
  1 / count make ``w * total`` truncate to ceil(total / count) - 1 (0 for total 0).

  int32 ``total`` in 0..count * 255 -> uint8.  The ceiling is computed as
  floor((total + count - 1/2) * fl(1 / count)) in float32, exact for every possible total
  (tests/test_corruptions_blur.py checks it against the table).
  """
  ceil = jnp.floor((total.astype(jnp.float32) + np.float32(count - 0.5)) * np.float32(1.0 / count))
  return jnp.maximum(ceil - 1, 0).astype(jnp.uint8)


@functools.lru_cache(maxsize=None)
def defocus_spectra() -> np.ndarray:
  """The conjugate FFTs of the five zero-padded kernels for a 224 image, complex64
  [5, 250, 126] (host constants: the kernel is not transformed in the program)."""
  return np.stack([filters.correlation_spectrum(k, SIZE, SIZE) for k in defocus_kernels()])


def _defocus_general(x, spectrum) -> jax.Array:
  """``cv2.filter2D`` with the kernel of ``spectrum`` (FFT), clip, truncate: uint8."""
  size = defocus_kernels().shape[1:]
  return _to_uint8(filters.filter2d_reflect101_spectrum(x, spectrum, size))


def defocus_blur_apply(image, draws, severity) -> jax.Array:
  """Per channel ``cv2.filter2D(x01, -1, disk)`` (BORDER_REFLECT_101), clip, * 255, uint8.

  Severity 1 is computed as an exact integer disk sum (``defocus_s1_tables``); s2-s5 as one FFT
  correlation with the zero-padded kernel's host-computed spectrum.
  """
  del draws
  index = jnp.asarray(severity) - 1
  spectrum = jnp.asarray(defocus_spectra())[index]
  # The uint8 image is the branches' operand, converted inside each: a float32 operand made
  # the conditional cost ~0.4 ms more per image (measured).
  return jax.lax.cond(index == 0, lambda x, k: _defocus_s1(x.astype(jnp.float32)),
                      lambda x, k: _defocus_general(x.astype(jnp.float32), k), image, spectrum)


# --- glass_blur ---------------------------------------------------------------------------------


def glass_blur_draw(key, severity) -> jax.Array:
  """Per-pixel offsets ``randint(-d, d)`` as (dx, dy): int32 [3, 224, 224, 2] (3 = the most
  iterations; only the loop region d < h, w <= 224 - d of the first ``iterations`` is used).

  One 32-bit random word per PAIR, reduced modulo (2d)^2 and split into its two base-2d digits:
  exactly uniform and independent for d = 1, 2, 4 and within 1e-9 of that for d = 3
  (2^32 mod 36 = 4).  ``jax.random.randint`` spends two words per value to remove that bias;
  a word per value was already 2x cheaper (8.7 vs 4.7 ms/image), a word per pair halves it again.
  """
  words = rng.bits(key, (3, SIZE, SIZE))
  max_deltas = sorted({g[1] for g in GLASS})

  def split(d, words):
    # d is a Python int in each branch: the modulo and division by constants compile to
    # multiplies and shifts (by a traced d they were integer divisions: ~0.3 ms/image more).
    pair = words % np.uint32(4 * d * d)
    offsets = jnp.stack([pair % np.uint32(2 * d), pair // np.uint32(2 * d)], axis=-1)
    return offsets.astype(jnp.int32) - d

  d = _pick([g[1] for g in GLASS], severity, np.int32)
  branch = jnp.searchsorted(jnp.asarray(max_deltas), d)
  return jax.lax.switch(branch, [functools.partial(split, d) for d in max_deltas], words)


def glass_blur_apply(image, offsets, severity) -> jax.Array:
  """``x = uint8(gaussian(x01, s) * 255)``; the original's shuffle passes (``ops.glass``);
  ``np.uint8(clip(gaussian(x / 255, s), 0, 1) * 255)``.

  Channels-first: the first Gaussian leaves the planes transposed, the shuffle runs on them with
  the transposed index map, and the second Gaussian transposes them back
  (``filters.gaussian_planes_transposed``; only uint8 images are transposed, ~10% less CPU).
  """
  sigmas = [g[0] for g in GLASS]
  index = jnp.asarray(severity) - 1
  d = _pick([g[1] for g in GLASS], severity, np.int32)
  iterations = _pick([g[2] for g in GLASS], severity, np.int32)
  # gaussian(x/255)*255 == gaussian(x) (linear): work in 0..255 units.
  planes = jnp.transpose(image, (2, 0, 1)).astype(jnp.float32)
  blurred_t = jnp.floor(filters.gaussian_planes_transposed(planes, sigmas, index))
  shuffle_t = glass.transposed_index(glass.shuffle_index(offsets, d, iterations), SIZE, SIZE)
  shuffled_t = jnp.take(blurred_t.reshape(3, -1), shuffle_t, axis=1).reshape(blurred_t.shape)
  out = filters.gaussian_planes_transposed(shuffled_t, sigmas, index)
  return jnp.transpose(_to_uint8(out), (1, 2, 0))


# --- motion_blur --------------------------------------------------------------------------------


def motion_blur_draw(key, severity) -> jax.Array:
  """The angle ``np.random.uniform(-45, 45)`` in degrees, float32 scalar."""
  del severity
  return jax.random.uniform(key, (), jnp.float32, *MOTION_ANGLE)


def motion_blur_apply(image, angle, severity) -> jax.Array:
  """Wand ``motion_blur(radius, sigma, angle)`` on the PNG of the image, decoded: uint8."""
  radius = _pick([m[0] for m in MOTION], severity)
  sigma = _pick([m[1] for m in MOTION], severity)
  return motion.motion_blur_uint8(
      image, radius, sigma, angle, max_radius=max(m[0] for m in MOTION))


# --- zoom_blur ----------------------------------------------------------------------------------

MAX_ZOOMS = 16


@functools.lru_cache(maxsize=None)
def zoom_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """clipped_zoom two-tap tables for every (severity, zoom), padded to 16 zooms.

  Returns lo int32 [5, 16, 224], frac float32 [5, 16, 224], mask float32 [5, 16] (1 for the
  real zooms), count float32 [5] (the number of zooms).
  """
  lo = np.zeros((5, MAX_ZOOMS, SIZE), np.int32)
  frac = np.zeros((5, MAX_ZOOMS, SIZE), np.float32)
  mask = np.zeros((5, MAX_ZOOMS), np.float32)
  for s, zs in enumerate(zoom_factors()):
    lo_s, frac_s = zoom.clipped_zoom_tables(SIZE, zs)
    lo[s, :len(zs)], frac[s, :len(zs)], mask[s, :len(zs)] = lo_s, frac_s, 1.0
    lo[s, len(zs):] = np.arange(SIZE)  # identity taps for the padding (masked out anyway)
  return lo, frac, mask, mask.sum(axis=1)


def _rows(x, lo, frac) -> jax.Array:
  """Two-tap resampling of axis 0 (whole rows: contiguous gathers)."""
  a = jnp.take(x, lo, axis=0)
  b = jnp.take(x, jnp.minimum(lo + 1, x.shape[0] - 1), axis=0)
  return a + frac[:, None, None] * (b - a)


def _zoom_blur_branch(s: int):
  """zoom_blur at severity s + 1 with its static tables (constant gather indices)."""
  lo, frac, _, count = (np.asarray(t)[s] for t in zoom_tables())

  def blur_one(x):
    out_t = jnp.zeros_like(x)
    for j in range(int(count)):
      once = jnp.swapaxes(_rows(x, lo[j], frac[j]), 0, 1)
      out_t = out_t + _rows(once, lo[j], frac[j])
    out = jnp.swapaxes(out_t, 0, 1)
    return jnp.clip((x + out) / np.float32(count + 1.0), 0.0, 1.0) * 255.0

  return blur_one


def zoom_blur_apply(image, draws, severity) -> jax.Array:
  """``x = float32(x01)``; ``(x + sum_z clipped_zoom(x, z)) / (len(zs) + 1)``; clip, * 255.

  ``clipped_zoom(x) = R x R^T`` with the same two-tap R on both axes, so each zoom is a row
  resampling, a transpose and another row resampling, summed transposed (one transpose back at
  the end).  Severity picks one of five branches with static tables: gathers with constant
  indices run ~6x faster on CPU than table rows picked by a traced index (measured 1.9 vs
  10.9 ms per image), for one more second of compile time.
  """
  del draws
  x = image.astype(jnp.float32) / 255.0
  branches = [_zoom_blur_branch(s) for s in range(5)]
  return _to_uint8(jax.lax.switch(jnp.asarray(severity) - 1, branches, x))


# --- gaussian_blur ------------------------------------------------------------------------------


def gaussian_blur_apply(image, draws, severity) -> jax.Array:
  """``np.uint8(clip(gaussian(x01, sigma, channel_axis=-1), 0, 1) * 255)``."""
  del draws
  planes = jnp.transpose(image, (2, 0, 1)).astype(jnp.float32)
  out_t = filters.gaussian_planes_transposed(planes, GAUSSIAN_SIGMA, jnp.asarray(severity) - 1)
  return jnp.transpose(_to_uint8(out_t), (2, 1, 0))


CORRUPTIONS: dict[str, Corruption] = {
    "defocus_blur": Corruption("defocus_blur", defocus_blur_apply, chunk=2),
    "glass_blur": Corruption("glass_blur", glass_blur_apply, glass_blur_draw, chunk=2),
    "motion_blur": Corruption("motion_blur", motion_blur_apply, motion_blur_draw, chunk=2),
    "zoom_blur": Corruption("zoom_blur", zoom_blur_apply),
    "gaussian_blur": Corruption("gaussian_blur", gaussian_blur_apply, chunk=2),
}
