"""Plain NumPy re-statements of the original ImageNet-P/test.py loops (test-only oracle).

Written from the original ImageNet-P/test.py (hendrycks/robustness): per video,
for each of ``step = 1 if noise else difficulty`` subsequences ``frames[i::step]``, compare
each later frame with ``prev`` (which stays frame i for noise, else moves along); the video's
score is the mean of its list and the result is the mean over videos.  Ranks are
``scipy.stats.rankdata(-logits, method='ordinal')``; the distance of a pair is
``sum_i |cum[i-1] - cum[sigma(i)-1]|`` with ``cum = cumsum([0] + [1]*5 + [0]*(C-6))``.
"""
import numpy as np
from scipy.stats import rankdata


def ordinal_ranks(logits_frame):
  return rankdata(-np.asarray(logits_frame, np.float64), method="ordinal").astype(np.int64)


def top5_dist(sigma):
  num_classes = len(sigma)
  cum = np.cumsum(np.asarray([0] + [1] * 5 + [0] * (num_classes - 1 - 5)))
  return int(np.sum(np.abs(cum[:5] - cum[sigma - 1][:5])))


def pair_lists(videos, noise, difficulty, compare):
  """Per video, the list the original appends to (one entry per compared pair)."""
  step = 1 if noise else difficulty
  lists = []
  for video in videos:
    result_for_vid = []
    for i in range(step):
      prev = video[i]
      for frame in video[i::step][1:]:
        result_for_vid.append(compare(prev, frame))
        if not noise:
          prev = frame
    lists.append(result_for_vid)
  return lists


def flip_prob(predictions, noise, difficulty):
  """(original float FP, per-video lists of 0/1 flips)."""
  lists = pair_lists(predictions, noise, difficulty, lambda a, b: int(a != b))
  result = 0.0
  for result_for_vid in lists:
    result += np.mean(result_for_vid) / len(predictions)
  return result, lists


def ranking_dist(logits, noise, difficulty):
  """(original float uT5D, per-video lists of distances), from logits [N, T, C]."""
  ranks = [[ordinal_ranks(frame) for frame in video] for video in logits]

  def compare(perm1, perm2):
    return top5_dist(perm2[np.argsort(perm1)])

  lists = pair_lists(ranks, noise, difficulty, compare)
  result = 0.0
  for result_for_vid in lists:
    result += np.mean(result_for_vid) / len(logits)
  return result, lists


def appendix_c_distance(sigma):
  """Appendix C's double sum, literally: sum_i sum_{j=min+1}^{max} 1(1 <= j - 1 <= 5)."""
  return sum(1 for i in range(1, 6)
             for j in range(min(i, sigma[i - 1]) + 1, max(i, sigma[i - 1]) + 1)
             if 1 <= j - 1 <= 5)


def section_42_distance(sigma):
  """The form printed in section 4.2, with the typo 1(1 <= j - i <= 5)."""
  return sum(1 for i in range(1, 6)
             for j in range(min(i, sigma[i - 1]) + 1, max(i, sigma[i - 1]) + 1)
             if 1 <= j - i <= 5)


def test_oracle_distance_equals_appendix_c_double_sum():
  # The original's cumsum form and appendix C's double sum are one function (checked on
  # random permutations of 12 classes, many of which move top-5 classes out and in).
  rng = np.random.default_rng(0)
  for _ in range(2000):
    sigma = rng.permutation(12) + 1
    assert top5_dist(sigma) == appendix_c_distance(sigma)


def test_oracle_loops_on_a_hand_case():
  preds = np.array([[0, 1, 1, 1, 0]])
  assert flip_prob(preds, noise=False, difficulty=2)[1] == [[1, 1, 0]]
  assert flip_prob(preds, noise=True, difficulty=2)[1] == [[1, 1, 1, 0]]
