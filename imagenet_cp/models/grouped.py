"""Grouped 3x3 convolution (ResNeXt) formulated for speed under XLA:CPU.

Why: XLA:CPU has no fast grouped-convolution kernel.  A ``feature_group_count`` convolution
leaves the Eigen (im2col + GEMM) path that dense convolutions take, and on ResNeXt-50's shapes
it ran slower than PyTorch's grouped conv and even slower than a *dense* convolution with 32x
the FLOPs (per-layer timings: docs/speed.md, "Model zoo layers").

So the convolution is computed as ``groups / m`` *dense* convolutions over slices of about
``GROUP_WIDTH`` channels, each with a block-diagonal kernel that merges ``m`` original groups
(``m`` times the minimal FLOPs, but GEMM-shaped work).  Slicing per group (``m = 1``, 4-channel
GEMMs) and batched-matmul/im2col formulations measured slower.

The parameter is the same as ``nn.Conv(feature_group_count=groups)``'s: ``kernel`` of shape
(3, 3, in/groups, out), torch's (out, in/groups, 3, 3) transposed (2, 3, 1, 0).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import layers

GROUP_WIDTH = 32  # input channels per dense convolution; 32 measured best of 32/64/128


def groups_per_conv(groups: int, group_in: int, width: int = GROUP_WIDTH) -> int:
  """How many original groups one dense convolution merges: the largest divisor m of ``groups``
  with m * group_in <= max(width, group_in)."""
  return layers.largest_divisor(groups, width // group_in)


def block_diagonal(kernel: jax.Array, groups: int, m: int) -> jax.Array:
  """(kh, kw, cin/g, cout) grouped kernel -> (groups/m, kh, kw, m*cin/g, m*cout/g) dense kernels.

  Dense kernel j is block-diagonal: its block (a, b) is group j*m + a's kernel if a == b, else 0.
  """
  kh, kw, cg, cout = kernel.shape
  og = cout // groups
  k = kernel.reshape(kh, kw, cg, groups // m, m, og)
  eye = jnp.eye(m, dtype=kernel.dtype)
  dense = jnp.einsum("hwcjao,ab->jhwacbo", k, eye, precision=layers.HIGHEST)
  return dense.reshape(groups // m, kh, kw, m * cg, m * og)


def grouped_conv(x: jax.Array, kernel: jax.Array, groups: int, stride: int, padding: int,
                 width: int = GROUP_WIDTH) -> jax.Array:
  """torch's grouped ``conv2d`` on NHWC x [N, H, W, C] with kernel (kh, kw, C/groups, out).

  The ``groups / m`` dense convolutions run in a ``lax.map`` loop over channel slices rather
  than unrolled: the same speed, but one compiled convolution per layer instead of up to 32,
  which compiles ResNeXt-101 several times faster (docs/speed.md, "Model zoo layers").
  """
  cg = kernel.shape[2]
  m = groups_per_conv(groups, cg, width)
  dense = block_diagonal(kernel, groups, m)
  n, h, w, _ = x.shape
  slices = jnp.moveaxis(x.reshape(n, h, w, groups // m, m * cg), 3, 0)

  def dense_conv(args):
    xi, ki = args
    return layers.conv2d(xi, ki, stride, padding)

  if groups == m:
    return dense_conv((slices[0], dense[0]))
  ys = jax.lax.map(dense_conv, (slices, dense))  # [groups/m, N, Ho, Wo, m * out/groups]
  return jnp.moveaxis(ys, 0, 3).reshape(n, ys.shape[2], ys.shape[3], -1)


class GroupedConv3x3(nn.Module):
  """torch ``Conv2d(c, features, 3, stride, padding=1, groups=groups, bias=False)`` on NHWC."""
  features: int
  groups: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    cin = x.shape[-1]
    if cin % self.groups or self.features % self.groups:
      raise ValueError(f"channels {cin}->{self.features} are not divisible by groups={self.groups}")
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (3, 3, cin // self.groups, self.features), x.dtype)
    return grouped_conv(x, kernel, self.groups, self.stride, 1)
