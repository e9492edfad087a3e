"""tiny_imagenet_c: Tiny-ImageNet-C (Hendrycks & Dietterich, ICLR 2019) generated in JAX.

Built from the Tiny ImageNet validation set (or crops the user supplies), not from the
original's unpublished ImageNet bounding-box crops: see ``tiny_imagenet`` and README.md.
Configs, features and generation: ``imagenet_cp.datasets.sized_builder``.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp.datasets import common, sized_builder


class Builder(sized_builder.TinySource, sized_builder.CorruptionBuilder):
  """Tiny-ImageNet-C from the Tiny ImageNet validation set (manual download)."""

  SIZE = 64
  PIXELS = common.RESIZE_64X64  # make_tinyimagenet_c.py; a 64x64 Tiny image is left as it is
  PREPROCESSING = sized_builder.RESIZE_64X64 + " (a 64x64 Tiny ImageNet image is unchanged)"
  CHUNK_SIZE = 128  # 64x64 images: larger chunks keep the per-call overhead small
  pkg_dir_path = epath.Path(__file__).parent
