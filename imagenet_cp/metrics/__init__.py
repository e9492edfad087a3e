"""The paper's metrics (Hendrycks & Dietterich, ICLR 2019, sections 4.1, 4.2, appendices C-E).

Public API (DESIGN.md)::

  metrics.flip_probability(predictions, *, noise, difficulty=1)   # int [N, T] -> float FP
  metrics.top5_distance(logits_a, logits_b)                       # [N, C] x [N, C] -> int32 [N]
  metrics.mean_top5_distance(logits, *, noise, difficulty=1)      # [N, T, C] -> float uT5D

Streaming (jitted, exact integer counts that add across batches, devices and hosts)::

  metrics.error_counts(logits_or_predictions, labels, mask=None)  # -> ErrorCounts
  metrics.sequence_counts(logits_or_predictions, *, noise, difficulty=1, mask=None)
                                                                  # -> SequenceCounts
  metrics.summarize(errors, clean, sequences, baseline=metrics.ALEXNET)   # -> dict

Scores in percent, baseline = 100: ``ce``, ``relative_ce``, ``mce``, ``relative_mce``,
``fr``, ``mfr``, ``t5d``, ``mt5d``.  Baselines: ``ALEXNET`` (published numbers, with sources)
or a ``Baseline`` the user measured (``baseline_from_counts``).
"""
from imagenet_cp.metrics.baselines import (
    ALEXNET, BENCHMARK_CORRUPTIONS, DIFFICULTIES, EXTRA_CORRUPTIONS, NOISE_PERTURBATIONS,
    PERTURBATIONS, TEST_PERTURBATIONS, Baseline)
from imagenet_cp.metrics.counts import ErrorCounts, SequenceCounts, error_counts, sequence_counts
from imagenet_cp.metrics.ranking import frame_pairs
from imagenet_cp.metrics.scores import (
    baseline_from_counts, ce, fr, mce, mfr, mt5d, relative_ce, relative_mce, summarize, t5d)
from imagenet_cp.metrics.stability import flip_probability, mean_top5_distance, top5_distance


def evaluate(apply_fn, variables, **kwargs) -> dict:
  """Evaluates any classifier on ImageNet-C and ImageNet-P (see ``suites.corruption.evaluate``).

  ``apply_fn(variables, images)`` takes float32 [N, 224, 224, 3] pixels in [0, 1] and returns
  logits [N, 1000]; the result is the ``results.json`` dict that ``python -m metrics.run`` writes.
  Imported lazily, so ``import metrics`` stays free of the image code.
  """
  from imagenet_cp.suites.corruption import evaluate as _evaluate  # pylint: disable=g-import-not-at-top
  return _evaluate(apply_fn, variables, **kwargs)


def evaluate_adversarial(apply_fn, variables, **kwargs) -> dict:
  """Adversarial robustness of any classifier: minimal distortions, accuracy-vs-budget and
  -iterations curves, distortion statistics and the transfer matrix (see
  ``suites.adversarial.evaluate_adversarial``); the ``results.json["adversarial"]`` dict."""
  from imagenet_cp.suites.adversarial import evaluate_adversarial as _run  # pylint: disable=g-import-not-at-top
  return _run(apply_fn, variables, **kwargs)


def evaluate_ood(apply_fn, variables, **kwargs) -> dict:
  """Natural robustness of any classifier on the TFDS builds of ImageNet-ReaL, -V2, -A, -R (over
  their 200 classes) and -Sketch (see ``suites.ood.evaluate_ood``); the
  ``results.json["ood"]`` dict."""
  from imagenet_cp.suites.ood import evaluate_ood as _run  # pylint: disable=g-import-not-at-top
  return _run(apply_fn, variables, **kwargs)


__all__ = [
    "ALEXNET", "BENCHMARK_CORRUPTIONS", "DIFFICULTIES", "EXTRA_CORRUPTIONS",
    "NOISE_PERTURBATIONS", "PERTURBATIONS", "TEST_PERTURBATIONS", "Baseline", "ErrorCounts", "SequenceCounts",
    "baseline_from_counts", "ce", "error_counts", "evaluate", "evaluate_adversarial", "evaluate_ood", "flip_probability", "fr", "frame_pairs",
    "mce", "mean_top5_distance", "mfr", "mt5d", "relative_ce", "relative_mce",
    "sequence_counts", "summarize", "t5d", "top5_distance",
]
