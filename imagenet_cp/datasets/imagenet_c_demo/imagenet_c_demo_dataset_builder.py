"""imagenet_c_demo: the ImageNet-C configs built from the packaged demo photos, NOT from ImageNet.

Same configs, features and generation as ``imagenet_c``; the source is the handful of real
photos that scikit-image and matplotlib ship (``imagenet_cp.sources.DEMO_PHOTOS``, labels
assigned by hand), so every config builds offline in seconds.  The builder name, the README
(the dataset description) and ``metadata.json`` (``source: demo``) all say it is demo data.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp.datasets import common
from imagenet_cp.datasets.imagenet_c import imagenet_c_dataset_builder


class Builder(imagenet_c_dataset_builder.Builder):
  """ImageNet-C configs on the demo photos (offline, seconds per config)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = None
  SOURCE = common.SOURCE_DEMO  # the photos come with the installed packages
  pkg_dir_path = epath.Path(__file__).parent
