"""A random corruption and severity per image: ImageNet-C as training-time augmentation.

``random_corrupt(images, keys)`` gives image i the corruption ``CORRUPTIONS[names[i]]`` at
``severities[i]``, either given (traced values allowed) or drawn from the image's own key.  The
corruption itself runs on the image's key unchanged, so every example equals
``corrupt(images[i:i + 1], CORRUPTIONS[names[i]], severities[i], keys[i:i + 1])[0]``.

Cost: a ``vmap`` of a ``lax.switch`` over the 19 corruptions computes all 19 for every image.
Instead the batch is sorted by corruption and each corruption runs over its own images only, in
groups of ``group_size`` images (a loop whose trip count is that corruption's share of the
batch): about one ``corrupt`` call's work for the whole batch, plus at most ``group_size - 1``
padding images per corruption present.  The program is compiled once for any mix.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from imagenet_cp import keys as _keys
from imagenet_cp import workarounds
from imagenet_cp.corruptions import CORRUPTIONS, REGISTRY, SEVERITIES, check_images

# fold_in data of the key that draws an image's corruption and severity: the corruption's own
# draws use the image's key itself, so the choice and the corruption are independent streams.
CHOICE_STREAM = 0x43484F53

# Images per group where none is given: accelerators want wide groups.  On CPU, each
# corruption's width in ``corrupt`` of one image (its ``chunk``, else 1): XLA's float rounding
# may depend on the width a program is compiled for (a few values 1 grey level apart), and at
# these widths every example equals ``corrupt`` of that image alone bit for bit.
GROUP_SIZE = 16


def draw_choices(keys, num_choices: int) -> tuple[jax.Array, jax.Array]:
  """(position in the choices int32 [N], severity int32 [N]), uniform, from each image's key."""
  def one(key):
    name_key, severity_key = jax.random.split(jax.random.fold_in(key, CHOICE_STREAM))
    return (jax.random.randint(name_key, (), 0, num_choices),
            jax.random.randint(severity_key, (), SEVERITIES[0], SEVERITIES[-1] + 1))
  return jax.vmap(one)(keys)


def _check_choices(choices) -> tuple[str, ...]:
  if isinstance(choices, str):
    raise ValueError(f"choices must be a sequence of corruption names, got the str {choices!r}")
  choices = tuple(choices)
  unknown = [c for c in choices if c not in CORRUPTIONS]
  if not choices or unknown or len(set(choices)) != len(choices):
    raise ValueError(f"choices must be distinct names among CORRUPTIONS, got {choices!r}"
                     + (f" (unknown: {unknown})" if unknown else ""))
  return choices


def _per_image(values, n: int, what: str, allowed: Sequence[int]) -> jax.Array:
  """An int array of one value per image; concrete values must lie in ``allowed``."""
  if isinstance(values, jax.core.Tracer):
    if values.shape != (n,) or not jnp.issubdtype(values.dtype, jnp.integer):
      raise ValueError(f"{what} must be an int array of shape ({n},), got {values.dtype} "
                       f"{values.shape}")
    return values.astype(jnp.int32)
  array = np.asarray(values)
  if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
    raise ValueError(f"{what} must be an int array of shape ({n},), got {array.dtype} "
                     f"{array.shape}")
  bad = sorted(set(array.tolist()) - set(allowed))
  if bad:
    raise ValueError(f"{what} holds {bad}, allowed: {sorted(allowed)}")
  return jnp.asarray(array, jnp.int32)


