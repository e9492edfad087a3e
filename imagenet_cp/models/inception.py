"""Inception V3 as torchvision's ``inception_v3``, NHWC; native input 299 px.

torchvision's ImageNet weights (ported from TF) are used with ``transform_input=True``
(``googlenet.transform_input``, reproduced here).  The released file also holds the auxiliary
classifier (``AuxLogits``), which acts only in training; the zoo skips its keys.  Average pools
are 3x3/1 with zero padding counted (torch's ``count_include_pad=True``).  Submodules are named
after the torch state-dict paths (``Mixed_6b.branch7x7_2.conv`` ...).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import googlenet, layers


class BasicConv(nn.Module):
  """torchvision's ``BasicConv2d`` with a (kh, kw) kernel and (ph, pw) padding: conv (no bias) +
  BatchNorm(eps 1e-3) + ReLU (submodules ``conv``, ``bn``)."""
  features: int
  kernel: Sequence[int] = (1, 1)
  stride: int = 1
  padding: Sequence[int] = (0, 0)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if tuple(self.kernel) == (1, 1) and tuple(self.padding) == (0, 0):
      y = layers.Conv1x1(self.features, self.stride, name="conv")(x)
    else:
      ph, pw = self.padding
      y = nn.Conv(self.features, tuple(self.kernel), strides=(self.stride, self.stride),
                  padding=((ph, ph), (pw, pw)), use_bias=False, precision=layers.HIGHEST,
                  name="conv")(x)
    return layers.relu(layers.batch_norm(1e-3, name="bn")(y))


def _conv(features: int, kernel: int | tuple[int, int] = 1, stride: int = 1,
          padding: int | tuple[int, int] = 0, *, name: str) -> BasicConv:
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  padding = (padding, padding) if isinstance(padding, int) else padding
  return BasicConv(features, kernel, stride, padding, name=name)


def avg_pool_3x3(x: jax.Array) -> jax.Array:
  """``F.avg_pool2d(x, 3, stride=1, padding=1)``: the zero padding counts (always / 9)."""
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return nn.avg_pool(xp, (3, 3), strides=(1, 1), padding="VALID")


class InceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = _conv(64, name="branch1x1")(x)
    b5 = _conv(64, 5, padding=2, name="branch5x5_2")(_conv(48, name="branch5x5_1")(x))
    b3 = _conv(96, 3, padding=1, name="branch3x3dbl_2")(_conv(64, name="branch3x3dbl_1")(x))
    b3 = _conv(96, 3, padding=1, name="branch3x3dbl_3")(b3)
    bp = _conv(self.pool_features, name="branch_pool")(avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = _conv(384, 3, 2, name="branch3x3")(x)
    bd = _conv(96, 3, padding=1, name="branch3x3dbl_2")(_conv(64, name="branch3x3dbl_1")(x))
    bd = _conv(96, 3, 2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, layers.max_pool(x, 3, 2)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c7 = self.channels_7x7
    b1 = _conv(192, name="branch1x1")(x)
    b7 = _conv(c7, name="branch7x7_1")(x)
    b7 = _conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = _conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = _conv(c7, name="branch7x7dbl_1")(x)
    bd = _conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = _conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = _conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = _conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = _conv(192, name="branch_pool")(avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b3 = _conv(320, 3, 2, name="branch3x3_2")(_conv(192, name="branch3x3_1")(x))
    b7 = _conv(192, name="branch7x7x3_1")(x)
    b7 = _conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = _conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = _conv(192, 3, 2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, layers.max_pool(x, 3, 2)], axis=-1)


class InceptionE(nn.Module):
  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = _conv(320, name="branch1x1")(x)
    b3 = _conv(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([_conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          _conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = _conv(384, 3, padding=1, name="branch3x3dbl_2")(_conv(448, name="branch3x3dbl_1")(x))
    bd = jnp.concatenate([_conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          _conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    bp = _conv(192, name="branch_pool")(avg_pool_3x3(x))
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class InceptionV3(nn.Module):
  """[N, H, W, 3] ImageNet-normalized float32 (H, W >= 75; native 299) -> logits [N, classes]."""
  transform_input: bool = True
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.transform_input:
      x = googlenet.transform_input(x)
    x = _conv(32, 3, 2, name="Conv2d_1a_3x3")(x)
    x = _conv(32, 3, name="Conv2d_2a_3x3")(x)
    x = _conv(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
    x = layers.max_pool(x, 3, 2)
    x = _conv(80, name="Conv2d_3b_1x1")(x)
    x = _conv(192, 3, name="Conv2d_4a_3x3")(x)
    x = layers.max_pool(x, 3, 2)
    x = InceptionA(32, name="Mixed_5b")(x)
    x = InceptionA(64, name="Mixed_5c")(x)
    x = InceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = InceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = InceptionE(name="Mixed_7b")(x)
    x = InceptionE(name="Mixed_7c")(x)
    # Dropout(0.5) acts only in training.
    return layers.dense(self.num_classes, name="fc")(x.mean(axis=(1, 2)))
