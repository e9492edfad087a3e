"""AlexNet as torchvision's ``alexnet`` ("one weird trick" single tower, no LRN), NHWC.

Submodules are named after the torch state-dict paths (``features.0``, ``classifier.1``) so that
conversion is mechanical (models/convert.py).
"""
from __future__ import annotations

import flax.linen as nn
import jax

from models import layers


class AlexNet(nn.Module):
  """[N, H, W, 3] normalized float32 (H, W >= 63) -> logits [N, num_classes]."""
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.relu(layers.conv(64, 11, 4, 2, name="features.0")(x))
    x = layers.max_pool(x, 3, 2)
    x = layers.relu(layers.conv(192, 5, 1, 2, name="features.3")(x))
    x = layers.max_pool(x, 3, 2)
    x = layers.relu(layers.conv(384, 3, 1, 1, name="features.6")(x))
    x = layers.relu(layers.conv(256, 3, 1, 1, name="features.8")(x))
    x = layers.relu(layers.conv(256, 3, 1, 1, name="features.10")(x))
    x = layers.max_pool(x, 3, 2)
    x = layers.flatten_chw(layers.adaptive_avg_pool(x, 6, 6))
    # Dropout layers (classifier.0, classifier.3) act only in training.
    x = layers.relu(layers.dense(4096, name="classifier.1")(x))
    x = layers.relu(layers.dense(4096, name="classifier.4")(x))
    return layers.dense(self.num_classes, name="classifier.6")(x)
