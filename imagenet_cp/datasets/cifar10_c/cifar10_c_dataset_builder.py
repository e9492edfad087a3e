"""cifar10_c: CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019) generated with imagenet_cp in JAX.

The configs, features and generation are shared with the other CIFAR builders
(``imagenet_cp.datasets.cifar_builder``); this one reads the CIFAR-10 test set.
"""
from __future__ import annotations

from etils import epath

from imagenet_cp import cifar
from imagenet_cp.datasets import cifar_builder


class Builder(cifar_builder.CifarCBuilder):
  """CIFAR-10-C from the CIFAR-10 test set (manual dir or the official download)."""

  CIFAR = cifar.CIFAR10
  pkg_dir_path = epath.Path(__file__).parent
