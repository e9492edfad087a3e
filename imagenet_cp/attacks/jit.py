"""The attacks' top-level jits, compiled with caller-chosen XLA options (``compile_with``).

An attack runs the model inside its own ``jax.jit``, so the options a model's own jit would get
(``models.compiler_options(name)``: on XLA:CPU, YNNPACK for dots only, which ran
EfficientNet-Lite0's input gradient ~30% faster than the default; docs/attacks.md) never reach
it.  ``with attacks.compile_with(models.compiler_options("efficientnet_lite0")): ...`` compiles
every attack called at top level inside the block with those options (the suites do this for
the model they evaluate).  JAX takes ``compiler_options`` only on a top-level jit, so an attack
traced inside another jit (APGD inside APGD-T) is the plain jit, compiled with its caller.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Callable, Iterator, Mapping

import jax

from imagenet_cp.ops.tracing import is_concrete

_OPTIONS: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "imagenet_cp_attack_compiler_options", default=())


@contextlib.contextmanager
def compile_with(options: Mapping[str, str] | None) -> Iterator[None]:
  """Within the block, attacks called at top level compile with XLA ``options`` ({} or None:
  the defaults)."""
  token = _OPTIONS.set(tuple(sorted((options or {}).items())))
  try:
    yield
  finally:
    _OPTIONS.reset(token)


def jit(*, static_argnames: tuple[str, ...]) -> Callable[[Callable], Callable]:
  """``functools.partial(jax.jit, static_argnames=...)`` that honours ``compile_with``."""
  def wrap(fn: Callable) -> Callable:
    plain = jax.jit(fn, static_argnames=static_argnames)
    with_options: dict[tuple, Callable] = {}

    @functools.wraps(fn)
    def call(*args, **kwargs):
      options = _OPTIONS.get()
      if not options or not all(map(is_concrete, jax.tree.leaves((args, kwargs)))):
        return plain(*args, **kwargs)
      if options not in with_options:
        with_options[options] = jax.jit(fn, static_argnames=static_argnames,
                                        compiler_options=dict(options))
      return with_options[options](*args, **kwargs)

    return call
  return wrap
