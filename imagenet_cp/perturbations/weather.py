"""ImageNet-P weather sequences: snow (test) and spatter (validation), 31 frames each.

- snow: ONE random layer ``normal((224, 224), loc=0.05, scale=0.3)`` -> ``clipped_zoom(., 3)``
  -> ``< 0.5 = 0`` -> uint8 'L' PNG; frame i (0..30) motion-blurs that same layer with
  ImageMagick ``motion_blur(radius=14, sigma=4, angle=i * 4 - 150)`` (-150..-30 degrees), then
  ``np.uint8(clip(z + s + rot90(s, 2), 0, 1) * 255)`` with
  ``z = 0.85 x + 0.15 max(x, gray(x) * 1.5 + 0.5)``.
- spatter: ONE liquid layer ``normal((224, 224), loc=0.65, scale=0.27)`` ->
  ``gaussian(sigma=3.7)`` -> ``< 0.69 = 0``; frame i (0..30) renders the water drops of the
  current layer (``ops.spatter.render_water``, intensity 0.6, pale turquoise), then the layer
  drifts down: each column becomes ``np.convolve(col, [0.05, 0.1, 0.15, 0.7], mode='same')``,
  i.e. ``new[r] = 0.05 L[r+1] + 0.1 L[r] + 0.15 L[r-1] + 0.7 L[r-2]`` (zero outside), frame on
  frame (``lax.scan``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_cp.ops import color, filters, fusion, spatter as spatter_ops, zoom
from imagenet_cp.ops.convert import uint8_clipped, uint8_from_unit
from imagenet_cp.perturbations import base, blur, sets

NUM_FRAMES = 31
LAYER_SHAPE = (base.CROP, base.CROP)

# The imagenet row of the -P constant tables (perturbations.sets).
_S = sets.IMAGENET
SNOW_LOC, SNOW_SCALE, SNOW_ZOOM, SNOW_THRESHOLD = _S.snow_loc, _S.snow_scale, _S.snow_zoom, _S.snow_threshold
SNOW_RADIUS, SNOW_SIGMA = _S.snow_radius, _S.snow_sigma
SNOW_ANGLES = _S.snow_angles


def layer_draw(key: jax.Array, difficulty) -> jax.Array:
  """The sequence's one standard-normal layer, float32 [224, 224] (from ``key`` itself)."""
  del difficulty
  return jax.random.normal(key, LAYER_SHAPE, jnp.float32)


def snow_layer_uint8(normals) -> jax.Array:
  """The 'L' PNG the original motion-blurs: uint8 [224, 224]."""
  layer = SNOW_LOC + SNOW_SCALE * normals
  layer = zoom.clipped_zoom(layer[..., None], SNOW_ZOOM)[..., 0]
  layer = jnp.where(layer < SNOW_THRESHOLD, 0.0, layer)
  return uint8_from_unit(layer)


def snow_scene(crop_uint8) -> jax.Array:
  """``0.85 x + 0.15 max(x, gray(x) * 1.5 + 0.5)``, x = crop / 255: float32 [224, 224, 3]."""
  x = base.to_unit(crop_uint8)
  gray = color.rgb2gray(x)[..., None]
  return 0.85 * x + (1 - 0.85) * jnp.maximum(x, gray * 1.5 + 0.5)


def snow(canvas, height, width, normals, difficulty) -> jax.Array:
  """uint8 [31, 224, 224, 3].

  The scene ``z`` is computed once, apart (``ops.fusion.computed_apart``): otherwise XLA fuses
  its grey level into the frames and recomputes it for each of the 31 (same frames).
  """
  z = fusion.computed_apart(snow_scene, difficulty, base.center_crop(canvas, height, width))
  layers = blur.magick_motion_blur_frames(
      snow_layer_uint8(normals), SNOW_RADIUS, SNOW_SIGMA, SNOW_ANGLES)

  def frame(layer):
    s = base.to_unit(layer)[..., None]
    return uint8_from_unit(z + s + jnp.rot90(s, 2))

  return jax.vmap(frame)(layers)


SPATTER_LOC, SPATTER_SCALE = _S.spatter_loc, _S.spatter_scale
SPATTER_SIGMA, SPATTER_THRESHOLD = _S.spatter_sigma, _S.spatter_threshold
SPATTER_INTENSITY = _S.spatter_intensity
DRIFT = _S.spatter_drift  # np.convolve weights along each column


def liquid_layer(normals) -> jax.Array:
  """``gaussian(normal(loc=0.65, scale=0.27), sigma=3.7)``, ``< 0.69 = 0``: float32 [224, 224]."""
  layer = SPATTER_LOC + SPATTER_SCALE * normals
  layer = filters.gaussian_filter(layer, SPATTER_SIGMA, mode="nearest", truncate=4.0)
  return jnp.where(layer < SPATTER_THRESHOLD, 0.0, layer)


def drift_down(layer) -> jax.Array:
  """``np.apply_along_axis(np.convolve(col, DRIFT, mode='same'), axis=0)``: float32 [H, W]."""
  h = layer.shape[0]
  padded = jnp.pad(layer, ((2, 1), (0, 0)))  # padded[r + 2] = layer[r]
  w0, w1, w2, w3 = DRIFT
  return (w0 * padded[3:h + 3] + w1 * padded[2:h + 2] + w2 * padded[1:h + 1]
          + w3 * padded[0:h])


def spatter(canvas, height, width, normals, difficulty) -> jax.Array:
  """uint8 [31, 224, 224, 3]: water drops sliding down, frame on frame."""
  del difficulty
  x = base.to_unit(base.center_crop(canvas, height, width))

  def step(layer, _):
    frame = uint8_clipped(spatter_ops.render_water(x, layer, SPATTER_INTENSITY))
    return drift_down(layer), frame

  _, frames = jax.lax.scan(step, liquid_layer(normals), None, length=NUM_FRAMES)
  return frames


REGISTRY = {
    "snow": base.Perturbation("snow", NUM_FRAMES, snow, layer_draw,
                              one_image_at_a_time=True),
    "spatter": base.Perturbation("spatter", NUM_FRAMES, spatter, layer_draw),
}
