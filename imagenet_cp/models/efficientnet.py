"""EfficientNet B0-B7 and EfficientNetV2 S/M/L as torchvision's ``efficientnet_*``, NHWC.

One architecture for all B weights (B0-B4 are rwightman's ports, B5-B7 lukemelas's; they differ
only in BatchNorm eps, 1e-5 vs 1e-3, which torchvision's builders set).  Blocks:

  MBConv       [1x1 expand + BN + SiLU] -> depthwise kxk + BN + SiLU -> squeeze-excitation
               (squeeze = block input / 4, SiLU) -> 1x1 project + BN [+ input]
  FusedMBConv  kxk expand + BN + SiLU -> 1x1 project + BN [+ input]   (V2's first stages;
               with expand ratio 1 a single kxk conv + BN + SiLU)

torch's symmetric ``(k - 1) // 2`` padding (not EfficientNet-Lite's TF "SAME").  Stochastic depth
on the residual branch and the classifier's dropout act only in training.  Widths are torchvision's
``_make_divisible(c * width_mult, 8)``, repeats ``ceil(n * depth_mult)`` (the stem scales too,
unlike Lite's ``fix_head_stem``).  Submodules are named after the torch state-dict paths
(``features.2.1.block.0.0``, ``features.2.1.block.2.fc1`` ...).  Depthwise convs are computed as
shifted multiply-adds (models/depthwise.py), 1x1 convs as dots (``layers.Conv1x1``), for speed.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax

from imagenet_cp.models import depthwise, efficientnet_lite, layers


class Stage(NamedTuple):
  """One stage of torchvision's ``inverted_residual_setting`` (its input width is the previous
  stage's output)."""
  fused: bool
  expand_ratio: int
  kernel: int
  stride: int
  out: int
  repeats: int


# torchvision efficientnet.py ``_efficientnet_conf``: (width_mult, depth_mult) of efficientnet_bN.
B_SCALING = {"efficientnet_b0": (1.0, 1.0), "efficientnet_b1": (1.0, 1.1),
             "efficientnet_b2": (1.1, 1.2), "efficientnet_b3": (1.2, 1.4),
             "efficientnet_b4": (1.4, 1.8), "efficientnet_b5": (1.6, 2.2),
             "efficientnet_b6": (1.8, 2.6), "efficientnet_b7": (2.0, 3.1)}
B_STEM = 32
# V2 (stem, stages): torchvision's FusedMBConvConfig / MBConvConfig lists.
V2_S = (24, (Stage(True, 1, 3, 1, 24, 2), Stage(True, 4, 3, 2, 48, 4), Stage(True, 4, 3, 2, 64, 4),
             Stage(False, 4, 3, 2, 128, 6), Stage(False, 6, 3, 1, 160, 9),
             Stage(False, 6, 3, 2, 256, 15)))
V2_M = (24, (Stage(True, 1, 3, 1, 24, 3), Stage(True, 4, 3, 2, 48, 5), Stage(True, 4, 3, 2, 80, 5),
             Stage(False, 4, 3, 2, 160, 7), Stage(False, 6, 3, 1, 176, 14),
             Stage(False, 6, 3, 2, 304, 18), Stage(False, 6, 3, 1, 512, 5)))
V2_L = (32, (Stage(True, 1, 3, 1, 32, 4), Stage(True, 4, 3, 2, 64, 7), Stage(True, 4, 3, 2, 96, 7),
             Stage(False, 4, 3, 2, 192, 10), Stage(False, 6, 3, 1, 224, 19),
             Stage(False, 6, 3, 2, 384, 25), Stage(False, 6, 3, 1, 640, 7)))
V2_HEAD = 1280


def b_stages(width: float, depth: float) -> tuple[int, tuple[Stage, ...]]:
  """(stem, stages) of EfficientNet-B scaled by ``width``/``depth`` as torchvision's
  ``MBConvConfig`` does, from the B0 table (the same as EfficientNet-Lite0's)."""
  stem = layers.make_divisible(B_STEM * width)
  stages = tuple(
      Stage(False, expand, kernel, stride, layers.make_divisible(out * width),
            int(math.ceil(repeats * depth)))
      for repeats, kernel, stride, expand, _, out in efficientnet_lite.LITE0_STAGES)
  return stem, stages


def _bn(x: jax.Array, eps: float, name: str, activate: bool = True) -> jax.Array:
  """BatchNorm ``name`` [+ SiLU]: the tail of torchvision's ``Conv2dNormActivation``."""
  y = layers.batch_norm(eps, name=name)(x)
  return layers.silu(y) if activate else y


