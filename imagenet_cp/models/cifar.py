"""The CIFAR-10/100 networks of RobustBench's corruption leaderboards that are plain networks, NHWC.

Three families, as ``robustbench.model_zoo.architectures`` defines them (RobustBench 1.1.1):

  * ``WideResNet`` (``wide_resnet.py``, from TRADES): pre-activation basic blocks, the shortcut
    1x1 conv reading the *activated* input where the width changes; WRN-28-10, 40-2, 34-10.
  * ``CifarResNeXt`` (``resnext.py``, from AugMix): ResNeXt-29 with cardinality 4 and base width 32
    (what ``Hendrycks2020AugMixResNeXtNet`` builds, although the leaderboard says "32x4d").
  * ``ResNet`` / ``PreActResNet`` (``resnet.py``, Kuang Liu's CIFAR ResNet): 3x3 stem at stride 1,
    no max-pool; ``PreActBlockV2`` blocks (shortcut on the activated input) with the final
    ``bn_before_fc`` BatchNorm + ReLU for Kireev et al.'s and Addepalli et al.'s PreAct-18.

Input: float32 [N, 32, 32, 3] pixels in [0, 1] (RobustBench's convention); each model applies its
own input normalisation inside, as RobustBench's wrapper classes do (``norm``): none, fixed
constants, or the ``mu``/``sigma`` buffers read from the checkpoint (PRIME).  Every network ends
with torch's ``avg_pool2d(out, 8 or 4)`` + ``view``, which is a global average only at 32 px, so
other sizes are refused.  Submodules are named after the torch state-dict paths.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import grouped, layers

IMAGE_SIZE = 32


class Normalize(nn.Module):
  """RobustBench's in-model ``(x - mu) / sigma`` on [0, 1] pixels.

  ``mean``/``std`` (per channel) are fixed constants; with ``from_checkpoint`` they are the
  checkpoint's own ``mu``/``sigma`` buffers (torch shape (1, 3, 1, 1)), created in the parent's
  scope so that the torch keys are ``mu`` and ``sigma``.
  """
  mean: tuple[float, float, float] | None = None
  std: tuple[float, float, float] | None = None

  def __call__(self, x: jax.Array) -> jax.Array:
    return (x - jnp.asarray(self.mean, x.dtype)) / jnp.asarray(self.std, x.dtype)


def _checkpoint_normalize(module: nn.Module, x: jax.Array) -> jax.Array:
  """(x - mu) / sigma with ``mu``/``sigma`` as the parent module's own parameters (torch buffers
  of shape (1, 3, 1, 1), initialised to RobustBench's 0.5 defaults)."""
  init = nn.initializers.constant(0.5)
  mu = module.param("mu", init, (1, 3, 1, 1), x.dtype)
  sigma = module.param("sigma", init, (1, 3, 1, 1), x.dtype)
  return (x - mu.reshape(3)) / sigma.reshape(3)


def _normalize(module: nn.Module, x: jax.Array) -> jax.Array:
  """The model's input normalisation (``module.norm``): None, (mean, std), or "checkpoint"."""
  if x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
    raise ValueError(f"{type(module).__name__} takes [N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3] pixels in "
                     f"[0, 1] (its final avg_pool2d assumes 32 px), got {x.shape}")
  if module.norm is None:
    return x
  if module.norm == "checkpoint":
    return _checkpoint_normalize(module, x)
  mean, std = module.norm
  return Normalize(mean, std)(x)


class WideBasicBlock(nn.Module):
  """RobustBench's ``wide_resnet.BasicBlock``: BN-ReLU -> 3x3 (stride) -> BN-ReLU -> 3x3, plus x,
  or plus a 1x1 conv (stride) of the activated input where the width changes."""
  features: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    a = layers.relu(layers.batch_norm(name="bn1")(x))
    if x.shape[-1] == self.features:
      shortcut = x
    else:
      shortcut = layers.Conv1x1(self.features, self.stride, name="convShortcut")(a)
    y = layers.conv(self.features, 3, self.stride, 1, bias=False, name="conv1")(a)
    y = layers.relu(layers.batch_norm(name="bn2")(y))
    return shortcut + layers.conv(self.features, 3, 1, 1, bias=False, name="conv2")(y)


