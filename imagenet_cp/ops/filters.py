"""Linear image filters with the border semantics of SciPy, scikit-image and OpenCV.

All filters work on the two leading (spatial) axes of ``x`` [H, W] or [H, W, C] (vmap for
batches) and return float32.  Filter parameters (sigma, kernels) are static Python values:
the kernels and border maps are built on the host at trace time, in float64 as the originals
build them.  Separable filters on image-sized axes are one exact [n, n] matrix product per axis
(the border folded into the matrix); a sigma picked by a traced severity indexes a stack of
those matrices (``gaussian_filter_switch``).

Border modes (the names SciPy uses; ``x = a b c d``):

- ``'nearest'``  ``a a | a b c d | d d``  (skimage.filters.gaussian's default)
- ``'reflect'``  ``b a | a b c d | d c``  (half-sample symmetric)
- ``'mirror'``   ``c b | a b c d | c b``  (= OpenCV's BORDER_REFLECT_101)
- ``'constant'`` ``0 0 | a b c d | 0 0``
- ``'wrap'``     ``c d | a b c d | a b``

A kernel longer than the image keeps extending periodically, as SciPy's ``NI_ExtendLine``
does (e.g. elastic_transform's sigma 170.8 with truncate 3 on a 224 field).
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("nearest", "reflect", "mirror", "constant", "wrap")
HIGHEST = jax.lax.Precision.HIGHEST


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
  """SciPy's ``_gaussian_kernel1d``: float64 [2r+1], r = int(truncate*sigma + 0.5), sum 1."""
  radius = int(truncate * float(sigma) + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  phi = np.exp(-0.5 / (float(sigma) * float(sigma)) * x**2)
  return phi / phi.sum()


def border_index(k: np.ndarray, n: int, mode: str) -> np.ndarray:
  """Maps (possibly out-of-range) indices ``k`` into 0..n-1; -1 where ``mode`` reads a zero."""
  k = np.asarray(k, dtype=np.int64)
  if mode == "nearest":
    return np.clip(k, 0, n - 1)
  if mode == "reflect":
    k = np.mod(k, 2 * n)
    return np.where(k >= n, 2 * n - 1 - k, k)
  if mode == "mirror":
    if n == 1:
      return np.zeros_like(k)
    k = np.mod(k, 2 * n - 2)
    return np.where(k >= n, 2 * n - 2 - k, k)
  if mode == "constant":
    return np.where((k >= 0) & (k < n), k, -1)
  if mode == "wrap":
    return np.mod(k, n)
  raise ValueError(f"unknown border mode {mode!r}; expected one of {MODES}")


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


_NUMPY_PAD = {"nearest": "edge", "reflect": "symmetric", "mirror": "reflect",
              "constant": "constant", "wrap": "wrap"}


def pad_axis(x: jax.Array, r: int, axis: int, mode: str) -> jax.Array:
  """Extends ``x`` by ``r < n`` values on both sides of ``axis`` under the SciPy ``mode``
  ('mirror' = OpenCV's BORDER_REFLECT_101)."""
  widths = [(r, r) if a == axis else (0, 0) for a in range(x.ndim)]
  return jnp.pad(x, widths, mode=_NUMPY_PAD[mode])


# Up to this length an axis is filtered with one exact [n, n] matrix product: on CPU it costs
# the same for every sigma and beats the shifted sums from radius ~3 on (224 px: 1.8 ms per
# image and both axes, measured, vs 2.6 ms at sigma 1 and 12 ms at sigma 6).
MATRIX_MAX_LENGTH = 512


def _matmul_axis(x: jax.Array, mat, axis: int) -> jax.Array:
  out = jnp.tensordot(jnp.asarray(mat, jnp.float32), jnp.moveaxis(x, axis, 0), axes=(1, 0),
                      precision=HIGHEST)
  return jnp.moveaxis(out, 0, axis)


def _correlate_axis(x: jax.Array, weights: np.ndarray, axis: int, mode: str) -> jax.Array:
  """1-D correlation of float32 ``x`` along ``axis`` with static centred ``weights``."""
  n = x.shape[axis]
  r = (len(weights) - 1) // 2
  if r >= n or n <= MATRIX_MAX_LENGTH:
    # Also exact when the border wraps around more than once (r >= n).
    return _matmul_axis(x, axis_matrix(n, weights, mode), axis)
  padded = pad_axis(x, r, axis, mode)
  out = None
  for t, w in enumerate(np.asarray(weights, np.float32)):
    term = jax.lax.slice_in_dim(padded, t, t + n, axis=axis) * w
    out = term if out is None else out + term
  return out


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
    mode: one of ``MODES``.
    truncate: the kernel radius is ``int(truncate * sigma + 0.5)``.

  Returns:
    float32, the shape of ``x``.
  """
  if mode not in MODES:
    raise ValueError(f"unknown border mode {mode!r}; expected one of {MODES}")
  sh, sw = (sigma, sigma) if np.isscalar(sigma) else sigma
  return correlate_separable(
      x, gaussian_kernel1d(sh, truncate), gaussian_kernel1d(sw, truncate), mode=mode)


def gaussian_filter_switch(x, sigmas: Sequence[float], index, *, mode: str = "nearest",
                           truncate: float = 4.0) -> jax.Array:
  """``gaussian_filter(x, sigmas[index])`` for a traced int ``index``.

  Image-sized axes pick one of the stacked [n, n] filter matrices (one program, no branch);
  longer axes use ``lax.switch`` over one branch per sigma.
  """
  if mode not in MODES:
    raise ValueError(f"unknown border mode {mode!r}; expected one of {MODES}")
  x = jnp.asarray(x, jnp.float32)
  index = jnp.clip(index, 0, len(sigmas) - 1)
  if max(x.shape[:2]) <= MATRIX_MAX_LENGTH:
    for axis in (0, 1):
      n = x.shape[axis]
      stack = np.stack([axis_matrix(n, gaussian_kernel1d(float(s), truncate), mode)
                        for s in sigmas]).astype(np.float32)
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
  move the batch and channel axes around each product (glass_blur: ~10% less CPU).  Applied
  twice, the planes come back in their own orientation.  Axes up to ``MATRIX_MAX_LENGTH``.
  """
  if mode not in MODES:
    raise ValueError(f"unknown border mode {mode!r}; expected one of {MODES}")
  x = jnp.asarray(planes, jnp.float32)
  if max(x.shape[-2:]) > MATRIX_MAX_LENGTH:
    raise ValueError(f"planes longer than {MATRIX_MAX_LENGTH}: {x.shape}")
  index = jnp.clip(index, 0, len(sigmas) - 1)
  for axis in (x.ndim - 1, x.ndim - 2):
    n = x.shape[axis]
    stack = np.stack([axis_matrix(n, gaussian_kernel1d(float(s), truncate), mode)
                      for s in sigmas]).astype(np.float32)
    # Contracting the last axis keeps the order; contracting the one before moves it last.
    x = jax.lax.dot_general(x, jnp.asarray(stack)[index], (((axis,), (1,)), ((), ())),
                            precision=HIGHEST)
  return x


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
  padded = pad_axis(pad_axis(x, rh, 0, "mirror"), rw, 1, "mirror")
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
  padded = pad_axis(pad_axis(x, kh // 2, 0, "mirror"), kw // 2, 1, "mirror")
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
  total = correlate_separable(x, np.ones(kh), np.ones(kw), mode="mirror")
  if is_uint8:
    return jnp.clip(jnp.round(total / (kh * kw)), 0, 255).astype(jnp.uint8)
  return total * np.float32(1.0 / (kh * kw))
