"""ops.glass: the parallel pixel shuffle is bit-exact to the original's sequential loop."""
import jax
import numpy as np
import pytest

from imagenet_cp.oracles import corruptions as ref
from imagenet_cp.ops import glass


def sequential_shuffle(x, offsets, d, iterations):
  """The original loop on any square size, written out (x[h, w] = x[h + dy, w + dx])."""
  x = x.copy()
  n = x.shape[0]
  for i in range(iterations):
    for h in range(n - d, d, -1):
      for w in range(n - d, d, -1):
        dx, dy = offsets[i, h, w]
        x[h, w] = x[h + dy, w + dx]
  return x


_shuffle = jax.jit(glass.shuffle)


@pytest.mark.parametrize("d", (1, 2, 3, 4, 6))
def test_matches_sequential_loop_on_random_offsets(d):
  rng = np.random.default_rng(d)
  n = 48
  for iterations in (1, 3):
    x = rng.integers(0, 256, (n, n, 3), dtype=np.uint8)
    offsets = rng.integers(-d, d, (3, n, n, 2))
    np.testing.assert_array_equal(
        np.asarray(_shuffle(x, offsets, d, iterations)), sequential_shuffle(x, offsets, d, iterations))


def test_long_chains_resolve():
  """Offsets (dx, dy) = (+1, 0) everywhere: every pixel of a row copies the row's last visited
  source, a chain as long as the row (the worst case for pointer jumping)."""
  n, d = 40, 2
  x = np.arange(n * n, dtype=np.int32).reshape(n, n, 1)
  offsets = np.zeros((1, n, n, 2), np.int64)
  offsets[..., 0] = 1
  np.testing.assert_array_equal(np.asarray(_shuffle(x, offsets, d, 1)), sequential_shuffle(x, offsets, d, 1))


def test_copy_not_swap_on_the_original_code(photos_224):
  """The original glass_blur with its Gaussians replaced by the identity is the pure shuffle.

  ``np.uint8(x / 255 * 255) == x`` for every uint8, so its output is the shuffled image; fed our
  offsets it must equal ours bit for bit (severity 5: d = 4, 2 iterations)."""
  module = ref.load_original()
  image = photos_224["astronaut"]
  severity = 5
  d, iterations = ref.glass_blur_iterations(severity)
  offsets = np.asarray(jax.random.randint(jax.random.key(0), (3, 224, 224, 2), -d, d))
  saved = module.gaussian
  module.gaussian = lambda x, sigma, multichannel=None: x
  try:
    with ref.Replay(randint=ref.glass_blur_queue(
        offsets[:iterations, ..., 0], offsets[:iterations, ..., 1], severity)):
      theirs = ref.run_original("glass_blur", image, severity)
  finally:
    module.gaussian = saved
  ours = np.asarray(_shuffle(image, offsets, d, iterations))
  np.testing.assert_array_equal(ours, theirs)
  assert not np.array_equal(ours, image)


def test_vmapped_with_traced_d_and_iterations():
  rng = np.random.default_rng(9)
  n = 32
  x = rng.integers(0, 256, (2, n, n, 3), dtype=np.uint8)
  offsets = np.stack([rng.integers(-1, 1, (3, n, n, 2)), rng.integers(-3, 3, (3, n, n, 2))])
  out = jax.jit(jax.vmap(glass.shuffle))(x, offsets, np.array([1, 3]), np.array([2, 1]))
  np.testing.assert_array_equal(np.asarray(out[0]), sequential_shuffle(x[0], offsets[0], 1, 2))
  np.testing.assert_array_equal(np.asarray(out[1]), sequential_shuffle(x[1], offsets[1], 3, 1))


def test_transposed_index_shuffles_the_transposed_image():
  """``image.T.flat[transposed_index(index)] == image.flat[index].T`` on a non-square image."""
  rng = np.random.default_rng(11)
  h, w = 5, 7
  image = rng.integers(0, 1000, (h, w))
  index = rng.integers(0, h * w, h * w).astype(np.int32)
  shuffled = image.reshape(-1)[index].reshape(h, w)
  index_t = np.asarray(glass.transposed_index(index, h, w))
  np.testing.assert_array_equal(image.T.reshape(-1)[index_t].reshape(w, h), shuffled.T)
