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

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.ops import border, filters, fusion
from imagenet_cp.ops import motion_blur as mb
from imagenet_cp.ops.convert import uint8_clipped
from imagenet_cp.perturbations import base, geometric, sets

NUM_FRAMES = 31

# The imagenet row of the -P constant tables (perturbations.sets).
MOTION_RADIUS, MOTION_SIGMA = sets.IMAGENET.motion_radius, sets.IMAGENET.motion_sigma
MOTION_ANGLES = sets.IMAGENET.motion_angles
ZOOM_SCALES = sets.IMAGENET.zoom_scales
GAUSSIAN_SIGMAS = sets.IMAGENET.blur_sigmas
GAUSSIAN_TRUNCATE = sets.IMAGENET.blur_truncate


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
  per value, cheaper than the FFT correlation per angle it replaced (same frames on the test
  photos).  The image is held as rows of values ``[H, W * C]`` (a window shifted by ``dx``
  pixels starts ``dx * C`` values along its row), frames stacked as such rows: XLA runs each
  row as one stretch instead of looping over a trailing axis of 3 (same sums); and as bytes,
  converted to float32 per window: the 21-29 windows per value are read from a quarter of the
  memory (same values).  Timings: docs/speed.md.
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
  sequence started from the clean crop (``base.frames_after_clean``); the step reads its frame
  with ``to_unit_by_parts`` (same sums, and cheaper than the table gather).  Same frames.
  """
  del draws, difficulty
  crop = base.center_crop(canvas, height, width)
  zoomed = geometric.affine_sequence(
      canvas, height, width, [(0.0, (0, 0), s, 0.0) for s in ZOOM_SCALES], bilinear=True)

  def step(t, total):
    total = total + base.to_unit_by_parts(zoomed[t])
    return total, uint8_clipped((total / (t + 2).astype(jnp.float32)) * 255.0)

  return base.frames_after_clean(crop, NUM_FRAMES - 1, step, base.to_unit(crop))


def gaussian_blur(canvas, height, width, draws, difficulty) -> jax.Array:
  """skimage ``gaussian`` of the crop at 31 sigmas: uint8 [31, 224, 224, 3].

  SciPy's order: rows (axis 0) then columns (axis 1), mode 'nearest'.  The crop is
  edge-padded on all four sides once, held as rows of values ``[H + 2R, (W + 2R) C]``; each
  frame's row pass runs over all padded columns, which gives the column pass its 'nearest'
  padding directly (a padded column is a copy of the edge column, so is its blur), and is
  computed apart (``ops.fusion.computed_apart``: fused, XLA recomputed it for every column
  tap); the column pass then reads windows ``C`` values apart.  Same frames as a pass over
  the stacked frames with a padding copy in between, at less CPU.  Each pass adds the kernel's
  nonzero taps in symmetric pairs, centre first (``filters.correlate_windows(pairs=True)``):
  cheaper than an einsum over all 17 taps, single values 1 grey level apart, well inside the
  fidelity bound.  Timings: docs/speed.md.
  """
  del draws
  x = base.to_unit(base.center_crop(canvas, height, width))
  weights = filters.gaussian_kernel_table(GAUSSIAN_SIGMAS, GAUSSIAN_TRUNCATE)
  radius = (weights.shape[1] - 1) // 2
  h, w, c = x.shape
  padded = border.pad_spatial(x, radius, "nearest")
  rows = padded.reshape(h + 2 * radius, (w + 2 * radius) * c)

  def frame(kernel):
    blurred_rows = fusion.computed_apart(
        lambda r: filters.correlate_windows(r, kernel, 0, h, pairs=True), difficulty, rows)
    blurred = filters.correlate_windows(blurred_rows, kernel, 1, w * c, c, pairs=True)
    return uint8_clipped(255.0 * blurred)

  return jnp.stack([frame(kernel) for kernel in weights]).reshape(len(weights), h, w, c)


REGISTRY = {
    "motion_blur": base.Perturbation("motion_blur", NUM_FRAMES, motion_blur,
                                     one_image_at_a_time=True),
    # One image at a time (the perturbation_image_loop workaround): vmapped, the batch's running
    # sums and frames fall out of the CPU caches during the scan (docs/speed.md).
    "zoom_blur": base.Perturbation("zoom_blur", NUM_FRAMES, zoom_blur, one_image_at_a_time=True),
    "gaussian_blur": base.Perturbation("gaussian_blur", NUM_FRAMES, gaussian_blur,
                                       one_image_at_a_time=True),
}
