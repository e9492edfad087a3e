"""3x3 stride-1 convolution as Winograd F(2x2, 3x3), formulated for speed under XLA:CPU.

Why: XLA:CPU's ``conv_general_dilated`` (Eigen's spatial convolution) is slower than PyTorch's
oneDNN convolution on VGG's 3x3 layers with 256-512 channels at 56x56 and 28x28, which hold most
of VGG-19's FLOPs.  Winograd's minimal filtering F(2x2, 3x3) computes each 2x2 output tile from
a 4x4 input tile with 16 elementwise products instead of 36, so the convolution becomes

  input transform   V = B^T d B   for every 4x4 tile d (stride 2)  -- elementwise, fused by XLA
  16 matmuls        M[t] = V[t] @ U[t],  U = G g G^T (the kernel, transformed once per call)
  output transform  Y = A^T M A   -> the 2x2 output tile, + bias (+ an activation), fused

i.e. 2.25x fewer multiply-adds than direct convolution, all of them in GEMMs.  For a whole
batch at 224 px, V and M are ~1.6 GB each (batch 32) and that form ran several times slower
than XLA's convolution; the batch is therefore processed a few images at a time in a
``lax.map`` loop, whose buffers are reused.

F(2x2, 3x3)'s transforms only add, subtract and halve, so it is as accurate as direct float32
convolution (max|diff| / max|out| ~ 5e-7 per layer, as XLA's convolution); F(4x4, 3x3) saves
more arithmetic but its error grew to ~1.5e-5 per layer and it was no faster here (its larger
transforms are memory-bound).

Used by VGG (every 3x3 conv allowed by ``use_winograd``: all but the first at 224 px), where it
beats XLA's convolution from 56 px up.  ResNet, DenseNet and SqueezeNet keep XLA's convolution:
their stride-1 3x3 convs are a small share of their time and the whole models were no faster
with Winograd.  Per-layer and whole-model timings: docs/speed.md, "Model zoo layers".
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.models import layers

# Lavin & Gray (2016) F(2x2, 3x3): y = A^T [(G g G^T) * (B^T d B)] A, a correlation like torch's.
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)
TILE = 4   # input tile side
OUT = 2    # output tile side

CHUNK_IMAGES = 2  # images per loop iteration (best or tied of 1/2/4/8 on every VGG shape) ...
MIN_TILES = 512   # ... but at least this many tiles (GEMM rows) per iteration on small images


def transform_kernel(kernel: jax.Array) -> jax.Array:
  """(3, 3, cin, cout) HWIO kernel -> U = G g G^T as (16, cin, cout), row-major over the tile."""
  g = jnp.asarray(G)
  u = jnp.einsum("ir,rsck,js->ijck", g, kernel, g, precision=layers.HIGHEST)
  return u.reshape(TILE * TILE, *kernel.shape[2:])


def _combine(coefficients: np.ndarray, terms: list[jax.Array]) -> jax.Array:
  """sum_i coefficients[i] * terms[i], skipping zeros and multiplications by +-1."""
  total = None
  for c, term in zip(coefficients, terms):
    if c == 0:
      continue
    term = term if c == 1 else -term if c == -1 else term * c
    total = term if total is None else total + term
  return total


def input_tiles(x: jax.Array) -> jax.Array:
  """[N, H, W, C] -> V = B^T d B for every 4x4 tile of the 1-padded input: (16, N*Th*Tw, C).

  Tile (r, s) covers padded rows 2r..2r+3 and columns 2s..2s+3; Th = ceil(H / 2).  The input is
  zero-padded by 1 on top/left (torch's padding) and by 1 or 2 at the bottom/right so that the
  tiles cover it; the extra outputs are cropped in ``output_tiles``.
  """
  n, h, w, c = x.shape
  th, tw = -(-h // OUT), -(-w // OUT)
  xp = jnp.pad(x, ((0, 0), (1, th * OUT + 1 - h), (1, tw * OUT + 1 - w), (0, 0)))
  rows = [xp[:, a:a + OUT * (th - 1) + 1:OUT] for a in range(TILE)]  # [N, Th, W+pad, C] each
  tiles = []
  for row in (_combine(b, rows) for b in B_T):
    cols = [row[:, :, a:a + OUT * (tw - 1) + 1:OUT] for a in range(TILE)]  # [N, Th, Tw, C]
    tiles += [_combine(b, cols) for b in B_T]
  return jnp.stack(tiles).reshape(TILE * TILE, n * th * tw, c)


def output_tiles(m: jax.Array, n: int, h: int, w: int) -> jax.Array:
  """M (16, N*Th*Tw, K) -> Y = A^T M A assembled into [N, H, W, K] (extra rows/cols cropped)."""
  th, tw = -(-h // OUT), -(-w // OUT)
  m = m.reshape(TILE, TILE, n, th, tw, m.shape[-1])
  half = [_combine(a, [m[i] for i in range(TILE)]) for a in A_T]  # [4 (j), N, Th, Tw, K] each
  y = jnp.stack([jnp.stack([_combine(a, [p[j] for j in range(TILE)]) for a in A_T])
                 for p in half])                                   # [2, 2, N, Th, Tw, K]
  y = jnp.transpose(y, (2, 3, 0, 4, 1, 5)).reshape(n, th * OUT, tw * OUT, -1)
  return y[:, :h, :w]


def pooled_output_tiles(m: jax.Array, n: int, h: int, w: int) -> jax.Array:
  """M (16, N*Th*Tw, K) -> ``MaxPool2d(2, 2)`` of Y = A^T M A: [N, H // 2, W // 2, K].

  A 2x2 output tile is exactly one floor-mode 2x2/2 pooling window, so the pool is the max of
  the tile's four outputs: the full-resolution output is never assembled (no interleaving
  transpose, 4x less written), and a cropped odd last row/column of tiles is dropped as torch
  drops its partial window.
  """
  th, tw = -(-h // OUT), -(-w // OUT)
  m = m.reshape(TILE, TILE, n, th, tw, m.shape[-1])
  half = [_combine(a, [m[i] for i in range(TILE)]) for a in A_T]  # [4 (j), N, Th, Tw, K] each
  y = functools.reduce(jnp.maximum, [_combine(a, [p[j] for j in range(TILE)])
                                     for p in half for a in A_T])
  return y[:, :h // OUT, :w // OUT]


def chunk_size(batch: int, tiles: int, chunk: int = CHUNK_IMAGES) -> int:
  """Images per loop iteration: the largest divisor of ``batch`` that is at most
  max(chunk, ceil(MIN_TILES / tiles)), ``tiles`` being the 2x2 output tiles of one image."""
  return layers.largest_divisor(batch, max(chunk, -(-MIN_TILES // tiles)))


def conv3x3(x: jax.Array, kernel: jax.Array, bias: jax.Array | None = None,
            activation=None, chunk: int = CHUNK_IMAGES, pool: bool = False) -> jax.Array:
  """torch's ``conv2d(x, weight, bias, stride=1, padding=1)`` (+ activation) on NHWC x.

  ``kernel`` is (3, 3, cin, cout) HWIO.  Bias and activation are applied inside the loop, so XLA
  fuses them into the output transform.  ``pool``: followed by ``MaxPool2d(2, 2)``, taken on the
  output tiles before bias and activation (``pooled_output_tiles``); exact for a monotonic
  non-decreasing activation such as ReLU, since adding a constant and such an activation
  commute with a max.
  """
  u = transform_kernel(kernel)
  n, h, w, c = x.shape

  def block(xi: jax.Array) -> jax.Array:
    v = input_tiles(xi)
    m = jnp.einsum("tpc,tck->tpk", v, u, precision=layers.HIGHEST)
    if pool:
      y = pooled_output_tiles(m, xi.shape[0], h, w)
    else:
      y = output_tiles(m, xi.shape[0], h, w)
    if bias is not None:
      y = y + bias
    return activation(y) if activation is not None else y

  size = chunk_size(n, -(-h // OUT) * -(-w // OUT), chunk)
  if size == n:
    return block(x)
  ys = jax.lax.map(block, x.reshape(n // size, size, h, w, c))
  return ys.reshape(n, *ys.shape[2:])


def use_winograd(h: int, w: int, in_channels: int) -> bool:
  """Whether a 3x3 stride-1 conv on [N, h, w, in_channels] runs as Winograd (else XLA's conv).

  A static rule from per-layer timings (docs/speed.md): Winograd wins from 14x14 up but loses
  at 7x7, where 2x2 tiles pad 7 to 8 and the GEMMs are small, and is pointless on RGB input
  (3-deep GEMMs).
  """
  return min(h, w) >= 14 and in_channels >= 16


class Conv3x3(nn.Module):
  """``torch.nn.Conv2d(c, features, 3, stride=1, padding=1, bias)`` on NHWC.

  Winograd F(2x2, 3x3) where ``use_winograd`` says so, else ``lax.conv_general_dilated``.  Same
  parameters as ``nn.Conv(features, (3, 3))``: ``kernel`` (3, 3, cin, features) and ``bias``
  (features,), so checkpoints convert unchanged.  ``activation`` (e.g. ``nn.relu``) is applied
  last (fused into the output transform on the Winograd path).  ``pool``: followed by torch's
  ``MaxPool2d(2, 2)`` (fused into the output transform on the Winograd path, see ``conv3x3``;
  the activation must then be monotonic non-decreasing, e.g. ReLU).  ``fold``: a callable
  returning a per-channel (scale, shift), applied to the conv output before the activation by
  scaling the kernel and bias (e.g. ``vgg.FoldedBatchNorm``).
  """
  features: int
  use_bias: bool = True
  activation: object = None
  pool: bool = False
  fold: object = None  # a callable -> per-channel (scale, shift) applied before the activation

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (3, 3, x.shape[-1], self.features), x.dtype)
    bias = (self.param("bias", nn.initializers.zeros_init(), (self.features,), x.dtype)
            if self.use_bias else None)
    if self.fold is not None:  # e.g. an inference BatchNorm, folded into kernel and bias
      scale, shift = self.fold()
      kernel = kernel * scale
      bias = shift if bias is None else bias * scale + shift
    if use_winograd(x.shape[1], x.shape[2], x.shape[3]):
      return conv3x3(x, kernel, bias, self.activation, pool=self.pool)
    y = layers.conv2d(x, kernel, 1, 1)
    y = y if bias is None else y + bias
    y = y if self.activation is None else self.activation(y)
    return layers.max_pool(y, 2, 2) if self.pool else y
