"""MNASNet-B1 0.5 / 0.75 / 1.0 / 1.3 as torchvision's ``mnasnet*``, NHWC.

torchvision scales the stem's widths with ``alpha`` since its "version 2"; the released
``mnasnet0_5`` file predates that and has the version-1 stem (32 -> 16 channels, which
torchvision's loader patches in on reading it: pytorch/pytorch#31471), so ``MNASNet0_5`` is
built with that stem (``stem``).  BatchNorm eps 1e-5.  Depthwise convs use models/depthwise.py,
1x1 convs ``layers.Conv1x1``.  Submodules are named after the torch state-dict paths
(``layers.8.0.layers.3`` ...).
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax

from imagenet_cp.models import depthwise, layers

# torchvision's _get_depths base widths, scaled by alpha (rounded up unless within 10%).
DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)
# The six stacks: (kernel, stride, expansion, repeats), outputs DEPTHS[2:].
STACKS = ((3, 2, 3, 3), (5, 2, 3, 3), (5, 2, 6, 3), (3, 1, 6, 2), (5, 2, 6, 4), (3, 1, 6, 1))


def round_to_multiple_of(value: float, divisor: int = 8, round_up_bias: float = 0.9) -> int:
  """torchvision's ``_round_to_multiple_of``: nearest multiple, one up if that lost > 10%."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  return rounded if rounded >= round_up_bias * value else rounded + divisor


def depths(alpha: float) -> tuple[int, ...]:
  return tuple(round_to_multiple_of(d * alpha, 8) for d in DEPTHS)


def _dw(x: jax.Array, kernel: int, stride: int, name: str) -> jax.Array:
  p = kernel // 2
  return depthwise.DepthwiseConv(kernel, stride, ((p, p), (p, p)), name=name)(x)


class InvertedResidual(nn.Module):
  """1x1 expand + BN + ReLU -> depthwise + BN + ReLU -> 1x1 + BN [+ input] (``layers.<i>``)."""
  out: int
  kernel: int
  stride: int
  expansion: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    mid = x.shape[-1] * self.expansion
    y = layers.relu(layers.batch_norm(name="layers.1")(layers.Conv1x1(mid, name="layers.0")(x)))
    y = _dw(y, self.kernel, self.stride, "layers.3")
    y = layers.relu(layers.batch_norm(name="layers.4")(y))
    y = layers.batch_norm(name="layers.7")(layers.Conv1x1(self.out, name="layers.6")(y))
    return x + y if self.stride == 1 and x.shape[-1] == self.out else y


class MNASNet(nn.Module):
  """[N, H, W, 3] normalized float32 -> logits [N, num_classes].

  ``stem``: the (first conv, separable conv) widths, default ``depths(alpha)[:2]``.
  """
  alpha: float
  stem: Sequence[int] | None = None
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    widths = depths(self.alpha)
    stem = tuple(self.stem) if self.stem is not None else widths[:2]
    x = layers.conv(stem[0], 3, 2, 1, bias=False, name="layers.0")(x)
    x = layers.relu(layers.batch_norm(name="layers.1")(x))
    x = layers.relu(layers.batch_norm(name="layers.4")(_dw(x, 3, 1, "layers.3")))
    x = layers.batch_norm(name="layers.7")(layers.Conv1x1(stem[1], name="layers.6")(x))
    for s, ((kernel, stride, expansion, repeats), out) in enumerate(zip(STACKS, widths[2:])):
      for r in range(repeats):
        x = InvertedResidual(out, kernel, stride if r == 0 else 1, expansion,
                             name=f"layers.{8 + s}.{r}")(x)
    x = layers.relu(layers.batch_norm(name="layers.15")(layers.Conv1x1(1280, name="layers.14")(x)))
    # classifier.0 is Dropout(0.2), training only.
    return layers.dense(self.num_classes, name="classifier.1")(x.mean(axis=(1, 2)))


MNASNet0_5 = functools.partial(MNASNet, alpha=0.5, stem=(32, 16))  # the released v1 file
MNASNet0_75 = functools.partial(MNASNet, alpha=0.75)
MNASNet1_0 = functools.partial(MNASNet, alpha=1.0)
MNASNet1_3 = functools.partial(MNASNet, alpha=1.3)
