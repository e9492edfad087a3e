"""RegNetX and RegNetY (400MF ... 32GF, Y-128GF) as torchvision's ``regnet_*``, NHWC.

Stem 3x3/2 conv (32) + BN + ReLU, four stages of residual bottleneck blocks, global mean, Linear.
Block (``ResBottleneckBlock``, bottleneck multiplier 1): 1x1 + BN + ReLU -> 3x3 grouped conv
(stride; groups = width / group width) + BN + ReLU -> [RegNetY: squeeze-excitation, squeeze =
round(0.25 * block input width), ReLU] -> 1x1 + BN; + identity or 1x1/stride + BN projection; ReLU.

The stage widths and depths come from the design-space parameters (depth, w_0, w_a, w_m, group
width) exactly as torchvision's ``BlockParams.from_init_params`` computes them, in float32 as
torch does (``block_params``).  Submodules are named after the torch state-dict paths
(``trunk_output.block2.block2-0.f.b.0``, ``.f.se.fc1``, ``.proj.0`` ...).  Grouped convs use the
block-diagonal dense formulation of models/grouped.py, 1x1 convs dots (``layers.Conv1x1``).

Two XLA:CPU workarounds (``imagenet_cp.workarounds``, on by default on CPU only):
``regnet_batch_chunks`` runs the network on ``BATCH_CHUNK``-image chunks
(``layers.apply_in_batch_chunks``) and ``regnet_stage_loop`` a stage's stride-1 blocks as one
loop (``layers.repeated_blocks``).  Off, the network is the plain graph.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple, Sequence

import flax.linen as nn
import jax
import numpy as np

from imagenet_cp import workarounds
from imagenet_cp.models import grouped, layers

STEM = 32
BN_EPS = 1e-5
BATCH_CHUNK = 8  # images per lax.map step (regnet_batch_chunks; 4 was up to 9% slower on CPU, 16 +-1%)


class Design(NamedTuple):
  """A RegNet's design-space parameters (torchvision's ``from_init_params`` arguments)."""
  depth: int
  w_0: int
  w_a: float
  w_m: float
  group_width: int
  se_ratio: float | None = None


class StageParams(NamedTuple):
  width: int
  depth: int
  group_width: int


# torchvision regnet.py ``regnet_*`` builders.
DESIGNS = {
    "regnet_y_400mf": Design(16, 48, 27.89, 2.09, 8, 0.25),
    "regnet_y_800mf": Design(14, 56, 38.84, 2.4, 16, 0.25),
    "regnet_y_1_6gf": Design(27, 48, 20.71, 2.65, 24, 0.25),
    "regnet_y_3_2gf": Design(21, 80, 42.63, 2.66, 24, 0.25),
    "regnet_y_8gf": Design(17, 192, 76.82, 2.19, 56, 0.25),
    "regnet_y_16gf": Design(18, 200, 106.23, 2.48, 112, 0.25),
    "regnet_y_32gf": Design(20, 232, 115.89, 2.53, 232, 0.25),
    "regnet_y_128gf": Design(27, 456, 160.83, 2.52, 264, 0.25),
    "regnet_x_400mf": Design(22, 24, 24.48, 2.54, 16),
    "regnet_x_800mf": Design(16, 56, 35.73, 2.28, 16),
    "regnet_x_1_6gf": Design(18, 80, 34.01, 2.25, 24),
    "regnet_x_3_2gf": Design(25, 88, 26.31, 2.25, 48),
    "regnet_x_8gf": Design(23, 80, 49.56, 2.88, 120),
    "regnet_x_16gf": Design(22, 216, 55.59, 2.1, 128),
    "regnet_x_32gf": Design(23, 320, 69.86, 2.0, 168),
}


def block_params(design: Design) -> tuple[StageParams, ...]:
  """Per-stage (width, depth, group width), as torchvision's ``BlockParams.from_init_params``.

  Block j's width is w_0 * w_m^round(log((w_0 + j * w_a) / w_0) / log(w_m)), quantized to a
  multiple of 8; runs of equal widths form the stages.  Then each stage's group width is capped
  at its width, and the width rounded to a multiple of the group width (``_make_divisible``).
  """
  d = design
  if d.w_a < 0 or d.w_0 <= 0 or d.w_m <= 1 or d.w_0 % 8:
    raise ValueError(f"invalid RegNet design {d}")
  f32 = np.float32
  widths_cont = np.arange(d.depth, dtype=f32) * f32(d.w_a) + f32(d.w_0)
  capacity = np.round(np.log(widths_cont / f32(d.w_0)) / f32(math.log(d.w_m)))
  widths = (np.round(f32(d.w_0) * np.power(f32(d.w_m), capacity) / f32(8)) * 8).astype(int)
  stages = []
  for width, run in itertools.groupby(widths.tolist()):
    group_width = min(d.group_width, width)
    stages.append(StageParams(layers.make_divisible(width, group_width), len(list(run)),
                              group_width))
  return tuple(stages)


class ResBottleneckBlock(nn.Module):
  """torchvision ``ResBottleneckBlock`` (bottleneck multiplier 1); ``f.a|b|se|c``, ``proj``."""
  width: int
  stride: int
  group_width: int
  se_ratio: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    y = layers.relu(layers.batch_norm(BN_EPS, name="f.a.1")(
        layers.Conv1x1(self.width, name="f.a.0")(x)))
    groups = self.width // self.group_width
    if groups == 1:
      y = layers.conv(self.width, 3, self.stride, 1, bias=False, name="f.b.0")(y)
    else:
      y = grouped.GroupedConv3x3(self.width, groups, self.stride, name="f.b.0")(y)
    y = layers.relu(layers.batch_norm(BN_EPS, name="f.b.1")(y))
    if self.se_ratio:
      y = layers.SqueezeExcitation(int(round(self.se_ratio * cin)), layers.relu, name="f.se")(y)
    y = layers.batch_norm(BN_EPS, name="f.c.1")(layers.Conv1x1(self.width, name="f.c.0")(y))
    if cin != self.width or self.stride != 1:
      x = layers.batch_norm(BN_EPS, name="proj.1")(
          layers.Conv1x1(self.width, self.stride, name="proj.0")(x))
    return layers.relu(x + y)


class RegNet(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]; every stage starts with stride 2."""
  stages: Sequence[StageParams]
  se_ratio: float | None = None
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    chunked = layers.apply_in_batch_chunks(self, x, BATCH_CHUNK, "regnet_batch_chunks")
    if chunked is not None:
      return chunked
    x = layers.conv(STEM, 3, 2, 1, bias=False, name="stem.0")(x)
    x = layers.relu(layers.batch_norm(BN_EPS, name="stem.1")(x))
    loop = workarounds.resolve(x)["regnet_stage_loop"]
    for s, stage in enumerate(self.stages, start=1):
      names = [f"trunk_output.block{s}.block{s}-{i}" for i in range(stage.depth)]
      block = functools.partial(ResBottleneckBlock, stage.width, 1, stage.group_width,
                                self.se_ratio)
      x = ResBottleneckBlock(stage.width, 2, stage.group_width, self.se_ratio, name=names[0])(x)
      x = layers.repeated_blocks(self, block, names[1:], x, loop)
    return layers.dense(self.num_classes, name="fc")(x.mean(axis=(1, 2)))


def _regnet(name: str) -> functools.partial:
  design = DESIGNS[name]
  return functools.partial(RegNet, stages=block_params(design), se_ratio=design.se_ratio)


RegNetY400MF = _regnet("regnet_y_400mf")
RegNetY800MF = _regnet("regnet_y_800mf")
RegNetY1_6GF = _regnet("regnet_y_1_6gf")
RegNetY3_2GF = _regnet("regnet_y_3_2gf")
RegNetY8GF = _regnet("regnet_y_8gf")
RegNetY16GF = _regnet("regnet_y_16gf")
RegNetY32GF = _regnet("regnet_y_32gf")
RegNetY128GF = _regnet("regnet_y_128gf")
RegNetX400MF = _regnet("regnet_x_400mf")
RegNetX800MF = _regnet("regnet_x_800mf")
RegNetX1_6GF = _regnet("regnet_x_1_6gf")
RegNetX3_2GF = _regnet("regnet_x_3_2gf")
RegNetX8GF = _regnet("regnet_x_8gf")
RegNetX16GF = _regnet("regnet_x_16gf")
RegNetX32GF = _regnet("regnet_x_32gf")
