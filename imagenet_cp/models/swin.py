"""Swin Transformer T/S/B and Swin V2 T/S/B as torchvision's ``swin_*`` / ``swin_v2_*``, NHWC.

4x4 patch embedding + LayerNorm -> four stages of blocks with (shifted) window attention
and a relative position bias, patch merging between stages -> LayerNorm -> mean -> head.
V1 (window 7) puts the norms before attention and MLP and learns the bias table; V2 (window 8,
256-px weights) puts them after (post-norm), uses cosine attention with a learned, clamped
logit scale and computes the bias with a small MLP over log-spaced relative coordinates, and
merges patches before its norm.  Any input size works: feature maps are padded to whole
windows and the shift is dropped where a window covers the map, as in torchvision.
Submodules are named after the torch state-dict paths (``features.1.0.attn.qkv`` ...).
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.models import attention, layers

LN_EPS = 1e-5
MASK_VALUE = -100.0  # torchvision's additive mask between tokens from different shifted regions


def shift_mask(pad_h: int, pad_w: int, window: int, shift: tuple[int, int]) -> np.ndarray:
  """[windows, N, N] additive mask (0 or -100) of the shifted windows, with torchvision's
  region labelling (including its slices for a shift of 0 along one side)."""
  labels = np.zeros((pad_h, pad_w), np.float32)
  h_slices = ((0, -window), (-window, -shift[0]), (-shift[0], None))
  w_slices = ((0, -window), (-window, -shift[1]), (-shift[1], None))
  count = 0
  for h in h_slices:
    for w in w_slices:
      labels[h[0]:h[1], w[0]:w[1]] = count
      count += 1
  labels = labels.reshape(pad_h // window, window, pad_w // window, window)
  labels = labels.transpose(0, 2, 1, 3).reshape(-1, window * window)
  diff = labels[:, None, :] - labels[:, :, None]
  return np.where(diff != 0, MASK_VALUE, 0.0).astype(np.float32)


def v2_coords_table(window: int) -> np.ndarray:
  """[(2w-1)^2, 2] log-spaced relative coordinates (Swin V2's ``relative_coords_table``)."""
  r = np.arange(-(window - 1), window, dtype=np.float32)
  table = np.stack(np.meshgrid(r, r, indexing="ij"), axis=-1)  # [2w-1, 2w-1, 2]
  table = table / np.float32(window - 1) * np.float32(8)
  table = np.sign(table) * np.log2(np.abs(table) + np.float32(1)) / np.float32(3)
  return table.reshape(-1, 2).astype(np.float32)


class ShiftedWindowAttention(nn.Module):
  """torchvision ``shifted_window_attention`` with ``ShiftedWindowAttention`` (V1) or
  ``ShiftedWindowAttentionV2`` (``v2``) parameters, on [B, H, W, C]."""
  num_heads: int
  window_size: int
  shift_size: int
  v2: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    ws, heads = self.window_size, self.num_heads
    x = jnp.pad(x, ((0, 0), (0, -h % ws), (0, -w % ws), (0, 0)))
    _, ph, pw, _ = x.shape
    # no shift along a side that one window covers
    shift = tuple(0 if ws >= side else self.shift_size for side in (ph, pw))
    if sum(shift):
      x = jnp.roll(x, (-shift[0], -shift[1]), axis=(1, 2))
    gh, gw = ph // ws, pw // ws
    x = x.reshape(b, gh, ws, gw, ws, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, gh * gw, ws * ws, c)

    kernel, bias = attention.LinearParams(3 * c, name="qkv")(c)
    if self.v2:
      bias = bias.at[c:2 * c].set(0.0)  # V2 zeroes the key bias at every call
    q, k, v = (attention.split_heads(t, heads)
               for t in jnp.split(attention.linear(x, kernel, bias), 3, axis=-1))
    index = attention.relative_position_index(ws, ws)
    if self.v2:
      logit_scale = self.param("logit_scale", lambda _, s: jnp.full(s, math.log(10.0)),
                               (heads, 1, 1))
      scale = jnp.exp(jnp.minimum(logit_scale, math.log(100.0)))
      q, k = _l2_normalize(q) * scale, _l2_normalize(k)
      table = layers.relu(layers.dense(512, name="cpb_mlp.0")(jnp.asarray(v2_coords_table(ws))))
      table = nn.Dense(heads, use_bias=False, precision=layers.HIGHEST, name="cpb_mlp.2")(table)
      pos_bias = 16.0 * jax.nn.sigmoid(attention.relative_position_bias(table, index))
    else:
      q = q * (c // heads) ** -0.5
      table = self.param("relative_position_bias_table", nn.initializers.truncated_normal(0.02),
                         ((2 * ws - 1) ** 2, heads))
      pos_bias = attention.relative_position_bias(table, index)
    if sum(shift):
      pos_bias = pos_bias + shift_mask(ph, pw, ws, shift)[:, None]  # [windows, heads, N, N]
    y = attention.merge_heads(attention.attend(q, k, v, pos_bias))
    y = layers.dense(c, name="proj")(y)

    y = y.reshape(b, gh, gw, ws, ws, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
    if sum(shift):
      y = jnp.roll(y, shift, axis=(1, 2))
    return y[:, :h, :w]


def _l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """``torch.nn.functional.normalize(x, dim=-1)``: x / max(||x||, eps)."""
  norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
  return x / jnp.maximum(norm, eps)


class SwinBlock(nn.Module):
  """V1: x + attn(norm1(x)), then + mlp(norm2(.)); V2: x + norm1(attn(x)), then + norm2(mlp(.))."""
  num_heads: int
  window_size: int
  shift_size: int
  v2: bool = False
  mlp_ratio: float = 4.0
  mlp_names: tuple[str, str] = ("0", "3")  # the MLP's Linears (timm's Swin: fc1, fc2)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    attn = ShiftedWindowAttention(self.num_heads, self.window_size, self.shift_size, self.v2,
                                  name="attn")
    mlp = attention.MLP(int(x.shape[-1] * self.mlp_ratio), self.mlp_names, name="mlp")
    norm1, norm2 = layers.layer_norm(LN_EPS, name="norm1"), layers.layer_norm(LN_EPS, name="norm2")
    if self.v2:
      x = x + norm1(attn(x))
      return x + norm2(mlp(x))
    x = x + attn(norm1(x))
    return x + mlp(norm2(x))


class PatchMerging(nn.Module):
  """2x2 neighbours -> 4C channels (bottom/right zero padding to even sides), then V1:
  norm(4C) -> reduction to 2C; V2: reduction -> norm(2C)."""
  v2: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h, w, c = x.shape[1:]
    x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    x = jnp.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                        axis=-1)
    reduction = nn.Dense(2 * c, use_bias=False, precision=layers.HIGHEST, name="reduction")
    norm = layers.layer_norm(LN_EPS, name="norm")
    return norm(reduction(x)) if self.v2 else reduction(norm(x))


class SwinTransformer(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes]."""
  embed_dim: int
  depths: Sequence[int]
  num_heads: Sequence[int]
  window_size: int
  v2: bool = False
  patch_size: int = 4
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    p = self.patch_size
    x = layers.conv(self.embed_dim, p, p, name="features.0.0")(x)
    x = layers.layer_norm(LN_EPS, name="features.0.2")(x)
    for stage, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
      for i in range(depth):
        shift = 0 if i % 2 == 0 else self.window_size // 2
        x = SwinBlock(heads, self.window_size, shift, self.v2,
                      name=f"features.{2 * stage + 1}.{i}")(x)
      if stage < len(self.depths) - 1:
        x = PatchMerging(self.v2, name=f"features.{2 * stage + 2}")(x)
    x = layers.layer_norm(LN_EPS, name="norm")(x)
    return layers.dense(self.num_classes, name="head")(x.mean(axis=(1, 2)))


Swin_T = functools.partial(SwinTransformer, embed_dim=96, depths=(2, 2, 6, 2),
                           num_heads=(3, 6, 12, 24), window_size=7)
Swin_S = functools.partial(SwinTransformer, embed_dim=96, depths=(2, 2, 18, 2),
                           num_heads=(3, 6, 12, 24), window_size=7)
Swin_B = functools.partial(SwinTransformer, embed_dim=128, depths=(2, 2, 18, 2),
                           num_heads=(4, 8, 16, 32), window_size=7)
Swin_V2_T = functools.partial(Swin_T, window_size=8, v2=True)
Swin_V2_S = functools.partial(Swin_S, window_size=8, v2=True)
Swin_V2_B = functools.partial(Swin_B, window_size=8, v2=True)
