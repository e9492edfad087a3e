"""timm's ``Xcit`` (XCiT, cross-covariance image transformer) with 16-px patches, NHWC input.

timm 1.0's ``xcit.py`` at inference:

- ``patch_embed.proj``: four 3x3 stride-2 convs (no bias, each followed by BatchNorm, GELU
  between them), widths d/8, d/4, d/2, d: a [N, H/16, W/16, d] token map, row-major tokens;
- ``pos_embed``: the Fourier encoding of each token's (y, x) position (32 sin/cos features per
  axis, computed, not learned) through the 1x1 conv ``token_projection``, added to the tokens;
- ``blocks.<i>`` (``XCABlock``): x + gamma1 * XCA(norm1(x)), then + gamma3 * LPI(norm3(x)),
  then + gamma2 * mlp(norm2(x)) (timm keeps the official 1-3-2 order).  XCA attends over
  channels: per head, q and k [d_head, tokens] are L2-normalised along the tokens, the
  [d_head, d_head] logits scaled by the head's learned ``temperature``.  LPI (local patch
  interaction) is depthwise 3x3 conv -> GELU -> BatchNorm -> depthwise 3x3 conv on the map;
- ``cls_attn_blocks.<i>`` (CaiT's class attention, ``ClassAttentionBlock``) after prepending
  ``cls_token``: only the class token queries (``q``/``k``/``v`` Linears, head_dim^-1/2);
  its output replaces the class token of norm1(x), the patch tokens carry norm1(x) on, and
  x + gamma1 * that.  Then norm2 of every token (``tokens_norm``) or of the class token only,
  and the class token gets gamma2 * mlp of itself added while, as in timm, the patch tokens
  are added to themselves (x_res + x with x's patch tokens equal to x_res's): their doubling
  reaches the next class-attention block's keys and values;
- ``norm`` (LayerNorm eps 1e-6) -> the class token -> ``head``.

Dropout and drop-path are inference identities, BatchNorm uses its running statistics.
Submodules are named after timm's state-dict paths, so ``models/convert.py`` maps a timm state
dict as is; the Fourier features are derived from the token map's size (no buffer).
"""
from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.models import attention, depthwise, layers

LN_EPS = 1e-6
FOURIER_DIM = 32  # timm's PositionalEncodingFourier(hidden_dim=32)
FOURIER_TEMPERATURE = 10000.0
NORMALIZE_EPS = 1e-12  # torch.nn.functional.normalize's eps


