"""AlexNet as torchvision's ``alexnet`` ("one weird trick" single tower, no LRN), NHWC.

Submodules are named after the torch state-dict paths (``features.0``, ``classifier.1``) so that
conversion is mechanical (imagenet_cp/models/convert.py).
"""
from __future__ import annotations

import flax.linen as nn
import jax

from imagenet_cp.models import layers


class ConvReLUPool(nn.Module):
  """torch ``Conv2d(c, features, kernel, stride, padding)`` + ReLU + ``MaxPool2d(3, 2)``.

  Same parameters as ``layers.conv`` (``kernel`` HWIO, ``bias``).  Computed as convolution ->
  separable max pool -> + bias -> ReLU: adding a per-channel constant and ReLU are monotonic,
  so they commute with the max exactly (same logits bit for bit) and run on the 4x smaller
  pooled tensor, and ``layers.max_pool`` pools it separably instead of with XLA:CPU's slow
  ``reduce_window`` (timings: docs/speed.md, "Model zoo layers").
  """
  features: int
  kernel: int
  stride: int = 1
  padding: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.kernel, self.kernel, x.shape[-1], self.features), x.dtype)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), x.dtype)
    y = layers.conv2d(x, kernel, self.stride, self.padding)
    return layers.relu(layers.max_pool(y, 3, 2) + bias)


class AlexNet(nn.Module):
  """[N, H, W, 3] normalized float32 (H, W >= 63) -> logits [N, num_classes]."""
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvReLUPool(64, 11, 4, 2, name="features.0")(x)
    x = ConvReLUPool(192, 5, 1, 2, name="features.3")(x)
    x = layers.relu(layers.conv(384, 3, 1, 1, name="features.6")(x))
    x = layers.relu(layers.conv(256, 3, 1, 1, name="features.8")(x))
    x = ConvReLUPool(256, 3, 1, 1, name="features.10")(x)
    x = layers.flatten_chw(layers.adaptive_avg_pool(x, 6, 6))
    # Dropout layers (classifier.0, classifier.3) act only in training.
    x = layers.relu(layers.dense(4096, name="classifier.1")(x))
    x = layers.relu(layers.dense(4096, name="classifier.4")(x))
    return layers.dense(self.num_classes, name="classifier.6")(x)
