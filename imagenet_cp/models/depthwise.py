"""Depthwise convolution (EfficientNet-Lite) as a sum of shifted, scaled inputs, for XLA:CPU.

Why: like grouped convolutions (imagenet_cp/models/grouped.py), a ``feature_group_count = channels``
convolution leaves XLA:CPU's fast dense-convolution path.  A depthwise kxk conv is only k*k
multiply-adds per output element, so it is written out as

  y[n, i, j, c] = sum_{a, b} x_pad[n, s*i + a, s*j + b, c] * kernel[a, b, 0, c]

i.e. k*k strided slices of the padded input, each scaled per channel and summed: elementwise
work that XLA fuses into one loop, several times faster than XLA's grouped convolution on
EfficientNet-Lite0's shapes (docs/speed.md, "Model zoo layers").

The parameter is the same as ``nn.Conv(c, (k, k), feature_group_count=c)``'s: ``kernel`` of shape
(k, k, 1, c), torch's (c, 1, k, k) transposed (2, 3, 1, 0), so checkpoints convert unchanged.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int,
                   padding: Sequence[tuple[int, int]]) -> jax.Array:
  """Depthwise conv of NHWC ``x`` with ``kernel`` (k, k, 1, C), explicit (before, after) padding.

  Equals ``lax.conv_general_dilated(..., feature_group_count=C)`` up to float32 summation order.
  """
  kh, kw = kernel.shape[:2]
  xp = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
  ho = (xp.shape[1] - kh) // stride + 1
  wo = (xp.shape[2] - kw) // stride + 1
  total = None
  for a in range(kh):
    for b in range(kw):
      tap = jax.lax.slice(xp, (0, a, b, 0),
                          (xp.shape[0], a + stride * (ho - 1) + 1, b + stride * (wo - 1) + 1,
                           xp.shape[3]), (1, stride, stride, 1))
      term = tap * kernel[a, b, 0]
      total = term if total is None else total + term
  return total


class DepthwiseConv(nn.Module):
  """``torch.nn.Conv2d(c, c, kernel, stride, groups=c, bias=bias)`` on NHWC, explicit padding."""
  kernel_size: int
  stride: int
  padding: Sequence[tuple[int, int]]
  bias: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, x.shape[-1]), x.dtype)
    y = depthwise_conv(x, kernel, self.stride, self.padding)
    if self.bias:
      y = y + self.param("bias", nn.initializers.zeros, (x.shape[-1],), x.dtype)
    return y
