"""Transformer pieces shared by the ViT, Swin and MaxViT ports: torch ``nn.Linear`` parameters,
multi-head attention, the ``MLP`` block and the relative-position index of a window.

Tokens are [..., S, C] float32; every product runs at ``precision=HIGHEST``.  Dropout and
stochastic depth act only in training and are left out (these ports are inference-only).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.models import layers

HIGHEST = layers.HIGHEST


class LinearParams(nn.Module):
  """A torch ``nn.Linear(in, features, bias)``'s parameters, ``kernel`` (in, features) and
  ``bias``, returned instead of applied: for layers that change the bias before use (Swin V2)
  or split the product (attention).  Same variables as ``layers.dense``."""
  features: int
  use_bias: bool = True

  @nn.compact
  def __call__(self, in_features: int) -> tuple[jax.Array, jax.Array | None]:
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (in_features, self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
    return kernel, bias


def linear(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None) -> jax.Array:
  """``x @ kernel + bias`` over the last axis at HIGHEST precision."""
  y = jnp.dot(x, kernel, precision=HIGHEST)
  return y if bias is None else y + bias


def attend(q: jax.Array, k: jax.Array, v: jax.Array, bias: jax.Array | None = None) -> jax.Array:
  """softmax(q k^T + bias) v over [..., heads, S, head_dim] (scaling is the caller's: the
  ports scale q, k or the logits differently)."""
  logits = jnp.einsum("...id,...jd->...ij", q, k, precision=HIGHEST)
  if bias is not None:
    logits = logits + bias
  return jnp.einsum("...ij,...jd->...id", jax.nn.softmax(logits, axis=-1), v, precision=HIGHEST)


def self_attention(qkv: jax.Array, heads: int) -> jax.Array:
  """Fused q|k|v projections [..., S, 3c] -> attention output [..., S, c] before the output
  projection, q scaled by head_dim^-1/2: torch's ``nn.MultiheadAttention`` and timm's
  ``Attention`` (whose ``qkv`` Linear has ``in_proj_weight``'s layout)."""
  c = qkv.shape[-1] // 3
  q, k, v = (split_heads(t, heads) for t in jnp.split(qkv, 3, axis=-1))
  return merge_heads(attend(q * (c // heads) ** -0.5, k, v))


def split_heads(x: jax.Array, heads: int) -> jax.Array:
  """[..., S, heads * d] -> [..., heads, S, d]."""
  *lead, s, c = x.shape
  return jnp.swapaxes(x.reshape(*lead, s, heads, c // heads), -2, -3)


def merge_heads(x: jax.Array) -> jax.Array:
  """[..., heads, S, d] -> [..., S, heads * d]."""
  x = jnp.swapaxes(x, -2, -3)
  return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


class MLP(nn.Module):
  """torchvision ``ops.MLP(c, [hidden, c], activation_layer=nn.GELU)`` at inference:
  ``Linear`` (``0``) -> exact GELU -> ``Linear`` (``3``); the Dropouts (``2``, ``4``) are
  identities.  ``names`` renames the two Linears (timm's ``Mlp``: ``fc1``, ``fc2``)."""
  hidden: int
  names: tuple[str, str] = ("0", "3")

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = layers.gelu(layers.dense(self.hidden, name=self.names[0])(x))
    return layers.dense(x.shape[-1], name=self.names[1])(y)


def relative_position_index(height: int, width: int) -> np.ndarray:
  """[h*w, h*w] int index into a ((2h-1) (2w-1))-row relative-position table, as torchvision
  builds it (Swin's ``define_relative_position_index``, MaxViT's
  ``_get_relative_position_index``): row-major (dy + h - 1) * (2w - 1) + (dx + w - 1)."""
  coords = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij")).reshape(2, -1)
  rel = coords[:, :, None] - coords[:, None, :]
  return (rel[0] + height - 1) * (2 * width - 1) + (rel[1] + width - 1)


def relative_position_bias(table: jax.Array, index: np.ndarray) -> jax.Array:
  """[rows, heads] table -> [heads, N, N] bias for the [N, N] ``index``."""
  n = index.shape[0]
  return jnp.transpose(table[index.reshape(-1)].reshape(n, n, -1), (2, 0, 1))
