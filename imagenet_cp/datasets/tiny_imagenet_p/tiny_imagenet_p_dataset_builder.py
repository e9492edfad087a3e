"""tiny_imagenet_p: Tiny-ImageNet-P (Hendrycks & Dietterich, ICLR 2019) generated in JAX.

Built from the Tiny ImageNet validation set (or crops the user supplies), not from the
original's unpublished ImageNet bounding-box crops: see ``tiny_imagenet`` and README.md.
Configs, features and generation: ``imagenet_cp.datasets.sized_builder``.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp.datasets import common, sized_builder


class Builder(sized_builder.TinySource, sized_builder.PerturbationBuilder):
  """Tiny-ImageNet-P from the Tiny ImageNet validation set (manual download)."""

  BENCHMARK = "tiny_imagenet"
  PIXELS = common.RESIZE_64  # make_tinyimagenet_p.py: Resize(64), cropped by the sequences
  pkg_dir_path = epath.Path(__file__).parent
