"""Streaming metrics: jitted functions from one batch of model outputs to exact integer counts.

An evaluation over millions of images runs the model batch by batch and keeps only counts:
errors and examples (ImageNet-C), flips, summed top-5 distances and pairs (ImageNet-P).
Integer sums are exact and associative, so counts from batches, devices and hosts add up to
the same totals in any order:

* batches: ``total = total + batch_counts`` (``sum(list_of_counts)`` works too); adding
  concrete counts converts them to Python ints on the host, which never overflow;
* devices: call the jitted function on a batch sharded over a ``jax.sharding.Mesh`` (the sums
  become cross-device reductions), or inside ``shard_map`` and ``jax.lax.psum(counts, axis)``;
* hosts: gather each process's counts (``jax.experimental.multihost_utils.process_allgather``)
  and add them.

Within one call the counts are int32: a batch contributes at most ``B * P * 18`` to a sum.
A ragged last batch is padded to the batch size and ``mask`` marks the real examples; padding
is never counted, whatever it contains.  NaN logits of real examples are counted in
``nonfinite``; ``host()`` (and ``metrics.summarize``) raise a ValueError when it is non-zero.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from imagenet_cp.metrics import checks
from imagenet_cp.metrics.baselines import check_difficulty
from imagenet_cp.metrics.ranking import frame_pairs, top5_distance_core


def _add(a, b):
  if a is None or b is None:
    if a is None and b is None:
      return None
    raise ValueError("cannot add counts with and without top-5 distances")
  if isinstance(a, jax.core.Tracer) or isinstance(b, jax.core.Tracer):
    return a + b
  return int(a) + int(b)  # exact on the host, whatever the number of batches


class _Counts:
  """Shared behaviour: ``+`` (exact), ``sum()`` support, ``host()``."""

  def _check_compatible(self, other):
    if type(other) is not type(self):
      raise ValueError(f"cannot add {type(other).__name__} to {type(self).__name__}")

  def __add__(self, other):
    if isinstance(other, int) and other == 0:
      return self
    self._check_compatible(other)
    data = {f.name: _add(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self) if f.name in self.DATA}
    return dataclasses.replace(self, **data)

  def __radd__(self, other):
    return self.__add__(other)

  def host(self):
    """The same counts as Python ints; ValueError if any real example had NaN logits."""
    data = {name: None if getattr(self, name) is None else int(getattr(self, name))
            for name in self.DATA}
    counts = dataclasses.replace(self, **data)
    if counts.nonfinite:
      raise ValueError(
          f"{counts.nonfinite} examples had NaN logits; the model output is broken "
          "(these counts cannot be turned into metrics)")
    return counts


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["errors", "examples", "nonfinite"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class ErrorCounts(_Counts):
  """Top-1 errors of one ImageNet-C cell (a corruption and severity) or of the clean images.

  Attributes:
    errors: number of real examples whose top-1 prediction is not the label.
    examples: number of real (unmasked) examples.
    nonfinite: number of real examples with NaN logits (must be 0).
  """
  DATA = ("errors", "examples", "nonfinite")
  errors: int | jax.Array = 0
  examples: int | jax.Array = 0
  nonfinite: int | jax.Array = 0

  @property
  def error(self) -> float:
    """E = errors / examples (a fraction), computed on the host."""
    counts = self.host()
    if counts.examples == 0:
      raise ValueError("no examples counted")
    return counts.errors / counts.examples


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["videos", "flips", "distance", "nonfinite"],
                   meta_fields=["frames", "noise", "difficulty"])
@dataclasses.dataclass(frozen=True)
class SequenceCounts(_Counts):
  """Flips and top-5 distances of one ImageNet-P perturbation at one difficulty.

  Attributes:
    videos: number of real (unmasked) sequences.
    flips: pairs whose top-1 predictions differ.
    distance: summed top-5 distance over all pairs (None when only predictions were given).
    nonfinite: real sequences with NaN logits (must be 0).
    frames, noise, difficulty: static; fix the pairs compared (``ranking.frame_pairs``).
  """
  DATA = ("videos", "flips", "distance", "nonfinite")
  frames: int
  noise: bool
  difficulty: int
  videos: int | jax.Array = 0
  flips: int | jax.Array = 0
  distance: int | jax.Array | None = 0
  nonfinite: int | jax.Array = 0

  def _check_compatible(self, other):
    super()._check_compatible(other)
    mine = (self.frames, self.noise, self.difficulty)
    theirs = (other.frames, other.noise, other.difficulty)
    if mine != theirs:
      raise ValueError(
          "cannot add sequence counts of different (frames, noise, difficulty): "
          f"{mine} vs {theirs}")

  @property
  def pairs_per_video(self) -> int:
    return len(frame_pairs(self.frames, self.noise, self.difficulty)[0])

  @property
  def pairs(self) -> int:
    return int(self.videos) * self.pairs_per_video

  def _per_pair(self, total) -> float:
    if not checks.is_concrete(self.videos):  # inside a jit: a float32 scalar, no host checks
      return total(self).astype(jnp.float32) / (self.videos * self.pairs_per_video).astype(
          jnp.float32)
    counts = self.host()
    if counts.videos == 0:
      raise ValueError("no videos counted")
    return total(counts) / counts.pairs

  @property
  def flip_probability(self) -> float:
    """FP = flips / pairs = the original's mean over videos of per-video flip rates (inside a
    jit: a float32 scalar)."""
    return self._per_pair(lambda c: c.flips)

  @property
  def mean_top5_distance(self) -> float:
    """uT5D = summed distance / pairs (mean over videos of per-video means)."""
    if self.distance is None:
      raise ValueError("these counts were made from predictions only; uT5D needs logits")
    return self._per_pair(lambda c: c.distance)


# --------------------------------------------------------------------------------------------
# Jitted per-batch counting.


@jax.jit
def _error_counts_from_logits(logits, labels, mask):
  predictions = jnp.argmax(logits, axis=-1)
  nan = jnp.any(jnp.isnan(logits), axis=-1) & mask
  counts = _error_counts_from_predictions(predictions, labels, mask)
  return dataclasses.replace(counts, nonfinite=jnp.sum(nan, dtype=jnp.int32))


@jax.jit
def _error_counts_from_predictions(predictions, labels, mask):
  wrong = (predictions != labels) & mask
  return ErrorCounts(
      errors=jnp.sum(wrong, dtype=jnp.int32),
      examples=jnp.sum(mask, dtype=jnp.int32),
      nonfinite=jnp.zeros((), jnp.int32))


def error_counts(outputs, labels, mask=None) -> ErrorCounts:
  """Top-1 error counts of one batch (ImageNet-C, or the clean images).

  Args:
    outputs: float logits [B, C] or int predictions [B].
    labels: int [B], class indices.
    mask: bool [B], False for padding in a ragged last batch (default: all real).

  Returns:
    ``ErrorCounts`` of int32 device scalars: ``E_s,c = errors / examples``.
  """
  if hasattr(outputs, "dtype") and jnp.issubdtype(outputs.dtype, jnp.integer):
    predictions = checks.check_int_array(outputs, 1, "predictions")
    batch, num_classes = predictions.shape[0], None
    labels = checks.check_labels(labels, batch, num_classes)
    return _error_counts_from_predictions(predictions, labels, checks.check_mask(mask, batch))
  logits = checks.check_logits(outputs, 2)
  batch, num_classes = logits.shape
  labels = checks.check_labels(labels, batch, num_classes)
  return _error_counts_from_logits(logits, labels, checks.check_mask(mask, batch))


def _flips(predictions, mask, noise, difficulty):
  reference, compared = frame_pairs(predictions.shape[1], noise, difficulty)
  flipped = (predictions[:, reference] != predictions[:, compared]) & mask[:, None]
  return jnp.sum(flipped, dtype=jnp.int32)


@functools.partial(jax.jit, static_argnames=("noise", "difficulty"))
def _sequence_counts_from_predictions(predictions, mask, *, noise, difficulty):
  return SequenceCounts(
      frames=predictions.shape[1], noise=noise, difficulty=difficulty,
      videos=jnp.sum(mask, dtype=jnp.int32),
      flips=_flips(predictions, mask, noise, difficulty),
      distance=None, nonfinite=jnp.zeros((), jnp.int32))


@functools.partial(jax.jit, static_argnames=("noise", "difficulty"))
def per_video_counts(logits, *, noise: bool, difficulty: int):
  """Per-video records of a batch of sequences: what the streaming counts sum.

  logits float [B, T, C] -> (flips int32 [B], summed top-5 distance int32 [B], NaN bool [B]),
  over the frame pairs of ``ranking.frame_pairs(T, noise, difficulty)``.
  """
  reference, compared = frame_pairs(logits.shape[1], noise, difficulty)
  predictions = jnp.argmax(logits, axis=-1)                                 # [B, T]
  flips = jnp.sum(predictions[:, reference] != predictions[:, compared], axis=1, dtype=jnp.int32)
  distance = jnp.sum(top5_distance_core(logits[:, reference], logits[:, compared]), axis=1,
                     dtype=jnp.int32)                                       # [B]
  return flips, distance, jnp.any(jnp.isnan(logits), axis=(1, 2))


@functools.partial(jax.jit, static_argnames=("noise", "difficulty"))
def _sequence_counts_from_logits(logits, mask, *, noise, difficulty):
  flips, distance, nan = per_video_counts(logits, noise=noise, difficulty=difficulty)
  return SequenceCounts(
      frames=logits.shape[1], noise=noise, difficulty=difficulty,
      videos=jnp.sum(mask, dtype=jnp.int32),
      flips=jnp.sum(jnp.where(mask, flips, 0), dtype=jnp.int32),
      distance=jnp.sum(jnp.where(mask, distance, 0), dtype=jnp.int32),
      nonfinite=jnp.sum(nan & mask, dtype=jnp.int32))


def sequence_counts(outputs, *, noise: bool, difficulty: int = 1, mask=None) -> SequenceCounts:
  """Flip and top-5-distance counts of one batch of ImageNet-P sequences.

  Args:
    outputs: float logits [B, T, C] (flips and distances) or int predictions [B, T] (flips).
    noise: True for the noise sequences (gaussian_noise, shot_noise, speckle_noise): every
      frame is compared with frame 0.  False: frames ``difficulty`` apart are compared.
    difficulty: 1, 2 or 3; for noise sequences only recorded (their harder levels are
      separate datasets).
    mask: bool [B], False for padding sequences.

  Returns:
    ``SequenceCounts``; FP = flips / pairs, uT5D = distance / pairs.
  """
  noise = checks.check_noise(noise)
  difficulty = check_difficulty(difficulty)
  if hasattr(outputs, "dtype") and jnp.issubdtype(outputs.dtype, jnp.integer):
    predictions = checks.check_int_array(outputs, 2, "predictions")
    frame_pairs(predictions.shape[1], noise, difficulty)  # raises for too few frames
    return _sequence_counts_from_predictions(
        predictions, checks.check_mask(mask, predictions.shape[0]),
        noise=noise, difficulty=difficulty)
  logits = checks.check_logits(outputs, 3)
  frame_pairs(logits.shape[1], noise, difficulty)
  return _sequence_counts_from_logits(
      logits, checks.check_mask(mask, logits.shape[0]), noise=noise, difficulty=difficulty)
