"""ResNet-18/34/50/101/152 and ResNeXt-50/101 as torchvision's ``resnet*`` / ``resnext*``, NHWC.

Bottleneck blocks are torchvision's "v1.5" (stride on the 3x3).  ResNeXt here means
torchvision's ResNeXt (V1 weights), not the Torch7 models of facebookresearch/ResNeXt that the
paper evaluated.  Submodules are named after the torch state-dict paths (``layer1.0``, ``conv1``,
``downsample.0`` ...).
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import grouped, layers


BATCH_CHUNK = 4  # images per lax.map step on CPU (ResNet._map_chunks)
LOOP_MIN_BLOCKS = 2  # a stage's stride-1 blocks after the first run as a loop from this many on


class BasicBlock(nn.Module):
  """Two 3x3 convs (stride on the first) + identity or 1x1 projection shortcut."""
  planes: int
  stride: int = 1
  groups: int = 1
  width_per_group: int = 64
  expansion = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = layers.relu(layers.batch_norm(name="bn1")(
        layers.conv(self.planes, 3, self.stride, 1, bias=False, name="conv1")(x)))
    y = layers.batch_norm(name="bn2")(layers.conv(self.planes, 3, 1, 1, bias=False, name="conv2")(y))
    return layers.relu(y + _shortcut(x, self.planes, self.stride))


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (stride, groups) -> 1x1 (x4), each with BN; + shortcut."""
  planes: int
  stride: int = 1
  groups: int = 1
  width_per_group: int = 64
  expansion = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    width = int(self.planes * self.width_per_group / 64) * self.groups
    y = layers.relu(layers.batch_norm(name="bn1")(layers.Conv1x1(width, name="conv1")(x)))
    if self.groups == 1:
      y = layers.conv(width, 3, self.stride, 1, bias=False, name="conv2")(y)
    else:
      y = grouped.GroupedConv3x3(width, self.groups, self.stride, name="conv2")(y)
    y = layers.relu(layers.batch_norm(name="bn2")(y))
    y = layers.batch_norm(name="bn3")(layers.Conv1x1(self.planes * 4, name="conv3")(y))
    return layers.relu(y + _shortcut(x, self.planes * 4, self.stride))


def _shortcut(x: jax.Array, features: int, stride: int) -> jax.Array:
  """Identity, or torchvision's ``downsample`` = 1x1 conv (stride) + BN when the shape changes.

  Called inside the block's compact scope, so the modules become ``<block>/downsample.0|1``.
  """
  if stride == 1 and x.shape[-1] == features:
    return x
  y = layers.Conv1x1(features, stride, name="downsample.0")(x)
  return layers.batch_norm(name="downsample.1")(y)


