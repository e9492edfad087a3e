"""``import metrics``: a convenience alias of ``imagenet_cp.metrics``, the canonical path.

It works only where nothing else named ``metrics`` comes first on ``sys.path`` (a research
repository's own ``metrics/`` shadows it); library code and examples use ``imagenet_cp.metrics``.
"""
from imagenet_cp import metrics as _target

# Every public name but the evaluation suites, which stay imported on first use (a star import
# would import them here).
globals().update({name: getattr(_target, name) for name in _target.__all__
                  if name not in _target._SUITES})
__all__ = list(_target.__all__)
__doc__ = _target.__doc__


def __getattr__(name):  # the suites, submodules and names outside __all__ (metrics.baselines)
  return getattr(_target, name)
