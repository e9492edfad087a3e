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

import os
from typing import Any, Callable, Iterable, Sequence

import jax
import numpy as np

from imagenet_cp.metrics.baselines import (
    ALEXNET, BENCHMARK_CORRUPTIONS, CORRUPTIONS, DIFFICULTIES, EXTRA_CORRUPTIONS,
    NOISE_PERTURBATIONS, PERTURBATIONS, TEST_PERTURBATIONS, Baseline)
from imagenet_cp.metrics.counts import ErrorCounts, SequenceCounts, error_counts, sequence_counts
from imagenet_cp.metrics.ranking import frame_pairs
from imagenet_cp.metrics.scores import (
    baseline_from_counts, ce, fr, mce, mfr, mt5d, relative_ce, relative_mce, summarize, t5d)
from imagenet_cp.metrics.stability import flip_probability, mean_top5_distance, top5_distance


# The signature of ``suites.corruption.evaluate``, written out for IDEs and type checkers
# (tests/test_evaluate_own_data.py checks that the two agree).
def evaluate(apply_fn: Callable, variables: Any, *,
             images: np.ndarray | jax.Array | None = None,
             labels: np.ndarray | jax.Array | Sequence[int] | None = None,
             batches: Iterable[tuple[Any, Any]] | None = None,
             source_id: str | None = None,
             tfds_name: str | None = None,
             tfds_split: str | None = None,
             tfds_dir: str | os.PathLike | None = None,
             source: str | None = None,
             imagenet_dir: str | os.PathLike | None = None,
             corruptions: Sequence[str] = CORRUPTIONS,
             severities: Sequence[int] = (1, 2, 3, 4, 5),
             perturbations: Sequence[str] = PERTURBATIONS,
             difficulty: int = 1,
             batch_size: int = 32,
             seed: int = 0,
             release_jpeg: bool = True,
             output_dir: str | os.PathLike | None = None,
             baseline: Baseline = ALEXNET,
             bootstrap: int = 1000,
             max_images: int | None = None,
             model_name: str = "user model",
             chunk_size: int = 256,
             tfds_data_dir: str | os.PathLike | None = None,
             tfds_image_format: str = "jpeg",
             progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
  """Evaluates any classifier on ImageNet-C and ImageNet-P (see ``suites.corruption.evaluate``
  for every argument).

  ``apply_fn(variables, images)`` takes float32 [N, 224, 224, 3] pixels in [0, 1] and returns
  logits [N, C]; the images are the demo photos (default), ImageNet (``source='imagenet'``,
  ``imagenet_dir``) or your own: ``images=`` uint8 [N, 224, 224, 3] + ``labels=`` (ImageNet-C
  only; shorter side 256 for ImageNet-P too), ``batches=`` an iterable of ``(images, labels)``
  with ``source_id=``, or ``tfds_name=`` + ``tfds_split=``.  The result is the ``results.json``
  dict that ``python -m metrics.run`` writes.  Imported lazily, so ``import metrics`` stays free
  of the image code.
  """
  from imagenet_cp.suites.corruption import evaluate as _evaluate  # pylint: disable=g-import-not-at-top
  return _evaluate(
      apply_fn, variables, images=images, labels=labels, batches=batches, source_id=source_id,
      tfds_name=tfds_name, tfds_split=tfds_split, tfds_dir=tfds_dir, source=source,
      imagenet_dir=imagenet_dir, corruptions=corruptions, severities=severities,
      perturbations=perturbations, difficulty=difficulty, batch_size=batch_size, seed=seed,
      release_jpeg=release_jpeg, output_dir=output_dir, baseline=baseline, bootstrap=bootstrap,
      max_images=max_images, model_name=model_name, chunk_size=chunk_size,
      tfds_data_dir=tfds_data_dir, tfds_image_format=tfds_image_format, progress=progress,
      log=log)


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
