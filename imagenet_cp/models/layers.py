"""Building blocks shared by the torchvision ports: torch-exact padding, pooling and BatchNorm.

All arrays are NHWC float32.  Every convolution and dense layer runs at
``precision=HIGHEST`` so GPUs and TPUs do not silently drop to TF32/bf16 (DESIGN.md).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp import workarounds

HIGHEST = jax.lax.Precision.HIGHEST


def pads(p: int) -> tuple[tuple[int, int], tuple[int, int]]:
  """torch's symmetric ``padding=p`` as Flax explicit padding (never 'SAME')."""
  return ((p, p), (p, p))


def conv(features: int, kernel: int, stride: int = 1, padding: int = 0, *, bias: bool = True,
         groups: int = 1, name: str | None = None) -> nn.Conv:
  """``torch.nn.Conv2d(.., kernel, stride, padding, bias, groups)``; kernel (k, k, in/groups, out)."""
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=pads(padding),
                 use_bias=bias, feature_group_count=groups, precision=HIGHEST, name=name)


class Conv1x1(nn.Module):
  """torch ``Conv2d(c, features, 1, stride, bias=bias)`` on NHWC as a matrix product.

  Same parameter as ``conv(features, 1, stride, bias=False)`` (``kernel`` (1, 1, c,
  features)), but computed as ``[N*H*W, c] @ [c, features]`` (``jnp.dot``) on the strided
  input: XLA:CPU's convolution ran 1x1 convs about 2x slower than its dot (docs/speed.md,
  "Model zoo layers").
  """
  features: int
  stride: int = 1
  bias: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (1, 1, x.shape[-1], self.features), x.dtype)
    if self.stride > 1:
      x = x[:, ::self.stride, ::self.stride, :]
    y = jnp.dot(x, kernel[0, 0], precision=HIGHEST)
    if self.bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), x.dtype)
    return y


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: int = 0) -> jax.Array:
  """``torch.nn.functional.conv2d(x, weight, stride=stride, padding=padding)`` (no bias) on NHWC
  x with an HWIO kernel, at ``HIGHEST`` precision: for ports that hold their own kernel."""
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), pads(padding),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=HIGHEST)


def dense(features: int, *, name: str | None = None) -> nn.Dense:
  """``torch.nn.Linear(.., features)``; kernel (in, out) = torch weight transposed."""
  return nn.Dense(features, precision=HIGHEST, name=name)


def batch_norm(eps: float = 1e-5, *, name: str | None = None) -> nn.BatchNorm:
  """Inference BatchNorm with torch's eps (Flax momentum 0.9 = torch momentum 0.1, training only)."""
  return nn.BatchNorm(use_running_average=True, momentum=0.9, epsilon=eps, name=name)


class SqueezeExcitation(nn.Module):
  """torchvision ``ops.misc.SqueezeExcitation`` on NHWC: x * scale_activation(fc2(activation(
  fc1(spatial mean of x)))), fc1/fc2 being 1x1 convs with bias (submodules ``fc1``, ``fc2``)."""
  squeeze: int
  activation: Callable[[jax.Array], jax.Array] = nn.relu
  scale_activation: Callable[[jax.Array], jax.Array] = jax.nn.sigmoid

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = self.activation(Conv1x1(self.squeeze, bias=True, name="fc1")(s))
    return x * self.scale_activation(Conv1x1(x.shape[-1], bias=True, name="fc2")(s))


def make_divisible(value: float, divisor: int = 8) -> int:
  """torchvision's (and TF's) ``_make_divisible``: ``value`` rounded to the nearest multiple of
  ``divisor`` (at least ``divisor``), one step up if that lost more than 10%."""
  rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * value:
    rounded += divisor
  return int(rounded)


def layer_norm(eps: float = 1e-5, *, name: str | None = None) -> nn.LayerNorm:
  """``torch.nn.LayerNorm(c, eps)`` over the last axis, with torch's two-pass variance (Flax's
  default one-pass E[x^2] - E[x]^2 loses digits on large-mean activations)."""
  return nn.LayerNorm(epsilon=eps, use_fast_variance=False, name=name)


