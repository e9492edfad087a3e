"""``import metrics``: a convenience alias of ``imagenet_cp.metrics``, the canonical path.

It works only where nothing else named ``metrics`` comes first on ``sys.path`` (a research
repository's own ``metrics/`` shadows it); library code and examples use ``imagenet_cp.metrics``.
"""
from imagenet_cp import metrics as _target
from imagenet_cp.metrics import *  # noqa: F401,F403

__doc__ = _target.__doc__


def __getattr__(name):  # submodules and names outside __all__ (e.g. metrics.baselines)
  return getattr(_target, name)
