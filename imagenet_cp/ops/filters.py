"""Linear image filters with the border semantics of SciPy, scikit-image and OpenCV.

All filters work on the two leading (spatial) axes of ``x`` [H, W] or [H, W, C] (vmap for
batches) and return float32.  Filter parameters (sigma, kernels) are static Python values:
the kernels and border maps are built on the host at trace time, in float64 as the originals
build them.  Separable filters on image-sized axes are one exact [n, n] matrix product per axis
(the border folded into the matrix); a sigma picked by a traced severity indexes a stack of
those matrices (``gaussian_filter_switch``).

Border modes: ``imagenet_cp.ops.border`` (its names, e.g. 'reflect101' for OpenCV's
BORDER_REFLECT_101 and SciPy's 'mirror').  A kernel longer than the image keeps extending
periodically, as SciPy's ``NI_ExtendLine`` does (e.g. elastic_transform's sigma 170.8 with
truncate 3 on a 224 field).

Gaussian filters come in three summation orders, each matching the original it stands for:
``gaussian_filter`` / ``gaussian_filter_switch`` / ``gaussian_planes_transposed`` are exact
[n, n] matrix products (SciPy's rows-then-columns order, a sigma picked by a traced index from
a stack of matrices); ``gaussian_filter_taps`` is shifted-window sums of a padded field,
columns then rows (the spatter layers); ``correlate_windows(..., pairs=True)`` adds the
symmetric taps in pairs (ImageNet-P's gaussian_blur).
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.ops.border import border_index, check_border, pad_axis, pad_spatial

HIGHEST = jax.lax.Precision.HIGHEST


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
  """SciPy's ``_gaussian_kernel1d``: float64 [2r+1], r = int(truncate*sigma + 0.5), sum 1.

  sigma <= 1e-15 gives [1.0]: ``gaussian_filter`` skips such axes (the identity), e.g. the
  CIFAR and 64 sets' elastic_transform at severity 1 (sigma 0).
  """
  if float(sigma) <= 1e-15:
    return np.ones(1)
  radius = int(truncate * float(sigma) + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x**2)
  return phi / phi.sum()


def axis_matrix(n: int, weights: np.ndarray, mode: str) -> np.ndarray:
  """The [n, n] float64 matrix of a 1-D correlation with centred ``weights`` under ``mode``.

  ``out[i] = sum_t weights[t] * x[border(i + t - r)]`` = ``(M @ x)[i]``.
  """
  weights = np.asarray(weights, dtype=np.float64)
  r = (len(weights) - 1) // 2
  mat = np.zeros((n, n), np.float64)
  rows = np.arange(n)
  for t, w in enumerate(weights):
    cols = border_index(rows + t - r, n, mode)
    ok = cols >= 0
    np.add.at(mat, (rows[ok], cols[ok]), w)
  return mat


# Up to this length an axis is filtered with one exact [n, n] matrix product: on CPU it costs
# the same for every sigma and beats the shifted sums from radius ~3 on (docs/speed.md).
MATRIX_MAX_LENGTH = 512


def _matmul_axis(x: jax.Array, mat, axis: int) -> jax.Array:
  out = jnp.tensordot(jnp.asarray(mat, jnp.float32), jnp.moveaxis(x, axis, 0), axes=(1, 0),
                      precision=HIGHEST)
  return jnp.moveaxis(out, 0, axis)


def correlate_windows(src: jax.Array, weights, axis: int, size: int, step: int = 1, *,
                      pairs: bool = False) -> jax.Array:
  """``out[n] = sum_j weights[j] * src[n + j * step]`` along ``axis`` of a padded ``src``.

  Each tap is a window ``size`` long starting ``j * step`` values along ``axis`` (``step`` > 1
  walks pixels of a row held as ``[.., W * C]`` values).  ``pairs=False``: taps added in order
  0, 1, ..., each as ``weights[j] * window`` (``weights`` may be traced, e.g. a row of
  ``gaussian_kernel_table`` picked by a severity).  ``pairs=True``: a static symmetric kernel,
  centre first, then each pair of taps added before its one multiplication, zero taps skipped
  (the summation order of ImageNet-P's gaussian_blur).
  """
  k = len(weights)
  window = lambda j: jax.lax.slice_in_dim(src, j * step, j * step + size, axis=axis)  # noqa: E731
  if not pairs:
    out = weights[0] * window(0)
    for j in range(1, k):
      out = out + weights[j] * window(j)
    return out
  radius = (k - 1) // 2
  out = np.float32(weights[radius]) * window(radius)
  for j in range(radius - 1, -1, -1):
    if weights[j] != 0:  # symmetric kernel: one multiplication per pair of taps
      out = out + np.float32(weights[j]) * (window(j) + window(2 * radius - j))
  return out


def _correlate_axis(x: jax.Array, weights: np.ndarray, axis: int, mode: str) -> jax.Array:
  """1-D correlation of float32 ``x`` along ``axis`` with static centred ``weights``."""
  n = x.shape[axis]
  r = (len(weights) - 1) // 2
  if r >= n or n <= MATRIX_MAX_LENGTH:
    # Also exact when the border wraps around more than once (r >= n).
    return _matmul_axis(x, axis_matrix(n, weights, mode), axis)
  return correlate_windows(pad_axis(x, r, axis, mode), np.asarray(weights, np.float32), axis, n)


def correlate_separable(x, weights_h, weights_w, *, mode: str = "nearest") -> jax.Array:
  """Separable correlation over axes 0 and 1 of [H, W] or [H, W, C]; float32 out."""
  x = jnp.asarray(x, jnp.float32)
  return _correlate_axis(_correlate_axis(x, weights_h, 0, mode), weights_w, 1, mode)


def gaussian_filter(x, sigma: float, *, mode: str = "nearest", truncate: float = 4.0) -> jax.Array:
  """``scipy.ndimage.gaussian_filter`` over the two spatial axes (sigma 0 on channels).

  This is also ``skimage.filters.gaussian(x, sigma, channel_axis=-1)`` (the original's
  ``gaussian(..., multichannel=True)``: mode 'nearest', truncate 4.0) for float input.

  Args:
    x: [H, W] or [H, W, C], any real dtype (computed in float32).
    sigma: static Python float (> 0), or a pair (sigma_h, sigma_w).
    mode: one of ``border.BORDERS``.
    truncate: the kernel radius is ``int(truncate * sigma + 0.5)``.

  Returns:
    float32, the shape of ``x``.
  """
  check_border(mode)
  sh, sw = (sigma, sigma) if np.isscalar(sigma) else sigma
  return correlate_separable(
      x, gaussian_kernel1d(sh, truncate), gaussian_kernel1d(sw, truncate), mode=mode)


@functools.lru_cache(maxsize=None)
def _gaussian_matrices(n: int, sigmas: tuple[float, ...], mode: str,
                       truncate: float) -> np.ndarray:
  """``axis_matrix`` of each sigma's Gaussian, stacked: float32 [len(sigmas), n, n]."""
  return np.stack([axis_matrix(n, gaussian_kernel1d(float(s), truncate), mode)
                   for s in sigmas]).astype(np.float32)


def gaussian_matrices(n: int, sigmas: Sequence[float], mode: str, truncate: float) -> np.ndarray:
  """The [n, n] filter matrices of several sigmas (a host constant, computed once)."""
  return _gaussian_matrices(n, tuple(float(s) for s in sigmas), check_border(mode),
                            float(truncate))


def gaussian_filter_switch(x, sigmas: Sequence[float], index, *, mode: str = "nearest",
                           truncate: float = 4.0) -> jax.Array:
  """``gaussian_filter(x, sigmas[index])`` for a traced int ``index``.

  Image-sized axes pick one of the stacked [n, n] filter matrices (one program, no branch);
  longer axes use ``lax.switch`` over one branch per sigma.
  """
  check_border(mode)
  x = jnp.asarray(x, jnp.float32)
  index = jnp.clip(index, 0, len(sigmas) - 1)
  if max(x.shape[:2]) <= MATRIX_MAX_LENGTH:
    for axis in (0, 1):
      stack = gaussian_matrices(x.shape[axis], sigmas, mode, truncate)
      x = _matmul_axis(x, jnp.asarray(stack)[index], axis)
    return x
  branches = [functools.partial(gaussian_filter, sigma=float(s), mode=mode, truncate=truncate)
              for s in sigmas]
  return jax.lax.switch(index, branches, x)


def gaussian_planes_transposed(planes, sigmas: Sequence[float], index, *, mode: str = "nearest",
                               truncate: float = 4.0) -> jax.Array:
  """``gaussian_filter(planes[c], sigmas[index]).T`` per plane: [C, A, B] -> float32 [C, B, A].

  Channels-first planes are the left operand of both [n, n] matrix products (stacked per sigma,
  picked by the traced ``index`` as in ``gaussian_filter_switch``), which leave them transposed:
  no float transpose between or around the products, where the channels-last filter has XLA:CPU
  move the batch and channel axes around each product (docs/speed.md).  Applied
  twice, the planes come back in their own orientation.  Axes up to ``MATRIX_MAX_LENGTH``.
  """
  check_border(mode)
  x = jnp.asarray(planes, jnp.float32)
  if max(x.shape[-2:]) > MATRIX_MAX_LENGTH:
    raise ValueError(f"planes longer than {MATRIX_MAX_LENGTH}: {x.shape}")
  index = jnp.clip(index, 0, len(sigmas) - 1)
  for axis in (x.ndim - 1, x.ndim - 2):
    stack = gaussian_matrices(x.shape[axis], sigmas, mode, truncate)
    # Contracting the last axis keeps the order; contracting the one before moves it last.
    x = jax.lax.dot_general(x, jnp.asarray(stack)[index], (((axis,), (1,)), ((), ())),
                            precision=HIGHEST)
  return x


def gaussian_kernel_table(sigmas: Sequence[float], truncate: float = 4.0) -> np.ndarray:
  """SciPy's kernels of several sigmas, centred and zero-padded to the widest one:
  float32 [len(sigmas), 2R + 1] (zero taps add exact zeros to a sum)."""
  kernels = [gaussian_kernel1d(float(s), truncate).astype(np.float32) for s in sigmas]
  radius = max(len(k) for k in kernels) // 2
  table = np.zeros((len(kernels), 2 * radius + 1), np.float32)
  for i, k in enumerate(kernels):
    r = len(k) // 2
    table[i, radius - r:radius + r + 1] = k
  return table


def gaussian_filter_taps(x, sigmas: Sequence[float], index, *, mode: str = "nearest",
                         truncate: float = 4.0) -> jax.Array:
  """``gaussian_filter(x, sigmas[index])`` of a float [H, W] field as shifted-window sums.

  The field is padded once by the widest kernel's radius and each axis is a sum of shifted
  slices (float32, columns then rows), which XLA on CPU runs about ten times faster than a
  gather-based border; the kernel is a row of ``gaussian_kernel_table`` picked by the traced
  ``index`` (no ``lax.switch``, whose branch boundaries cost copies of the batch on CPU).
  A kernel wider than the field falls back to the exact matrices (``gaussian_filter_switch``).
  """
  table = gaussian_kernel_table(sigmas, truncate)
  r = (table.shape[1] - 1) // 2
  h, w = x.shape
  if r >= min(h, w):
    return gaussian_filter_switch(x, sigmas, index, mode=mode, truncate=truncate)
  weights = jnp.asarray(table)[jnp.clip(index, 0, len(sigmas) - 1)]
  padded = pad_spatial(jnp.asarray(x, jnp.float32), r, mode)
  rows = correlate_windows(padded, weights, 1, w)
  return correlate_windows(rows, weights, 0, h)


def filter2d_reflect101(x, kernel, *, method: str = "auto") -> jax.Array:
  """``cv2.filter2D(x, -1, kernel)`` per channel: correlation, anchor at the kernel centre,
  BORDER_REFLECT_101 (``gfedcb|abcdefgh|gfedcba``).

  Args:
    x: [H, W] or [H, W, C] float.
    kernel: [kh, kw] with odd sides (a host array, or a traced one, e.g. picked from a stack
      of zero-padded kernels by a severity index: zero taps do not change the result).
    method: 'direct' (lax.conv, HIGHEST), 'fft' (circular correlation of the padded image,
      as OpenCV itself switches to a DFT for large kernels), or 'auto' (fft from 11x11 on).

  Returns:
    float32, the shape of ``x``.
  """
  kh, kw = kernel.shape
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f"filter2d_reflect101 needs odd kernel sides, got {kernel.shape}")
  if method not in ("auto", "direct", "fft"):
    raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
  x = jnp.asarray(x, jnp.float32)
  squeeze = x.ndim == 2
  if squeeze:
    x = x[..., None]
  h, w, _ = x.shape
  rh, rw = kh // 2, kw // 2
  padded = pad_axis(pad_axis(x, rh, 0, "reflect101"), rw, 1, "reflect101")
  kernel = jnp.asarray(kernel, jnp.float32)
  if method == "fft" or (method == "auto" and kh * kw >= 121):
    out = _correlate_fft(padded, kernel)[:h, :w]
  else:
    # Channels as the batch of a one-feature convolution (lax.conv is a correlation).
    out = jax.lax.conv_general_dilated(
        jnp.moveaxis(padded, -1, 0)[..., None], kernel[:, :, None, None], (1, 1), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=HIGHEST)
    out = jnp.moveaxis(out[..., 0], 0, -1)
  return out[..., 0] if squeeze else out