def max_pool(x: jax.Array, kernel: int, stride: int, padding: int = 0,
             ceil_mode: bool = False) -> jax.Array:
  """``torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode)`` on [N, H, W, C].

  Padding is -inf, as in torch.  ceil_mode adds extra -inf rows/columns at the bottom/right so
  that the last partial window counts, except a window that would start inside the right padding
  (torch drops it).  Where the windows need no padding at all they are computed separably
  (``_max_pool_separable``), else with XLA's ``reduce_window``: the same values either way (a max
  is exact in any order), and each is the faster one there on XLA:CPU (with -inf padding first,
  the separable form lost; docs/speed.md, "Model zoo layers").
  """
  extra = [_ceil_extra(d, kernel, stride, padding) if ceil_mode else 0 for d in x.shape[1:3]]
  if padding == 0 and extra == [0, 0]:
    return _max_pool_separable(x, kernel, stride)
  window = (1, kernel, kernel, 1)
  strides = (1, stride, stride, 1)
  padding_config = ((0, 0), (padding, padding + extra[0]), (padding, padding + extra[1]), (0, 0))
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, padding_config)


def largest_divisor(n: int, at_most: int) -> int:
  """The largest divisor of ``n`` that is at most ``at_most`` (>= 1): chunk and group sizes
  that split a batch or a set of groups evenly."""
  size = max(1, min(n, at_most))
  while n % size:
    size -= 1
  return size


def batch_chunk(n: int, chunk: int) -> int:
  """Images per ``lax.map`` step for a batch of ``n``: the largest divisor of ``n`` that is at
  most ``chunk``, or 0 (no loop) when ``n <= chunk`` or that divisor is below ``chunk / 2``
  (e.g. a prime batch, which would otherwise run an image at a time)."""
  if n <= chunk:
    return 0
  size = largest_divisor(n, chunk)
  return size if 2 * size >= chunk else 0


