"""Vision Transformers B/16, B/32, L/16, L/32, H/14 as torchvision's ``vit_*``, NHWC input.

Patchify conv -> class token + learned position embedding -> pre-norm encoder blocks
(LayerNorm eps 1e-6, ``nn.MultiheadAttention``, GELU MLP) -> final LayerNorm -> linear head on
the class token.  The position embedding has one row per patch of an ``image_size`` input, so a
model takes exactly that size: 224 for the IMAGENET1K_V1 and SWAG-linear weights, 384 / 512 /
518 for the SWAG end-to-end weights of B/16, L/16, H/14.  Submodules are named after the torch
state-dict paths (``conv_proj``, ``encoder.layers.encoder_layer_0.ln_1``, ``heads.head`` ...).
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import attention, layers

LN_EPS = 1e-6


class MultiheadSelfAttention(nn.Module):
  """``torch.nn.MultiheadAttention(c, heads, batch_first=True)(x, x, x)`` at inference.

  Its fused input projection is kept in torch's layout, ``in_proj_weight`` (3c, c) and
  ``in_proj_bias`` (3c,), so the state dict converts unchanged; q is scaled by head_dim^-1/2.
  """
  num_heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    weight = self.param("in_proj_weight", nn.initializers.lecun_normal(), (3 * c, c))
    bias = self.param("in_proj_bias", nn.initializers.zeros, (3 * c,))
    qkv = jnp.einsum("...c,oc->...o", x, weight, precision=layers.HIGHEST) + bias
    return layers.dense(c, name="out_proj")(attention.self_attention(qkv, self.num_heads))


class EncoderBlock(nn.Module):
  """x + attention(LN(x)), then + MLP(LN(.)); the dropouts are inference identities."""
  num_heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = MultiheadSelfAttention(self.num_heads, name="self_attention")(
        layers.layer_norm(LN_EPS, name="ln_1")(x))
    x = x + y
    return x + attention.MLP(self.mlp_dim, name="mlp")(layers.layer_norm(LN_EPS, name="ln_2")(x))


class Encoder(nn.Module):
  """+ ``pos_embedding`` (1, tokens, c), the blocks, a final LayerNorm (``ln``)."""
  num_layers: int
  num_heads: int
  mlp_dim: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    pos = self.param("pos_embedding", nn.initializers.normal(0.02), (1,) + x.shape[1:])
    x = x + pos
    for i in range(self.num_layers):
      x = EncoderBlock(self.num_heads, self.mlp_dim, name=f"layers.encoder_layer_{i}")(x)
    return layers.layer_norm(LN_EPS, name="ln")(x)


class VisionTransformer(nn.Module):
  """[N, image_size, image_size, 3] normalized float32 -> logits [N, num_classes]."""
  patch_size: int
  num_layers: int
  num_heads: int
  hidden_dim: int
  mlp_dim: int
  image_size: int = 224
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(f"this ViT takes {self.image_size}x{self.image_size} inputs (its position "
                       f"embedding's size), got {x.shape[1]}x{x.shape[2]}")
    if self.image_size % self.patch_size:
      raise ValueError(f"image_size {self.image_size} is not a multiple of the patch size "
                       f"{self.patch_size}")
    p = self.patch_size
    x = layers.conv(self.hidden_dim, p, p, name="conv_proj")(x)
    n = x.shape[0]
    x = x.reshape(n, -1, self.hidden_dim)  # row-major patches, as torch's reshape of NCHW
    token = self.param("class_token", nn.initializers.zeros, (1, 1, self.hidden_dim))
    x = jnp.concatenate([jnp.broadcast_to(token, (n, 1, self.hidden_dim)), x], axis=1)
    x = Encoder(self.num_layers, self.num_heads, self.mlp_dim, name="encoder")(x)
    return layers.dense(self.num_classes, name="heads.head")(x[:, 0])


ViT_B_16 = functools.partial(VisionTransformer, patch_size=16, num_layers=12, num_heads=12,
                             hidden_dim=768, mlp_dim=3072)
ViT_B_32 = functools.partial(VisionTransformer, patch_size=32, num_layers=12, num_heads=12,
                             hidden_dim=768, mlp_dim=3072)
ViT_L_16 = functools.partial(VisionTransformer, patch_size=16, num_layers=24, num_heads=16,
                             hidden_dim=1024, mlp_dim=4096)
ViT_L_32 = functools.partial(VisionTransformer, patch_size=32, num_layers=24, num_heads=16,
                             hidden_dim=1024, mlp_dim=4096)
ViT_H_14 = functools.partial(VisionTransformer, patch_size=14, num_layers=32, num_heads=16,
                             hidden_dim=1280, mlp_dim=5120)