def random_corrupt(images: ArrayLike, keys: ArrayLike, *, names: ArrayLike | None = None,
                   severities: ArrayLike | None = None,
                   choices: Sequence[str] = CORRUPTIONS, group_size: int | None = None
                   ) -> jax.Array:
  """Corrupts each image with its own corruption and severity.

  Args:
    images: uint8 [N, S, S, 3], S in 32, 64, 224, 299 (the size picks the constant set).
    keys: one PRNG key per image, [N] (typed, any implementation, or raw uint32 [N, 2]).
    names: int [N], indices into ``imagenet_cp.CORRUPTIONS``, or None: drawn uniformly over
      ``choices`` from each image's key.  Concrete values must be among ``choices``; a traced
      value outside ``choices`` leaves its image unchanged (it cannot be checked in a trace).
    severities: int [N] in 1..5, or None: drawn uniformly from each image's key.  Traced values
      are clipped into 1..5; concrete ones outside raise.
    choices: the corruptions that may be drawn (and that are compiled).
    group_size: images per vmapped group of one corruption.  None: on CPU (the
      ``corruption_batch_chunks`` workaround on) each corruption's own width, 1 or its
      ``chunk``; 16 elsewhere.

  Returns:
    uint8 [N, S, S, 3]; image i equals ``corrupt`` of that image alone with its key, name and
    severity (bit for bit at the CPU default; at other group sizes XLA may round a few values
    differently, at most 1 grey level, as ``corrupt`` itself does between batch sizes).  Use
    ``draw_choices(keys, len(choices))`` to see the drawn ones.
  """
  choices = _check_choices(choices)
  size = check_images(images)
  if images.ndim != 4:
    raise ValueError(f"images must be one batch [N, S, S, 3], got shape {images.shape}")
  n = images.shape[0]
  keys = _keys.as_typed_keys(keys)
  if tuple(keys.shape) != (n,):
    raise ValueError(f"need one key per image: key shape {tuple(keys.shape)} != ({n},)")
  drawn_positions, drawn_severities = draw_choices(keys, len(choices))
  if names is None:
    positions = drawn_positions
  else:
    allowed = [CORRUPTIONS.index(c) for c in choices]
    lookup = np.full(len(CORRUPTIONS), -1, np.int32)
    lookup[allowed] = np.arange(len(choices))
    indices = jnp.clip(_per_image(names, n, "names", allowed), 0, len(CORRUPTIONS) - 1)
    positions = jnp.asarray(lookup)[indices]
  if severities is None:
    severities = drawn_severities
  else:
    severities = jnp.clip(_per_image(severities, n, "severities", SEVERITIES), SEVERITIES[0],
                          SEVERITIES[-1])
  flags = workarounds.static_flags(workarounds.resolve(images))
  if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
    raise ValueError(f"group_size must be a positive int, got {group_size!r}")
  groups = tuple(max(1, min(_group_size(name, group_size, flags, size), n)) for name in choices)
  return _grouped(jnp.asarray(images), keys, positions, severities, choices=choices,
                  groups=groups, flags=flags, size=size)


def _group_size(name: str, group_size: int | None, flags, side: int) -> int:
  if group_size is not None:
    return group_size
  if dict(flags).get("corruption_batch_chunks", False):
    return REGISTRY[name].chunk_for(side) or 1
  return GROUP_SIZE


@functools.partial(jax.jit, static_argnames=("choices", "groups", "flags", "size"))
def _grouped(images, keys, positions, severities, *, choices, groups, flags, size):
  """Each corruption of ``choices`` over the images at its position, ``groups[c]`` at a time."""
  n = images.shape[0]
  positions = jnp.where(positions < 0, len(choices), positions)  # unchanged images sort last
  order = jnp.argsort(positions, stable=True)
  counts = jnp.bincount(positions, length=len(choices) + 1)
  starts = jnp.cumsum(counts) - counts
  out = images
  with workarounds.override(**dict(flags)):
    for c, name in enumerate(choices):
      out = _run_group(REGISTRY[name], images, keys, severities, order, starts[c], counts[c],
                       out, groups[c], size)
  return out


def _run_group(corruption, images, keys, severities, order, start, count, out, group, size):
  """``corruption`` on the ``count`` images ``order[start:start + count]``, written into out."""
  n = images.shape[0]

  def one(image, key, severity):
    return corruption.apply(image, corruption.draw(key, severity, size), severity)

  def step(j, out):
    slots = start + j * group + jnp.arange(group)
    index = order[jnp.minimum(slots, n - 1)]
    result = jax.vmap(one)(images[index], keys[index], severities[index])
    return out.at[jnp.where(slots < start + count, index, n)].set(result, mode="drop")

  return jax.lax.fori_loop(0, (count + group - 1) // group, step, out)
