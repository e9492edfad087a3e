"""ShuffleNet V2 x0.5 / x1.0 / x1.5 / x2.0 as torchvision's ``shufflenet_v2_x*``, NHWC.

Each unit splits (stride 1) or duplicates (stride 2) its input into two branches, concatenates
them and shuffles the channels of the two halves (``channel_shuffle``).  Depthwise 3x3 convs
use models/depthwise.py's shifted multiply-adds, 1x1 convs ``layers.Conv1x1``.  Submodules are
named after the torch state-dict paths (``stage2.0.branch1.0``, ``conv5.1`` ...).
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import depthwise, layers


def channel_shuffle(x: jax.Array, groups: int = 2) -> jax.Array:
  """torchvision's ``channel_shuffle`` on NHWC: channel g * (C / groups) + i goes to i * groups + g."""
  n, h, w, c = x.shape
  return x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4).reshape(n, h, w, c)


class InvertedResidual(nn.Module):
  """A ShuffleNet V2 unit (``branch1`` only when stride > 1)."""
  out: int
  stride: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    half = self.out // 2
    if self.stride == 1:
      x1, x2 = jnp.split(x, 2, axis=-1)
    else:
      x1 = depthwise.DepthwiseConv(3, self.stride, ((1, 1), (1, 1)), name="branch1.0")(x)
      x1 = layers.batch_norm(name="branch1.1")(x1)
      x1 = layers.relu(layers.batch_norm(name="branch1.3")(
          layers.Conv1x1(half, name="branch1.2")(x1)))
      x2 = x
    y = layers.relu(layers.batch_norm(name="branch2.1")(layers.Conv1x1(half, name="branch2.0")(x2)))
    y = depthwise.DepthwiseConv(3, self.stride, ((1, 1), (1, 1)), name="branch2.3")(y)
    y = layers.batch_norm(name="branch2.4")(y)
    y = layers.relu(layers.batch_norm(name="branch2.6")(layers.Conv1x1(half, name="branch2.5")(y)))
    return channel_shuffle(jnp.concatenate([x1, y], axis=-1), 2)


class ShuffleNetV2(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  stages_out_channels: Sequence[int]
  stages_repeats: Sequence[int] = (4, 8, 4)
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    channels = self.stages_out_channels
    x = layers.conv(channels[0], 3, 2, 1, bias=False, name="conv1.0")(x)
    x = layers.relu(layers.batch_norm(name="conv1.1")(x))
    x = layers.max_pool(x, 3, 2, 1)
    for stage, (repeats, out) in enumerate(zip(self.stages_repeats, channels[1:-1])):
      for i in range(repeats):
        x = InvertedResidual(out, 2 if i == 0 else 1, name=f"stage{stage + 2}.{i}")(x)
    x = layers.Conv1x1(channels[-1], name="conv5.0")(x)
    x = layers.relu(layers.batch_norm(name="conv5.1")(x))
    return layers.dense(self.num_classes, name="fc")(x.mean(axis=(1, 2)))


ShuffleNetV2_x0_5 = functools.partial(ShuffleNetV2, stages_out_channels=(24, 48, 96, 192, 1024))
ShuffleNetV2_x1_0 = functools.partial(ShuffleNetV2, stages_out_channels=(24, 116, 232, 464, 1024))
ShuffleNetV2_x1_5 = functools.partial(ShuffleNetV2, stages_out_channels=(24, 176, 352, 704, 1024))
ShuffleNetV2_x2_0 = functools.partial(ShuffleNetV2, stages_out_channels=(24, 244, 488, 976, 2048))
