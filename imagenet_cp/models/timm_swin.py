"""timm's ``SwinTransformer`` Small/Base/Large (``swin_*_patch4_window7_224``), NHWC.

The math is torchvision's Swin V1 (``models/swin.py``: 4x4 patch embedding + LayerNorm,
(shifted) 7x7 window attention with a learned relative-position bias table, GELU MLP, patch
merging, final LayerNorm, mean, head), whose blocks and patch merging serve here unchanged.
timm names the parameters ``patch_embed.proj|norm``, ``layers.<s>.blocks.<i>....`` (MLP
``fc1``/``fc2``), ``layers.<s>.downsample`` at the *start* of stages 1..3, ``norm``,
``head.fc``.  At 224 px every map is a whole number of windows, and on the last 7x7 map timm,
like torchvision, drops the shift (one window covers it).
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax

from imagenet_cp.models import layers, swin


class SwinTransformer(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  embed_dim: int
  depths: Sequence[int]
  num_heads: Sequence[int]
  window_size: int = 7
  patch_size: int = 4
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    p = self.patch_size
    x = layers.conv(self.embed_dim, p, p, name="patch_embed.proj")(x)
    x = layers.layer_norm(swin.LN_EPS, name="patch_embed.norm")(x)
    for stage, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
      if stage:
        x = swin.PatchMerging(name=f"layers.{stage}.downsample")(x)
      for i in range(depth):
        shift = 0 if i % 2 == 0 else self.window_size // 2
        x = swin.SwinBlock(heads, self.window_size, shift, mlp_names=("fc1", "fc2"),
                           name=f"layers.{stage}.blocks.{i}")(x)
    x = layers.layer_norm(swin.LN_EPS, name="norm")(x)
    return layers.dense(self.num_classes, name="head.fc")(x.mean(axis=(1, 2)))


# timm's swin_small/base/large_patch4_window7_224.
Swin_S = functools.partial(SwinTransformer, embed_dim=96, depths=(2, 2, 18, 2),
                           num_heads=(3, 6, 12, 24))
Swin_B = functools.partial(SwinTransformer, embed_dim=128, depths=(2, 2, 18, 2),
                           num_heads=(4, 8, 16, 32))
Swin_L = functools.partial(SwinTransformer, embed_dim=192, depths=(2, 2, 18, 2),
                           num_heads=(6, 12, 24, 48))
