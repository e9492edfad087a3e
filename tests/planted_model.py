"""A stub classifier with errors, flips and top-5 swaps planted at known images and frames.

The stub recognises every image it may be shown by an exact integer fingerprint (a wrapping
int32 dot product of the pixels with fixed random weights: associative, so identical on any
device layout) and returns planted logits for it.  The test computes the expected images with
the public API (``corrupt``, ``release_jpeg``, ``perturb``, ``example_keys``) and the expected
figures from the plan, so any mistake in keys, ordering, padding, masking or aggregation in
``metrics.evaluate`` changes the result.
"""
import jax
import jax.numpy as jnp
import numpy as np

import imagenet_cp
from imagenet_cp import sources
from imagenet_cp.suites.corruption import sequence_key_level

SEED = 0
NUM_CLASSES = 1000
_WEIGHTS = np.random.default_rng(1234).integers(0, 2**16, (224, 224, 3), dtype=np.int32)


def fingerprint(pixels) -> jax.Array:
  """uint8-valued [..., 224, 224, 3] -> int32 [...] (wrapping arithmetic, exact)."""
  return jnp.sum(jnp.asarray(pixels, jnp.int32) * _WEIGHTS, axis=(-3, -2, -1), dtype=jnp.int32)


def logits_for(label: int, swapped: bool) -> np.ndarray:
  """Ranking (label, 0, 1, 2, ...) or, swapped, (0, label, 1, 2, ...): top-5 distance 2 apart."""
  logits = -np.arange(NUM_CLASSES, dtype=np.float32) * 1e-3
  logits[label] = 10.0
  if swapped:
    logits[0] = 11.0
  return logits


def demo_inputs(n: int):
  examples = sources.demo_examples()[:n]
  resized = [imagenet_cp.resize_short_side(sources.decode(e)) for e in examples]
  crops = np.stack([imagenet_cp.preprocess(sources.decode(e)) for e in examples])
  return examples, resized, crops


class Plan:
  """Collects (image -> planted logits) and the expected records."""

  def __init__(self):
    self.table: dict[int, np.ndarray] = {}

  def plant(self, images, logits) -> None:
    for fp, row in zip(np.asarray(fingerprint(images)).tolist(), logits):
      if fp in self.table and not np.array_equal(self.table[fp], row):
        raise AssertionError("two planted images share a fingerprint with different logits")
      self.table[fp] = np.asarray(row)

  def variables(self):
    keys = np.array(sorted(self.table), np.int32)
    return {"keys": jnp.asarray(keys), "logits": jnp.asarray(np.stack([self.table[k] for k in keys]))}


def apply_fn(variables, images):
  """[N, 224, 224, 3] pixels in [0, 1] -> planted logits; NaN for an image never planted."""
  fp = fingerprint(jnp.round(images * 255.0))
  index = jnp.clip(jnp.searchsorted(variables["keys"], fp), 0, variables["keys"].shape[0] - 1)
  found = variables["keys"][index] == fp
  return jnp.where(found[:, None], variables["logits"][index], jnp.nan)


def corrupted(crops, names, name, severity, release=True):
  keys = imagenet_cp.example_keys(SEED, name, severity, names)
  out = imagenet_cp.corrupt(crops, name, severity, keys)
  return imagenet_cp.release_jpeg(out) if release else out


def frames(image256, file_name, name, difficulty):
  key = imagenet_cp.example_key(SEED, name, sequence_key_level(name, difficulty), file_name)
  return imagenet_cp.perturb(image256, name, key, difficulty)
