"""SqueezeNet 1.0 and 1.1 as torchvision's ``squeezenet1_0`` / ``squeezenet1_1``, NHWC.

The paper's "SqueezeNet" is 1.1.  Max-pools use torch's ceil_mode (1.0 has different feature
map sizes without it).  Submodules are named after the torch state-dict paths.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import layers


class Fire(nn.Module):
  """squeeze 1x1 -> ReLU -> concat[ReLU(expand 1x1), ReLU(expand 3x3)] (1x1 branch first)."""
  squeeze: int
  expand1x1: int
  expand3x3: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.relu(layers.conv(self.squeeze, 1, name="squeeze")(x))
    a = layers.relu(layers.conv(self.expand1x1, 1, name="expand1x1")(x))
    b = layers.relu(layers.conv(self.expand3x3, 3, 1, 1, name="expand3x3")(x))
    return jnp.concatenate([a, b], axis=-1)


# (torch index, squeeze, expand) per Fire; "M" marks a ceil-mode max-pool at that index.
_FIRES_1_0 = ((3, 16, 64), (4, 16, 64), (5, 32, 128), (6, "M"), (7, 32, 128), (8, 48, 192),
              (9, 48, 192), (10, 64, 256), (11, "M"), (12, 64, 256))
_FIRES_1_1 = ((3, 16, 64), (4, 16, 64), (5, "M"), (6, 32, 128), (7, 32, 128), (8, "M"),
              (9, 48, 192), (10, 48, 192), (11, 64, 256), (12, 64, 256))


class SqueezeNet(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes] (ReLU'd, so >= 0, as torch's)."""
  version: str = "1_1"
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.version == "1_0":
      x, fires = layers.conv(96, 7, 2, name="features.0")(x), _FIRES_1_0
    elif self.version == "1_1":
      x, fires = layers.conv(64, 3, 2, name="features.0")(x), _FIRES_1_1
    else:
      raise ValueError(f"SqueezeNet version must be '1_0' or '1_1', got {self.version!r}")
    x = layers.max_pool(layers.relu(x), 3, 2, ceil_mode=True)
    for index, *spec in fires:
      if spec == ["M"]:
        x = layers.max_pool(x, 3, 2, ceil_mode=True)
      else:
        squeeze, expand = spec
        x = Fire(squeeze, expand, expand, name=f"features.{index}")(x)
    # classifier.0 is Dropout (training only); the final conv is followed by ReLU, then global mean.
    x = layers.relu(layers.conv(self.num_classes, 1, name="classifier.1")(x))
    return jnp.mean(x, axis=(1, 2))


SqueezeNet1_0 = functools.partial(SqueezeNet, version="1_0")
SqueezeNet1_1 = functools.partial(SqueezeNet, version="1_1")
