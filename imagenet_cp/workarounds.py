"""Named XLA:CPU workarounds: speed-only reformulations, each behind one switch.

A workaround computes what the plain formulation computes and changes only how XLA compiles it
(how and by how much it was measured: docs/speed.md, "CPU workarounds").  Each one is on by
default where it was measured to help (XLA:CPU) and off elsewhere, where the plain formulation
runs:

  computed_apart           ``ops.fusion.computed_apart`` / ``applied_if`` / ``carried_apart``: an
                           intermediate kept in memory by a one-trip loop (else XLA:CPU fuses it
                           into every tap of the gather that reads it and recomputes it per tap).
                           glass_blur, pixelate, elastic_transform, snow, spatter,
                           jpeg_compression, the ImageNet-P gaussian_blur and snow, and ConvNeXt's
                           depthwise convs
                           (``models.depthwise.DepthwiseConv(apart=True)``).  Exact.
  corruption_batch_chunks  ``corrupt`` loops over ``Corruption.chunk``-image slices (each one
                           vmapped) instead of one vmap over the whole batch.  Exact.
  perturbation_image_loop  ``perturb_batch`` runs the ``one_image_at_a_time`` sequences one image
                           per loop step instead of vmapping the batch.  Exact.
  convnext_batch_chunks    ConvNeXt (torchvision's and timm's) runs on ``convnext.BATCH_CHUNK``-
                           image chunks in a ``lax.map`` (``models.layers.apply_in_batch_chunks``).
  resnet_batch_chunks      ResNet runs on ``resnet.BATCH_CHUNK``-image chunks in a ``lax.map``.
  regnet_batch_chunks      RegNet X/Y runs on ``regnet.BATCH_CHUNK``-image chunks in a ``lax.map``.
  regnet_stage_loop        a RegNet stage's stride-1 blocks run as a loop, as ``resnet_stage_loop``.
  resnet_stage_loop        a ResNet stage's repeated blocks run as a ``lax.scan`` + ``lax.switch``
                           loop instead of unrolled.

The switch for ``name``, first that applies:

  1. ``with workarounds.override(name=True/False)`` (or ``all=False``), innermost first;
  2. the environment variable ``IMAGENET_CP_WORKAROUNDS``: ``off`` / ``on`` (all), or a comma
     list such as ``computed_apart=off,resnet_stage_loop=on`` (``all=off`` too);
  3. the default for the platform: on for the platforms in ``WORKAROUNDS[name].platforms``.

The platform is that of the devices a concrete input array lives on (``platform_of``), else
that of ``jax.config.jax_default_device`` when set, else ``jax.default_backend()``: inside a jit
the inputs are tracers and carry no devices, so entry points that see concrete arrays
(``corrupt``, ``perturb_batch``) or know their devices (``models.parallel.DataParallel``) resolve
the switches there and pass them into the trace (as static arguments, so a change retraces).

The switch is read when a function is traced.  ``jax.jit`` caches traces, so for your own jitted
function (e.g. ``jax.jit(module.apply)``) set it before the first call, or jit a new function.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from typing import Iterator, Mapping

import jax

ENV_VAR = "IMAGENET_CP_WORKAROUNDS"


@dataclasses.dataclass(frozen=True)
class Workaround:
  """One workaround: where it lives, why, and the platforms it is on for by default."""
  name: str
  where: str
  why: str
  platforms: tuple[str, ...] = ("cpu",)


WORKAROUNDS: dict[str, Workaround] = {w.name: w for w in (
    Workaround("computed_apart", "imagenet_cp.ops.fusion.computed_apart, applied_if",
               "XLA:CPU recomputes a fused producer for every tap of a gather that reads it"),
    Workaround("corruption_batch_chunks", "imagenet_cp.corruptions.corrupt (Corruption.chunk)",
               "a whole vmapped batch's intermediates fall out of the CPU caches between stages"),
    Workaround("perturbation_image_loop",
               "imagenet_cp.perturbations.perturb_batch (Perturbation.one_image_at_a_time)",
               "a whole vmapped batch's frames fall out of the CPU caches"),
    Workaround("convnext_batch_chunks",
               "imagenet_cp.models.layers.apply_in_batch_chunks (ConvNeXt)",
               "a whole batch's 4x-wide MLP activations (150 MB at 56x56) stream from memory"),
    Workaround("resnet_batch_chunks", "imagenet_cp.models.layers.apply_in_batch_chunks (ResNet)",
               "XLA:CPU's temporary buffer for a whole batch is hundreds of MB of fresh pages"),
    Workaround("regnet_batch_chunks", "imagenet_cp.models.layers.apply_in_batch_chunks (RegNet)",
               "a whole batch's grouped-conv slices and stride-2 inputs stream from memory"),
    Workaround("regnet_stage_loop", "imagenet_cp.models.layers.repeated_blocks (RegNet)",
               "unrolled, XLA:CPU re-fuses every earlier block's BN/ReLU chain into later blocks"),
    Workaround("resnet_stage_loop", "imagenet_cp.models.layers.repeated_blocks (ResNet)",
               "unrolled, XLA:CPU re-fuses every earlier block's BN/ReLU chain into later blocks"),
)}
NAMES = tuple(WORKAROUNDS)

# The active ``override`` flags: an immutable mapping name -> bool (innermost merged last).
_OVERRIDES: contextvars.ContextVar[tuple[tuple[str, bool], ...]] = contextvars.ContextVar(
    "imagenet_cp_workaround_overrides", default=())


def _check_name(name: str) -> None:
  if name not in WORKAROUNDS:
    raise ValueError(f"unknown workaround {name!r}; known: {', '.join(NAMES)} (or 'all')")


@contextlib.contextmanager
def override(*, all: bool | None = None, **flags: bool | None) -> Iterator[None]:  # noqa: A002
  """Within the block, workaround ``name`` is on/off as given (None: not overridden here).

  ``all``: every workaround at once; named flags in the same call win over it.  Nested blocks
  take precedence over outer ones; the environment and platform defaults come after both.
  """
  for name in flags:
    _check_name(name)
  merged = dict(_OVERRIDES.get())
  if all is not None:
    merged.update({name: bool(all) for name in NAMES})
  merged.update({name: bool(v) for name, v in flags.items() if v is not None})
  token = _OVERRIDES.set(tuple(sorted(merged.items())))
  try:
    yield
  finally:
    _OVERRIDES.reset(token)


def _env_flags() -> dict[str, bool]:
  """``IMAGENET_CP_WORKAROUNDS`` parsed: {} when unset or empty, else ValueError on a bad entry."""
  text = os.environ.get(ENV_VAR, "").strip()
  if not text:
    return {}
  words = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}
  flags: dict[str, bool] = {}
  for entry in (e.strip() for e in text.split(",")):
    if not entry:
      continue
    name, eq, value = entry.partition("=")
    name, value = (name.strip(), value.strip().lower()) if eq else ("all", name.strip().lower())
    if value not in words:
      raise ValueError(f"{ENV_VAR}: {entry!r} is not NAME=on|off, on or off")
    if name == "all":
      flags.update({n: words[value] for n in NAMES})
    else:
      try:
        _check_name(name)
      except ValueError as e:
        raise ValueError(f"{ENV_VAR}: {e}") from None
      flags[name] = words[value]
  return flags


def platform_of(*like) -> str:
  """The platform ('cpu', 'gpu', 'tpu', ...) the computation on ``like`` runs on.

  The devices of the first concrete ``jax.Array`` among the leaves of ``like`` (tracers carry
  none), else ``jax.config.jax_default_device``'s platform when set, else the default backend.
  """
  for leaf in jax.tree.leaves(like):
    if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer):
      platforms = {d.platform for d in leaf.sharding.device_set}
      if len(platforms) == 1:
        return platforms.pop()
  default = jax.config.jax_default_device
  if default is not None:
    return default if isinstance(default, str) else default.platform
  return jax.default_backend()


def resolve(*like, platform: str | None = None) -> dict[str, bool]:
  """Every workaround's switch, {name: on}, for ``platform`` (default: ``platform_of(*like)``)."""
  platform = platform or platform_of(*like)
  flags = {name: platform in w.platforms for name, w in WORKAROUNDS.items()}
  flags.update(_env_flags())
  flags.update(dict(_OVERRIDES.get()))
  return flags


def enabled(name: str, *like, platform: str | None = None) -> bool:
  """Whether workaround ``name`` is on for a computation on ``like`` (see the module doc)."""
  _check_name(name)
  return resolve(*like, platform=platform)[name]


def static_flags(flags: Mapping[str, bool]) -> tuple[tuple[str, bool], ...]:
  """``resolve``'s result as a hashable, sorted tuple (a ``jax.jit`` static argument)."""
  return tuple(sorted((name, bool(on)) for name, on in flags.items()))