class WideResNet(nn.Module):
  """WRN-depth-widen_factor (``block1``..``block3``, each ``(depth - 4) / 6`` blocks), BN-ReLU,
  global average, ``fc``.  [N, 32, 32, 3] in [0, 1] -> logits [N, num_classes]."""
  depth: int = 28
  widen_factor: int = 10
  num_classes: int = 10
  norm: object = None  # None | (mean, std) | "checkpoint"
  image_size = IMAGE_SIZE

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if (self.depth - 4) % 6:
      raise ValueError(f"WideResNet depth {self.depth}: depth - 4 must be a multiple of 6")
    x = _normalize(self, x)
    x = layers.conv(16, 3, 1, 1, bias=False, name="conv1")(x)
    for stage, stride in enumerate((1, 2, 2)):
      for i in range((self.depth - 4) // 6):
        x = WideBasicBlock(16 * 2 ** stage * self.widen_factor, stride if i == 0 else 1,
                           name=f"block{stage + 1}.layer.{i}")(x)
    x = layers.relu(layers.batch_norm(name="bn1")(x))
    return layers.dense(self.num_classes, name="fc")(x.mean(axis=(1, 2)))


class ResNeXtBottleneck(nn.Module):
  """AugMix's ``ResNeXtBottleneck`` (type C): 1x1 -> grouped 3x3 (stride) -> 1x1 (x4), each BN,
  plus x or ``downsample`` (1x1 conv + BN); ReLU after the sum."""
  planes: int
  cardinality: int
  base_width: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    width = (self.planes * self.base_width // 64) * self.cardinality
    y = layers.relu(layers.batch_norm(name="bn_reduce")(layers.Conv1x1(width, name="conv_reduce")(x)))
    y = grouped.GroupedConv3x3(width, self.cardinality, self.stride, name="conv_conv")(y)
    y = layers.relu(layers.batch_norm(name="bn")(y))
    y = layers.batch_norm(name="bn_expand")(layers.Conv1x1(self.planes * 4, name="conv_expand")(y))
    if self.stride != 1 or x.shape[-1] != self.planes * 4:
      x = layers.batch_norm(name="downsample.1")(
          layers.Conv1x1(self.planes * 4, self.stride, name="downsample.0")(x))
    return layers.relu(x + y)


class CifarResNeXt(nn.Module):
  """ResNeXt-depth for CIFAR: 3x3 stem (64), three stages of ``(depth - 2) / 9`` bottlenecks
  (planes 64, 128, 256), global average, ``classifier``."""
  depth: int = 29
  cardinality: int = 4
  base_width: int = 32
  num_classes: int = 10
  norm: object = None
  image_size = IMAGE_SIZE

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if (self.depth - 2) % 9:
      raise ValueError(f"CifarResNeXt depth {self.depth}: depth - 2 must be a multiple of 9")
    x = _normalize(self, x)
    x = layers.conv(64, 3, 1, 1, bias=False, name="conv_1_3x3")(x)
    x = layers.relu(layers.batch_norm(name="bn_1")(x))
    for stage, stride in enumerate((1, 2, 2)):
      for i in range((self.depth - 2) // 9):
        x = ResNeXtBottleneck(64 * 2 ** stage, self.cardinality, self.base_width,
                              stride if i == 0 else 1, name=f"stage_{stage + 1}.{i}")(x)
    return layers.dense(self.num_classes, name="classifier")(x.mean(axis=(1, 2)))


class BasicBlock(nn.Module):
  """The CIFAR ResNet's ``BasicBlock``: 3x3 (stride)-BN-ReLU -> 3x3-BN, plus x or ``shortcut``
  (1x1 conv + BN); ReLU after the sum."""
  planes: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = layers.relu(layers.batch_norm(name="bn1")(
        layers.conv(self.planes, 3, self.stride, 1, bias=False, name="conv1")(x)))
    y = layers.batch_norm(name="bn2")(layers.conv(self.planes, 3, 1, 1, bias=False, name="conv2")(y))
    if self.stride != 1 or x.shape[-1] != self.planes:
      x = layers.batch_norm(name="shortcut.1")(
          layers.Conv1x1(self.planes, self.stride, name="shortcut.0")(x))
    return layers.relu(y + x)


class PreActBlockV2(nn.Module):
  """``PreActBlockV2``: BN-ReLU -> 3x3 (stride) -> BN-ReLU -> 3x3, plus x or ``shortcut.0`` (a
  1x1 conv, no BN) of the activated input; no ReLU after the sum."""
  planes: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    a = layers.relu(layers.batch_norm(name="bn1")(x))
    if self.stride != 1 or x.shape[-1] != self.planes:
      x = layers.Conv1x1(self.planes, self.stride, name="shortcut.0")(a)
    y = layers.conv(self.planes, 3, self.stride, 1, bias=False, name="conv1")(a)
    y = layers.relu(layers.batch_norm(name="bn2")(y))
    return x + layers.conv(self.planes, 3, 1, 1, bias=False, name="conv2")(y)


class ResNet(nn.Module):
  """The CIFAR ResNet / PreActResNet: 3x3 stem (64; BN-ReLU unless pre-activation), four stages
  (64 .. 512), optional ``bn`` + ReLU (``bn_before_fc``), global average, ``linear``."""
  block: type[nn.Module] = BasicBlock
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  num_classes: int = 10
  norm: object = None
  bn_before_fc: bool = False
  image_size = IMAGE_SIZE

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = _normalize(self, x)
    x = layers.conv(64, 3, 1, 1, bias=False, name="conv1")(x)
    if self.block is BasicBlock:
      x = layers.relu(layers.batch_norm(name="bn1")(x))
    for stage, blocks in enumerate(self.stage_sizes):
      for i in range(blocks):
        x = self.block(64 * 2 ** stage, 2 if stage > 0 and i == 0 else 1,
                       name=f"layer{stage + 1}.{i}")(x)
    if self.bn_before_fc:
      x = layers.relu(layers.batch_norm(name="bn")(x))
    return layers.dense(self.num_classes, name="linear")(x.mean(axis=(1, 2)))


ResNet18 = functools.partial(ResNet, block=BasicBlock, stage_sizes=(2, 2, 2, 2))
PreActResNet18 = functools.partial(ResNet, block=PreActBlockV2, stage_sizes=(2, 2, 2, 2),
                                   bn_before_fc=True)
