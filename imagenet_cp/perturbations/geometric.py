"""ImageNet-P geometric sequences: translate (41 frames), rotate, scale, shear, tilt (31).

Each frame transforms the WHOLE Resize(256) image and then takes CenterCrop(224), so content
enters the crop from outside it; where there is no source the frame is black.

- translate: ``affine(img, 0, (i - 20, 0), 1, 0)`` with torchvision's default resample,
  NEAREST; i = 0..40.
- rotate: ``affine(img, i - 15, (0, 0), 1., 0, BILINEAR)``.
- scale: ``affine(img, 0, (0, 0), (i * 2.5 + 40) / 100., 0, BILINEAR)``.
- shear: ``affine(img, 0, (0, 0), 1., i - 15, BILINEAR)``.
- tilt: ``cv2.warpPerspective(x, P2 @ T @ RX @ RY @ P1, (w, h))`` with
  phi = theta = deg2rad(i - 15) and focal length ``sqrt(w^2 + h^2)`` of the true image.

``affine`` is torchvision 0.2.x's (``imagenet_cp.ops.geometry``), which the original ran.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.ops import geometry, sampling
from imagenet_cp.perturbations import base, sets

NUM_FRAMES = 31
TRANSLATE_FRAMES = 41


def affine_tables(params) -> tuple[np.ndarray, np.ndarray]:
  """Frame parameters (angle, (tx, ty), scale, shear) -> inverse linear parts [T, 4] and
  translations [T, 2], float32."""
  linear = np.stack([geometry.tv02_inverse_linear(a, s, sh) for a, _, s, sh in params])
  translate = np.array([t for _, t, _, _ in params], np.float64)
  return linear.astype(np.float32), translate.astype(np.float32)


def affine_sequence(canvas, height, width, params, *, bilinear: bool) -> jax.Array:
  """``[CenterCrop(224)(affine(img, *p)) for p in params]`` -> uint8 [T, 224, 224, 3]."""
  linear, translate = affine_tables(params)

  def frame(lin, tr):
    return geometry.tv02_affine_crop(canvas, height, width, lin, tr, bilinear=bilinear)

  return jax.vmap(frame)(jnp.asarray(linear), jnp.asarray(translate))


# (angle, (tx, ty), scale, shear) per frame, from the imagenet row of perturbations.sets.
_S = sets.IMAGENET
TRANSLATE_PARAMS = tuple((0.0, (t, 0), 1.0, 0.0) for t in _S.translate_shifts)
ROTATE_PARAMS = tuple((a, (0, 0), 1.0, 0.0) for a in _S.rotate_angles)
SCALE_PARAMS = tuple((0.0, (0, 0), s, 0.0) for s in _S.scale_factors)
SHEAR_PARAMS = tuple((0.0, (0, 0), 1.0, s) for s in _S.shear_angles)
TILT_DEGREES = _S.tilt_degrees


def translate(canvas, height, width, draws, difficulty) -> jax.Array:
  """Horizontal shifts -20..+20 px, nearest neighbour: uint8 [41, 224, 224, 3].

  With scale 1 and an integer shift, PIL's NEAREST AFFINE reads pixel ``x - tx`` exactly
  (``floor(x + 0.5 - tx)``), black outside the image: a window of the zero-padded image, which
  is far cheaper than a gather (``affine_sequence(..., TRANSLATE_PARAMS, bilinear=False)`` gives
  the same frames; tests/test_perturbations.py checks it).
  """
  del draws, difficulty
  shift = max(abs(t[0]) for _, t, _, _ in TRANSLATE_PARAMS)
  band = translate_band(canvas, height, width, shift)

  def frame(tx):
    return jax.lax.dynamic_slice(band, (0, 3 * (shift - tx)), (base.CROP, 3 * base.CROP))

  # A loop of plain slices (with one image at a time, see REGISTRY): vmapped, the traced
  # slices became a gather of every byte.  Rows of bytes rather than [224, 224, 3] pixels: XLA
  # copies each row as one run instead of looping over a trailing axis of 3 (same frames).
  frames = jax.lax.map(frame, jnp.asarray([t[0] for _, t, _, _ in TRANSLATE_PARAMS], jnp.int32))
  return frames.reshape(len(TRANSLATE_PARAMS), base.CROP, base.CROP, 3)


def translate_band(canvas, height, width, shift: int) -> jax.Array:
  """The crop's rows widened by ``shift`` black-or-image pixels on each side, as bytes:
  uint8 [224, (224 + 2 shift) * 3]; frame ``tx`` is the window starting at byte
  ``3 (shift - tx)``."""
  padded = jnp.pad(geometry.zero_outside(canvas, height, width), ((0, 0), (shift, shift), (0, 0)))
  top, left = geometry.center_crop_offsets(height, width)
  band = jax.lax.dynamic_slice(padded, (top, left, 0), (base.CROP, base.CROP + 2 * shift, 3))
  return band.reshape(base.CROP, (base.CROP + 2 * shift) * 3)


def rotate(canvas, height, width, draws, difficulty) -> jax.Array:
  """Rotations -15..+15 degrees, bilinear: uint8 [31, 224, 224, 3]."""
  del draws, difficulty
  return affine_sequence(canvas, height, width, ROTATE_PARAMS, bilinear=True)


def scale(canvas, height, width, draws, difficulty) -> jax.Array:
  """Scales 0.40..1.15, bilinear, black where the shrunk image leaves no source."""
  del draws, difficulty
  return affine_sequence(canvas, height, width, SCALE_PARAMS, bilinear=True)


def shear(canvas, height, width, draws, difficulty) -> jax.Array:
  """Shears -15..+15 degrees (torchvision 0.2.x's x-shear), bilinear."""
  del draws, difficulty
  return affine_sequence(canvas, height, width, SHEAR_PARAMS, bilinear=True)


def tilt(canvas, height, width, draws, difficulty) -> jax.Array:
  """``CenterCrop(224)(cv2.warpPerspective(x, mat, (w, h)))``: INTER_LINEAR, black border.

  The canvas beyond the true size is zeroed, so reading it equals OpenCV's constant border.
  Source coordinates are quantised to 1/32 pixel with 15-bit weights, as the original's
  OpenCV 3.4 did (``sampling.cv2_remap_bilinear(quantize=True)``; here its black-border
  special case ``cv2_remap_fixed_black``, the same values for less CPU).
  """
  del draws, difficulty
  image = geometry.zero_outside(canvas, height, width)
  rotations = np.stack([geometry.tilt_rotation(d) for d in TILT_DEGREES]).astype(np.float32)

  def frame(rotation):
    map_x, map_y = geometry.tilt_source(height, width, rotation)
    return sampling.cv2_remap_fixed_black(image, sampling.cv2_quantize(map_x),
                                          sampling.cv2_quantize(map_y))

  return jax.vmap(frame)(jnp.asarray(rotations))


REGISTRY = {
    "translate": base.Perturbation("translate", TRANSLATE_FRAMES, translate,
                                   one_image_at_a_time=True),
    "rotate": base.Perturbation("rotate", NUM_FRAMES, rotate),
    "scale": base.Perturbation("scale", NUM_FRAMES, scale),
    "shear": base.Perturbation("shear", NUM_FRAMES, shear),
    "tilt": base.Perturbation("tilt", NUM_FRAMES, tilt,
                              one_image_at_a_time=True),
}
