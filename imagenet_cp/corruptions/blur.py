"""ImageNet-C blur corruptions: defocus, glass, motion, zoom and gaussian blur.

Each follows Hendrycks's ``make_imagenet_c.py`` (``x01 = image / 255``; the saved image is
``np.uint8(out)``, a truncation).  Severity is a traced index everywhere (one compile for all
five severities): per-severity constants are picked inside the program; filters whose size
depends on the severity are zero-padded to the largest one (defocus, motion) or picked from
stacked [S, S] matrices (the Gaussians); zoom_blur and defocus's equal-weight disks switch to
branches with static tables.  The constants come from the image size's set (``corruptions.sizes``:
32, 64, 224, 299).  Fidelity and speed figures: docs/fidelity/noise_blur.md, docs/fidelity/sizes.md.
"""
from __future__ import annotations

import functools

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.corruptions import sizes
from imagenet_cp.corruptions.base import CROP, Corruption, pick
from imagenet_cp.ops import border, filters, glass, motion_blur as motion, rng, zoom
from imagenet_cp.ops.convert import uint8_clipped

# The 224 set's rows (every size's: ``sizes.constants(size)``).
DEFOCUS = sizes.IMAGENET.defocus_blur  # (radius, alias_blur)
GLASS = sizes.IMAGENET.glass_blur  # (sigma, d, iterations)
MOTION = sizes.IMAGENET.motion_blur  # (radius, sigma)
MOTION_ANGLE = (-45.0, 45.0)
GAUSSIAN_SIGMA = sizes.IMAGENET.gaussian_blur


def zoom_factors(size: int = CROP) -> tuple[np.ndarray, ...]:
  """The original's float ``np.arange`` lists; at 224 lengths 12, 16, 11, 13, 11 (s1 ends at
  1.11), at 32 and 64 7, 12, 16, 21, 26."""
  return sizes.constants(size).zoom_factors()


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
def defocus_kernels(size: int = CROP) -> np.ndarray:
  """The five kernels zero-padded to the largest, float32 [5, k, k] (at 224: [5, 21, 21])."""
  kernels = [disk_kernel(r, a) for r, a in sizes.constants(size).defocus_blur]
  side = max(k.shape[0] for k in kernels)
  out = np.zeros((len(kernels), side, side), np.float32)
  for i, k in enumerate(kernels):
    p = (side - k.shape[0]) // 2
    out[i, p:p + k.shape[0], p:p + k.shape[1]] = k
  return out


@functools.lru_cache(maxsize=None)
def disk_sum_tables(radius, alias_blur) -> tuple[np.ndarray, np.ndarray] | None:
  """An equal-weight disk kernel as an integer sum: (disk mask float32 [k, k], int32 table over
  the disk sum), or None where the kernel's weights differ.

  With a small alias_blur (0.1, 0.01) the kernel is ``count`` equal float32 weights ``w`` on the
  disk plus ~1e-22 from the 3x3 Gaussian, and ``count w`` is 1 within ~2e-8 in float64 (224 s1:
  ``29 w = 1 - 3.7e-9``).  So the original's value is ``w * sum(disk)`` up to ~1e-18, and where
  the sum is a multiple of ``count`` (~1/count of all values, all of a flat region) it lands just
  below an integer (``count w < 1``: truncates down) or just above it.  float32 cannot see that,
  so the integer disk sum is computed exactly and looked up in
  ``np.uint8(clip(w * sum / 255, 0, 1) * 255)``.
  """
  kernel = disk_kernel(radius, alias_blur).astype(np.float64)
  mask = kernel > kernel.max() * 1e-6
  weights = np.unique(kernel[mask])
  if weights.size != 1:
    return None
  rows, cols = np.nonzero(mask)
  c = kernel.shape[0] // 2
  half = int(max(np.abs(rows - c).max(), np.abs(cols - c).max()))
  mask = mask[c - half:c + half + 1, c - half:c + half + 1].astype(np.float32)
  total = np.arange(int(mask.sum()) * 255 + 1, dtype=np.float64)
  table = np.uint8(np.clip(weights[0] * (total / 255.0), 0, 1) * 255).astype(np.int32)
  return mask, table


