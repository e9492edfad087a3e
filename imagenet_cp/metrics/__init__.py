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
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from imagenet_cp.metrics.baselines import (
    ALEXNET, BENCHMARK_CORRUPTIONS, DIFFICULTIES, EXTRA_CORRUPTIONS,
    NOISE_PERTURBATIONS, PERTURBATIONS, TEST_PERTURBATIONS, Baseline)
from imagenet_cp.metrics.counts import ErrorCounts, SequenceCounts, error_counts, sequence_counts
from imagenet_cp.metrics.ranking import frame_pairs
from imagenet_cp.metrics.scores import (
    baseline_from_counts, ce, fr, mce, mfr, mt5d, relative_ce, relative_mce, summarize, t5d)
from imagenet_cp.metrics.stability import flip_probability, mean_top5_distance, top5_distance


# The evaluation suites are imported on first use (``import metrics`` stays free of the image,
# model and attack code); type checkers and IDEs see their real, typed signatures through the
# TYPE_CHECKING import, and at run time ``metrics.evaluate`` IS ``suites.corruption.evaluate``.
if TYPE_CHECKING:
  from imagenet_cp.suites.adversarial import evaluate_adversarial
  from imagenet_cp.suites.corruption import evaluate
  from imagenet_cp.suites.ood import evaluate_ood

_SUITES = {
    # Any classifier on ImageNet-C and ImageNet-P, on the demo, ImageNet or your own data.
    "evaluate": "imagenet_cp.suites.corruption",
    # Minimal distortions, accuracy-vs-budget curves, distortion statistics, transfer matrix.
    "evaluate_adversarial": "imagenet_cp.suites.adversarial",
    # ImageNet-ReaL, -V2, -A, -R (over their 200 classes) and -Sketch from their TFDS builds.
    "evaluate_ood": "imagenet_cp.suites.ood",
}


def __getattr__(name):
  if name in _SUITES:
    return getattr(importlib.import_module(_SUITES[name]), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALEXNET", "BENCHMARK_CORRUPTIONS", "DIFFICULTIES", "EXTRA_CORRUPTIONS",
    "NOISE_PERTURBATIONS", "PERTURBATIONS", "TEST_PERTURBATIONS", "Baseline", "ErrorCounts", "SequenceCounts",
    "baseline_from_counts", "ce", "error_counts", "evaluate", "evaluate_adversarial", "evaluate_ood", "flip_probability", "fr", "frame_pairs",
    "mce", "mean_top5_distance", "mfr", "mt5d", "relative_ce", "relative_mce",
    "sequence_counts", "summarize", "t5d", "top5_distance",
]
