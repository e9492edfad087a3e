"""The contract every corruption implements.

A corruption is split into ``draw`` (all randomness, per image) and ``apply`` (a pure
function of the image and the draws), so tests can hand the original algorithm the same
random numbers.  Both work on ONE image; ``imagenet_cp.corrupt`` vmaps them over the batch.

- ``draw(key, severity, size) -> draws``: a pytree of arrays whose shapes do not depend on a
  traced severity (draw the largest size any severity needs and let ``apply`` use a prefix);
  ``size`` is the image side (32, 64, 224 or 299, ``corruptions.sizes``; default 224).
  Deterministic corruptions return ``()``.
- ``apply(image, draws, severity) -> image``: ``image`` uint8 [S, S, 3], returns uint8
  [S, S, 3]; the side S selects the constant set (``sizes.of(image)``).  ``severity`` is an
  int32 scalar in 1..5, traced (parameters are selected inside the program: one compile for
  all five severities, and a per-image severity under ``vmap``); no shape depends on it.
- ``chunk``: images per step when ``corrupt`` loops over the batch (the ``corruption_batch_chunks``
  workaround, on CPU; 0: the whole batch), or a mapping image side -> that (absent sides: 0).
"""
from __future__ import annotations

import dataclasses
import operator
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.preprocess import CROP  # the side of every corrupted image and sequence frame

CROP_SHAPE = (CROP, CROP, 3)
Draws = Any


def no_draws(key: jax.Array, level, size=None) -> tuple:
  """``draw`` for deterministic corruptions and sequences (level: severity or difficulty)."""
  del key, level, size
  return ()


def pick(table, level, dtype=jnp.float32) -> jax.Array:
  """Row ``level - 1`` of a per-level constant table (severity 1..5 or difficulty 1..3),
  traced or a Python int; levels outside the table read its nearest row."""
  table = jnp.asarray(np.asarray(table), dtype)
  return table[jnp.clip(jnp.asarray(level, jnp.int32), 1, table.shape[0]) - 1]


def check_level(value, levels: Sequence[int], what: str) -> int:
  """``value`` as a Python int in ``levels`` (severity or difficulty), else ValueError; checked
  on the host before anything is traced (bools, floats, strings and tracers are refused)."""
  span = f"{levels[0]}..{levels[-1]}"
  if isinstance(value, (bool, np.bool_)):
    raise ValueError(f"{what} must be an int in {span}, got {value!r}")
  try:
    index = operator.index(value)
  except TypeError:
    raise ValueError(f"{what} must be an int in {span}, got {value!r}") from None
  if index not in levels:
    raise ValueError(f"{what} must be in {span}, got {value}")
  return index


def level_operand(value, levels: Sequence[int], what: str) -> jax.Array:
  """A severity or difficulty as an int32 scalar for the jitted programs: a concrete value
  (Python, NumPy or JAX integer) must be in ``levels`` (ValueError otherwise); a traced one
  (``jit``, ``vmap``) cannot be checked and is clipped into ``levels``."""
  if isinstance(value, jax.core.Tracer):
    if value.shape != () or not jnp.issubdtype(value.dtype, jnp.integer):
      raise ValueError(f"a traced {what} must be an integer scalar, got {value.dtype} "
                       f"{value.shape}")
    return jnp.clip(value.astype(jnp.int32), levels[0], levels[-1])
  if isinstance(value, (jax.Array, np.ndarray)):
    if value.shape != () or not np.issubdtype(value.dtype, np.integer):
      raise ValueError(f"{what} must be an integer scalar in {levels[0]}..{levels[-1]}, got "
                       f"{value.dtype} array of shape {value.shape}")
    value = int(value)
  return jnp.int32(check_level(value, levels, what))


def registered(registry: dict, names: Sequence[str], name, what: str):
  """``registry[name]``: ValueError for a name not among ``names``, NotImplementedError for one
  that is not registered (implemented) yet."""
  if not isinstance(name, str) or name not in names:
    raise ValueError(f"unknown {what} {name!r}; expected one of {', '.join(names)}")
  if name not in registry:
    raise NotImplementedError(f"{what} {name!r} is not implemented yet")
  return registry[name]


def check_uint8(pixels, what: str) -> tuple[int, ...]:
  """The shape of ``pixels`` (images, a canvas) if they are uint8, else ValueError."""
  dtype = getattr(pixels, "dtype", None)
  if dtype != np.uint8:
    raise ValueError(f"{what} must be uint8 RGB pixels, got dtype {dtype}")
  return tuple(getattr(pixels, "shape", ()))


@dataclasses.dataclass(frozen=True)
class Corruption:
  name: str
  apply: Callable[[jax.Array, Draws, Any], jax.Array]
  draw: Callable[[jax.Array, Any], Draws] = no_draws
  # > 0: with the ``corruption_batch_chunks`` workaround on (CPU), ``corrupt`` runs the batch as
  # a loop over slices of this many images (each vmapped), which keeps each stage's
  # intermediates in the caches (imagenet_cp.workarounds, docs/speed.md); 0 or off: one vmap.
  chunk: int | Mapping[int, int] = 0

  def chunk_for(self, side: int) -> int:
    """Images per step for images of ``side`` pixels (``chunk``, or its entry for ``side``)."""
    return self.chunk.get(side, 0) if isinstance(self.chunk, Mapping) else self.chunk
