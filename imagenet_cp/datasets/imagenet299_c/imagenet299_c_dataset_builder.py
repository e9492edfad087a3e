"""imagenet299_c: the 299 px (Inception) ImageNet-C of ``make_imagenet_c_inception.py``, in JAX.

A builder of its own rather than configs of imagenet_c: its images are 299x299 from another
input (0.875 centre crop + 299x299 bilinear) with other constants, and one TFDS dataset's
examples share a shape and a version.  Configs, features and generation:
``imagenet_cp.datasets.sized_builder``.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp.datasets import common, sized_builder


class Builder(sized_builder.CorruptionBuilder):
  """ImageNet-C at 299 px (Inception) from the ImageNet validation set (manual download)."""

  SIZE = 299
  PIXELS = common.CROP_299
  PREPROCESSING = sized_builder.CROP_299
  pkg_dir_path = epath.Path(__file__).parent
