"""imagenet64_c: ImageNet 64x64-C (Hendrycks & Dietterich, ICLR 2019) generated in JAX.

The ImageNet validation images resized to 64x64 as ``make_imagenet_64_c.py`` (Resize((64, 64)),
PIL bilinear), corrupted with the 64 px constant set.  Configs, features and generation:
``imagenet_cp.datasets.sized_builder``.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp.datasets import common, sized_builder


class Builder(sized_builder.CorruptionBuilder):
  """ImageNet 64x64-C from the ImageNet validation set (manual download)."""

  SIZE = 64
  PIXELS = common.RESIZE_64X64
  PREPROCESSING = sized_builder.RESIZE_64X64
  CHUNK_SIZE = 128  # 64x64 images: larger chunks keep the per-call overhead small
  pkg_dir_path = epath.Path(__file__).parent