def fourier_features(height: int, width: int) -> np.ndarray:
  """[height, width, 2 * FOURIER_DIM] float32: timm's ``PositionalEncodingFourier`` before its
  projection, the y features then the x features, each sin/cos interleaved."""
  scale, eps = np.float32(2 * math.pi), np.float32(1e-6)
  y = np.arange(1, height + 1, dtype=np.float32)
  x = np.arange(1, width + 1, dtype=np.float32)
  y = y / (y[-1] + eps) * scale
  x = x / (x[-1] + eps) * scale
  i = np.arange(FOURIER_DIM, dtype=np.float32)
  dim_t = np.float32(FOURIER_TEMPERATURE) ** (2 * (i // 2) / FOURIER_DIM).astype(np.float32)

  def encode(pos):  # [L] -> [L, FOURIER_DIM]: sin of even, cos of odd frequencies, interleaved
    p = pos[:, None] / dim_t
    return np.stack([np.sin(p[:, 0::2]), np.cos(p[:, 1::2])], axis=-1).reshape(len(pos), -1)

  ey = np.broadcast_to(encode(y)[:, None, :], (height, width, FOURIER_DIM))
  ex = np.broadcast_to(encode(x)[None, :, :], (height, width, FOURIER_DIM))
  return np.concatenate([ey, ex], axis=-1).astype(np.float32)


class ConvPatchEmbed(nn.Module):
  """timm ``ConvPatchEmbed`` for patch 16: [N, H, W, 3] -> [N, H/16, W/16, embed_dim]."""
  embed_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = self.embed_dim
    for i, width in enumerate((d // 8, d // 4, d // 2, d)):
      if i:
        x = layers.gelu(x)
      # ``proj`` is a Sequential of conv3x3 (conv ``0`` + BatchNorm ``1``) and GELUs in between
      x = layers.conv(width, 3, 2, 1, bias=False, name=f"proj.{2 * i}.0")(x)
      x = layers.batch_norm(name=f"proj.{2 * i}.1")(x)
    return x


def l2_normalize(x: jax.Array) -> jax.Array:
  """``torch.nn.functional.normalize(x, dim=-1)``: x / max(||x||, 1e-12)."""
  norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True))
  return x / jnp.maximum(norm, NORMALIZE_EPS)


class XCA(nn.Module):
  """Cross-covariance attention on tokens [N, S, C]: ``qkv`` -> per-head channel attention ->
  ``proj``; ``temperature`` (heads, 1, 1) scales each head's logits."""
  num_heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    qkv = layers.dense(3 * c, name="qkv")(x)
    # [N, heads, head_dim, S]: channels attend to channels, the tokens are the contracted axis
    q, k, v = (jnp.swapaxes(attention.split_heads(t, self.num_heads), -1, -2)
               for t in jnp.split(qkv, 3, axis=-1))
    temperature = self.param("temperature", nn.initializers.ones, (self.num_heads, 1, 1))
    y = attention.attend(l2_normalize(q) * temperature, l2_normalize(k), v)
    return layers.dense(c, name="proj")(attention.merge_heads(jnp.swapaxes(y, -1, -2)))


class LPI(nn.Module):
  """Local patch interaction on tokens [N, H*W, C] of an [H, W] map: depthwise 3x3 conv (bias)
  ``conv1`` -> GELU -> BatchNorm ``bn`` -> depthwise 3x3 conv ``conv2``."""
  height: int
  width: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, s, c = x.shape
    y = x.reshape(n, self.height, self.width, c)  # token h * W + w, as timm's reshape of NCHW
    y = depthwise.DepthwiseConv(3, 1, layers.pads(1), bias=True, name="conv1")(y)
    y = layers.batch_norm(name="bn")(layers.gelu(y))
    y = depthwise.DepthwiseConv(3, 1, layers.pads(1), bias=True, name="conv2")(y)
    return y.reshape(n, s, c)


def _gamma(module: nn.Module, name: str, eta: float, c: int) -> jax.Array:
  """A LayerScale vector (c,), initialised to ``eta`` as timm does."""
  return module.param(name, nn.initializers.constant(eta), (c,))


class XCABlock(nn.Module):
  """timm ``XCABlock`` on tokens [N, H*W, C] (norms ``norm1``/``norm3``/``norm2``)."""
  num_heads: int
  mlp_dim: int
  height: int
  width: int
  eta: float = 1.0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    y = XCA(self.num_heads, name="attn")(layers.layer_norm(LN_EPS, name="norm1")(x))
    x = x + _gamma(self, "gamma1", self.eta, c) * y
    y = LPI(self.height, self.width, name="local_mp")(layers.layer_norm(LN_EPS, name="norm3")(x))
    x = x + _gamma(self, "gamma3", self.eta, c) * y
    y = attention.MLP(self.mlp_dim, ("fc1", "fc2"), name="mlp")(
        layers.layer_norm(LN_EPS, name="norm2")(x))
    return x + _gamma(self, "gamma2", self.eta, c) * y


class ClassAttn(nn.Module):
  """CaiT's ``ClassAttn``: the class token (token 0) attends to all tokens -> [N, 1, C]."""
  num_heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    q = attention.split_heads(layers.dense(c, name="q")(x[:, :1]), self.num_heads)
    k = attention.split_heads(layers.dense(c, name="k")(x), self.num_heads)
    v = attention.split_heads(layers.dense(c, name="v")(x), self.num_heads)
    y = attention.attend(q * (c // self.num_heads) ** -0.5, k, v)
    return layers.dense(c, name="proj")(attention.merge_heads(y))


class ClassAttentionBlock(nn.Module):
  """timm ``ClassAttentionBlock`` on [N, 1 + S, C], the class token first (see the module
  docstring for what happens to the patch tokens)."""
  num_heads: int
  mlp_dim: int
  eta: float = 1.0
  tokens_norm: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    x_norm1 = layers.layer_norm(LN_EPS, name="norm1")(x)
    cls = ClassAttn(self.num_heads, name="attn")(x_norm1)
    x = x + _gamma(self, "gamma1", self.eta, c) * jnp.concatenate([cls, x_norm1[:, 1:]], axis=1)
    norm2 = layers.layer_norm(LN_EPS, name="norm2")
    x = norm2(x) if self.tokens_norm else jnp.concatenate([norm2(x[:, :1]), x[:, 1:]], axis=1)
    cls = _gamma(self, "gamma2", self.eta, c) * attention.MLP(
        self.mlp_dim, ("fc1", "fc2"), name="mlp")(x[:, :1])
    # timm's x_res + cat([cls, x[:, 1:]]): the class token gets the MLP, patch tokens double
    return x + jnp.concatenate([cls, x[:, 1:]], axis=1)


class Xcit(nn.Module):
  """[N, H, W, 3] normalized float32 (H, W: multiples of 16) -> logits [N, num_classes]."""
  embed_dim: int
  depth: int
  num_heads: int
  eta: float = 1.0  # LayerScale's initial value (only the initialisation: files carry gammas)
  tokens_norm: bool = False
  mlp_ratio: float = 4.0
  cls_attn_layers: int = 2
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    self._check(x)
    d = self.embed_dim
    x = ConvPatchEmbed(d, name="patch_embed")(x)
    n, h, w, _ = x.shape
    pos = layers.Conv1x1(d, bias=True, name="pos_embed.token_projection")(
        jnp.asarray(fourier_features(h, w))[None])
    x = (x + pos).reshape(n, h * w, d)
    mlp_dim = int(d * self.mlp_ratio)
    for i in range(self.depth):
      x = XCABlock(self.num_heads, mlp_dim, h, w, self.eta, name=f"blocks.{i}")(x)
    token = self.param("cls_token", nn.initializers.normal(0.02), (1, 1, d))
    x = jnp.concatenate([jnp.broadcast_to(token, (n, 1, d)), x], axis=1)
    for i in range(self.cls_attn_layers):
      x = ClassAttentionBlock(self.num_heads, mlp_dim, self.eta, self.tokens_norm,
                              name=f"cls_attn_blocks.{i}")(x)
    x = layers.layer_norm(LN_EPS, name="norm")(x)
    return layers.dense(self.num_classes, name="head")(x[:, 0])

  def _check(self, x: jax.Array) -> None:
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"XCiT takes [N, H, W, 3] images, got shape {tuple(x.shape)}")
    if x.shape[1] % 16 or x.shape[2] % 16:
      raise ValueError(f"XCiT's 16-px patches need H and W divisible by 16 (timm asserts it), "
                       f"got {x.shape[1]}x{x.shape[2]}")


# timm's xcit_*_p16_224 hyper-parameters; the *_12 medium / large are ARES-Bench's and
# RobustBench's own registrations of timm's class (Debenedetti et al.'s robust XCiTs).
XCiT_S12 = functools.partial(Xcit, embed_dim=384, depth=12, num_heads=8, eta=1.0,
                             tokens_norm=True)
XCiT_M12 = functools.partial(Xcit, embed_dim=512, depth=12, num_heads=8, eta=1.0,
                             tokens_norm=True)
XCiT_L12 = functools.partial(Xcit, embed_dim=768, depth=12, num_heads=16, eta=1.0,
                             tokens_norm=True)
XCiT_S24 = functools.partial(Xcit, embed_dim=384, depth=24, num_heads=8, eta=1e-5,
                             tokens_norm=True)
XCiT_M24 = functools.partial(Xcit, embed_dim=512, depth=24, num_heads=8, eta=1e-5,
                             tokens_norm=True)
XCiT_L24 = functools.partial(Xcit, embed_dim=768, depth=24, num_heads=16, eta=1e-5,
                             tokens_norm=True)
