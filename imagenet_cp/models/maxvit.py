"""MaxViT-T as torchvision's ``maxvit_t``, NHWC.

Conv stem (3x3 s2 + BN + GELU, 3x3) -> four blocks of MaxViT layers, each an MBConv (pre-BN,
1x1 expand, depthwise 3x3, squeeze-excite, 1x1; avg-pool + 1x1 projection shortcut on the
strided first layer) followed by block ("window") and grid attention over partition_size^2
tokens with a relative position bias table, each pre-LayerNorm with a GELU MLP -> mean ->
LayerNorm -> Linear -> tanh -> Linear.  Every block's feature map must be a whole number of
partitions: 224 px for partition 7 (as torchvision's ``input_size`` check).  Two torchvision
details kept: attention scales k by channels^-1/2 (not head_dim^-1/2), and the grid partition
splits the map into (H / partition_size) -sized cells before swapping the axes.  Submodules are
named after the torch state-dict paths (``blocks.0.layers.0.layers.MBconv.layers.conv_a.0`` ...).
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import attention, depthwise, layers

BN_EPS = 1e-3
LN_EPS = 1e-5


def avg_pool_3x3_s2_p1(x: jax.Array) -> jax.Array:
  """``nn.AvgPool2d(3, 2, padding=1)`` (zero padding counted in the mean, torch's default)."""
  window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
  pads = ((0, 0), (1, 1), (1, 1), (0, 0))
  return jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pads) / 9.0


class MBConv(nn.Module):
  """proj(x) + layers(x): BN -> 1x1 + BN + GELU -> depthwise 3x3 (stride) + BN + GELU -> SE
  -> 1x1."""
  out_channels: int
  stride: int
  expansion_ratio: float = 4.0
  squeeze_ratio: float = 0.25

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    res = x
    if self.stride == 2:
      res = layers.Conv1x1(self.out_channels, bias=True, name="proj.1")(avg_pool_3x3_s2_p1(x))
    elif x.shape[-1] != self.out_channels:
      res = layers.Conv1x1(self.out_channels, bias=True, name="proj.0")(x)
    mid = int(self.out_channels * self.expansion_ratio)
    y = layers.batch_norm(BN_EPS, name="layers.pre_norm")(x)
    y = layers.Conv1x1(mid, name="layers.conv_a.0")(y)
    y = layers.gelu(layers.batch_norm(BN_EPS, name="layers.conv_a.1")(y))
    y = depthwise.DepthwiseConv(3, self.stride, ((1, 1), (1, 1)), name="layers.conv_b.0")(y)
    y = layers.gelu(layers.batch_norm(BN_EPS, name="layers.conv_b.1")(y))
    y = layers.SqueezeExcitation(int(self.out_channels * self.squeeze_ratio), layers.silu,
                                 name="layers.squeeze_excitation")(y)
    y = layers.Conv1x1(self.out_channels, bias=True, name="layers.conv_c")(y)
    return res + y


class RelativePositionalMultiHeadAttention(nn.Module):
  """Self-attention within each of [B, G, P, C]'s G groups of P tokens, with a learned
  ((2 sqrt(P) - 1)^2, heads) relative position bias table."""
  head_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c, p = x.shape[-1], x.shape[-2]
    heads, size = c // self.head_dim, int(round(p ** 0.5))
    qkv = layers.dense(3 * c, name="to_qkv")(x)
    q, k, v = (attention.split_heads(t, heads) for t in jnp.split(qkv, 3, axis=-1))
    k = k * c ** -0.5  # torchvision: feat_dim ** -0.5
    table = self.param("relative_position_bias_table", nn.initializers.truncated_normal(0.02),
                       ((2 * size - 1) ** 2, heads))
    bias = attention.relative_position_bias(table, attention.relative_position_index(size, size))
    y = attention.merge_heads(attention.attend(q, k, v, bias))
    return layers.dense(c, name="merge")(y)


