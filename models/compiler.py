"""XLA compiler options for the zoo's own jits: per executable, never process-wide ``XLA_FLAGS``.

On CPU this jaxlib (0.10.2) hands every convolution, dot and reduction to YNNPACK
(``__ynn_fusion`` in the optimized HLO).  Its convolutions ran on one of the two cores for most
of the zoo's layers (wall time = CPU time), where XLA's own (Eigen) convolution uses both:
batch 32 at load ~1.3, wall / CPU ms per layer, YNNPACK -> Eigen: SqueezeNet-1.0's 7x7/2
3->96 conv 277/278 -> 88/162, its 96->16 squeeze 1x1 28.5/28.6 -> 2.8/5.3, ResNet's 56x56
64->64 3x3 73/73 -> 37/69 (28x28 128->128, which YNNPACK did thread, 23/44 -> 25/49).  YNNPACK's
dots stay: without them ResNet-50 was slower (whole model, wall ms per batch: default 1117,
no YNNPACK at all 1349, YNNPACK for dots only 861).

``compiler_options()`` keeps YNNPACK for dots only.  ``models.parallel.DataParallel`` (what
``metrics.run`` evaluates with) and ``models.bench`` compile with it; to get the same speed in
your own jit, pass it on::

  apply = jax.jit(module.apply, compiler_options=models.compiler_options())

The option is experimental in XLA: where this jaxlib does not know it, or off CPU, the result
is ``{}`` (the plain default compile), checked once by compiling a one-op function.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

YNN_FUSION_OPTION = "xla_cpu_experimental_ynn_fusion_type"
YNN_FUSION_TYPES = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"


@functools.cache
def compiler_options() -> dict[str, str]:
  """-> ``jax.jit(..., compiler_options=...)`` for the zoo on the default backend ({} off CPU)."""
  if jax.default_backend() != "cpu":
    return {}
  options = {YNN_FUSION_OPTION: YNN_FUSION_TYPES}
  return options if _accepted(options) else {}


def _accepted(options: dict[str, str]) -> bool:
  """Whether this jaxlib compiles a one-op function with ``options`` (unknown options raise)."""
  try:
    jax.jit(jnp.negative, compiler_options=options).lower(jnp.zeros(2)).compile()
  except Exception:  # noqa: BLE001 -- any rejection means: compile without the options
    return False
  return True
