"""ImageNet-P weather sequences: snow (test) and spatter (validation), 31 frames each.

- snow: ONE random layer ``normal((224, 224), loc=0.05, scale=0.3)`` -> ``clipped_zoom(., 3)``
  -> ``< 0.5 = 0`` -> uint8 'L' PNG; frame i (0..30) motion-blurs that same layer with
  ImageMagick ``motion_blur(radius=14, sigma=4, angle=i * 4 - 150)`` (-150..-30 degrees), then
  ``np.uint8(clip(z + s + rot90(s, 2), 0, 1) * 255)`` with
  ``z = 0.85 x + 0.15 max(x, gray(x) * 1.5 + 0.5)``.
- spatter: see ``spatter`` below.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_cp.ops import color, zoom
from imagenet_cp.perturbations import base, blur

NUM_FRAMES = 31
LAYER_SHAPE = (base.CROP, base.CROP)

SNOW_LOC, SNOW_SCALE, SNOW_ZOOM, SNOW_THRESHOLD = 0.05, 0.3, 3.0, 0.5
SNOW_RADIUS, SNOW_SIGMA = 14, 4
SNOW_ANGLES = tuple(float(i * 4 - 150) for i in range(NUM_FRAMES))


def layer_draw(key: jax.Array, difficulty) -> jax.Array:
  """The sequence's one standard-normal layer, float32 [224, 224] (from ``key`` itself)."""
  del difficulty
  return jax.random.normal(key, LAYER_SHAPE, jnp.float32)


def snow_layer_uint8(normals) -> jax.Array:
  """The 'L' PNG the original motion-blurs: uint8 [224, 224]."""
  layer = SNOW_LOC + SNOW_SCALE * normals
  layer = zoom.clipped_zoom(layer[..., None], SNOW_ZOOM)[..., 0]
  layer = jnp.where(layer < SNOW_THRESHOLD, 0.0, layer)
  return base.truncate_uint8(jnp.clip(layer, 0.0, 1.0) * 255.0)


def snow(canvas, height, width, normals, difficulty) -> jax.Array:
  """uint8 [31, 224, 224, 3]."""
  del difficulty
  x = base.to_unit(base.center_crop(canvas, height, width))
  gray = color.rgb2gray(x)[..., None]
  z = 0.85 * x + (1 - 0.85) * jnp.maximum(x, gray * 1.5 + 0.5)
  layers = blur.magick_motion_blur_frames(
      snow_layer_uint8(normals), SNOW_RADIUS, SNOW_SIGMA, SNOW_ANGLES)

  def frame(layer):
    s = base.to_unit(layer)[..., None]
    return base.truncate_uint8(jnp.clip(z + s + jnp.rot90(s, 2), 0.0, 1.0) * 255.0)

  return jax.vmap(frame)(layers)


PERTURBATIONS = {
    "snow": base.Perturbation("snow", NUM_FRAMES, snow, layer_draw),
}
