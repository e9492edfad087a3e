"""Top-5 distance (appendix C) and ordinal ranking."""
import numpy as np
import pytest

from imagenet_cp import metrics
import test_metrics_reference as ref

NUM_CLASSES = 10

# Appendix C's examples, as published: sigma (1-based ranks in b of the classes ranked 1, 2, ... in
# a) -> d'.
APPENDIX_C = metrics.baselines.PAPER_APPENDIX_C_DISTANCES


def logits_for(sigma):
  """(a, b) logits [1, C]: a ranks class k at k+1; b ranks class k at sigma[k]."""
  sigma = np.asarray(sigma)
  a = (NUM_CLASSES - np.arange(NUM_CLASSES)).astype(np.float32)
  b = (NUM_CLASSES - sigma).astype(np.float32)
  return a[None], b[None]


@pytest.mark.parametrize("sigma,expected", APPENDIX_C)
def test_appendix_c_examples(sigma, expected):
  a, b = logits_for(sigma)
  assert int(metrics.top5_distance(a, b)[0]) == expected
  assert ref.appendix_c_distance(sigma) == expected


def test_all_appendix_c_examples_in_one_batch():
  pairs = [logits_for(s) for s, _ in APPENDIX_C]
  a = np.concatenate([p[0] for p in pairs])
  b = np.concatenate([p[1] for p in pairs])
  got = np.asarray(metrics.top5_distance(a, b))
  assert got.dtype == np.int32
  np.testing.assert_array_equal(got, [d for _, d in APPENDIX_C])


def test_section_42_form_is_a_typo():
  # The form printed in section 4.2 gives 1 for sigma = (2, 1, ...); appendix C says 2.
  sigma = (2, 1, 3, 4, 5, 6, 7, 8, 9, 10)
  assert ref.section_42_distance(sigma) == 1
  a, b = logits_for(sigma)
  assert int(metrics.top5_distance(a, b)[0]) == 2


def test_reference_frame_is_a():
  # d is not symmetric: sigma = (2, ..., 10, 1) gives 5; from b's side the inverse
  # (10, 1, 2, ..., 9) gives 5 + 1 + 1 + 1 + 1 = 9.
  sigma = np.array((2, 3, 4, 5, 6, 7, 8, 9, 10, 1))
  a, b = logits_for(sigma)
  inverse = np.argsort(sigma) + 1
  assert int(metrics.top5_distance(a, b)[0]) == 5
  assert int(metrics.top5_distance(b, a)[0]) == ref.top5_dist(inverse) == 9


def test_random_logits_with_ties_match_rankdata_ordinal():
  rng = np.random.default_rng(1)
  n, c = 400, 12
  # Small integers: many ties, so the class-index tie break matters; -0.0 ties with 0.0.
  a = rng.integers(-3, 4, (n, c)).astype(np.float32)
  b = rng.integers(-3, 4, (n, c)).astype(np.float32)
  a[0, :] = 0.0
  a[0, 3] = -0.0
  b[1, :] = -0.0
  a[2:100] = rng.normal(size=(98, c))
  b[2:100] = a[2:100] + 0.3 * rng.normal(size=(98, c))
  b[100:120, 0] = np.inf
  a[120:140, 5] = -np.inf
  got = np.asarray(metrics.top5_distance(a, b))
  want = [ref.top5_dist(ref.ordinal_ranks(b[i])[np.argsort(ref.ordinal_ranks(a[i]))])
          for i in range(n)]
  np.testing.assert_array_equal(got, want)
  assert got.min() >= 0 and got.max() <= 18
  assert len(set(want)) > 8  # the cases are varied


def test_distance_of_a_frame_with_itself_is_zero():
  rng = np.random.default_rng(2)
  a = rng.integers(0, 3, (50, 7)).astype(np.float32)
  np.testing.assert_array_equal(metrics.top5_distance(a, a), 0)


def test_top5_falling_out_and_the_maximum_18():
  # The top 5 of a all fall out of b's top 5: 5 + 4 + 3 + 2 + 1.
  a = np.arange(10, 0, -1, dtype=np.float32)[None]
  b = np.arange(1, 11, dtype=np.float32)[None]
  assert int(metrics.top5_distance(a, b)[0]) == 15
  # Classes ranked 1-4 fall out and the one ranked 5 becomes first: 5 + 4 + 3 + 2 + 4.
  a, b = logits_for((6, 7, 8, 9, 1, 2, 3, 4, 5, 10))
  assert int(metrics.top5_distance(a, b)[0]) == 18
