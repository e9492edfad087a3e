"""ImageNet-P's raw stability measures on whole arrays: FP, the top-5 distance, uT5D.

These are the convenient, checked entry points; they run the same jitted counting as the
streaming functions in ``metrics.counts`` and divide on the host, or, called inside a ``jit``
(traced inputs), return the quotient as a float32 scalar array.
"""
from __future__ import annotations

import jax

from imagenet_cp.metrics import checks
from imagenet_cp.metrics.counts import sequence_counts
from imagenet_cp.metrics.ranking import top5_distance_jit


def flip_probability(predictions, *, noise: bool, difficulty: int = 1) -> float:
  """Flip probability FP of ``N`` sequences (section 4.2), as the original evaluation defines it.

  FP = 1/(m(n-1)) sum_i sum_j 1(f(x_j) != f(x_1)) for noise sequences (every frame against
  the clean frame 0); for temporal sequences consecutive frames of each stride-``difficulty``
  subsequence are compared.  Equal to ``ImageNet-P/test.py``'s mean over videos of the
  per-video mean, since every video has the same number of pairs.

  Args:
    predictions: int [N, T], top-1 class of every frame.
    noise: whether these are noise sequences (compared with frame 0).
    difficulty: 1, 2 or 3.

  Returns:
    FP as a float in [0, 1] (inside ``jit``: a float32 scalar array).
  """
  predictions = checks.check_int_array(predictions, 2, "predictions")
  return sequence_counts(predictions, noise=noise, difficulty=difficulty).flip_probability


def top5_distance(logits_a, logits_b) -> jax.Array:
  """Per-example top-5 distance d(pi(a), pi(b)) of appendix C.

  Args:
    logits_a: float [N, C], the reference frame (the clean one for noise sequences, the
      earlier one otherwise).
    logits_b: float [N, C], the frame compared with it.

  Returns:
    int32 [N] in [0, 18]: sum_{i=1..5} |(i-1) - min(sigma(i)-1, 5)|, sigma(i) the rank in b
    of the class ranked i in a (ordinal ranks, ties to the lower class index).
  """
  checks.check_no_nan(checks.check_logits(logits_a, 2, "logits_a"), "logits_a")
  checks.check_no_nan(checks.check_logits(logits_b, 2, "logits_b"), "logits_b")
  if tuple(logits_a.shape) != tuple(logits_b.shape):
    raise ValueError(
        f"logits_a and logits_b must have the same shape, got {tuple(logits_a.shape)} and "
        f"{tuple(logits_b.shape)}")
  return top5_distance_jit(logits_a, logits_b)


def mean_top5_distance(logits, *, noise: bool, difficulty: int = 1) -> float:
  """uT5D of ``N`` sequences: the mean top-5 distance over the pairs FP compares (section 4.2).

  Args:
    logits: float [N, T, C].
    noise, difficulty: as for ``flip_probability``.

  Returns:
    uT5D as a float in [0, 18] (inside ``jit``: a float32 scalar array).
  """
  return sequence_counts(logits, noise=noise, difficulty=difficulty).mean_top5_distance
