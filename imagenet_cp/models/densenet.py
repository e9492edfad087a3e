"""DenseNet-121/161/169/201 (DenseNet-BC) as torchvision's ``densenet*``.

NHWC.  Submodules are named after torchvision's module paths (``features.denseblock1.denselayer1.
norm1`` ...); the released checkpoints use the older ``norm.1`` style, which models/convert.py
renames the way torchvision's loader does.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import layers


class DenseLayer(nn.Module):
  """BN-ReLU-conv1x1(bn_size*k) -> BN-ReLU-conv3x3(k); returns only the k new channels."""
  growth_rate: int
  bn_size: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = layers.relu(layers.batch_norm(name="norm1")(x))
    y = layers.conv(self.bn_size * self.growth_rate, 1, bias=False, name="conv1")(y)
    y = layers.relu(layers.batch_norm(name="norm2")(y))
    return layers.conv(self.growth_rate, 3, 1, 1, bias=False, name="conv2")(y)


class DenseNet(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  growth_rate: int
  block_config: Sequence[int]
  num_init_features: int
  bn_size: int = 4
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.conv(self.num_init_features, 7, 2, 3, bias=False, name="features.conv0")(x)
    x = layers.relu(layers.batch_norm(name="features.norm0")(x))
    x = layers.max_pool(x, 3, 2, 1)
    for b, num_layers in enumerate(self.block_config):
      x = self._dense_block(x, b + 1, num_layers)
      if b + 1 < len(self.block_config):
        x = layers.relu(layers.batch_norm(name=f"features.transition{b + 1}.norm")(x))
        x = layers.conv(x.shape[-1] // 2, 1, bias=False, name=f"features.transition{b + 1}.conv")(x)
        x = layers.avg_pool(x, 2, 2)
    x = layers.relu(layers.batch_norm(name="features.norm5")(x))
    return layers.dense(self.num_classes, name="classifier")(x.mean(axis=(1, 2)))

  def _dense_block(self, x: jax.Array, block: int, num_layers: int) -> jax.Array:
    # Concatenating once per layer is the naive form; XLA fuses the copies on inference.
    for i in range(num_layers):
      new = DenseLayer(self.growth_rate, self.bn_size,
                       name=f"features.denseblock{block}.denselayer{i + 1}")(x)
      x = jnp.concatenate([x, new], axis=-1)
    return x


DenseNet121 = functools.partial(DenseNet, growth_rate=32, block_config=(6, 12, 24, 16),
                                num_init_features=64)
DenseNet161 = functools.partial(DenseNet, growth_rate=48, block_config=(6, 12, 36, 24),
                                num_init_features=96)
DenseNet169 = functools.partial(DenseNet, growth_rate=32, block_config=(6, 12, 32, 32),
                                num_init_features=64)
DenseNet201 = functools.partial(DenseNet, growth_rate=32, block_config=(6, 12, 48, 32),
                                num_init_features=64)
