"""timm's ``VisionTransformer`` (ViT-S/B/L, DeiT-S/B, MAE-style fine-tunes), NHWC input.

timm 1.0's ``vision_transformer.py`` at inference: patchify conv (bias) -> class token
prepended, then the learned position embedding added (``no_embed_class=False``) -> pre-norm
``Block``s (LayerNorm eps 1e-6; fused ``qkv`` Linear with bias, head_dim^-1/2 scaling,
``proj``; GELU ``Mlp`` ``fc1``/``fc2``; optional ``LayerScale`` ``ls1``/``ls2`` when
``init_values`` is set) -> ``norm`` -> pool (``token``: the class token; ``avg``: the mean of
the patch tokens) -> ``fc_norm`` (a LayerNorm where ``fc_norm`` is on, timm's default for
``avg``: the final ``norm`` is then absent, as in MAE's fine-tunes; ``fc_norm_twice``: applied
twice, as ARES-Bench runs its MAE models) -> ``head``.

The math of a block is torchvision's ViT's (``models/vit.py``); only the parameter names
differ.  Submodules are named after timm's state-dict paths (``patch_embed.proj``,
``blocks.0.attn.qkv``, ``head`` ...), so ``models/convert.py`` maps a timm state dict as is.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import attention, layers

LN_EPS = 1e-6
POOLS = ("token", "avg")


class Attention(nn.Module):
  """timm ``Attention``: ``qkv`` Linear (3c, c) -> multi-head attention -> ``proj``."""
  num_heads: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    qkv = layers.dense(3 * c, name="qkv")(x)
    return layers.dense(c, name="proj")(attention.self_attention(qkv, self.num_heads))


class LayerScale(nn.Module):
  """timm ``LayerScale``: x * ``gamma`` (c,)."""
  init_values: float

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return x * self.param("gamma", nn.initializers.constant(self.init_values), (x.shape[-1],))


class Block(nn.Module):
  """x + ls1(attn(norm1(x))), then + ls2(mlp(norm2(.))); drop paths are inference identities."""
  num_heads: int
  mlp_dim: int
  init_values: float | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = Attention(self.num_heads, name="attn")(layers.layer_norm(LN_EPS, name="norm1")(x))
    x = x + self._scale(y, "ls1")
    y = attention.MLP(self.mlp_dim, ("fc1", "fc2"), name="mlp")(
        layers.layer_norm(LN_EPS, name="norm2")(x))
    return x + self._scale(y, "ls2")

  def _scale(self, y: jax.Array, name: str) -> jax.Array:
    return y if self.init_values is None else LayerScale(self.init_values, name=name)(y)


class VisionTransformer(nn.Module):
  """[N, image_size, image_size, 3] normalized float32 -> logits [N, num_classes]."""
  patch_size: int
  embed_dim: int
  depth: int
  num_heads: int
  mlp_ratio: float = 4.0
  image_size: int = 224
  num_classes: int = 1000
  global_pool: str = "token"
  fc_norm: bool | None = None  # None: timm's default, on for "avg" pooling
  init_values: float | None = None  # LayerScale's initial value; None: no LayerScale
  # ARES-Bench's MAE models apply ``fc_norm`` twice (its ``forward_features`` pools and
  # normalises, then timm >= 0.6's ``forward_head`` normalises again), as ARES runs them.
  fc_norm_twice: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    self._check(x)
    p, d = self.patch_size, self.embed_dim
    x = layers.conv(d, p, p, name="patch_embed.proj")(x)
    n = x.shape[0]
    x = x.reshape(n, -1, d)  # row-major patches, as timm's flatten(2) of NCHW
    token = self.param("cls_token", nn.initializers.zeros, (1, 1, d))
    x = jnp.concatenate([jnp.broadcast_to(token, (n, 1, d)), x], axis=1)
    x = x + self.param("pos_embed", nn.initializers.normal(0.02), (1,) + x.shape[1:])
    for i in range(self.depth):
      x = Block(self.num_heads, int(d * self.mlp_ratio), self.init_values, name=f"blocks.{i}")(x)
    use_fc_norm = self.global_pool == "avg" if self.fc_norm is None else self.fc_norm
    if not use_fc_norm:
      x = layers.layer_norm(LN_EPS, name="norm")(x)
    x = x[:, 0] if self.global_pool == "token" else x[:, 1:].mean(axis=1)
    if use_fc_norm:
      fc_norm = layers.layer_norm(LN_EPS, name="fc_norm")
      x = fc_norm(fc_norm(x)) if self.fc_norm_twice else fc_norm(x)
    return layers.dense(self.num_classes, name="head")(x)

  def _check(self, x: jax.Array) -> None:
    if self.global_pool not in POOLS:
      raise ValueError(f"global_pool must be one of {POOLS}, got {self.global_pool!r}")
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(f"this ViT takes {self.image_size}x{self.image_size} inputs (its position "
                       f"embedding's size), got {x.shape[1]}x{x.shape[2]}")


# timm's ``vit_*_patch16_224`` / ``deit_*_patch16_224`` model functions' hyper-parameters.
ViT_S_16 = functools.partial(VisionTransformer, patch_size=16, embed_dim=384, depth=12,
                             num_heads=6)
ViT_B_16 = functools.partial(VisionTransformer, patch_size=16, embed_dim=768, depth=12,
                             num_heads=12)
ViT_L_16 = functools.partial(VisionTransformer, patch_size=16, embed_dim=1024, depth=24,
                             num_heads=16)
