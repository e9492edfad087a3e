"""timm as a test and benchmark oracle (never used by the zoo itself).

timm is installed with ``--no-deps`` and imports torchvision at module level; on this CPU-only
torch, torchvision needs the op schemas that ``torchvision_shim`` defines first.
"""
from __future__ import annotations

from imagenet_cp.oracles.torchvision_shim import import_torchvision


def import_timm():
  """``import timm`` after making torchvision importable."""
  import_torchvision()
  import timm  # pylint: disable=g-import-not-at-top
  return timm


def timm_model(name: str, **kwargs):
  """timm's ``name`` (a timm model name, without the zoo's ``timm/`` prefix) with random weights,
  in eval mode; ``kwargs`` override the model's hyper-parameters (e.g. ``depth``)."""
  return import_timm().create_model(name, pretrained=False, **kwargs).eval()