def _partition(x: jax.Array, p: int) -> jax.Array:
  """torchvision ``WindowPartition`` on NHWC: [B, H, W, C] -> [B, (H/p) (W/p), p*p, C]."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, (h // p) * (w // p), p * p, c)


def _departition(x: jax.Array, p: int, hp: int, wp: int) -> jax.Array:
  """torchvision ``WindowDepartition`` on NHWC: [B, hp*wp, p*p, C] -> [B, hp*p, wp*p, C]."""
  b, _, _, c = x.shape
  x = x.reshape(b, hp, wp, p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, hp * p, wp * p, c)


class PartitionAttentionLayer(nn.Module):
  """Window (``p = partition_size``) or grid (``p = H / partition_size``, groups and tokens
  swapped) partition -> x + attention(LN(x)) -> x + MLP(LN(x)) -> departition."""
  head_dim: int
  partition_size: int
  partition_type: str
  mlp_ratio: int = 4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h, w, c = x.shape[1:]
    if self.partition_type not in ("window", "grid"):
      raise ValueError(f"partition_type must be 'window' or 'grid', got {self.partition_type!r}")
    if h % self.partition_size or w % self.partition_size:
      raise ValueError(f"a {h}x{w} feature map is not a whole number of {self.partition_size}-"
                       "partitions (MaxViT-T needs 224-px inputs)")
    n_partitions = h // self.partition_size  # torchvision uses the height for both sides
    p = self.partition_size if self.partition_type == "window" else n_partitions
    if h % p or w % p:
      raise ValueError(f"a {h}x{w} feature map does not split into {p}-cells")
    grid = self.partition_type == "grid"
    x = _partition(x, p)
    if grid:
      x = jnp.swapaxes(x, -2, -3)
    y = layers.layer_norm(LN_EPS, name="attn_layer.0")(x)
    x = x + RelativePositionalMultiHeadAttention(self.head_dim, name="attn_layer.1")(y)
    y = layers.layer_norm(LN_EPS, name="mlp_layer.0")(x)
    y = layers.gelu(layers.dense(c * self.mlp_ratio, name="mlp_layer.1")(y))
    x = x + layers.dense(c, name="mlp_layer.3")(y)
    if grid:
      x = jnp.swapaxes(x, -2, -3)
    return _departition(x, p, h // p, w // p)


class MaxVitLayer(nn.Module):
  """MBConv -> window attention -> grid attention."""
  out_channels: int
  stride: int
  head_dim: int
  partition_size: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = MBConv(self.out_channels, self.stride, name="layers.MBconv")(x)
    for kind in ("window", "grid"):
      x = PartitionAttentionLayer(self.head_dim, self.partition_size, kind,
                                  name=f"layers.{kind}_attention")(x)
    return x


class MaxVit(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  stem_channels: int
  block_channels: Sequence[int]
  block_layers: Sequence[int]
  head_dim: int
  partition_size: int
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = layers.conv(self.stem_channels, 3, 2, 1, bias=False, name="stem.0.0")(x)
    x = layers.gelu(layers.batch_norm(BN_EPS, name="stem.0.1")(x))
    x = layers.conv(self.stem_channels, 3, 1, 1, name="stem.1.0")(x)
    for b, (channels, n) in enumerate(zip(self.block_channels, self.block_layers)):
      for i in range(n):
        x = MaxVitLayer(channels, 2 if i == 0 else 1, self.head_dim, self.partition_size,
                        name=f"blocks.{b}.layers.{i}")(x)
    x = layers.layer_norm(LN_EPS, name="classifier.2")(x.mean(axis=(1, 2)))
    x = jnp.tanh(layers.dense(x.shape[-1], name="classifier.3")(x))
    return nn.Dense(self.num_classes, use_bias=False, precision=layers.HIGHEST,
                    name="classifier.5")(x)


MaxVit_T = functools.partial(MaxVit, stem_channels=64, block_channels=(64, 128, 256, 512),
                             block_layers=(2, 2, 5, 2), head_dim=32, partition_size=7)
