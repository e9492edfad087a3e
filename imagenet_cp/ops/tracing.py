"""Whether a value is known now or only traced (inside ``jit``/``vmap``)."""
from __future__ import annotations

import jax


def is_concrete(x) -> bool:
  """True for host values and device arrays, False for tracers: value checks run only then."""
  return not isinstance(x, jax.core.Tracer)
