"""``random_corrupt`` (a corruption and severity per image) and traced severities in ``corrupt``.

Exactness: every example of ``random_corrupt`` equals ``corrupt`` of that image alone (a batch
of one) with its key, name and severity, bit for bit, for all 19 x 5 pairs on real photos.  The
drawn names and severities are uniform (chi-square at the 0.1% level on 4,000 keys) and
independent of the corruption's own draws (the corruption runs on the image's key unchanged).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import imagenet_cp
from imagenet_cp import CORRUPTIONS
from imagenet_cp.corruptions import augment


@pytest.fixture(scope="module")
def batch(photos_224):
  """95 images (the 4 photos cycled), one per (corruption, severity) pair, and their keys."""
  photos = [photos_224[n] for n in sorted(photos_224)]
  n = len(CORRUPTIONS) * 5
  images = np.stack([photos[i % len(photos)] for i in range(n)])
  return images, jax.random.split(jax.random.key(3), n)


def _alone(images, keys, names, severities):
  return np.stack([np.asarray(imagenet_cp.corrupt(images[i:i + 1], CORRUPTIONS[names[i]],
                                                  int(severities[i]), keys[i:i + 1]))[0]
                   for i in range(len(images))])


def test_every_pair_equals_corrupt_alone(batch):
  images, keys = batch
  # Shuffled, so that groups are not contiguous in the batch.
  order = np.random.default_rng(0).permutation(len(images))
  names = (np.arange(len(images)) // 5)[order]
  severities = (np.arange(len(images)) % 5 + 1)[order]
  got = np.asarray(imagenet_cp.random_corrupt(images, keys, names=names, severities=severities))
  np.testing.assert_array_equal(got, _alone(images, keys, names, severities))


def test_drawn_choices_are_the_ones_applied_and_traced_inputs_work(batch):
  images, keys = batch[0][:8], batch[1][:8]
  choices = ("fog", "contrast", "gaussian_noise")
  positions, severities = augment.draw_choices(keys, len(choices))
  names = np.array([CORRUPTIONS.index(choices[p]) for p in np.asarray(positions)])
  want = _alone(images, keys, names, np.asarray(severities))
  got = imagenet_cp.random_corrupt(images, keys, choices=choices)
  np.testing.assert_array_equal(np.asarray(got), want)
  # Given as traced arrays inside the user's jit: the same images.
  traced = jax.jit(lambda x, k, n, s: imagenet_cp.random_corrupt(
      x, k, names=n, severities=s, choices=choices))(images, keys, jnp.asarray(names),
                                                     severities)
  np.testing.assert_array_equal(np.asarray(traced), want)


def test_group_sizes_agree_up_to_the_widths_rounding(batch):
  """Wider groups vmap several images into one program, which XLA:CPU may round differently (fog
  at severity 3: one of 150,528 values 1 grey level apart at width 2, ``tests/test_workarounds.py``
  explains the FMA contraction); never more than that."""
  images, keys = batch[0][:6], batch[1][:6]
  names = np.array([CORRUPTIONS.index(n) for n in ("fog", "fog", "fog", "snow", "fog", "snow")])
  severities = np.array([1, 5, 3, 2, 4, 3])
  outs = [np.asarray(imagenet_cp.random_corrupt(images, keys, names=names, severities=severities,
                                                choices=("fog", "snow"), group_size=g))
          for g in (None, 1, 2, 4)]
  for other in outs[1:]:  # outs[0], the CPU default: fog one by one, snow in twos (its chunk)
    diff = np.abs(other.astype(int) - outs[0])
    assert diff.max() <= 1 and np.mean(diff > 0) <= 1e-5, (diff.max(), np.mean(diff > 0))


def test_draws_are_uniform_and_apart_from_the_corruption_stream():
  keys = jax.random.split(jax.random.key(11), 4000)
  positions, severities = (np.asarray(a) for a in augment.draw_choices(keys, len(CORRUPTIONS)))
  for values, k in ((positions, len(CORRUPTIONS)), (severities - 1, 5)):
    counts = np.bincount(values, minlength=k)
    assert len(counts) == k
    assert stats.chisquare(counts).pvalue > 1e-3, counts
  # Name and severity independent of each other (contingency table).
  table = np.zeros((len(CORRUPTIONS), 5))
  np.add.at(table, (positions, severities - 1), 1)
  assert stats.chi2_contingency(table).pvalue > 1e-3
  # The choice stream is not the corruption's: a uniform drawn with the image's own key (as
  # gaussian_noise's first draw is) is uncorrelated with the drawn severity.
  own = np.asarray(jax.vmap(lambda k: jax.random.uniform(k))(keys))
  assert abs(stats.pearsonr(own, severities).statistic) < 0.06


def test_traced_out_of_choices_name_leaves_the_image(batch):
  images, keys = batch[0][:2], batch[1][:2]
  names = jnp.asarray([CORRUPTIONS.index("fog"), CORRUPTIONS.index("snow")])
  got = jax.jit(lambda n: imagenet_cp.random_corrupt(images, keys, names=n, severities=[3, 3],
                                                     choices=("fog",)))(names)
  np.testing.assert_array_equal(np.asarray(got[1]), images[1])
  assert np.abs(np.asarray(got[0]).astype(int) - images[0]).max() > 0


@pytest.mark.parametrize("kwargs,message", [
    (dict(names=[0, 99]), "names holds \\[99\\]"),
    (dict(names=[0, 1], choices=("fog",)), "names holds"),
    (dict(severities=[0, 3]), "severities holds \\[0\\]"),
    (dict(severities=[1.0, 3.0]), "int array"),
    (dict(names=[0]), "shape \\(2,\\)"),
    (dict(choices=("fog", "fogg")), "unknown"),
    (dict(choices="fog"), "sequence of corruption names"),
    (dict(group_size=0), "group_size"),
])
def test_bad_arguments_are_named(batch, kwargs, message):
  images, keys = batch[0][:2], batch[1][:2]
  with pytest.raises(ValueError, match=message):
    imagenet_cp.random_corrupt(images, keys, **kwargs)


def test_corrupt_takes_numpy_jax_and_traced_severities(batch):
  images, keys = batch[0][:3], batch[1][:3]
  want = np.asarray(imagenet_cp.corrupt(images, "contrast", 4, keys))
  for severity in (np.int64(4), jnp.int32(4), np.array(4, np.uint8)):
    np.testing.assert_array_equal(np.asarray(imagenet_cp.corrupt(images, "contrast", severity,
                                                                 keys)), want)
  traced = jax.jit(lambda s: imagenet_cp.corrupt(images, "contrast", s, keys))(4)
  np.testing.assert_array_equal(np.asarray(traced), want)
  for bad in (6, jnp.int32(0), np.array([3]), 3.0, jnp.float32(3)):
    with pytest.raises(ValueError, match="severity"):
      imagenet_cp.corrupt(images, "contrast", bad, keys)


def test_vmap_over_per_example_severities(batch):
  images, keys = batch[0][:3], batch[1][:3]
  severities = jnp.asarray([1, 3, 5])
  got = jax.vmap(lambda x, s, k: imagenet_cp.corrupt(x, "fog", s, k))(images, severities, keys)
  want = _alone(images, keys, [CORRUPTIONS.index("fog")] * 3, np.asarray(severities))
  np.testing.assert_array_equal(np.asarray(got), want)


def test_perturb_takes_numpy_jax_and_traced_difficulties(photos_256):
  image = photos_256["chelsea"]
  key = jax.random.key(2)
  want = np.asarray(imagenet_cp.perturb(image, "gaussian_noise", key, 2))
  for difficulty in (np.int32(2), jnp.int32(2)):
    np.testing.assert_array_equal(
        np.asarray(imagenet_cp.perturb(image, "gaussian_noise", key, difficulty)), want)
  traced = jax.jit(lambda d: imagenet_cp.perturb(image, "gaussian_noise", key, d))(2)
  np.testing.assert_array_equal(np.asarray(traced), want)
  for bad in (4, jnp.int32(0), 2.0):
    with pytest.raises(ValueError, match="difficulty"):
      imagenet_cp.perturb(image, "gaussian_noise", key, bad)


def test_random_corrupt_vmaps_over_batches():
  """vmapped over a leading axis of batches (32 px, CIFAR's constants): each batch as alone."""
  x = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8)
  keys = jax.random.split(jax.random.key(0), 6).reshape(2, 3)
  fn = lambda a, k: imagenet_cp.random_corrupt(a, k, choices=("fog", "contrast"))
  got = jax.vmap(fn)(x, keys)
  for i in range(2):
    np.testing.assert_array_equal(np.asarray(got[i]), np.asarray(fn(x[i], keys[i])))
