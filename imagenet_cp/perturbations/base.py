"""The contract every ImageNet-P sequence implements, and helpers they share.

A sequence is split into ``draw`` (all randomness of one image) and ``apply`` (a pure
function of the image and the draws), so tests and the benchmark can hand the original
algorithm (``imagenet_cp.oracles.perturbations``) the same random numbers.

- ``draw(key, difficulty) -> draws``: a pytree of arrays.  Frame ``t``'s randomness comes
  from ``jax.random.fold_in(key, t)``; a draw shared by the whole sequence (snow's and
  spatter's single layer) comes from ``key`` itself.  Deterministic sequences return ``()``.
- ``apply(canvas, height, width, draws, difficulty) -> frames``: ``canvas`` uint8
  [Hc, Wc, 3] holds the Resize(256) image in its top-left ``height x width`` (the rest is
  ignored); ``height``/``width`` are int32 scalars (traced under ``perturb_batch``);
  ``difficulty`` is an int32 scalar in 1..3 (only the noise sequences read it).  Returns
  uint8 [T, 224, 224, 3].
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

# Shared with the corruptions: the crop size, level tables, deterministic draws.
from imagenet_cp.corruptions.base import CROP, CROP_SHAPE, no_draws, pick  # noqa: F401
from imagenet_cp.ops import geometry

Draws = Any

# ToTensor's ``u8.float().div(255)`` exactly (XLA turns a division by a constant into a
# multiplication by its reciprocal, which is 1 ulp off for some values; a table is exact).
_UNIT_TABLE = (np.arange(256, dtype=np.float32) / np.float32(255)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Perturbation:
  """A sequence: ``apply`` and ``draw`` as above.  ``one_image_at_a_time``: with the
  ``perturbation_image_loop`` workaround on (CPU), ``perturb_batch`` runs the batch's images
  one after another (``lax.map``) instead of vmapping them: these sequences' per-image
  intermediates are large enough that a batch of them falls out of the CPU caches (same frames;
  imagenet_cp.workarounds, docs/speed.md)."""
  name: str
  num_frames: int
  apply: Callable[..., jax.Array]
  draw: Callable[[jax.Array, Any], Draws] = no_draws
  one_image_at_a_time: bool = False


def to_unit(pixels_uint8) -> jax.Array:
  """uint8 -> float32 ``u / 255`` (correctly rounded, like ToTensor and ``x / 255.`` in float32)."""
  return jnp.asarray(_UNIT_TABLE)[jnp.asarray(pixels_uint8).astype(jnp.int32)]


# 1/255 as a head of 12 significant bits plus the rest: ``u * head`` is exact for integers
# u < 256, so ``u * head + u * tail`` rounds once and equals the correctly rounded ``u / 255``
# for every u (checked for all 256 in tests/test_perturbations.py, FMA contraction included).
_UNIT_HEAD = np.floor(2.0 ** 20 / 255.0) / 2.0 ** 20
UNIT_HEAD, UNIT_TAIL = np.float32(_UNIT_HEAD), np.float32(1.0 / 255.0 - _UNIT_HEAD)


def to_unit_by_parts(pixels_uint8) -> jax.Array:
  """``to_unit`` (ToTensor's ``u / 255``, the same float32 values) as two multiplications
  and an addition instead of a table gather, which XLA vectorises inside a loop body."""
  u = jnp.asarray(pixels_uint8).astype(jnp.float32)
  return u * UNIT_HEAD + u * UNIT_TAIL


def center_crop(canvas, height, width, size: int = CROP) -> jax.Array:
  """torchvision ``CenterCrop(size)`` of the true ``height x width`` image on the canvas."""
  top, left = geometry.center_crop_offsets(height, width, size)
  return jax.lax.dynamic_slice(canvas, (top, left, 0), (size, size, canvas.shape[-1]))


def frame_keys(key: jax.Array, frames) -> jax.Array:
  """``fold_in(key, t)`` for each t in ``frames`` (a static sequence of ints)."""
  return jax.vmap(lambda t: jax.random.fold_in(key, t))(jnp.asarray(frames, jnp.uint32))


def with_clean_frame(clean, frames) -> jax.Array:
  """Prepends the clean crop (frame 0 of the noise sequences) to frames [T-1, ...]."""
  return jnp.concatenate([clean[None], frames], axis=0)


def frames_after_clean(clean, count: int, step, carry=None) -> jax.Array:
  """[count + 1, ...]: frame 0 is ``clean``, frame t + 1 comes from ``step(t, carry) -> (carry,
  frame)``, one frame per loop iteration written in place into the sequence (a ``lax.map`` or
  ``lax.scan`` of the frames and ``with_clean_frame`` copied them once more)."""
  def body(t, state):
    carry, frames = state
    carry, frame = step(t, carry)
    return carry, jax.lax.dynamic_update_index_in_dim(frames, frame, t + 1, 0)

  start = jnp.broadcast_to(clean, (count + 1,) + clean.shape)
  return jax.lax.fori_loop(0, count, body, (carry, start))[1]
