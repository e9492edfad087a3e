"""The contract every corruption implements.

A corruption is split into ``draw`` (all randomness, per image) and ``apply`` (a pure
function of the image and the draws), so tests can hand the original algorithm the same
random numbers.  Both work on ONE image; ``imagenet_cp.corrupt`` vmaps them over the batch.

- ``draw(key, severity) -> draws``: a pytree of arrays whose shapes do not depend on a
  traced severity (draw the largest size any severity needs and let ``apply`` use a prefix).
  Deterministic corruptions return ``()``.
- ``apply(image, draws, severity) -> image``: ``image`` uint8 [224, 224, 3], returns uint8
  [224, 224, 3].  ``severity`` is an int32 scalar in 1..5: traced when
  ``static_severity`` is False (parameters are selected inside the program, one compile for
  all five severities), a Python int when True (the algorithm's shapes depend on it).
- ``chunk``: images per step when ``corrupt`` loops over the batch on CPU (0: the whole batch).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax

Draws = Any


def no_draws(key: jax.Array, level) -> tuple:
  """``draw`` for deterministic corruptions and sequences (level: severity or difficulty)."""
  del key, level
  return ()


@dataclasses.dataclass(frozen=True)
class Corruption:
  name: str
  apply: Callable[[jax.Array, Draws, Any], jax.Array]
  draw: Callable[[jax.Array, Any], Draws] = no_draws
  static_severity: bool = False
  # > 0: on CPU, ``corrupt`` runs the batch as a loop over slices of this many images (each
  # slice vmapped) instead of one vmap over the whole batch, which keeps each stage's
  # intermediates in the caches (measured per corruption, docs/speed.md); 0: one vmap.  Other
  # backends always take the whole batch.
  chunk: int = 0