def _correlate_fft(padded: jax.Array, kernel: jax.Array) -> jax.Array:
  """``out[n] = sum_m kernel[m] * padded[n + m]`` for [Hp, Wp, C]; rows/cols 0..Hp-kh valid.

  Circular correlation: with the kernel at the origin, index n + m never wraps for the valid
  outputs n <= Hp - kh.
  """
  n_h, n_w = padded.shape[:2]
  kh, kw = kernel.shape
  # Zero-extended to FFT lengths with prime factors 2, 3, 5 only (defocus pads 224 to 244 =
  # 4 x 61, a slow length): the valid outputs still never wrap around.
  f_h, f_w = _smooth_length(n_h), _smooth_length(n_w)
  taps = jnp.zeros((f_h, f_w), jnp.float32).at[:kh, :kw].set(kernel)
  spectrum = (jnp.fft.rfft2(padded, s=(f_h, f_w), axes=(0, 1))
              * jnp.conj(jnp.fft.rfft2(taps))[..., None])
  return jnp.fft.irfft2(spectrum, s=(f_h, f_w), axes=(0, 1))[:n_h, :n_w]


def correlation_spectrum(kernel: np.ndarray, height: int, width: int) -> np.ndarray:
  """Host constant for ``filter2d_reflect101_spectrum``: the conjugate 2-D real FFT of
  ``kernel`` [kh, kw] zero-extended to the FFT lengths used for a [height, width] image,
  complex64 [f_h, f_w // 2 + 1] (computed in float64)."""
  kh, kw = kernel.shape
  f_h, f_w = _smooth_length(height + kh - 1), _smooth_length(width + kw - 1)
  taps = np.zeros((f_h, f_w), np.float64)
  taps[:kh, :kw] = kernel
  return np.conj(np.fft.rfft2(taps)).astype(np.complex64)