class ResNet(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  block: type[nn.Module]
  stage_sizes: Sequence[int]
  groups: int = 1
  width_per_group: int = 64
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    chunk = batch_chunk(x.shape[0])
    if chunk and not self.is_initializing() and _cpu_backend():
      return self._map_chunks(x, chunk)
    x = layers.conv(64, 7, 2, 3, bias=False, name="conv1")(x)
    x = layers.relu(layers.batch_norm(name="bn1")(x))
    x = layers.max_pool(x, 3, 2, 1)
    for stage, blocks in enumerate(self.stage_sizes):
      planes = 64 * 2 ** stage
      x = self.block(planes, 2 if stage > 0 else 1, self.groups, self.width_per_group,
                     name=f"layer{stage + 1}.0")(x)
      x = self._repeated_blocks(planes, [f"layer{stage + 1}.{i}" for i in range(1, blocks)], x)
    x = x.mean(axis=(1, 2))
    return layers.dense(self.num_classes, name="fc")(x)

  def _map_chunks(self, x: jax.Array, chunk: int) -> jax.Array:
    """The whole network on ``chunk`` images at a time, in a ``lax.map`` loop.

    Why: at batch 32 the 56x56 stage's activations are ~100 MB each, so XLA:CPU's per-call temporary
    buffer is ~400 MB of freshly mapped pages and every pass streams from memory. One compiled
    network run on 4-image chunks reuses a much smaller buffer and keeps more of each layer in cache
    (ResNet-101: 101k -> 9.4k page faults, 0.2 -> 0.04 system CPU-s per batch).  Same-process A/B,
    batch 32, median CPU-s per batch at load ~2-2.7 (whole batch -> chunks of 4): ResNet-34 1.64 ->
    1.47, ResNet-50 2.14 -> 1.91, ResNet-101 3.86 -> 2.94, ResNet-152 5.17 -> 4.42, ResNeXt-50 2.63
    -> 2.20, ResNeXt-101-64x4d 8.64 -> 7.71; chunks of 8 were between the two, chunks of 2 no better
    than 4 (ResNet-34 worse).  Logits are bit-identical to the unchunked graph.
    """
    n = x.shape[0]
    unbound = self.clone(parent=None)
    variables = self.variables
    logits = jax.lax.map(lambda xi: unbound.apply(variables, xi),
                         x.reshape(n // chunk, chunk, *x.shape[1:]))
    return logits.reshape(n, -1)

  def _repeated_blocks(self, planes: int, names: Sequence[str], x: jax.Array) -> jax.Array:
    """A stage's identical stride-1 blocks ``names`` applied in order, as one loop.

    Why a loop: each block's output feeds the next block's 1x1 dot *and* its residual add.
    Unrolled, XLA:CPU fuses the cheap elementwise chain BN -> + shortcut -> ReLU of every earlier
    block into each later residual fusion instead of reading the materialized output, so a stage
    of n blocks recomputes O(n^2) BN passes (ResNet-101's ``layer3.20`` residual fusion read the
    outputs of all 23 preceding 1x1 dots; ``lax.optimization_barrier`` is expanded before fusion
    and does not stop it).  A loop iteration boundary materializes each block's output once.

    The loop is a ``lax.scan`` over block indices whose body ``lax.switch``es to the block's own
    apply: the parameters keep their per-block names (``layer3.1`` ...) and stay where they are,
    whereas stacking them for a plain scan copied ~140 MB per call (ResNet-101, batch 2: 0.25
    vs 0.19 CPU-s).  ``init`` (and so ``convert.variable_shapes``) runs the blocks unrolled, and
    so do GPU/TPU backends, whose fusion was not measured here (their conditionals would also
    cost a host round trip per block).
    """
    block = functools.partial(self.block, planes, 1, self.groups, self.width_per_group)
    if self.is_initializing() or len(names) < LOOP_MIN_BLOCKS or not _cpu_backend():
      for name in names:
        x = block(name=name)(x)
      return x
    variables = [{col: self.variables[col][name] for col in ("params", "batch_stats")}
                 for name in names]
    unbound = block(parent=None)
    branches = [functools.partial(_apply_block, unbound, v) for v in variables]

    def step(y: jax.Array, index: jax.Array) -> tuple[jax.Array, None]:
      return jax.lax.switch(index, branches, y), None

    return jax.lax.scan(step, x, jnp.arange(len(names)))[0]


def batch_chunk(n: int, chunk: int | None = None) -> int:
  """Images per ``lax.map`` step for a batch of ``n``: the largest divisor of ``n`` that is at
  most ``chunk`` (default ``BATCH_CHUNK``), or 0 (no loop) when ``n <= chunk`` or that divisor
  is below ``chunk / 2`` (e.g. a prime batch, which would otherwise run an image at a time)."""
  chunk = BATCH_CHUNK if chunk is None else chunk
  if n <= chunk:
    return 0
  size = layers.largest_divisor(n, chunk)
  return size if 2 * size >= chunk else 0


def _cpu_backend() -> bool:
  """Whether the loops measured for XLA:CPU apply (GPU/TPU keep the plain unrolled graph)."""
  return jax.default_backend() == "cpu"


def _apply_block(block: nn.Module, variables: dict, x: jax.Array) -> jax.Array:
  """An unbound block applied to ``x`` with its own variables (one ``lax.switch`` branch)."""
  return block.apply(variables, x)


ResNet18 = functools.partial(ResNet, block=BasicBlock, stage_sizes=(2, 2, 2, 2))
ResNet34 = functools.partial(ResNet, block=BasicBlock, stage_sizes=(3, 4, 6, 3))
ResNet50 = functools.partial(ResNet, block=Bottleneck, stage_sizes=(3, 4, 6, 3))
ResNet101 = functools.partial(ResNet, block=Bottleneck, stage_sizes=(3, 4, 23, 3))
ResNet152 = functools.partial(ResNet, block=Bottleneck, stage_sizes=(3, 8, 36, 3))
ResNeXt50_32x4d = functools.partial(ResNet50, groups=32, width_per_group=4)
ResNeXt101_32x8d = functools.partial(ResNet101, groups=32, width_per_group=8)
ResNeXt101_64x4d = functools.partial(ResNet101, groups=64, width_per_group=4)
