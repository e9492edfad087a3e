"""ImageNet-P brightness (31 frames): skimage HSV, ``V += (i - 15) * 2 / 100``, i = 0..30.

The original's ``brightness(x, c)``: ``x / 255.`` -> ``rgb2hsv`` -> ``V = clip(V + c, 0, 1)``
-> ``hsv2rgb`` -> ``np.uint8(x * 255)`` (truncation), on the clean crop for every frame (frame
15, c = 0, still goes through the HSV round trip and the truncation).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from imagenet_cp.ops import color
from imagenet_cp.ops.convert import uint8_clipped
from imagenet_cp.perturbations import base, sets

NUM_FRAMES = 31
OFFSETS = sets.IMAGENET.brightness_offsets  # the imagenet row of perturbations.sets


def hsv_channel_factors(hsv) -> jax.Array:
  """float32 [..., 3] K with ``hsv2rgb(H, S, V) = V * K`` for any V.

  skimage's ``hsv2rgb`` picks each channel among v, p = v (1 - s), q = v (1 - f s) and
  t = v (1 - (1 - f) s) by the hue sector; every one is ONE float multiplication of v by a
  factor of (h, s) alone (1 for v itself, exact), so the factors are computed once and each
  frame is ``clip(V + c) * K``, bit-identical to running ``ops.color.hsv2rgb`` per frame.
  """
  h, s = hsv[..., 0], hsv[..., 1]
  hi = jnp.floor(h * 6.0)
  f = h * 6.0 - hi
  one = jnp.ones_like(s)
  kp, kq, kt = 1.0 - s, 1.0 - f * s, 1.0 - (1.0 - f) * s
  sector = jnp.mod(hi.astype(jnp.int32), 6)  # skimage: uint8(hi) % 6, hi in 0..6
  choices = jnp.stack([
      jnp.stack((one, kt, kp), axis=-1),
      jnp.stack((kq, one, kp), axis=-1),
      jnp.stack((kp, one, kt), axis=-1),
      jnp.stack((kp, kq, one), axis=-1),
      jnp.stack((kt, kp, one), axis=-1),
      jnp.stack((one, kp, kq), axis=-1),
  ])
  return jnp.take_along_axis(choices, sector[None, ..., None], axis=0)[0]


def brightness(canvas, height, width, draws, difficulty) -> jax.Array:
  """uint8 [31, 224, 224, 3]."""
  del draws, difficulty
  hsv = color.rgb2hsv(base.to_unit(base.center_crop(canvas, height, width)))
  factors = hsv_channel_factors(hsv)
  value = hsv[..., 2:3]

  # A loop over the frames keeps the HSV factors in memory: written as one broadcast, XLA
  # fused their computation into every frame (same frames, 1.5x the CPU).
  def frame(offset):
    return uint8_clipped((jnp.clip(value + offset, 0.0, 1.0) * factors) * 255.0)

  return jax.lax.map(frame, jnp.asarray(OFFSETS, jnp.float32))


REGISTRY = {"brightness": base.Perturbation("brightness", NUM_FRAMES, brightness,
                                                 one_image_at_a_time=True)}