class _Block(nn.Module):
  """The settings of both block kinds: output channels, kernel, stride, expansion, BN epsilon."""
  out: int
  kernel: int
  stride: int
  expand_ratio: int
  eps: float


class MBConv(_Block):
  """torchvision ``MBConv`` (see the module docstring); submodules ``block.<i>``."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    hidden = layers.make_divisible(cin * self.expand_ratio)
    y, i = x, 0
    if hidden != cin:
      y = _bn(layers.Conv1x1(hidden, name="block.0.0")(y), self.eps, "block.0.1")
      i += 1
    pad = (self.kernel - 1) // 2
    y = depthwise.DepthwiseConv(self.kernel, self.stride, layers.pads(pad), name=f"block.{i}.0")(y)
    y = _bn(y, self.eps, f"block.{i}.1")
    y = layers.SqueezeExcitation(max(1, cin // 4), layers.silu, name=f"block.{i + 1}")(y)
    y = _bn(layers.Conv1x1(self.out, name=f"block.{i + 2}.0")(y), self.eps, f"block.{i + 2}.1",
            activate=False)
    return y + x if self.stride == 1 and cin == self.out else y


class FusedMBConv(_Block):
  """torchvision ``FusedMBConv`` (see the module docstring); submodules ``block.<i>``."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    hidden = layers.make_divisible(cin * self.expand_ratio)
    pad = (self.kernel - 1) // 2
    if hidden != cin:
      y = layers.conv(hidden, self.kernel, self.stride, pad, bias=False, name="block.0.0")(x)
      y = _bn(y, self.eps, "block.0.1")
      y = _bn(layers.Conv1x1(self.out, name="block.1.0")(y), self.eps, "block.1.1", activate=False)
    else:
      y = layers.conv(self.out, self.kernel, self.stride, pad, bias=False, name="block.0.0")(x)
      y = _bn(y, self.eps, "block.0.1")
    return y + x if self.stride == 1 and cin == self.out else y


class EfficientNet(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes].

  ``features.0`` stem (3x3 stride 2), ``features.1..S`` the stages, ``features.S+1`` the 1x1 head
  conv (``head`` channels, default 4x the last stage's), ``classifier.1`` the Linear.
  """
  stem: int
  stages: Sequence[Stage]
  eps: float = 1e-5
  head: int | None = None
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.conv(self.stem, 3, 2, 1, bias=False, name="features.0.0")(x)
    x = _bn(x, self.eps, "features.0.1")
    for s, stage in enumerate(self.stages, start=1):
      block = FusedMBConv if stage.fused else MBConv
      for r in range(stage.repeats):
        x = block(stage.out, stage.kernel, stage.stride if r == 0 else 1, stage.expand_ratio,
                  self.eps, name=f"features.{s}.{r}")(x)
    last = len(self.stages) + 1
    head = self.head or 4 * self.stages[-1].out
    x = _bn(layers.Conv1x1(head, name=f"features.{last}.0")(x), self.eps, f"features.{last}.1")
    return layers.dense(self.num_classes, name="classifier.1")(x.mean(axis=(1, 2)))


def _b(name: str, eps: float) -> functools.partial:
  stem, stages = b_stages(*B_SCALING[name])
  return functools.partial(EfficientNet, stem=stem, stages=stages, eps=eps)


EfficientNetB0 = _b("efficientnet_b0", 1e-5)
EfficientNetB1 = _b("efficientnet_b1", 1e-5)
EfficientNetB2 = _b("efficientnet_b2", 1e-5)
EfficientNetB3 = _b("efficientnet_b3", 1e-5)
EfficientNetB4 = _b("efficientnet_b4", 1e-5)
EfficientNetB5 = _b("efficientnet_b5", 1e-3)
EfficientNetB6 = _b("efficientnet_b6", 1e-3)
EfficientNetB7 = _b("efficientnet_b7", 1e-3)
EfficientNetV2S = functools.partial(EfficientNet, stem=V2_S[0], stages=V2_S[1], eps=1e-3,
                                    head=V2_HEAD)
EfficientNetV2M = functools.partial(EfficientNet, stem=V2_M[0], stages=V2_M[1], eps=1e-3,
                                    head=V2_HEAD)
EfficientNetV2L = functools.partial(EfficientNet, stem=V2_L[0], stages=V2_L[1], eps=1e-3,
                                    head=V2_HEAD)
