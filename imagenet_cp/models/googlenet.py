"""GoogLeNet (Inception v1) as torchvision's ``googlenet``, NHWC.

torchvision's ImageNet weights were ported from TF and are used with ``transform_input=True``:
the ImageNet-normalized input is re-normalized to (x - 0.5) / 0.5 per channel inside the
network, reproduced here (``transform_input``).  The released file also holds the two auxiliary
classifiers (``aux1``, ``aux2``), which act only in training; the zoo skips their keys.  As in
torchvision, the "5x5" branch uses a 3x3 convolution.  Submodules are named after the torch
state-dict paths (``inception3a.branch2.1.conv`` ...).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import layers

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def transform_input(x: jax.Array) -> jax.Array:
  """torchvision's ``_transform_input``: ImageNet-normalized x -> (pixels - 0.5) / 0.5 per channel."""
  scale = jnp.asarray([s / 0.5 for s in IMAGENET_STD], x.dtype)
  shift = jnp.asarray([(m - 0.5) / 0.5 for m in IMAGENET_MEAN], x.dtype)
  return x * scale + shift


class BasicConv(nn.Module):
  """torchvision's ``BasicConv2d``: conv ``conv`` (no bias) + BatchNorm ``bn`` (eps 1e-3) + ReLU."""
  features: int
  kernel: int
  stride: int = 1
  padding: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.kernel == 1 and self.padding == 0:
      y = layers.Conv1x1(self.features, self.stride, name="conv")(x)
    else:
      y = layers.conv(self.features, self.kernel, self.stride, self.padding, bias=False,
                      name="conv")(x)
    return layers.relu(layers.batch_norm(1e-3, name="bn")(y))


class Inception(nn.Module):
  """1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 (torchvision's "5x5") | 3x3/1 max-pool -> 1x1, concatenated."""
  ch1x1: int
  ch3x3red: int
  ch3x3: int
  ch5x5red: int
  ch5x5: int
  pool_proj: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b1 = BasicConv(self.ch1x1, 1, name="branch1")(x)
    b2 = BasicConv(self.ch3x3, 3, padding=1, name="branch2.1")(
        BasicConv(self.ch3x3red, 1, name="branch2.0")(x))
    b3 = BasicConv(self.ch5x5, 3, padding=1, name="branch3.1")(
        BasicConv(self.ch5x5red, 1, name="branch3.0")(x))
    b4 = BasicConv(self.pool_proj, 1, name="branch4.1")(layers.max_pool(x, 3, 1, 1, ceil_mode=True))
    return jnp.concatenate([b1, b2, b3, b4], axis=-1)


# torchvision's Inception blocks: name -> (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj).
_BLOCKS = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
  """[N, H, W, 3] ImageNet-normalized float32 (H, W >= 15) -> logits [N, num_classes]."""
  transform_input: bool = True
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.transform_input:
      x = transform_input(x)
    x = BasicConv(64, 7, 2, 3, name="conv1")(x)
    x = layers.max_pool(x, 3, 2, ceil_mode=True)
    x = BasicConv(64, 1, name="conv2")(x)
    x = BasicConv(192, 3, padding=1, name="conv3")(x)
    x = layers.max_pool(x, 3, 2, ceil_mode=True)
    for block in _BLOCKS:
      x = Inception(*_BLOCKS[block], name=f"inception{block}")(x)
      if block == "3b":
        x = layers.max_pool(x, 3, 2, ceil_mode=True)
      elif block == "4e":
        x = layers.max_pool(x, 2, 2, ceil_mode=True)
    # Dropout(0.2) acts only in training.
    return layers.dense(self.num_classes, name="fc")(x.mean(axis=(1, 2)))
