"""ImageNet-P brightness (31 frames): skimage HSV, ``V += (i - 15) * 2 / 100``, i = 0..30.

The original's ``brightness(x, c)``: ``x / 255.`` -> ``rgb2hsv`` -> ``V = clip(V + c, 0, 1)``
-> ``hsv2rgb`` -> ``np.uint8(x * 255)`` (truncation), on the clean crop for every frame (frame
15, c = 0, still goes through the HSV round trip and the truncation).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_cp.ops import color
from imagenet_cp.perturbations import base

NUM_FRAMES = 31
OFFSETS = tuple((i - 15) * 2 / 100.0 for i in range(NUM_FRAMES))


def brightness(canvas, height, width, draws, difficulty) -> jax.Array:
  """uint8 [31, 224, 224, 3]."""
  del draws, difficulty
  hsv = color.rgb2hsv(base.to_unit(base.center_crop(canvas, height, width)))

  def frame(c):
    value = jnp.clip(hsv[..., 2] + c, 0.0, 1.0)
    rgb = color.hsv2rgb(jnp.concatenate([hsv[..., :2], value[..., None]], axis=-1))
    return base.truncate_uint8(rgb * 255.0)

  return jax.vmap(frame)(jnp.asarray(OFFSETS, jnp.float32))


PERTURBATIONS = {"brightness": base.Perturbation("brightness", NUM_FRAMES, brightness)}
