"""ConvNeXt Tiny/Small/Base/Large as torchvision's ``convnext_*``, NHWC.

Stem: 4x4/4 conv (bias) + LayerNorm.  Four stages of ``CNBlock``s, a LayerNorm + 2x2/2 conv (bias)
between stages; global mean, LayerNorm, Linear.  ``CNBlock``: x + layer_scale * (7x7 depthwise
conv (bias) -> LayerNorm -> Linear 4C -> GELU (erf) -> Linear C), stochastic depth on the branch
acting only in training.  Every LayerNorm has eps 1e-6 and normalizes the channels; NHWC is
torchvision's channels-last ``Permute`` already, so no transposes are needed.

Submodules are named after the torch state-dict paths (``features.1.0.block.0`` the depthwise
conv, ``.block.2`` its LayerNorm, ``.block.3``/``.block.5`` the Linears, ``features.2.1`` a
downsampling conv, ``classifier.0|2``); ``layer_scale`` keeps torch's (C, 1, 1) shape so the
state dict converts as is.  The depthwise conv is computed as shifted multiply-adds
(models/depthwise.py).

Two XLA:CPU workarounds (``imagenet_cp.workarounds``, on by default on CPU only; timings:
docs/speed.md, "CPU workarounds"): ``computed_apart`` keeps each depthwise conv's output in
memory (fused, XLA recomputed its 49 taps in each of the LayerNorm's three passes), and
``convnext_batch_chunks`` runs the network on ``BATCH_CHUNK``-image chunks
(``layers.apply_in_batch_chunks``).
Off, the network is the plain graph.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax

from imagenet_cp.models import depthwise, layers

LN_EPS = 1e-6
LAYER_SCALE_INIT = 1e-6
# torchvision convnext.py: (channels, blocks) per stage (CNBlockConfig).
TINY = ((96, 3), (192, 3), (384, 9), (768, 3))
SMALL = ((96, 3), (192, 3), (384, 27), (768, 3))
BASE = ((128, 3), (256, 3), (512, 27), (1024, 3))
LARGE = ((192, 3), (384, 3), (768, 27), (1536, 3))
BATCH_CHUNK = 4  # images per lax.map step (convnext_batch_chunks; of 4 and 8, 4 was faster on CPU)


class CNBlock(nn.Module):
  """torchvision ``CNBlock`` on NHWC (see the module docstring)."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = depthwise.DepthwiseConv(7, 1, layers.pads(3), bias=True, apart=True, name="block.0")(x)
    y = layers.layer_norm(LN_EPS, name="block.2")(y)
    y = layers.gelu(layers.dense(4 * c, name="block.3")(y))
    y = layers.dense(c, name="block.5")(y)
    scale = self.param("layer_scale", nn.initializers.constant(LAYER_SCALE_INIT), (c, 1, 1),
                       x.dtype)
    return x + y * scale.reshape(c)


class ConvNeXt(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]; ``features.0`` stem,
  ``features.1|3|5|7`` stages, ``features.2|4|6`` downsampling."""
  stages: Sequence[tuple[int, int]]
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    chunked = layers.apply_in_batch_chunks(self, x, BATCH_CHUNK, "convnext_batch_chunks")
    if chunked is not None:
      return chunked
    x = layers.conv(self.stages[0][0], 4, 4, name="features.0.0")(x)
    x = layers.layer_norm(LN_EPS, name="features.0.1")(x)
    for s, (_, blocks) in enumerate(self.stages):
      if s:
        x = layers.layer_norm(LN_EPS, name=f"features.{2 * s}.0")(x)
        x = layers.conv(self.stages[s][0], 2, 2, name=f"features.{2 * s}.1")(x)
      for i in range(blocks):
        x = CNBlock(name=f"features.{2 * s + 1}.{i}")(x)
    x = layers.layer_norm(LN_EPS, name="classifier.0")(x.mean(axis=(1, 2)))
    return layers.dense(self.num_classes, name="classifier.2")(x)


ConvNeXtTiny = functools.partial(ConvNeXt, stages=TINY)
ConvNeXtSmall = functools.partial(ConvNeXt, stages=SMALL)
ConvNeXtBase = functools.partial(ConvNeXt, stages=BASE)
ConvNeXtLarge = functools.partial(ConvNeXt, stages=LARGE)
