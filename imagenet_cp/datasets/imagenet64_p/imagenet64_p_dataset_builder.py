"""imagenet64_p: ImageNet 64x64-P (``make_imagenet_64_p.py``) generated in JAX.

The ImageNet validation images resized to 64x64 (Resize((64, 64)), PIL bilinear), with the
Tiny-ImageNet-P constants; motion_blur blurs the photo itself.  Configs, features and
generation: ``imagenet_cp.datasets.sized_builder``.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp.datasets import common, sized_builder


class Builder(sized_builder.PerturbationBuilder):
  """ImageNet 64x64-P from the ImageNet validation set (manual download)."""

  BENCHMARK = "imagenet64"
  PIXELS = common.RESIZE_64X64
  pkg_dir_path = epath.Path(__file__).parent
