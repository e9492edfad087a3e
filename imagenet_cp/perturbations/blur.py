"""ImageNet-P blur sequences: motion_blur, zoom_blur (test) and gaussian_blur (validation).

- motion_blur: frame i (0..30) is ImageMagick's ``motion_blur(radius=10, sigma=3,
  angle=(i - 30) * 4)`` of the clean crop (Wand, PNG in and out), angles -120..0 degrees.
- zoom_blur: frame 0 is the clean crop; frame i is the running average, in float32,
  ``ToPILImage((ToTensor(crop) + sum_{k<=i} ToTensor(CenterCrop(affine(img, scale=1 +
  0.004 k)))) / (i + 1))``, built frame on frame (a loop), truncated by
  ``mul(255).byte()``.
- gaussian_blur: ``np.uint8(255 * gaussian(crop / 255., sigma=0.25 + 0.035 i,
  truncate=6.0))`` (skimage: mode 'nearest', per channel).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.ops import filters, fusion
from imagenet_cp.ops import motion_blur as mb
from imagenet_cp.perturbations import base, geometric

NUM_FRAMES = 31

MOTION_RADIUS, MOTION_SIGMA = 10, 3
MOTION_ANGLES = tuple(float((i - 30) * 4) for i in range(NUM_FRAMES))
ZOOM_SCALES = tuple(1 + 0.004 * i for i in range(1, NUM_FRAMES))
GAUSSIAN_SIGMAS = tuple(0.25 + 0.035 * i for i in range(NUM_FRAMES))
GAUSSIAN_TRUNCATE = 6.0


def magick_tap_offsets(angle_degrees: float, width: int) -> tuple[np.ndarray, np.ndarray]:
  """ImageMagick's float64 tap offsets for a static frame angle (``ops.motion_blur``).

  ImageNet-P's angles are multiples of 4 degrees, among them -30, -60, -120 and -150, where
  ``i sin`` or ``i cos`` lands exactly on a half integer: the float32 offsets of a traced angle
  flip every odd tap there (measured: up to 3.4 grey levels mean on those frames), so the
  static frame angles get the exact host offsets.
  """
  return mb.magick_tap_offsets(angle_degrees, width, width)


def magick_motion_blur_frames(image_uint8, radius: int, sigma: float, angles) -> jax.Array:
  """The original's Wand ``motion_blur`` (PNG in, PNG out) at several static angles.

  image uint8 [H, W] or [H, W, C] -> uint8 [len(angles), *image.shape].  Weights from
  ``ops.motion_blur.tap_weights``, storage from its ``quantize_q16_to_uint8``, with the exact
  float64 tap offsets above.  The offsets are static, so each frame is a sum of ``width``
  shifted windows of the edge-padded image, taps in ImageMagick's order: 21-29 multiply-adds
  per value, measured 1.5-2.7x less CPU than the FFT correlation per angle it replaced (same
  frames on the test photos).  The image is held as rows of values ``[H, W * C]`` (a window
  shifted by ``dx`` pixels starts ``dx * C`` values along its row), frames stacked as such
  rows: XLA runs each row as one stretch instead of looping over a trailing axis of 3 (same
  sums, 1.3-1.4x less CPU); and as bytes, converted to float32 per window: the 21-29 windows
  per value are read from a quarter of the memory (same values, 1.3x less CPU).
  """
  x = jnp.asarray(image_uint8)
  squeeze = x.ndim == 2
  if squeeze:
    x = x[..., None]
  width = mb.kernel_width(radius)
  pad = width - 1
  h, w, c = x.shape
  padded = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
  rows = padded.reshape(h + 2 * pad, (w + 2 * pad) * c)
  weights = mb.tap_weights(radius, sigma, width)

  def frame(angle):
    dys, dxs = magick_tap_offsets(angle, width)
    out = None
    for i, (dy, dx) in enumerate(zip(dys.tolist(), dxs.tolist())):
      start = (pad + dy, (pad + dx) * c)
      window = jax.lax.slice(rows, start, (start[0] + h, start[1] + w * c)).astype(jnp.float32)
      out = weights[i] * window if out is None else out + weights[i] * window
    return mb.quantize_q16_to_uint8(out)

  out = jnp.stack([frame(a) for a in angles]).reshape(len(angles), h, w, c)
  return out[..., 0] if squeeze else out


def motion_blur(canvas, height, width, draws, difficulty) -> jax.Array:
  """Wand motion blur of the crop at 31 angles: uint8 [31, 224, 224, 3]."""
  del draws, difficulty
  crop = base.center_crop(canvas, height, width)
  return magick_motion_blur_frames(crop, MOTION_RADIUS, MOTION_SIGMA, MOTION_ANGLES)


def zoom_blur(canvas, height, width, draws, difficulty) -> jax.Array:
  """Running average of slightly zoomed-in frames: uint8 [31, 224, 224, 3].

  A loop over the zoomed frames carries the float32 total and writes each average into the
  sequence started from the clean crop (``base.frames_after_clean``); the step reads its frame with ``to_unit_by_parts`` (same
  sums; 1.05x less CPU than the table gather).  Same frames, measured same-process.
  """
  del draws, difficulty
  crop = base.center_crop(canvas, height, width)
  zoomed = geometric.affine_sequence(
      canvas, height, width, [(0.0, (0, 0), s, 0.0) for s in ZOOM_SCALES], bilinear=True)

  def step(t, total):
    total = total + base.to_unit_by_parts(zoomed[t])
    return total, base.truncate_uint8((total / (t + 2).astype(jnp.float32)) * 255.0)

  return base.frames_after_clean(crop, NUM_FRAMES - 1, step, base.to_unit(crop))


@functools.lru_cache(maxsize=None)
def gaussian_weight_table() -> np.ndarray:
  """SciPy's truncated Gaussian kernels for the 31 sigmas, zero-padded to a common width.

  float32 [31, 2R+1]; frame i's kernel (radius int(6 sigma_i + 0.5) <= R) sits centred.
  """
  kernels = [filters.gaussian_kernel1d(s, GAUSSIAN_TRUNCATE) for s in GAUSSIAN_SIGMAS]
  radius = max(len(k) for k in kernels) // 2
  table = np.zeros((len(kernels), 2 * radius + 1))
  for i, k in enumerate(kernels):
    r = len(k) // 2
    table[i, radius - r:radius + r + 1] = k
  return table.astype(np.float32)


def _correlate_symmetric(src, weights: np.ndarray, axis: int, step: int, size: int):
  """One frame's 1-D correlation with a symmetric kernel along ``axis`` of the padded ``src``.

  ``out[n] = sum_j weights[j] src[n + j * step]`` along ``axis`` (windows ``step`` values
  apart, ``size`` long) over the kernel's nonzero taps only (the small sigmas have 5-11 taps of
  the 17), the pairs added before their one multiplication, centre first.  Static loops of
  multiply-adds over shifted windows are far faster on CPU than an einsum over stacked shifted
  copies.  (Both changes moved single values by 1 grey level, well inside the fidelity bound,
  for 1.4x less CPU.)
  """
  radius = (len(weights) - 1) // 2
  window = lambda j: jax.lax.slice_in_dim(src, j * step, j * step + size, axis=axis)
  out = np.float32(weights[radius]) * window(radius)
  for j in range(radius - 1, -1, -1):
    if weights[j] != 0:  # symmetric kernel: one multiplication per pair of taps
      out = out + np.float32(weights[j]) * (window(j) + window(2 * radius - j))
  return out


def gaussian_blur(canvas, height, width, draws, difficulty) -> jax.Array:
  """skimage ``gaussian`` of the crop at 31 sigmas: uint8 [31, 224, 224, 3].

  SciPy's order: rows (axis 0) then columns (axis 1), mode 'nearest'.  The crop is
  edge-padded on all four sides once, held as rows of values ``[H + 2R, (W + 2R) C]``; each
  frame's row pass runs over all padded columns, which gives the column pass its 'nearest'
  padding directly (a padded column is a copy of the edge column, so is its blur), and is
  computed apart (``ops.fusion.computed_apart``: fused, XLA recomputed it for every column
  tap); the column pass then reads windows ``C`` values apart.  Same frames as a pass over
  the stacked frames with a padding copy in between, 1.3x less CPU (measured same-process).
  """
  del draws
  x = base.to_unit(base.center_crop(canvas, height, width))
  weights = gaussian_weight_table()
  radius = (weights.shape[1] - 1) // 2
  h, w, c = x.shape
  padded = jnp.pad(x, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
  rows = padded.reshape(h + 2 * radius, (w + 2 * radius) * c)

  def frame(kernel):
    blurred_rows = fusion.computed_apart(
        lambda r: _correlate_symmetric(r, kernel, axis=0, step=1, size=h), difficulty, rows)
    blurred = _correlate_symmetric(blurred_rows, kernel, axis=1, step=c, size=w * c)
    return base.truncate_uint8(255.0 * blurred)

  return jnp.stack([frame(kernel) for kernel in weights]).reshape(len(weights), h, w, c)


PERTURBATIONS = {
    "motion_blur": base.Perturbation("motion_blur", NUM_FRAMES, motion_blur,
                                     one_image_at_a_time=True),
    # One image at a time: vmapped, the batch's running sums and frames fall out of the caches
    # during the scan (same frames, 1.2-1.4x less CPU measured; the plain warps stay vmapped).
    "zoom_blur": base.Perturbation("zoom_blur", NUM_FRAMES, zoom_blur, one_image_at_a_time=True),
    "gaussian_blur": base.Perturbation("gaussian_blur", NUM_FRAMES, gaussian_blur,
                                       one_image_at_a_time=True),
}
