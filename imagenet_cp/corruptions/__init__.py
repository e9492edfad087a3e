"""The 19 ImageNet-C corruptions behind one entry point, ``corrupt``."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp import keys as _keys
from imagenet_cp.corruptions.base import Corruption
from imagenet_cp.corruptions import blur, digital, noise, weather

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
IMAGE_SIZE = 224

REGISTRY: dict[str, Corruption] = {}
for _module in (noise, blur, weather, digital):
  REGISTRY.update(_module.CORRUPTIONS)


def get(name: str) -> Corruption:
  """The registered corruption ``name``; a clear error for unknown or unimplemented names."""
  if name not in CORRUPTIONS:
    raise ValueError(f"unknown corruption {name!r}; expected one of {', '.join(CORRUPTIONS)}")
  if name not in REGISTRY:
    raise NotImplementedError(f"corruption {name!r} is not implemented yet")
  return REGISTRY[name]


def check_severity(severity) -> int:
  """Severity as a Python int in 1..5, else ValueError (checked before anything is traced)."""
  if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)):
    raise ValueError(f"severity must be a Python int in 1..5, got {severity!r}")
  if int(severity) not in SEVERITIES:
    raise ValueError(f"severity must be in 1..5, got {severity}")
  return int(severity)


def check_images(images, size: int = IMAGE_SIZE) -> None:
  """uint8 [..., size, size, 3], else ValueError naming what is wrong."""
  dtype = getattr(images, "dtype", None)
  shape = tuple(getattr(images, "shape", ()))
  if dtype != np.uint8:
    raise ValueError(f"images must be uint8 RGB pixels, got dtype {dtype}")
  if len(shape) < 3:
    raise ValueError(f"images must have shape [..., {size}, {size}, 3], got rank {len(shape)} {shape}")
  if shape[-1] != 3:
    raise ValueError(f"images must have 3 (RGB) channels last, got shape {shape}")
  if shape[-3:-1] != (size, size):
    raise ValueError(
        f"images must be {size}x{size} (Resize(256) + CenterCrop(224), imagenet_cp.preprocess), "
        f"got {shape[-3]}x{shape[-2]}")


def _check_keys(key, batch_shape: tuple) -> jax.Array:
  key = _keys.as_typed_keys(key)
  if tuple(key.shape) != batch_shape:
    raise ValueError(
        f"need one key per image: key shape {tuple(key.shape)} != image batch shape {batch_shape} "
        "(use imagenet_cp.example_keys or jax.random.split)")
  return key


@functools.partial(jax.jit, static_argnames=("name", "static_severity"))
def _corrupt_flat(images, keys, severity, *, name, static_severity):
  corruption = REGISTRY[name]
  sev = static_severity if static_severity else severity

  def one(image, key):
    return corruption.apply(image, corruption.draw(key, sev), sev)

  # Chunks are a CPU cache measure; accelerators want the whole batch in one program.
  if corruption.chunk and jax.default_backend() == "cpu":
    return _in_chunks(jax.vmap(one), images, keys, corruption.chunk)
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


def corrupt(images, name: str, severity: int, key) -> jax.Array:
  """Applies ImageNet-C corruption ``name`` at ``severity`` (1..5).

  Args:
    images: uint8 [..., 224, 224, 3] (any number of leading batch axes, or none).
    name: one of ``CORRUPTIONS``.
    severity: Python int in 1..5.
    key: one PRNG key per image, shape ``images.shape[:-3]`` (typed or raw uint32 [..., 2]).

  Returns:
    uint8 [..., 224, 224, 3], truncated to uint8 where the original truncates.
  """
  corruption = get(name)
  severity = check_severity(severity)
  check_images(images)
  batch_shape = tuple(images.shape[:-3])
  key = _check_keys(key, batch_shape)
  flat = jnp.reshape(jnp.asarray(images), (-1, IMAGE_SIZE, IMAGE_SIZE, 3))
  flat_keys = jnp.reshape(key, (-1,))
  out = _corrupt_flat(
      flat, flat_keys, jnp.int32(severity), name=name,
      static_severity=severity if corruption.static_severity else 0)
  return jnp.reshape(out, images.shape)


def draw(name: str, severity: int, key: jax.Array):
  """The random draws of one image (for tests that replay them through the original)."""
  corruption = get(name)
  severity = check_severity(severity)
  key = _check_keys(key, ())
  return corruption.draw(key, severity)


def apply(image, name: str, severity: int, draws) -> jax.Array:
  """Applies ``name`` to ONE uint8 [224, 224, 3] image with given draws."""
  corruption = get(name)
  severity = check_severity(severity)
  check_images(image)
  return corruption.apply(jnp.asarray(image), draws, severity)