def apply_in_batch_chunks(module: nn.Module, x: jax.Array, chunk: int,
                          workaround: str) -> jax.Array | None:
  """``module`` (a whole network) on at most ``chunk`` images at a time in a ``lax.map`` loop,
  where ``workaround`` (``resnet_batch_chunks``, ``convnext_batch_chunks``) is on for ``x`` and
  the batch splits (``batch_chunk``); else None: the caller runs its plain graph.

  Why: a whole batch's activations make XLA:CPU's temporary buffers hundreds of MB of fresh
  pages that every pass streams from memory; a chunk's stay in the caches (docs/speed.md,
  "CPU workarounds").
  """
  flags = workarounds.resolve(x)
  size = batch_chunk(x.shape[0], chunk)
  if not size or module.is_initializing() or not flags[workaround]:
    return None
  n = x.shape[0]
  unbound = module.clone(parent=None)
  variables = module.variables
  with workarounds.override(**flags):  # the chunks' tracers carry no devices
    logits = jax.lax.map(lambda xi: unbound.apply(variables, xi),
                         x.reshape(n // size, size, *x.shape[1:]))
  return logits.reshape(n, -1)


LOOP_MIN_BLOCKS = 2  # ``repeated_blocks`` loops over this many blocks or more


def repeated_blocks(module: nn.Module, block: Callable[..., nn.Module], names: Sequence[str],
                    x: jax.Array, loop: bool) -> jax.Array:
  """``module``'s identical blocks ``block(name=n)`` for ``n`` in ``names`` applied in order; with
  ``loop`` (the ``resnet_stage_loop`` / ``regnet_stage_loop`` workarounds) and at least
  ``LOOP_MIN_BLOCKS`` blocks as one loop, else unrolled.

  Why a loop: each block's output feeds the next block's 1x1 dot *and* its residual add.
  Unrolled, XLA:CPU fuses the cheap elementwise chain BN -> + shortcut -> ReLU of every earlier
  block into each later residual fusion instead of reading the materialized output, so a stage
  of n blocks recomputes O(n^2) BN passes (``lax.optimization_barrier`` is expanded before
  fusion and does not stop it).  A loop iteration boundary materializes each block's output.

  The loop is a ``lax.scan`` over block indices whose body ``lax.switch``es to the block's own
  apply: the parameters keep their per-block names (``layer3.1`` ...) and stay where they are
  (stacking them for a plain scan copied them on every call).  ``init`` (and so
  ``convert.variable_shapes``) runs the blocks unrolled.  Timings: docs/speed.md.
  """
  if module.is_initializing() or not loop or len(names) < LOOP_MIN_BLOCKS:
    for name in names:
      x = block(name=name)(x)
    return x
  variables = [{col: module.variables[col][name] for col in ("params", "batch_stats")}
               for name in names]
  unbound = block(parent=None)
  branches = [functools.partial(_apply_block, unbound, v) for v in variables]

  def step(y: jax.Array, index: jax.Array) -> tuple[jax.Array, None]:
    return jax.lax.switch(index, branches, y), None

  return jax.lax.scan(step, x, jnp.arange(len(names)))[0]


def _apply_block(block: nn.Module, variables: dict, x: jax.Array) -> jax.Array:
  """An unbound block applied to ``x`` with its own variables (one ``lax.switch`` branch)."""
  return block.apply(variables, x)


def _max_pool_separable(x: jax.Array, kernel: int, stride: int) -> jax.Array:
  """Unpadded, floor-mode max-pool on [N, H, W, C] as a max over ``kernel`` strided row slices
  and then over ``kernel`` strided column slices: 2k instead of k*k comparisons per output, in
  elementwise fusions that XLA fuses with the neighbouring layers (docs/speed.md)."""
  n, h, w, c = x.shape
  out_h, out_w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
  rows = [x[:, a:a + stride * (out_h - 1) + 1:stride] for a in range(kernel)]
  x = functools.reduce(jnp.maximum, rows)
  cols = [x[:, :, a:a + stride * (out_w - 1) + 1:stride] for a in range(kernel)]
  return functools.reduce(jnp.maximum, cols)


def _ceil_extra(size: int, kernel: int, stride: int, padding: int) -> int:
  """Extra trailing padding that turns floor-mode output length into torch's ceil-mode length."""
  out = math.ceil((size + 2 * padding - kernel) / stride) + 1
  if (out - 1) * stride >= size + padding:
    out -= 1
  return max((out - 1) * stride + kernel - size - 2 * padding, 0)


def avg_pool(x: jax.Array, kernel: int, stride: int) -> jax.Array:
  """``torch.nn.AvgPool2d(kernel, stride)`` without padding on [N, H, W, C]."""
  return nn.avg_pool(x, (kernel, kernel), strides=(stride, stride), padding="VALID")


def adaptive_avg_pool(x: jax.Array, out_h: int, out_w: int) -> jax.Array:
  """``torch.nn.AdaptiveAvgPool2d((out_h, out_w))`` on [N, H, W, C] -> [N, out_h, out_w, C].

  Bin i along a side of length L covers [floor(i * L / o), ceil((i + 1) * L / o)).  The common
  cases are computed directly: identity when the size already matches, a plain mean for 1x1,
  and equal non-overlapping bins as a reshape-mean.
  """
  n, h, w, c = x.shape
  if (h, w) == (out_h, out_w):
    return x
  if (out_h, out_w) == (1, 1):
    return jnp.mean(x, axis=(1, 2), keepdims=True)
  if h % out_h == 0 and w % out_w == 0:
    return x.reshape(n, out_h, h // out_h, out_w, w // out_w, c).mean(axis=(2, 4))
  rows = [_bin_mean(x, axis=1, length=h, count=out_h, index=i) for i in range(out_h)]
  x = jnp.concatenate(rows, axis=1)
  cols = [_bin_mean(x, axis=2, length=w, count=out_w, index=j) for j in range(out_w)]
  return jnp.concatenate(cols, axis=2)


def _bin_mean(x: jax.Array, axis: int, length: int, count: int, index: int) -> jax.Array:
  start = (index * length) // count
  stop = -((-(index + 1) * length) // count)
  return jnp.mean(jax.lax.slice_in_dim(x, start, stop, axis=axis), axis=axis, keepdims=True)


def flatten_chw(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> [N, C*H*W] in torch's NCHW flatten order, so torch's first FC weight fits."""
  return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)


relu = nn.relu
relu6 = functools.partial(jnp.clip, min=0.0, max=6.0)
silu = nn.silu
gelu = functools.partial(jax.nn.gelu, approximate=False)  # torch nn.GELU(): the erf form