def defocus_s1_tables() -> tuple[np.ndarray, np.ndarray]:
  """``disk_sum_tables`` of the 224 set's severity 1 (radius 3, alias_blur 0.1)."""
  tables = disk_sum_tables(*DEFOCUS[0])
  assert tables is not None, "the s1 disk weights are expected to be equal"
  return tables


def _defocus_disk_sum(x, radius, alias_blur) -> jax.Array:
  """An equal-weight disk kernel from exact integer disk sums, uint8 [S, S, 3]."""
  mask, table = disk_sum_tables(radius, alias_blur)
  half = mask.shape[0] // 2
  h, w = x.shape[:2]
  # Exact integer disk sums: one shifted int32 slice per disk tap, fused into one loop.
  padded = border.pad_axis(border.pad_axis(x, half, 0, "reflect101"), half, 1, "reflect101")
  padded = padded.astype(jnp.int32)
  total = functools.reduce(
      jnp.add, [padded[i:i + h, j:j + w] for i, j in zip(*np.nonzero(mask))])
  return disk_value(total, table, int(mask.sum()))


def disk_value(total, table: np.ndarray, count: int) -> jax.Array:
  """``table[total]`` (``disk_sum_tables``) for int32 disk sums of ``count`` taps, uint8: by a
  formula where the table is one (weights just below / above 1 / count), else a gather."""
  total_range = np.arange(table.size)
  if np.array_equal(table, np.maximum(-(-total_range // count) - 1, 0)):
    return _disk_s1_value(total, count)
  if np.array_equal(table, total_range // count):
    return _disk_floor_value(total, count)
  return jnp.asarray(table.astype(np.uint8))[total]


def _disk_s1_value(total, count: int) -> jax.Array:
  """``disk_sum_tables``'s table without a gather where ``count`` equal weights are just below
  1 / count (224 s1): ``w * total`` truncates to ceil(total / count) - 1 (0 for total 0).

  int32 ``total`` in 0..count * 255 -> uint8.  The ceiling is computed as
  floor((total + count - 1/2) * fl(1 / count)) in float32, exact for every possible total
  (tests/test_corruptions_blur.py checks it against the table).
  """
  ceil = jnp.floor((total.astype(jnp.float32) + np.float32(count - 0.5)) * np.float32(1.0 / count))
  return jnp.maximum(ceil - 1, 0).astype(jnp.uint8)


def _disk_floor_value(total, count: int) -> jax.Array:
  """As ``_disk_s1_value`` where the weights are just above 1 / count (e.g. the 64 set's
  s2-s4): floor(total / count), as floor((total + 1/2) * fl(1 / count)) in float32 (exact:
  the product stays >= 1 / (2 count) away from every integer; tests/test_corruptions_sizes.py)."""
  value = jnp.floor((total.astype(jnp.float32) + np.float32(0.5)) * np.float32(1.0 / count))
  return value.astype(jnp.uint8)


@functools.lru_cache(maxsize=None)
def defocus_spectra(size: int = CROP) -> np.ndarray:
  """The conjugate FFTs of the five zero-padded kernels for a ``size`` image, complex64
  (at 224: [5, 250, 126]; host constants: the kernel is not transformed in the program)."""
  return np.stack([filters.correlation_spectrum(k, size, size) for k in defocus_kernels(size)])


def _defocus_general(x, spectrum) -> jax.Array:
  """``cv2.filter2D`` with the kernel of ``spectrum`` (FFT), clip, truncate: uint8."""
  size = defocus_kernels(x.shape[0]).shape[1:]
  return uint8_clipped(filters.filter2d_reflect101_spectrum(x, spectrum, size))


@functools.lru_cache(maxsize=None)
def _defocus_branches(size: int) -> tuple[tuple, np.ndarray]:
  """The distinct equal-weight disks of a size's set (their (radius, alias_blur)), and each
  severity's branch: the index of its disk, or len(disks) for the FFT correlation."""
  disks, branch = [], []
  for row in sizes.constants(size).defocus_blur:
    if disk_sum_tables(*row) is None:
      branch.append(-1)
      continue
    if row not in disks:
      disks.append(row)
    branch.append(disks.index(row))
  return tuple(disks), np.array([len(disks) if b < 0 else b for b in branch], np.int32)


def defocus_blur_apply(image, draws, severity) -> jax.Array:
  """Per channel ``cv2.filter2D(x01, -1, disk)`` (BORDER_REFLECT_101), clip, * 255, uint8.

  Equal-weight disks (224 s1, 299 s1, 64 s2-s5, 32 s5) are computed as exact integer disk sums
  (``disk_sum_tables``); the others as one FFT correlation with the zero-padded kernel's
  host-computed spectrum.
  """
  del draws
  size = sizes.of(image).size
  index = jnp.asarray(severity) - 1
  spectrum = jnp.asarray(defocus_spectra(size))[index]
  disks, branch = _defocus_branches(size)

  def disk_branch(row):
    return lambda x, k: _defocus_disk_sum(x.astype(jnp.float32), *row)

  branches = [disk_branch(row) for row in disks]
  branches.append(lambda x, k: _defocus_general(x.astype(jnp.float32), k))
  if len(branches) == 1:
    return branches[0](image, spectrum)
  # The uint8 image is the branches' operand, converted inside each: a float32 operand made
  # the conditional slower (docs/speed.md).
  return jax.lax.switch(jnp.asarray(branch)[index], branches, image, spectrum)


# --- glass_blur ---------------------------------------------------------------------------------


def glass_blur_draw(key, severity, size: int = CROP) -> jax.Array:
  """Per-pixel offsets ``randint(-d, d)`` as (dx, dy): int32 [n, S, S, 2] (n = the set's most
  iterations, 3 at 224; only the loop region d < h, w <= S - d of the first ``iterations`` is
  used).

  One 32-bit random word per PAIR, reduced modulo (2d)^2 and split into its two base-2d digits:
  exactly uniform and independent for d = 1, 2, 4 and within 1e-9 of that for d = 3
  (2^32 mod 36 = 4).  ``jax.random.randint`` spends two words per value to remove that bias;
  a word per value was already 2x cheaper, a word per pair halves it again (docs/speed.md).
  """
  table = sizes.constants(size).glass_blur
  words = rng.bits(key, (max(g[2] for g in table), size, size))
  max_deltas = sorted({g[1] for g in table})

  def split(d, words):
    # d is a Python int in each branch: the modulo and division by constants compile to
    # multiplies and shifts (by a traced d they were integer divisions).
    pair = words % np.uint32(4 * d * d)
    offsets = jnp.stack([pair % np.uint32(2 * d), pair // np.uint32(2 * d)], axis=-1)
    return offsets.astype(jnp.int32) - d

  d = pick([g[1] for g in table], severity, jnp.int32)
  branch = jnp.searchsorted(jnp.asarray(max_deltas), d)
  return jax.lax.switch(branch, [functools.partial(split, d) for d in max_deltas], words)


def glass_blur_apply(image, offsets, severity) -> jax.Array:
  """``x = uint8(gaussian(x01, s) * 255)``; the original's shuffle passes (``ops.glass``);
  ``np.uint8(clip(gaussian(x / 255, s), 0, 1) * 255)``.

  Channels-first: the first Gaussian leaves the planes transposed, the shuffle runs on them with
  the transposed index map, and the second Gaussian transposes them back
  (``filters.gaussian_planes_transposed``; only uint8 images are transposed).
  """
  table = sizes.of(image).glass_blur
  size = image.shape[0]
  sigmas = [g[0] for g in table]
  index = jnp.asarray(severity) - 1
  d = pick([g[1] for g in table], severity, jnp.int32)
  iterations = pick([g[2] for g in table], severity, jnp.int32)
  # gaussian(x/255)*255 == gaussian(x) (linear): work in 0..255 units.
  planes = jnp.transpose(image, (2, 0, 1)).astype(jnp.float32)
  blurred_t = jnp.floor(filters.gaussian_planes_transposed(planes, sigmas, index))
  shuffle_t = glass.transposed_index(glass.shuffle_index(offsets, d, iterations), size, size)
  shuffled_t = jnp.take(blurred_t.reshape(3, -1), shuffle_t, axis=1).reshape(blurred_t.shape)
  out = filters.gaussian_planes_transposed(shuffled_t, sigmas, index)
  return jnp.transpose(uint8_clipped(out), (1, 2, 0))


# --- motion_blur --------------------------------------------------------------------------------


def motion_blur_draw(key, severity, size: int = CROP) -> jax.Array:
  """The angle ``np.random.uniform(-45, 45)`` in degrees, float32 scalar."""
  del severity, size
  return jax.random.uniform(key, (), jnp.float32, *MOTION_ANGLE)


def motion_blur_apply(image, angle, severity) -> jax.Array:
  """Wand ``motion_blur(radius, sigma, angle)`` on the PNG of the image, decoded: uint8."""
  table = sizes.of(image).motion_blur
  radius = pick([m[0] for m in table], severity)
  sigma = pick([m[1] for m in table], severity)
  return motion.motion_blur_uint8(
      image, radius, sigma, angle, max_radius=max(m[0] for m in table))


# --- zoom_blur ----------------------------------------------------------------------------------

def max_zooms(size: int = CROP) -> int:
  """The longest zoom list of a size's set (16 at 224 and 299, 26 at 32 and 64)."""
  return max(len(zs) for zs in zoom_factors(size))


MAX_ZOOMS = max_zooms()


@functools.lru_cache(maxsize=None)
def zoom_tables(size: int = CROP) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """clipped_zoom two-tap tables for every (severity, zoom), padded to the longest list.

  Returns lo int32 [5, Z, S], frac float32 [5, Z, S], mask float32 [5, Z] (1 for the
  real zooms), count float32 [5] (the number of zooms); Z = ``max_zooms(size)``.
  """
  n = max_zooms(size)
  lo = np.zeros((5, n, size), np.int32)
  frac = np.zeros((5, n, size), np.float32)
  mask = np.zeros((5, n), np.float32)
  for s, zs in enumerate(zoom_factors(size)):
    lo_s, frac_s = zoom.clipped_zoom_tables(size, zs)
    lo[s, :len(zs)], frac[s, :len(zs)], mask[s, :len(zs)] = lo_s, frac_s, 1.0
    lo[s, len(zs):] = np.arange(size)  # identity taps for the padding (masked out anyway)
  return lo, frac, mask, mask.sum(axis=1)


def _rows(x, lo, frac) -> jax.Array:
  """Two-tap resampling of axis 0 (whole rows: contiguous gathers)."""
  a = jnp.take(x, lo, axis=0)
  b = jnp.take(x, jnp.minimum(lo + 1, x.shape[0] - 1), axis=0)
  return a + frac[:, None, None] * (b - a)


def _zoom_blur_branch(s: int, size: int = CROP):
  """zoom_blur at severity s + 1 with its static tables (constant gather indices)."""
  lo, frac, _, count = (np.asarray(t)[s] for t in zoom_tables(size))

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
  indices run several times faster on CPU than table rows picked by a traced index, for one
  more second of compile time (docs/speed.md).
  """
  del draws
  x = image.astype(jnp.float32) / 255.0
  branches = [_zoom_blur_branch(s, image.shape[0]) for s in range(5)]
  return uint8_clipped(jax.lax.switch(jnp.asarray(severity) - 1, branches, x))


# --- gaussian_blur ------------------------------------------------------------------------------


def gaussian_blur_apply(image, draws, severity) -> jax.Array:
  """``np.uint8(clip(gaussian(x01, sigma, channel_axis=-1), 0, 1) * 255)``."""
  del draws
  planes = jnp.transpose(image, (2, 0, 1)).astype(jnp.float32)
  out_t = filters.gaussian_planes_transposed(planes, sizes.of(image).gaussian_blur,
                                             jnp.asarray(severity) - 1)
  return jnp.transpose(uint8_clipped(out_t), (2, 1, 0))


REGISTRY: dict[str, Corruption] = {
    "defocus_blur": Corruption("defocus_blur", defocus_blur_apply, chunk=2),
    "glass_blur": Corruption("glass_blur", glass_blur_apply, glass_blur_draw, chunk=2),
    "motion_blur": Corruption("motion_blur", motion_blur_apply, motion_blur_draw, chunk=2),
    "zoom_blur": Corruption("zoom_blur", zoom_blur_apply),
    "gaussian_blur": Corruption("gaussian_blur", gaussian_blur_apply, chunk=2),
}
