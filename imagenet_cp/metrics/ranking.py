"""The top-5 distance of appendix C and the frame pairs ImageNet-P compares.

Top-5 distance (appendix C)::

  d(pi(x), pi(x')) = sum_{i=1..5} sum_{j=min(i, sigma(i))+1}^{max(i, sigma(i))} 1(1 <= j - 1 <= 5)
                   = sum_{i=1..5} | (i - 1) - min(sigma(i) - 1, 5) |,

with sigma(i) the rank in frame b of the class ranked i in the reference frame a.  The form
printed in section 4.2 (``1(1 <= j - i <= 5)``) is a typo: it gives 1, not 2, for
sigma = (2, 1, 3, ...).  Ranks are ordinal on ``-logits``: rank 1 is the largest logit and
ties go to the lower class index first, like ``scipy.stats.rankdata(-logits, 'ordinal')``
in the original ``ImageNet-P/test.py``.  The distance is an integer in [0, 18]: 15 when a's
top 5 all fall out of b's top 5, 18 for sigma = (6, 7, 8, 9, 1, ...).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

TOP = 5
MAX_TOP5_DISTANCE = 18  # max over sigma of sum_i |(i-1) - min(sigma(i)-1, 5)|


def _canonical(logits):
  # -0.0 and 0.0 tie in the ranking (rankdata compares values); make them one bit pattern so
  # that top_k's ordering agrees with the == / > comparisons below.
  return jnp.where(logits == 0, jnp.zeros_like(logits), logits)


def top5_distance_core(logits_a, logits_b) -> jax.Array:
  """Traceable top-5 distance, no input checks.

  Args:
    logits_a: float [..., C], the reference frame (clean frame for noise sequences).
    logits_b: float [..., C], the frame compared with it.

  Returns:
    int32 [...]: d(pi(a), pi(b)) in [0, 18].
  """
  a = _canonical(logits_a)
  b = _canonical(logits_b)
  num_classes = a.shape[-1]
  # Classes ranked 1..5 in a; lax.top_k puts the lower index first among equal values.
  _, top_classes = jax.lax.top_k(a, TOP)                       # [..., 5]
  b_top = jnp.take_along_axis(b, top_classes, axis=-1)         # [..., 5]
  classes = jnp.arange(num_classes, dtype=top_classes.dtype)
  b_all = b[..., None, :]                                      # [..., 1, C]
  ahead = (b_all > b_top[..., :, None]) | (
      (b_all == b_top[..., :, None]) & (classes < top_classes[..., :, None]))
  rank_minus_one = jnp.sum(ahead, axis=-1, dtype=jnp.int32)    # sigma(i) - 1, [..., 5]
  positions = jnp.arange(TOP, dtype=jnp.int32)                 # i - 1
  return jnp.sum(jnp.abs(positions - jnp.minimum(rank_minus_one, TOP)), axis=-1, dtype=jnp.int32)


top5_distance_jit = jax.jit(top5_distance_core)


@functools.lru_cache(maxsize=None)
def frame_pairs(num_frames: int, noise: bool, difficulty: int) -> tuple[np.ndarray, np.ndarray]:
  """Which frames the original evaluation compares, as (reference, compared) int32 [P] each.

  ``ImageNet-P/test.py`` walks ``step = 1 if noise else difficulty`` subsequences
  ``frames[i::step]``; a noise sequence compares every later frame with frame 0 (the clean
  image; harder noise comes from the separate ``_2``/``_3`` datasets, not from a stride), a
  temporal sequence compares consecutive frames of each subsequence, i.e. frames ``d`` apart.
  Every video has the same ``P = num_frames - step`` pairs, so pooled counts equal the
  original's mean of per-video means.
  """
  step = 1 if noise else difficulty
  reference, compared = [], []
  for start in range(min(step, num_frames)):   # fewer frames than the stride: no such walk
    frames = list(range(start, num_frames, step))
    previous = frames[0]
    for frame in frames[1:]:
      reference.append(previous)
      compared.append(frame)
      if not noise:
        previous = frame
  if not reference:
    raise ValueError(
        f"a sequence of {num_frames} frames has no pairs at difficulty {difficulty} "
        f"(need more than {step} frames)")
  return np.asarray(reference, np.int32), np.asarray(compared, np.int32)
