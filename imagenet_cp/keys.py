"""The one documented derivation of per-example PRNG keys.

Every example of ImageNet-C and ImageNet-P is generated from its own key, derived from the
root seed, the corruption (or perturbation) name, the severity (or difficulty) and the
image's file name.  The TFDS builders, Beam workers and the on-the-fly evaluation all call
this function, so an example never depends on its batch, its worker or the build order.

Derivation: ``sha256(f"{seed}/{name}/{severity}/{file_name}")``; the first 8 bytes, read as
two big-endian uint32 words, are the raw data of a ``threefry2x32`` key.  Frame ``t`` of an
ImageNet-P sequence uses ``jax.random.fold_in(key, t)``.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import jax
import numpy as np

PRNG_IMPL = "threefry2x32"


def example_key_data(seed: int, name: str, severity: int, file_name: str) -> np.ndarray:
  """Raw key words, uint32 [2], for one example (host-side, no JAX dispatch)."""
  text = f"{int(seed)}/{name}/{int(severity)}/{file_name}"
  digest = hashlib.sha256(text.encode("utf-8")).digest()
  return np.frombuffer(digest[:8], dtype=">u4").astype(np.uint32)


def example_key(seed: int, name: str, severity: int, file_name: str) -> jax.Array:
  """Typed PRNG key (``jax.random.key``-style, impl threefry2x32) for one example."""
  return jax.random.wrap_key_data(example_key_data(seed, name, severity, file_name), impl=PRNG_IMPL)


def example_keys(seed: int, name: str, severity: int, file_names: Sequence[str]) -> jax.Array:
  """Typed keys ``[N]`` for a batch of file names, one key per image."""
  data = np.stack([example_key_data(seed, name, severity, f) for f in file_names]) if file_names else (
      np.zeros((0, 2), np.uint32))
  return jax.random.wrap_key_data(data, impl=PRNG_IMPL)


def as_typed_keys(key) -> jax.Array:
  """Accepts typed keys or raw uint32 ``[..., 2]`` key data; returns typed keys."""
  if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
    return key
  arr = np.asarray(key) if not isinstance(key, jax.Array) else key
  if arr.dtype != np.uint32 or arr.ndim < 1 or arr.shape[-1] != 2:
    raise ValueError(
        "key must be a typed PRNG key (jax.random.key / imagenet_cp.example_key) or raw "
        f"uint32 key data of shape [..., 2]; got dtype {arr.dtype} and shape {tuple(arr.shape)}")
  return jax.random.wrap_key_data(arr, impl=PRNG_IMPL)
