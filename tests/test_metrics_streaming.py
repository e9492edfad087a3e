"""Flip probability, uT5D and error counts: hand cases, the original's loops, batches, devices."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from imagenet_cp import metrics
import test_metrics_reference as ref

# --- hand-computed flip probabilities ------------------------------------------------------

PREDS = np.array([[0, 1, 1, 1, 0]])


def test_flip_probability_temporal_difficulty_1():
  # Consecutive pairs (0,1) (1,2) (2,3) (3,4): flips 1, 0, 0, 1.
  assert metrics.flip_probability(PREDS, noise=False, difficulty=1) == 2 / 4


def test_flip_probability_noise_difficulty_1():
  # Every frame against the clean frame 0: 1, 1, 1, 0.
  assert metrics.flip_probability(PREDS, noise=True, difficulty=1) == 3 / 4


def test_flip_probability_temporal_difficulty_2():
  # Subsequences 0,2,4 and 1,3: pairs (0,2) (2,4) (1,3): flips 1, 1, 0.
  assert metrics.flip_probability(PREDS, noise=False, difficulty=2) == 2 / 3


def test_flip_probability_noise_difficulty_2_keeps_frame_0():
  # Harder noise is a separate dataset; the comparison is still against frame 0.
  assert metrics.flip_probability(PREDS, noise=True, difficulty=2) == 3 / 4


def test_flip_probability_is_mean_of_per_video_means():
  preds = np.array([[0, 1, 1, 1, 0], [2, 2, 2, 2, 2], [3, 4, 3, 4, 3]])
  assert metrics.flip_probability(preds, noise=False) == pytest.approx((0.5 + 0 + 1) / 3)


def test_frame_pairs_of_translate_at_difficulty_2():
  reference, compared = metrics.frame_pairs(41, False, 2)
  assert len(reference) == 39
  np.testing.assert_array_equal(compared - reference, 2)
  assert sorted(compared) == list(range(2, 41))
  reference, compared = metrics.frame_pairs(31, True, 1)
  np.testing.assert_array_equal(reference, 0)
  np.testing.assert_array_equal(compared, np.arange(1, 31))


# --- against the original's loops -----------------------------------------------------------


def random_sequences(seed, n, t, c):
  """Logits [n, t, c] of slowly drifting frames, with integer-valued ties in places."""
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(n, 1, c))
  logits = base + np.cumsum(0.4 * rng.normal(size=(n, t, c)), axis=1)
  logits[: n // 3] = np.round(logits[: n // 3])  # ties
  return logits.astype(np.float32)


@pytest.mark.parametrize("name,frames,noise,difficulty", [
    ("translate", 41, False, 2),
    ("gaussian_noise", 31, True, 1),
    ("rotate", 31, False, 3),
])
def test_matches_original_fp_and_ut5d(name, frames, noise, difficulty):
  logits = random_sequences(3, 7, frames, 16)
  predictions = logits.argmax(-1)
  fp_original, flip_lists = ref.flip_prob(predictions, noise, difficulty)
  ut5d_original, dist_lists = ref.ranking_dist(logits, noise, difficulty)
  counts = metrics.sequence_counts(logits, noise=noise, difficulty=difficulty).host()
  # Exact integers first, then the original's float within rounding.
  assert counts.pairs_per_video == len(flip_lists[0]) == frames - (1 if noise else difficulty)
  assert counts.flips == sum(map(sum, flip_lists))
  assert counts.distance == sum(map(sum, dist_lists))
  assert counts.flip_probability == pytest.approx(fp_original, rel=1e-12)
  assert counts.mean_top5_distance == pytest.approx(ut5d_original, rel=1e-12)
  assert metrics.flip_probability(predictions, noise=noise, difficulty=difficulty) == (
      pytest.approx(fp_original, rel=1e-12))
  assert metrics.mean_top5_distance(logits, noise=noise, difficulty=difficulty) == (
      pytest.approx(ut5d_original, rel=1e-12))
  assert 0 < fp_original < 1 and ut5d_original > 0  # a non-trivial case
  if name == "translate":
    assert counts.pairs_per_video == 39


def padded_batches(arrays, batch):
  """Split along axis 0 into batches of ``batch``; pad the last with garbage, mask it out."""
  n = len(arrays[0])
  for start in range(0, n, batch):
    chunk = [a[start:start + batch] for a in arrays]
    real = len(chunk[0])
    pad = batch - real
    padded = [np.concatenate([c, np.full((pad,) + c.shape[1:], np.nan if c.dtype.kind == "f"
                                          else 7, c.dtype)]) for c in chunk]
    yield padded, np.arange(batch) < real


def test_sequence_counts_stream_exactly_across_ragged_batches():
  logits = random_sequences(4, 11, 21, 12)
  noise, difficulty = False, 2
  _, flip_lists = ref.flip_prob(logits.argmax(-1), noise, difficulty)
  _, dist_lists = ref.ranking_dist(logits, noise, difficulty)
  total = 0
  for (chunk,), mask in padded_batches([logits], 4):  # 4 + 4 + 3 real, NaN padding
    total = total + metrics.sequence_counts(chunk, noise=noise, difficulty=difficulty, mask=mask)
  total = total.host()
  assert (total.videos, total.flips, total.distance, total.nonfinite) == (
      11, sum(map(sum, flip_lists)), sum(map(sum, dist_lists)), 0)
  assert total.pairs == 11 * 19


def test_error_counts_stream_exactly_across_ragged_batches():
  rng = np.random.default_rng(5)
  logits = rng.integers(0, 4, (37, 10)).astype(np.float32)  # ties: argmax takes the first
  labels = rng.integers(0, 10, 37)
  want_errors = sum(int(np.argmax(row) != label) for row, label in zip(logits, labels))
  counts = sum(metrics.error_counts(chunk, lab, mask)
               for (chunk, lab), mask in padded_batches([logits, labels], 8)).host()
  assert (counts.errors, counts.examples, counts.nonfinite) == (want_errors, 37, 0)
  from_predictions = metrics.error_counts(logits.argmax(-1), labels).host()
  assert (from_predictions.errors, from_predictions.examples) == (want_errors, 37)


def test_prediction_only_counts_have_no_distance():
  preds = random_sequences(6, 5, 9, 8).argmax(-1)
  counts = metrics.sequence_counts(preds, noise=True).host()
  assert counts.distance is None
  _, flip_lists = ref.flip_prob(preds, True, 1)
  assert counts.flips == sum(map(sum, flip_lists))
  with pytest.raises(ValueError, match="uT5D needs logits"):
    counts.mean_top5_distance


# --- across devices -------------------------------------------------------------------------


def mesh4():
  devices = jax.devices()
  if len(devices) < 4:
    pytest.skip("needs 4 devices (tests/conftest.py sets XLA_FLAGS)")
  return Mesh(np.array(devices[:4]), ("batch",))


def test_counts_of_a_batch_sharded_over_4_devices():
  mesh = mesh4()
  logits = random_sequences(7, 12, 11, 10)
  mask = np.arange(12) < 10  # two padding videos on the last device
  logits[10:] = np.nan
  sharding = NamedSharding(mesh, P("batch"))
  sharded = jax.device_put(logits, sharding)
  assert len(sharded.sharding.device_set) == 4
  counts = metrics.sequence_counts(sharded, noise=False, difficulty=1,
                                   mask=jax.device_put(mask, sharding))
  counts = counts.host()
  _, flip_lists = ref.flip_prob(logits[:10].argmax(-1), False, 1)
  _, dist_lists = ref.ranking_dist(logits[:10], False, 1)
  assert (counts.videos, counts.flips, counts.distance) == (
      10, sum(map(sum, flip_lists)), sum(map(sum, dist_lists)))


def test_shard_map_psum_equals_single_device_counts():
  mesh = mesh4()
  rng = np.random.default_rng(8)
  logits = rng.normal(size=(16, 9, 10)).astype(np.float32)
  labels = rng.integers(0, 10, 16).astype(np.int32)
  mask = np.arange(16) < 14

  def per_shard(logits, labels, mask):
    errors = metrics.error_counts(logits[:, 0], labels, mask)
    sequences = metrics.sequence_counts(logits, noise=True, mask=mask)
    return jax.lax.psum((errors, sequences), "batch")

  sharded = jax.jit(jax.shard_map(per_shard, mesh=mesh, in_specs=P("batch"), out_specs=P()))
  errors, sequences = sharded(logits, labels, mask)
  single_errors = metrics.error_counts(logits[:, 0], labels, mask).host()
  single_sequences = metrics.sequence_counts(logits, noise=True, mask=mask).host()
  assert errors.host() == single_errors
  assert sequences.host() == single_sequences
  assert single_sequences.videos == 14


# --- NaN inside jit is flagged, padding is not ----------------------------------------------


def test_nan_inside_jit_is_counted_and_raised_on_host():
  logits = random_sequences(9, 4, 6, 8)
  logits[1, 3, 2] = np.nan
  traced = jax.jit(lambda x, m: metrics.sequence_counts(x, noise=False, mask=m))
  counts = traced(logits, np.ones(4, bool))
  assert int(counts.nonfinite) == 1
  with pytest.raises(ValueError, match="NaN"):
    counts.host()
  with pytest.raises(ValueError, match="NaN"):
    metrics.summarize(sequences={("rotate", 1): counts})
  # The same NaN in a padding slot is not counted.
  masked = traced(logits, np.array([True, False, True, True]))
  assert masked.host().videos == 3
  errors = jax.jit(metrics.error_counts)(logits[:, 3], np.zeros(4, np.int32), np.ones(4, bool))
  assert int(errors.nonfinite) == 1


def test_adding_incompatible_sequence_counts_raises():
  a = metrics.sequence_counts(np.zeros((1, 5), np.int32), noise=False, difficulty=1)
  b = metrics.sequence_counts(np.zeros((1, 5), np.int32), noise=False, difficulty=2)
  with pytest.raises(ValueError, match="different"):
    a + b
  with pytest.raises(ValueError, match="cannot add"):
    a + metrics.error_counts(np.zeros(1, np.int32), np.zeros(1, np.int32))


def test_host_sums_do_not_overflow_int32():
  big = metrics.ErrorCounts(errors=jnp.int32(2**31 - 1), examples=jnp.int32(2**31 - 1))
  total = (big + big).host()
  assert total.errors == 2 * (2**31 - 1)


def test_flip_probability_and_mean_top5_distance_inside_jit():
  """Inside a jit both return float32 scalars equal to the host floats."""
  logits = jax.random.normal(jax.random.key(4), (3, 7, 10))
  predictions = jnp.argmax(logits, axis=-1)
  for noise, difficulty in ((True, 1), (False, 1), (False, 3)):
    fp = jax.jit(lambda p: metrics.flip_probability(p, noise=noise, difficulty=difficulty))
    t5d = jax.jit(lambda x: metrics.mean_top5_distance(x, noise=noise, difficulty=difficulty))
    assert fp(predictions).dtype == jnp.float32
    assert float(fp(predictions)) == pytest.approx(
        metrics.flip_probability(np.asarray(predictions), noise=noise, difficulty=difficulty))
    assert float(t5d(logits)) == pytest.approx(
        metrics.mean_top5_distance(np.asarray(logits), noise=noise, difficulty=difficulty))
