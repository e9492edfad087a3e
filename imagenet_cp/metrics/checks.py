"""Host-side input checks, run before anything is traced, with errors that say what is wrong.

Shapes and dtypes are checked on every call (they are static even under ``jit``).  Labels
out of range are checked on the host when they are concrete.  NaN logits: the whole-array
functions (``metrics.top5_distance``) check concrete logits on the host; the streaming
functions never pull logits to the host (that would stall the device every batch), they count
real examples with NaN logits (``nonfinite``) and ``Counts.host()`` turns a non-zero count
into a ValueError.  Padding masked out in a ragged batch may hold anything, NaN included.
"""
from __future__ import annotations

import jax
import numpy as np

from imagenet_cp.ops.tracing import is_concrete

MIN_CLASSES = 5  # the top-5 distance needs at least five classes


def _shape_dtype(x, what):
  shape = getattr(x, "shape", None)
  dtype = getattr(x, "dtype", None)
  if shape is None or dtype is None:
    x = np.asarray(x)
    shape, dtype = x.shape, x.dtype
  return tuple(shape), np.dtype(dtype)


def _check_typed(x, rank: int, what: str, kind, kind_name: str):
  """(x, its shape): ``x`` (an array if it was not one) of dtype ``kind`` and exactly ``rank``
  axes."""
  if not hasattr(x, "shape"):
    x = np.asarray(x)
  shape, dtype = _shape_dtype(x, what)
  if not jax.numpy.issubdtype(dtype, kind):
    raise ValueError(f"{what} must be {kind_name}, got dtype {dtype}")
  if len(shape) != rank:
    raise ValueError(f"{what} must have rank {rank}, got shape {shape}")
  return x, shape


def check_logits(x, rank: int, what: str = "logits"):
  """Floating logits of exactly ``rank`` axes, the last one the >= 5 classes."""
  x, shape = _check_typed(x, rank, what, np.floating, "floating point")
  if shape[-1] < MIN_CLASSES:
    raise ValueError(f"{what} need at least {MIN_CLASSES} classes (last axis), got shape {shape}")
  return x


def check_no_nan(x, what: str = "logits"):
  """No NaN in concrete logits (checked on the host; tracers are left to the NaN counts)."""
  if is_concrete(x):
    nan = np.isnan(np.asarray(x)).any(axis=-1)
    if nan.any():
      raise ValueError(
          f"{what} contain NaN ({int(nan.sum())} examples); the model output is broken")
  return x


def check_int_array(x, rank: int, what: str):
  """An integer array of exactly ``rank`` axes."""
  return _check_typed(x, rank, what, np.integer, "integers")[0]


def check_labels(labels, batch: int, num_classes: int | None):
  """int labels [batch], each in [0, num_classes) when known and concrete."""
  labels = check_int_array(labels, 1, "labels")
  if labels.shape[0] != batch:
    raise ValueError(f"labels have {labels.shape[0]} entries for a batch of {batch}")
  if num_classes is not None and is_concrete(labels) and labels.size:
    values = np.asarray(labels)
    if values.min() < 0 or values.max() >= num_classes:
      raise ValueError(
          f"labels must be in [0, {num_classes}), got values in [{values.min()}, {values.max()}]")
  return labels


def check_mask(mask, batch: int):
  """bool validity mask [batch] (True = a real example, False = padding); default all True."""
  if mask is None:
    return np.ones((batch,), bool)
  if not hasattr(mask, "shape"):
    mask = np.asarray(mask)
  shape, dtype = _shape_dtype(mask, "mask")
  if dtype != np.bool_:
    raise ValueError(f"mask must be bool (True = real example), got dtype {dtype}")
  if shape != (batch,):
    raise ValueError(f"mask must have shape ({batch},), got {shape}")
  return mask


def check_noise(noise) -> bool:
  if not isinstance(noise, (bool, np.bool_)):
    raise ValueError(f"noise must be True or False (a noise sequence or not), got {noise!r}")
  return bool(noise)
