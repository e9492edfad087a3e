"""``import models``: a convenience alias of ``imagenet_cp.models``, the canonical path.

It works only where nothing else named ``models`` comes first on ``sys.path`` (a research
repository's own ``models/`` shadows it); library code and examples use ``imagenet_cp.models``.
"""
from imagenet_cp import models as _target
from imagenet_cp.models import *  # noqa: F401,F403

__doc__ = _target.__doc__


def __getattr__(name):  # submodules and names outside __all__ (e.g. models.resnet)
  return getattr(_target, name)
