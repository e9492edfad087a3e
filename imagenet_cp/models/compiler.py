"""XLA compiler options for the zoo's own jits: per executable, never process-wide ``XLA_FLAGS``.

On CPU, jaxlib hands every convolution, dot and reduction to YNNPACK (``__ynn_fusion`` in the
optimized HLO).  Its convolutions ran on one of the two cores for most of the zoo's layers,
where XLA's own (Eigen) convolution uses both; its dots are faster than XLA's.

``compiler_options()`` keeps YNNPACK for dots only, except for the VGGs, whose Winograd
convolutions (``imagenet_cp/models/winograd.py``: 16 batched GEMMs per layer) ran slower on
YNNPACK's dots than on XLA's: ``compiler_options("vgg19")`` turns YNNPACK off altogether
(timings: docs/speed.md, "Model zoo layers").  ``models.parallel.DataParallel`` (what
``metrics.run`` evaluates with, given the model's name) and ``models.bench`` compile with it;
to get the same speed in your own jit, pass it on::

  apply = jax.jit(module.apply, compiler_options=models.compiler_options("resnet50"))

Only a top-level ``jax.jit`` takes ``compiler_options`` (JAX raises on a nested one), which is
why ``models.classifier`` returns a plain function and the option is given where the program is
compiled: your outermost jit, ``DataParallel``, the benchmarks.

The option is experimental in XLA: where this jaxlib does not know it, or off CPU, the result
is ``{}`` (the plain default compile), checked once by compiling a one-op function.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

YNN_FUSION_OPTION = "xla_cpu_experimental_ynn_fusion_type"
YNN_FUSION_TYPES = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
# "": no YNNPACK fusions.  Every VGG runs the same Winograd convolutions (measured on 11/19/19-BN).
MODEL_YNN_FUSION_TYPES = {name: "" for name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16",
                                                 "vgg16_bn", "vgg19", "vgg19_bn")}


def compiler_options(model: str | None = None, platform: str | None = None) -> dict[str, str]:
  """-> ``jax.jit(..., compiler_options=...)`` for zoo model ``model`` (canonical name; any
  other name or None: the setting for every non-VGG model) on ``platform`` (default: the
  default backend's; {} unless 'cpu')."""
  return _cpu_options(MODEL_YNN_FUSION_TYPES.get(model, YNN_FUSION_TYPES),
                      platform or jax.default_backend())


@functools.cache
def _cpu_options(ynn_fusion_types: str, platform: str) -> dict[str, str]:
  if platform != "cpu":
    return {}
  options = {YNN_FUSION_OPTION: ynn_fusion_types}
  return options if _accepted(options) else {}


def _accepted(options: dict[str, str]) -> bool:
  """Whether this jaxlib compiles a one-op function with ``options`` (unknown options raise)."""
  try:
    jax.jit(jnp.negative, compiler_options=options).lower(jnp.zeros(2)).compile()
  except Exception:  # noqa: BLE001 -- any rejection means: compile without the options
    return False
  return True
