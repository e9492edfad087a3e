"""MobileNet V2 and MobileNet V3 Large/Small as torchvision's ``mobilenet_v2`` /
``mobilenet_v3_large`` / ``mobilenet_v3_small``, NHWC.

Inverted residuals: [1x1 expand] -> depthwise kxk -> [squeeze-excite] -> 1x1 project, each conv
with BatchNorm (eps 1e-5 in V2, 1e-3 in V3) and ReLU6 (V2) or ReLU / hardswish (V3); V3's SE
gates with hardsigmoid.  Depthwise convs use models/depthwise.py, 1x1 convs ``layers.Conv1x1``.
Submodules are named after the torch state-dict paths (``features.3.conv.1.0``,
``features.4.block.2.fc1`` ...).
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax

from imagenet_cp.models import depthwise, layers


def hardswish(x: jax.Array) -> jax.Array:
  """torch ``nn.Hardswish``: x * relu6(x + 3) / 6."""
  return x * layers.relu6(x + 3.0) / 6.0


def hardsigmoid(x: jax.Array) -> jax.Array:
  """torch ``nn.Hardsigmoid``: relu6(x + 3) / 6."""
  return layers.relu6(x + 3.0) / 6.0


class ConvBNAct(nn.Module):
  """torchvision's ``Conv2dNormActivation``: conv ``0`` (no bias, padding (k - 1) // 2; depthwise
  when ``depthwise``) + BatchNorm ``1`` + ``activation`` (None: none)."""
  features: int
  kernel: int = 1
  stride: int = 1
  depthwise: bool = False
  activation: Callable[[jax.Array], jax.Array] | None = layers.relu
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    p = (self.kernel - 1) // 2
    if self.depthwise:
      y = depthwise.DepthwiseConv(self.kernel, self.stride, ((p, p), (p, p)), name="0")(x)
    elif self.kernel == 1:
      y = layers.Conv1x1(self.features, self.stride, name="0")(x)
    else:
      y = layers.conv(self.features, self.kernel, self.stride, p, bias=False, name="0")(x)
    y = layers.batch_norm(self.eps, name="1")(y)
    return y if self.activation is None else self.activation(y)


class InvertedResidualV2(nn.Module):
  """MobileNet V2 block; submodules ``conv.<i>`` as torchvision's ``InvertedResidual.conv``."""
  out: int
  stride: int
  expand_ratio: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    hidden = int(round(cin * self.expand_ratio))
    i, y = 0, x
    if self.expand_ratio != 1:
      y = ConvBNAct(hidden, activation=layers.relu6, name="conv.0")(y)
      i = 1
    y = ConvBNAct(hidden, 3, self.stride, depthwise=True, activation=layers.relu6,
                  name=f"conv.{i}")(y)
    y = layers.batch_norm(name=f"conv.{i + 2}")(layers.Conv1x1(self.out, name=f"conv.{i + 1}")(y))
    return x + y if self.stride == 1 and cin == self.out else y


# torchvision's inverted_residual_setting: (expand t, out c, repeats n, stride s).
V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
              (6, 160, 3, 2), (6, 320, 1, 1))


class MobileNetV2(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes] (width multiplier 1.0)."""
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvBNAct(32, 3, 2, activation=layers.relu6, name="features.0")(x)
    index = 1
    for t, c, n, s in V2_SETTING:
      for i in range(n):
        x = InvertedResidualV2(c, s if i == 0 else 1, t, name=f"features.{index}")(x)
        index += 1
    x = ConvBNAct(1280, activation=layers.relu6, name=f"features.{index}")(x)
    # classifier.0 is Dropout(0.2), training only.
    return layers.dense(self.num_classes, name="classifier.1")(x.mean(axis=(1, 2)))


V3_EPS = 1e-3


class InvertedResidualV3(nn.Module):
  """MobileNet V3 bneck; submodules ``block.<i>`` as torchvision's ``InvertedResidual.block``."""
  kernel: int
  expanded: int
  out: int
  use_se: bool
  use_hs: bool
  stride: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    act = hardswish if self.use_hs else layers.relu
    cin = x.shape[-1]
    i, y = 0, x
    if self.expanded != cin:
      y = ConvBNAct(self.expanded, activation=act, eps=V3_EPS, name="block.0")(y)
      i = 1
    y = ConvBNAct(self.expanded, self.kernel, self.stride, depthwise=True, activation=act,
                  eps=V3_EPS, name=f"block.{i}")(y)
    i += 1
    if self.use_se:
      squeeze = layers.make_divisible(self.expanded // 4, 8)
      y = layers.SqueezeExcitation(squeeze, activation=layers.relu, scale_activation=hardsigmoid,
                                   name=f"block.{i}")(y)
      i += 1
    y = ConvBNAct(self.out, activation=None, eps=V3_EPS, name=f"block.{i}")(y)
    return x + y if self.stride == 1 and cin == self.out else y


# torchvision's _mobilenet_v3_conf (width 1.0, no reduced tail, no dilation):
# (in, kernel, expanded, out, use_se, use_hs, stride).
V3_LARGE = ((16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2),
            (24, 3, 72, 24, False, False, 1), (24, 5, 72, 40, True, False, 2),
            (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
            (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1),
            (80, 3, 184, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
            (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
            (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1),
            (160, 5, 960, 160, True, True, 1))
V3_SMALL = ((16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2),
            (24, 3, 88, 24, False, False, 1), (24, 5, 96, 40, True, True, 2),
            (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
            (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1),
            (48, 5, 288, 96, True, True, 2), (96, 5, 576, 96, True, True, 1),
            (96, 5, 576, 96, True, True, 1))


class MobileNetV3(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  setting: Sequence[Sequence]
  last_channel: int
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = ConvBNAct(self.setting[0][0], 3, 2, activation=hardswish, eps=V3_EPS, name="features.0")(x)
    for i, (_, kernel, expanded, out, use_se, use_hs, stride) in enumerate(self.setting):
      x = InvertedResidualV3(kernel, expanded, out, use_se, use_hs, stride,
                             name=f"features.{i + 1}")(x)
    x = ConvBNAct(6 * self.setting[-1][3], activation=hardswish, eps=V3_EPS,
                  name=f"features.{len(self.setting) + 1}")(x)
    x = hardswish(layers.dense(self.last_channel, name="classifier.0")(x.mean(axis=(1, 2))))
    # classifier.2 is Dropout(0.2), training only.
    return layers.dense(self.num_classes, name="classifier.3")(x)


MobileNetV3Large = functools.partial(MobileNetV3, setting=V3_LARGE, last_channel=1280)
MobileNetV3Small = functools.partial(MobileNetV3, setting=V3_SMALL, last_channel=1024)
