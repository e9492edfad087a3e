"""imagenet_p_demo: the ImageNet-P configs built from the packaged demo photos, NOT from ImageNet.

Same configs, features and generation as ``imagenet_p``; the source is the handful of real
photos that scikit-image and matplotlib ship (``imagenet_cp.sources.DEMO_PHOTOS``, labels
assigned by hand).  The builder name, the README and ``metadata.json`` (``source: demo``) say so.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp.datasets import common
from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder


class Builder(imagenet_p_dataset_builder.Builder):
  """ImageNet-P configs on the demo photos (offline)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = None
  SOURCE = common.SOURCE_DEMO  # the photos come with the installed packages
  pkg_dir_path = epath.Path(__file__).parent
