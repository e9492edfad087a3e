"""Grouped 3x3 convolution (ResNeXt) formulated for speed under XLA:CPU.

The parameter is the same as ``nn.Conv(feature_group_count=groups)``'s: ``kernel`` of shape
(3, 3, in/groups, out), which is torch's (out, in/groups, 3, 3) transposed (2, 3, 1, 0).
"""
from __future__ import annotations

import flax.linen as nn
import jax

from models import layers


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
    return jax.lax.conv_general_dilated(
        x, kernel, (self.stride, self.stride), layers.pads(1),
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=self.groups,
        precision=layers.HIGHEST)
