"""VGG-11/13/16/19, each with and without BatchNorm, as torchvision's ``vgg*`` / ``vgg*_bn``, NHWC.

Submodules are named after the torch state-dict paths (``features.<i>``, ``classifier.<i>``).
timm's ``vgg*`` files (the hub's ``vgg13.tv_in1k`` ...: torchvision's weights in timm's layout,
ARES-Bench's ``vgg*_normal``) are read through ``from_timm``.
"""
from __future__ import annotations

import functools
import math
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.models import layers, winograd

# timm's VGG head -> torchvision's classifier: ``pre_logits`` is a ``ConvMlp`` (a 7x7 conv on the
# 7x7 map, then a 1x1 conv), ``head.fc`` the last Linear.
TIMM_HEAD = {"pre_logits.fc1.": "classifier.0.", "pre_logits.fc2.": "classifier.3.",
             "head.fc.": "classifier.6."}

# torchvision's cfgs: an int is a 3x3 conv (pad 1, with bias) of that width, "M" a 2x2 max-pool.
CFG_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
CFG_B = (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
CFG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
CFG_E = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M")


class VGG(nn.Module):
  """[N, H, W, 3] normalized float32 (H, W >= 32) -> logits [N, num_classes]."""
  cfg: Sequence[int | str]
  batch_norm: bool = False
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    index = 0  # position in torch's ``features`` Sequential
    pooled = False  # whether the last conv already applied the following "M"
    for item, following in zip(self.cfg, [*self.cfg[1:], None]):
      if item == "M":
        x = x if pooled else layers.max_pool(x, 2, 2)
        index += 1
        continue
      pooled = following == "M"
      x = self._conv_relu(x, item, index, pooled)
      index += 3 if self.batch_norm else 2
    x = layers.flatten_chw(layers.adaptive_avg_pool(x, 7, 7))
    # Dropout (classifier.2, classifier.5) acts only in training.
    x = layers.relu(layers.dense(4096, name="classifier.0")(x))
    x = layers.relu(layers.dense(4096, name="classifier.3")(x))
    return layers.dense(self.num_classes, name="classifier.6")(x)

  def _conv_relu(self, x: jax.Array, features: int, index: int, pool: bool) -> jax.Array:
    """features.<index> (3x3 conv, pad 1) [+ BatchNorm features.<index+1>] + ReLU.

    ``pool``: + the following 2x2 max-pool, fused into the Winograd output transform
    (``winograd.pooled_output_tiles``; same values, the full-resolution map is never written,
    which is faster at 56 px and up: docs/speed.md, "Model zoo layers").  Inference BatchNorm
    is folded into the conv's kernel and bias (``FoldedBatchNorm``), so that BN-VGG takes the
    same fused path: a BN scale may be negative, which would not commute with the max, but
    folded it is part of the conv.
    """
    name = f"features.{index}"
    if not self.batch_norm:
      return winograd.Conv3x3(features, activation=layers.relu, pool=pool, name=name)(x)
    fold = FoldedBatchNorm(features, name=f"features.{index + 1}")
    return winograd.Conv3x3(features, activation=layers.relu, pool=pool, fold=fold, name=name)(x)


class FoldedBatchNorm(nn.Module):
  """``layers.batch_norm`` (inference) with the same variables (params ``scale``, ``bias``;
  batch_stats ``mean``, ``var``), returned as the per-channel (scale, shift) it applies:
  BN(y) = y * scale + shift, to be folded into the preceding conv's kernel and bias.

  Why: VGG-19-BN's 16 BN passes each read and write a full activation map; folded, they cost
  one multiply over the kernel per call.  Rounding differs from the unfolded graph at the
  float32 level (the parity test's 1e-4 bar holds with a wide margin).
  """
  features: int
  eps: float = 1e-5

  @nn.compact
  def __call__(self) -> tuple[jax.Array, jax.Array]:
    gamma = self.param("scale", nn.initializers.ones_init(), (self.features,))
    beta = self.param("bias", nn.initializers.zeros_init(), (self.features,))
    mean = self.variable("batch_stats", "mean", jnp.zeros, (self.features,)).value
    var = self.variable("batch_stats", "var", jnp.ones, (self.features,)).value
    scale = gamma * jax.lax.rsqrt(var + self.eps)
    return scale, beta - mean * scale


VGG11 = functools.partial(VGG, cfg=CFG_A)
VGG11BN = functools.partial(VGG, cfg=CFG_A, batch_norm=True)
VGG13 = functools.partial(VGG, cfg=CFG_B)
VGG13BN = functools.partial(VGG, cfg=CFG_B, batch_norm=True)
VGG16 = functools.partial(VGG, cfg=CFG_D)
VGG16BN = functools.partial(VGG, cfg=CFG_D, batch_norm=True)
VGG19 = functools.partial(VGG, cfg=CFG_E)
VGG19BN = functools.partial(VGG, cfg=CFG_E, batch_norm=True)


class _Flattened:
  """A lazy tensor (``checkpoint.TensorRef`` / ``SafetensorsRef`` / array) seen as [out, rest]:
  a conv kernel (out, in, kh, kw) as the Linear weight of its flattened (in, kh, kw) input."""

  def __init__(self, value):
    self.value = value
    self.shape = (value.shape[0], math.prod(value.shape[1:]))
    self.ndim = 2
    self.dtype = value.dtype

  def __array__(self, dtype=None, copy=None):
    del copy
    array = np.asarray(self.value).reshape(self.shape)
    return array if dtype is None else array.astype(dtype)


def from_timm(state_dict: Mapping[str, object]) -> dict:
  """timm's VGG state dict -> torchvision's keys (``TIMM_HEAD``), the convs of the head as
  Linear weights (the inverse of timm's ``_filter_fn``: a 7x7 conv on the 7x7 map is the Linear
  on its CHW flattening); a torchvision state dict is returned as it is.  Lazy values stay lazy."""
  out = {}
  for key, value in state_dict.items():
    prefix = next((p for p in TIMM_HEAD if key.startswith(p)), None)
    if prefix is None:
      out[key] = value
      continue
    key = TIMM_HEAD[prefix] + key[len(prefix):]
    out[key] = _Flattened(value) if key.endswith("weight") and len(value.shape) == 4 else value
  return out
