"""``import attacks``: a convenience alias of ``imagenet_cp.attacks``, the canonical path.

It works only where nothing else named ``attacks`` comes first on ``sys.path`` (a research
repository's own ``attacks/`` shadows it); library code and examples use ``imagenet_cp.attacks``.
"""
from imagenet_cp import attacks as _target
from imagenet_cp.attacks import *  # noqa: F401,F403

__doc__ = _target.__doc__


def __getattr__(name):  # submodules and names outside __all__ (e.g. attacks.core)
  return getattr(_target, name)
