"""ResNet-18/34/50/101/152, ResNeXt-50/101 and Wide ResNet-50-2/101-2 as torchvision's
``resnet*`` / ``resnext*`` / ``wide_resnet*``, NHWC.

Bottleneck blocks are torchvision's "v1.5" (stride on the 3x3).  ``activation`` replaces every
ReLU (stem and blocks) at once, as timm's ``act_layer`` does: ARES-Bench's adversarially trained
ResNet-152 and Wide ResNet-50-2 use GELU (``layers.gelu``).  ResNeXt here means
torchvision's ResNeXt (V1 weights), not the Torch7 models of facebookresearch/ResNeXt that the
paper evaluated.  Submodules are named after the torch state-dict paths (``layer1.0``, ``conv1``,
``downsample.0`` ...).
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax

from imagenet_cp import workarounds
from imagenet_cp.models import grouped, layers


BATCH_CHUNK = 4  # images per lax.map step (resnet_batch_chunks; the best of 2, 4 and 8 on CPU)


class BasicBlock(nn.Module):
  """Two 3x3 convs (stride on the first) + identity or 1x1 projection shortcut."""
  planes: int
  stride: int = 1
  groups: int = 1
  width_per_group: int = 64
  activation: Callable[[jax.Array], jax.Array] = layers.relu
  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.activation(layers.batch_norm(name="bn1")(
        layers.conv(self.planes, 3, self.stride, 1, bias=False, name="conv1")(x)))
    y = layers.batch_norm(name="bn2")(layers.conv(self.planes, 3, 1, 1, bias=False, name="conv2")(y))
    return self.activation(y + _shortcut(x, self.planes, self.stride))


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (stride, groups) -> 1x1 (x4), each with BN; + shortcut."""
  planes: int
  stride: int = 1
  groups: int = 1
  width_per_group: int = 64
  activation: Callable[[jax.Array], jax.Array] = layers.relu
  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    width = int(self.planes * self.width_per_group / 64) * self.groups
    y = self.activation(layers.batch_norm(name="bn1")(layers.Conv1x1(width, name="conv1")(x)))
    if self.groups == 1:
      y = layers.conv(width, 3, self.stride, 1, bias=False, name="conv2")(y)
    else:
      y = grouped.GroupedConv3x3(width, self.groups, self.stride, name="conv2")(y)
    y = self.activation(layers.batch_norm(name="bn2")(y))
    y = layers.batch_norm(name="bn3")(layers.Conv1x1(self.planes * 4, name="conv3")(y))
    return self.activation(y + _shortcut(x, self.planes * 4, self.stride))


def _shortcut(x: jax.Array, features: int, stride: int) -> jax.Array:
  """Identity, or torchvision's ``downsample`` = 1x1 conv (stride) + BN when the shape changes.

  Called inside the block's compact scope, so the modules become ``<block>/downsample.0|1``.
  """
  if stride == 1 and x.shape[-1] == features:
    return x
  y = layers.Conv1x1(features, stride, name="downsample.0")(x)
  return layers.batch_norm(name="downsample.1")(y)


class ResNet(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes].

  Two XLA:CPU workarounds (``imagenet_cp.workarounds``, on by default on CPU only, read at trace
  time for the platform of ``x``): ``resnet_batch_chunks`` (``layers.apply_in_batch_chunks``) and
  ``resnet_stage_loop`` (``_repeated_blocks``).  Off, the network is the plain unrolled graph.
  """
  block: type[nn.Module]
  stage_sizes: Sequence[int]
  groups: int = 1
  width_per_group: int = 64
  num_classes: int = 1000
  activation: Callable[[jax.Array], jax.Array] = layers.relu  # every ReLU's replacement

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    chunked = layers.apply_in_batch_chunks(self, x, BATCH_CHUNK, "resnet_batch_chunks")
    if chunked is not None:
      return chunked
    loop = workarounds.resolve(x)["resnet_stage_loop"]
    x = layers.conv(64, 7, 2, 3, bias=False, name="conv1")(x)
    x = self.activation(layers.batch_norm(name="bn1")(x))
    x = layers.max_pool(x, 3, 2, 1)
    for stage, blocks in enumerate(self.stage_sizes):
      planes = 64 * 2 ** stage
      x = self.block(planes, 2 if stage > 0 else 1, self.groups, self.width_per_group,
                     self.activation, name=f"layer{stage + 1}.0")(x)
      x = self._repeated_blocks(planes, [f"layer{stage + 1}.{i}" for i in range(1, blocks)], x,
                                loop)
    x = x.mean(axis=(1, 2))
    return layers.dense(self.num_classes, name="fc")(x)

  def _repeated_blocks(self, planes: int, names: Sequence[str], x: jax.Array,
                       loop: bool) -> jax.Array:
    """A stage's identical stride-1 blocks ``names`` in order (``layers.repeated_blocks``; as one
    loop with ``loop``, the ``resnet_stage_loop`` workaround)."""
    block = functools.partial(self.block, planes, 1, self.groups, self.width_per_group,
                              self.activation)
    return layers.repeated_blocks(self, block, names, x, loop)


def batch_chunk(n: int) -> int:
  """Images per ``lax.map`` step of a ResNet on a batch of ``n`` (``layers.batch_chunk``)."""
  return layers.batch_chunk(n, BATCH_CHUNK)


ResNet18 = functools.partial(ResNet, block=BasicBlock, stage_sizes=(2, 2, 2, 2))
ResNet34 = functools.partial(ResNet, block=BasicBlock, stage_sizes=(3, 4, 6, 3))
ResNet50 = functools.partial(ResNet, block=Bottleneck, stage_sizes=(3, 4, 6, 3))
ResNet101 = functools.partial(ResNet, block=Bottleneck, stage_sizes=(3, 4, 23, 3))
ResNet152 = functools.partial(ResNet, block=Bottleneck, stage_sizes=(3, 8, 36, 3))
ResNeXt50_32x4d = functools.partial(ResNet50, groups=32, width_per_group=4)
ResNeXt101_32x8d = functools.partial(ResNet101, groups=32, width_per_group=8)
ResNeXt101_64x4d = functools.partial(ResNet101, groups=64, width_per_group=4)
# Wide ResNet-50-2 / 101-2: twice the bottleneck width (torchvision's width_per_group=128).
WideResNet50_2 = functools.partial(ResNet50, width_per_group=128)
WideResNet101_2 = functools.partial(ResNet101, width_per_group=128)