def filter2d_reflect101_spectrum(x, spectrum, ksize: tuple[int, int]) -> jax.Array:
  """``filter2d_reflect101(x, kernel, method='fft')`` with the kernel's spectrum precomputed
  on the host (``correlation_spectrum``; it may be picked from a stack by a traced index):
  one forward and one inverse FFT per channel instead of also transforming the kernel.

  Args:
    x: [H, W, C] float.
    spectrum: complex64 [f_h, f_w // 2 + 1] from ``correlation_spectrum(kernel, H, W)``.
    ksize: the kernel's (kh, kw), odd.

  Returns:
    float32 [H, W, C].
  """
  kh, kw = ksize
  x = jnp.asarray(x, jnp.float32)
  h, w, _ = x.shape
  padded = pad_axis(pad_axis(x, kh // 2, 0, "reflect101"), kw // 2, 1, "reflect101")
  f_h, f_w = _smooth_length(h + kh - 1), _smooth_length(w + kw - 1)
  freq = jnp.fft.rfft2(padded, s=(f_h, f_w), axes=(0, 1)) * spectrum[..., None]
  return jnp.fft.irfft2(freq, s=(f_h, f_w), axes=(0, 1))[:h, :w]


def _smooth_length(n: int) -> int:
  """The smallest m >= n whose prime factors are all 2, 3 or 5 (a fast FFT length)."""
  m = n
  while True:
    k = m
    for p in (2, 3, 5):
      while k % p == 0:
        k //= p
    if k == 1:
      return m
    m += 1


def box_blur(x, ksize: tuple[int, int] = (3, 3)) -> jax.Array:
  """``cv2.blur(x, ksize)``: normalised box filter, anchor centre, BORDER_REFLECT_101.

  ``ksize`` is (width, height) as in OpenCV, odd sides.  Float input gives float32 output;
  uint8 input gives uint8 rounded to nearest like OpenCV's ``saturate_cast`` (a sum of
  integers over an odd-area box never lands on .5).
  """
  kw, kh = ksize
  if kh % 2 == 0 or kw % 2 == 0:
    raise ValueError(f"box_blur needs odd ksize, got {ksize}")
  is_uint8 = jnp.asarray(x).dtype == jnp.uint8
  x = jnp.asarray(x, jnp.float32)
  # Sum of small integers is exact in float32, so the uint8 path rounds the true mean.
  total = correlate_separable(x, np.ones(kh), np.ones(kw), mode="reflect101")
  if is_uint8:
    return jnp.clip(jnp.round(total / (kh * kw)), 0, 255).astype(jnp.uint8)
  return total * np.float32(1.0 / (kh * kw))
