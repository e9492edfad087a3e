"""Keys: every JAX PRNG implementation works, typed or raw, and a key means the same draws
wherever it sits in a batch."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import imagenet_cp
from imagenet_cp import keys as K

from conftest import photo


def _crops(n=2):
  return np.stack([imagenet_cp.preprocess(photo(name)) for name in ("chelsea", "coffee")][:n])


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_other_prng_implementations_work_and_are_deterministic(impl):
  keys = jax.random.split(jax.random.key(3, impl=impl), 2)
  out = np.asarray(imagenet_cp.corrupt(_crops(), "gaussian_noise", 3, keys))
  again = np.asarray(jax.jit(lambda x, k: imagenet_cp.corrupt(x, "gaussian_noise", 3, k))(
      _crops(), keys))
  np.testing.assert_array_equal(out, again)
  # The same as the threefry keys it is turned into, and per key, not per batch position.
  threefry = K.as_typed_keys(keys)
  assert str(jax.random.key_impl(threefry)) == "threefry2x32" and threefry.shape == (2,)
  np.testing.assert_array_equal(out, imagenet_cp.corrupt(_crops(), "gaussian_noise", 3, threefry))
  swapped = np.asarray(imagenet_cp.corrupt(_crops()[::-1], "gaussian_noise", 3, keys[::-1]))
  np.testing.assert_array_equal(swapped, out[::-1])
  # Two different keys give different draws.
  assert not np.array_equal(out[0], np.asarray(
      imagenet_cp.corrupt(_crops()[:1], "gaussian_noise", 3, keys[1:]))[0])


def test_perturb_takes_an_rbg_key():
  image = imagenet_cp.resize_short_side(photo("coffee"))
  frames = imagenet_cp.perturb(image, "gaussian_noise", jax.random.key(0, impl="rbg"))
  assert frames.shape == (31, 224, 224, 3) and frames.dtype == jnp.uint8


def test_threefry_keys_typed_or_raw_are_unchanged():
  typed = imagenet_cp.example_keys(0, "fog", 3, ["a.png", "b.png"])
  assert K.as_typed_keys(typed) is typed
  raw = jax.random.key_data(typed)
  np.testing.assert_array_equal(jax.random.key_data(K.as_typed_keys(np.asarray(raw))), raw)
  with pytest.raises(ValueError, match=r"raw threefry2x32 key data, uint32 of shape \[..., 2\]"):
    K.as_typed_keys(np.zeros((2, 4), np.uint32))   # rbg key data without its type is ambiguous
