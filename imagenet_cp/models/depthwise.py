"""Depthwise convolution (EfficientNet-Lite) as a sum of shifted, scaled inputs, for XLA:CPU.

Why: like grouped convolutions (imagenet_cp/models/grouped.py), a ``feature_group_count = channels``
convolution leaves XLA:CPU's fast dense-convolution path.  A depthwise kxk conv is only k*k
multiply-adds per output element, so it is written out as

  y[n, i, j, c] = sum_{a, b} x_pad[n, s*i + a, s*j + b, c] * kernel[a, b, 0, c]

i.e. k*k strided slices of the padded input, each scaled per channel and summed: elementwise
work that XLA fuses into one loop, several times faster than XLA's grouped convolution on
EfficientNet-Lite0's shapes (docs/speed.md, "Model zoo layers").

Its gradient is written the same way (``jax.custom_vjp``).  Autodiff would transpose each
strided slice into a pad and sum k*k padded copies of the output gradient, which XLA:CPU ran
10-20x slower than the forward (EfficientNet-Lite0's input gradient, the inner loop of every
attack, was 6.7x its forward; docs/attacks.md).  The input gradient is instead a correlation of
the output gradient with the flipped kernel, computed per stride phase (the outputs whose
position is ``r`` mod ``stride`` see only the taps ``a = r`` mod ``stride``) and interleaved:
k*k multiply-adds per input element again.  The kernel gradient is k*k reductions.

The parameter is the same as ``nn.Conv(c, (k, k), feature_group_count=c)``'s: ``kernel`` of shape
(k, k, 1, c), torch's (c, 1, k, k) transposed (2, 3, 1, 0), so checkpoints convert unchanged.
"""
from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.ops import fusion


def _tap(xp: jax.Array, a: int, b: int, stride: int, ho: int, wo: int) -> jax.Array:
  """xp[:, a + stride*i, b + stride*j, :] for i < ho, j < wo."""
  n, _, _, c = xp.shape
  return jax.lax.slice(xp, (0, a, b, 0),
                       (n, a + stride * (ho - 1) + 1, b + stride * (wo - 1) + 1, c),
                       (1, stride, stride, 1))


def _correlate(xp: jax.Array, kernel: jax.Array, stride: int, ho: int, wo: int) -> jax.Array:
  """sum_{a,b} xp[:, stride*i + a, stride*j + b, :] * kernel[a, b, 0] for i < ho, j < wo."""
  total = None
  for a in range(kernel.shape[0]):
    for b in range(kernel.shape[1]):
      term = _tap(xp, a, b, stride, ho, wo) * kernel[a, b, 0]
      total = term if total is None else total + term
  return total


def _pad_hw(x: jax.Array, rows: tuple[int, int], cols: tuple[int, int]) -> jax.Array:
  return jnp.pad(x, ((0, 0), tuple(rows), tuple(cols), (0, 0)))


def _out_size(padded: int, k: int, stride: int) -> int:
  return (padded - k) // stride + 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int,
                   padding: Sequence[tuple[int, int]]) -> jax.Array:
  """Depthwise conv of NHWC ``x`` with ``kernel`` (k, k, 1, C), explicit (before, after) padding.

  Equals ``lax.conv_general_dilated(..., feature_group_count=C)`` up to float32 summation order,
  and so do its gradients.
  """
  xp = _pad_hw(x, padding[0], padding[1])
  kh, kw = kernel.shape[:2]
  return _correlate(xp, kernel, stride, _out_size(xp.shape[1], kh, stride),
                    _out_size(xp.shape[2], kw, stride))


def _phase_taps(k: int, stride: int, phase: int) -> int:
  """How many of the k taps a = phase, phase + stride, ... exist."""
  return max(0, -(-(k - phase) // stride))


def input_gradient(g: jax.Array, kernel: jax.Array, stride: int,
                   padding: Sequence[tuple[int, int]], size: tuple[int, int]) -> jax.Array:
  """d(sum depthwise_conv(x) * g)/dx for x of spatial ``size``, as gathered taps per phase.

  With xp = pad(x), y[i] = sum_a xp[stride*i + a] k[a]; so xp's row stride*m + r receives
  g[m - t] k[r + stride*t] for each tap t of phase r: a stride-1 correlation of g (padded
  before by that phase's taps - 1) with the phase's taps reversed.  Phases are interleaved
  back into rows (and likewise columns), then the padding is cropped off.
  """
  kh, kw = kernel.shape[:2]
  (top, bottom), (left, right) = padding
  rows, cols = size[0] + top + bottom, size[1] + left + right
  m_rows, m_cols = -(-rows // stride), -(-cols // stride)
  phases = []
  for r in range(stride):
    row = []
    for q in range(stride):
      tr, tq = _phase_taps(kh, stride, r), _phase_taps(kw, stride, q)
      if tr == 0 or tq == 0:
        row.append(jnp.zeros(g.shape[:1] + (m_rows, m_cols) + g.shape[3:], g.dtype))
        continue
      sub = kernel[r::stride, q::stride][::-1, ::-1]
      gp = _pad_hw(g, (tr - 1, max(0, m_rows - g.shape[1])), (tq - 1, max(0, m_cols - g.shape[2])))
      row.append(_correlate(gp, sub, 1, m_rows, m_cols))
    phases.append(jnp.stack(row, axis=3))       # [n, m_rows, m_cols, q, c]
  full = jnp.stack(phases, axis=2)              # [n, m_rows, r, m_cols, q, c]
  n, _, _, _, _, c = full.shape
  full = full.reshape(n, m_rows * stride, m_cols * stride, c)
  return full[:, top:top + size[0], left:left + size[1]]


def kernel_gradient(x: jax.Array, g: jax.Array, k: tuple[int, int], stride: int,
                    padding: Sequence[tuple[int, int]]) -> jax.Array:
  """d(sum depthwise_conv(x) * g)/dkernel: per tap, the sum of tap * g over batch and space."""
  xp = _pad_hw(x, padding[0], padding[1])
  ho, wo = g.shape[1:3]
  rows = [jnp.stack([jnp.sum(_tap(xp, a, b, stride, ho, wo) * g, axis=(0, 1, 2))
                     for b in range(k[1])]) for a in range(k[0])]
  return jnp.stack(rows)[:, :, None, :]


def _forward(x, kernel, stride, padding):
  return depthwise_conv(x, kernel, stride, padding), (x, kernel)


def _backward(stride, padding, residuals, g):
  x, kernel = residuals
  return (input_gradient(g, kernel, stride, padding, x.shape[1:3]),
          kernel_gradient(x, g, kernel.shape[:2], stride, padding))


depthwise_conv.defvjp(_forward, _backward)


class DepthwiseConv(nn.Module):
  """``torch.nn.Conv2d(c, c, kernel, stride, groups=c, bias=bias)`` on NHWC, explicit padding."""
  kernel_size: int
  stride: int
  padding: Sequence[tuple[int, int]]
  bias: bool = False
  # Output kept in memory (the ``computed_apart`` workaround, ``fusion.carried_apart``) for a
  # consumer that reads it several times, e.g. ConvNeXt's LayerNorm.  Needs an output of the
  # input's shape.
  apart: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, 1, x.shape[-1]), x.dtype)
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],), x.dtype) if self.bias else None

    def conv(v: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
      y = depthwise_conv(v, kernel, self.stride, self.padding)
      return y if bias is None else y + bias

    if self.apart:
      return fusion.carried_apart(conv, x, kernel, bias)
    return conv(x, kernel, bias)
