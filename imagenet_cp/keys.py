"""The one documented derivation of per-example PRNG keys.

Every example of ImageNet-C and ImageNet-P is generated from its own key, derived from the
root seed, the corruption (or perturbation) name, the severity (or difficulty) and the
image's file name.  The TFDS builders, Beam workers and the on-the-fly evaluation all call
this function, so an example never depends on its batch, its worker or the build order.

Derivation: ``sha256(f"{seed}/{name}/{severity}/{file_name}")``; the first 8 bytes, read as
two big-endian uint32 words, are the raw data of a ``threefry2x32`` key.  Frame ``t`` of an
ImageNet-P sequence uses ``jax.random.fold_in(key, t)``.

What ``file_name`` is: the ImageNet-C/P builders and the corruption suite pass the image's base
name (TFDS's ``file_name`` feature, e.g. ``ILSVRC2012_val_00000001.JPEG``; the demo photos'
``demo/<name>.png``), not its path, so a tar and an extracted folder give the same keys.  Two
source images with one base name (in two class folders) therefore get the same keys, i.e. the
same corruption draws; their records stay apart, keyed by the images' ids (paths relative to
the source).  The adversarial suite passes the example id itself.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import jax
import jax.extend.random as jex_random
import jax.numpy as jnp
import numpy as np

PRNG_IMPL = "threefry2x32"


def _check_key_inputs(seed, name, severity) -> tuple[int, int]:
  for what, value in (("seed", seed), ("severity", severity)):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
      raise TypeError(f"{what} must be an int, got {type(value).__name__} {value!r}")
  if not isinstance(name, str) or not name:
    raise TypeError(f"name must be a non-empty str (a corruption, perturbation or attack name), "
                    f"got {type(name).__name__} {name!r}")
  return int(seed), int(severity)


def _check_file_name(file_name) -> str:
  if isinstance(file_name, np.str_):
    file_name = str(file_name)
  if not isinstance(file_name, str) or not file_name:
    raise TypeError(f"file_name must be a non-empty str, got {type(file_name).__name__} "
                    f"{file_name!r}")
  return file_name


def example_key_data(seed: int, name: str, severity: int, file_name: str) -> np.ndarray:
  """Raw key words, uint32 [2], for one example (host-side, no JAX dispatch)."""
  seed, severity = _check_key_inputs(seed, name, severity)
  text = f"{seed}/{name}/{severity}/{_check_file_name(file_name)}"
  digest = hashlib.sha256(text.encode("utf-8")).digest()
  return np.frombuffer(digest[:8], dtype=">u4").astype(np.uint32)


def example_key(seed: int, name: str, severity: int, file_name: str) -> jax.Array:
  """Typed PRNG key (``jax.random.key``-style, impl threefry2x32) for one example."""
  return jax.random.wrap_key_data(example_key_data(seed, name, severity, file_name), impl=PRNG_IMPL)


def example_keys(seed: int, name: str, severity: int, file_names: Sequence[str]) -> jax.Array:
  """Typed keys ``[N]`` for a batch of file names (a list, tuple or 1-D array of str), one key
  per image; TypeError for a single str (which would give one key per character)."""
  _check_key_inputs(seed, name, severity)
  if isinstance(file_names, (str, bytes)) or (isinstance(file_names, np.ndarray)
                                              and file_names.ndim != 1):
    raise TypeError(f"file_names must be a sequence of file names, got {type(file_names).__name__} "
                    f"{file_names!r}; for one image use example_key or [file_name]")
  file_names = list(file_names)
  data = np.stack([example_key_data(seed, name, severity, f) for f in file_names]) if file_names else (
      np.zeros((0, 2), np.uint32))
  return jax.random.wrap_key_data(data, impl=PRNG_IMPL)


def as_typed_keys(key) -> jax.Array:
  """Typed threefry2x32 keys from typed keys of any JAX PRNG implementation or raw uint32
  ``[..., 2]`` key data.

  The draws need threefry2x32 keys (``ops.rng`` runs the cipher on the key's two words).  A key
  of another implementation (``rbg``, ``unsafe_rbg``, a custom one) is turned into one, key by
  key, by hashing its data words with threefry: deterministic, jittable, and the same for a key
  wherever it sits in a batch.
  """
  if jax.dtypes.issubdtype(getattr(key, "dtype", None), jax.dtypes.prng_key):
    if str(jax.random.key_impl(key)) == PRNG_IMPL:
      return key
    return _threefry_from(key)
  arr = np.asarray(key) if not isinstance(key, jax.Array) else key
  if arr.dtype != np.uint32 or arr.ndim < 1 or arr.shape[-1] != 2:
    raise ValueError(
        "key must be a typed PRNG key (jax.random.key / imagenet_cp.example_key, any "
        "implementation) or raw threefry2x32 key data, uint32 of shape [..., 2]; got dtype "
        f"{arr.dtype} and shape {tuple(arr.shape)}")
  return jax.random.wrap_key_data(arr, impl=PRNG_IMPL)


def _threefry_from(keys: jax.Array) -> jax.Array:
  """Typed threefry2x32 keys of ``keys``' shape, each a hash of its key's data words (not of its
  random bits: an rbg key's bits differ under vmap, its data does not)."""
  words = jax.random.key_data(keys).reshape(*keys.shape, -1)
  if words.shape[-1] % 2:
    words = jnp.concatenate([words, jnp.zeros((*keys.shape, 1), jnp.uint32)], axis=-1)
  pairs = words.reshape(-1, words.shape[-1] // 2, 2)

  def fold(pairs_of_one_key):
    state = pairs_of_one_key[0]
    for pair in pairs_of_one_key[1:]:
      state = jex_random.threefry_2x32(state, pair)
    return state

  return jax.random.wrap_key_data(jax.vmap(fold)(pairs).reshape(*keys.shape, 2), impl=PRNG_IMPL)
