"""The 19 ImageNet-C corruptions behind one entry point, ``corrupt``."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from imagenet_cp import keys as _keys
from imagenet_cp import workarounds
from imagenet_cp.corruptions.base import (
    CROP, Corruption, check_level, check_uint8, level_operand, registered)
from imagenet_cp.corruptions import blur, digital, noise, sizes, weather

# The paper's order (Figure 1 / Table 1), then the four extra ("validation") corruptions.
BENCHMARK_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
CORRUPTIONS = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES = (1, 2, 3, 4, 5)

REGISTRY: dict[str, Corruption] = {}
for _module in (noise, blur, weather, digital):
  REGISTRY.update(_module.REGISTRY)


def get(name: str) -> Corruption:
  """The registered corruption ``name``; a clear error for unknown or unimplemented names."""
  return registered(REGISTRY, CORRUPTIONS, name, "corruption")


def check_severity(severity) -> int:
  """Severity as a Python int in 1..5, else ValueError (checked before anything is traced)."""
  return check_level(severity, SEVERITIES, "severity")


def severity_operand(severity) -> jax.Array:
  """``corrupt``'s severity as an int32 scalar (``base.level_operand``: concrete values checked,
  traced ones clipped into 1..5)."""
  return level_operand(severity, SEVERITIES, "severity")


def check_images(images, size: int | None = None) -> int:
  """uint8 [..., S, S, 3] with S a supported size (``sizes.SIZES``; only ``size`` if given),
  else ValueError naming what is wrong.  Returns S."""
  shape = check_uint8(images, "images")
  if len(shape) < 3:
    raise ValueError(f"images must have shape [..., S, S, 3], got rank {len(shape)} {shape}")
  if shape[-1] != 3:
    raise ValueError(f"images must have 3 (RGB) channels last, got shape {shape}")
  h, w = shape[-3:-1]
  if size is not None and (h, w) != (size, size):
    raise ValueError(f"images must be {size}x{size}, got {h}x{w}")
  if h != w or h not in sizes.SETS:
    raise ValueError(
        f"no ImageNet-C constant set for {h}x{w} images; the size selects the original's set, "
        f"supported: {sizes.supported()} (224: Resize(256) + CenterCrop(224), "
        "imagenet_cp.preprocess)")
  return h


def _check_keys(key, batch_shape: tuple) -> jax.Array:
  key = _keys.as_typed_keys(key)
  if tuple(key.shape) != batch_shape:
    raise ValueError(
        f"need one key per image: key shape {tuple(key.shape)} != image batch shape {batch_shape} "
        "(use imagenet_cp.example_keys or jax.random.split)")
  return key


@functools.partial(jax.jit, static_argnames=("name", "flags"))
def _corrupt_flat(images, keys, severity, *, name, flags):
  """``flags``: ``workarounds.static_flags``, resolved for the images' devices by ``corrupt``."""
  corruption = REGISTRY[name]

  def one(image, key):
    return corruption.apply(image, corruption.draw(key, severity, image.shape[0]), severity)

  with workarounds.override(**dict(flags)):
    # Chunks are a CPU cache measure; accelerators want the whole batch in one program.
    chunk = corruption.chunk_for(images.shape[-2])
    if chunk and workarounds.enabled("corruption_batch_chunks"):
      return _in_chunks(jax.vmap(one), images, keys, chunk)
    return jax.vmap(one)(images, keys)


def _in_chunks(batched_fn, images, keys, chunk: int) -> jax.Array:
  """``batched_fn(images, keys)`` over a loop of ``chunk``-image slices.

  The batch is padded to a multiple of ``chunk`` (with copies of its first image and key; their
  outputs are dropped), so every image goes through the same ``chunk``-wide program whatever the
  batch size.
  """
  n = images.shape[0]
  pad = -n % chunk
  if pad:
    images = jnp.concatenate([images, jnp.repeat(images[:1], pad, axis=0)])
    keys = jnp.concatenate([keys, jnp.repeat(keys[:1], pad, axis=0)])
  steps = (n + pad) // chunk
  out = jax.lax.map(lambda args: batched_fn(*args),
                    (images.reshape(steps, chunk, *images.shape[1:]),
                     keys.reshape(steps, chunk, *keys.shape[1:])))
  return out.reshape(steps * chunk, *out.shape[2:])[:n]


def corrupt(images: ArrayLike, name: str, severity: int | ArrayLike, key: ArrayLike
            ) -> jax.Array:
  """Applies ImageNet-C corruption ``name`` at ``severity`` (1..5).

  The image size selects the original's constant set (``corruptions.sizes``): 32 CIFAR-10/100-C
  (``make_cifar_c.py``), 64 Tiny-ImageNet-C and ImageNet 64x64-C, 224 ImageNet-C, 299 the
  Inception set (``make_imagenet_c_inception.py``).

  Args:
    images: uint8 [..., S, S, 3], S in 32, 64, 224, 299 (any number of leading batch axes).
    name: one of ``CORRUPTIONS``.
    severity: int in 1..5: a Python, NumPy or JAX integer, or a traced int32 scalar (under
      ``jit`` or ``vmap``, e.g. one severity per example), which is clipped into 1..5 (a
      concrete value outside 1..5 raises).  One compiled program serves all five severities.
    key: one PRNG key per image, shape ``images.shape[:-3]`` (typed or raw uint32 [..., 2]).

  Returns:
    uint8 [..., S, S, 3], truncated to uint8 where the original truncates (before the JPEG q85
    save of the 64, 224 and 299 sets: ``imagenet_cp.release_jpeg``).
  """
  get(name)
  severity = severity_operand(severity)
  size = check_images(images)
  batch_shape = tuple(images.shape[:-3])
  key = _check_keys(key, batch_shape)
  flat = jnp.reshape(jnp.asarray(images), (-1, size, size, 3))
  flat_keys = jnp.reshape(key, (-1,))
  out = _corrupt_flat(flat, flat_keys, severity, name=name,
                      flags=workarounds.static_flags(workarounds.resolve(flat)))
  return jnp.reshape(out, images.shape)


def draw(name: str, severity: int, key: jax.Array, size: int = CROP):
  """The random draws of one ``size`` x ``size`` image (for tests that replay them through the
  original)."""
  corruption = get(name)
  severity = check_severity(severity)
  size = sizes.constants(size).size
  key = _check_keys(key, ())
  return corruption.draw(key, severity, size)


def apply(image, name: str, severity: int, draws) -> jax.Array:
  """Applies ``name`` to ONE uint8 [S, S, 3] image with given draws."""
  corruption = get(name)
  severity = check_severity(severity)
  check_images(image)
  return corruption.apply(jnp.asarray(image), draws, severity)
