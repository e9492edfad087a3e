"""timm's ``ConvNeXt`` Small/Base/Large (``convnext_small`` ...), NHWC.

The same network as torchvision's ConvNeXt (``models/convnext.py``: same stage widths and
depths, LayerNorms with eps 1e-6, 7x7 depthwise conv, GELU MLP, layer scale), but timm names
and shapes its parameters differently: ``stem.0|1``, ``stages.<s>.downsample.0|1`` (LayerNorm,
2x2/2 conv) before stages 1..3, ``stages.<s>.blocks.<i>.conv_dw|norm|mlp.fc1|mlp.fc2`` and a
(C,) ``gamma``; the head is ``head.norm`` (LayerNorm of the global mean) and ``head.fc``.
Submodules are named after those paths, so ``models/convert.py`` maps a timm state dict as is.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax

from imagenet_cp.models import attention, convnext, depthwise, layers

LN_EPS = convnext.LN_EPS


class ConvNeXtBlock(nn.Module):
  """timm ``ConvNeXtBlock`` (``conv_mlp=False``): x + gamma * mlp(norm(conv_dw(x)))."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = depthwise.DepthwiseConv(7, 1, layers.pads(3), bias=True, apart=True, name="conv_dw")(x)
    y = attention.MLP(4 * c, ("fc1", "fc2"), name="mlp")(layers.layer_norm(LN_EPS, name="norm")(y))
    gamma = self.param("gamma", nn.initializers.constant(convnext.LAYER_SCALE_INIT), (c,))
    return x + y * gamma


class ConvNeXt(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  stages: Sequence[tuple[int, int]]
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    chunked = layers.apply_in_batch_chunks(self, x, convnext.BATCH_CHUNK,
                                           "convnext_batch_chunks")  # as torchvision's port
    if chunked is not None:
      return chunked
    x = layers.conv(self.stages[0][0], 4, 4, name="stem.0")(x)
    x = layers.layer_norm(LN_EPS, name="stem.1")(x)
    for s, (width, blocks) in enumerate(self.stages):
      if s:
        x = layers.layer_norm(LN_EPS, name=f"stages.{s}.downsample.0")(x)
        x = layers.conv(width, 2, 2, name=f"stages.{s}.downsample.1")(x)
      for i in range(blocks):
        x = ConvNeXtBlock(name=f"stages.{s}.blocks.{i}")(x)
    x = layers.layer_norm(LN_EPS, name="head.norm")(x.mean(axis=(1, 2)))
    return layers.dense(self.num_classes, name="head.fc")(x)


# timm's convnext_small/base/large have torchvision's stage widths and depths.
ConvNeXtSmall = functools.partial(ConvNeXt, stages=convnext.SMALL)
ConvNeXtBase = functools.partial(ConvNeXt, stages=convnext.BASE)
ConvNeXtLarge = functools.partial(ConvNeXt, stages=convnext.LARGE)
