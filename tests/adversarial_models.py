"""Tiny classifiers for the adversarial-suite tests (cheap on 224 crops and on small images)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

HIGHEST = jax.lax.Precision.HIGHEST


def linear_apply(variables, images):
  """logits = W^T x + b on flattened pixels (any image size)."""
  flat = images.reshape(images.shape[0], -1)
  return jnp.dot(flat, variables["w"], precision=HIGHEST) + variables["b"]


def pooled_apply(variables, images):
  """8x8 average pooling of a 224 crop, then a linear map to 1000 classes."""
  n = images.shape[0]
  pooled = images.reshape(n, 8, 28, 8, 28, 3).mean(axis=(2, 4)).reshape(n, -1)
  return jnp.dot(pooled, variables["w"], precision=HIGHEST) + variables["b"]


def demo_classifier(margin: float = 1.0, steepness: float = 3.0):
  """(apply_fn, variables) for the CLI test: pooled linear model on 224 crops whose labels are
  the demo photos' (a planted bias makes every demo photo correct when clean)."""
  from imagenet_cp import sources  # pylint: disable=g-import-not-at-top
  from imagenet_cp import preprocess  # pylint: disable=g-import-not-at-top
  examples = sources.demo_examples()
  crops = np.stack([preprocess(sources.decode(e)) for e in examples]).astype(np.float32) / 255
  pooled = crops.reshape(len(examples), 8, 28, 8, 28, 3).mean(axis=(2, 4)).reshape(len(examples), -1)
  # Minimum-norm affine map with logits margin * one_hot(own photo) on the photos: a small
  # margin puts every photo a few /255 from its decision boundary (attacks succeed).
  design = np.concatenate([pooled, np.ones((len(examples), 1), np.float32)], axis=1)
  solution = np.linalg.lstsq(design, margin * np.eye(len(examples)), rcond=None)[0]
  # Plus a large component orthogonal to the photos (logits on them unchanged, steeper slopes).
  noise = np.random.default_rng(0).standard_normal(solution.shape)
  noise -= np.linalg.pinv(design) @ (design @ noise)
  solution = solution + steepness * noise
  w = np.zeros((pooled.shape[1], 1000), np.float32)
  b = np.full(1000, -1e3, np.float32)   # the other classes never win
  for i, example in enumerate(examples):
    w[:, example.label] = solution[:-1, i]
    b[example.label] = solution[-1, i]
  return pooled_apply, {"w": jnp.asarray(w, jnp.float32), "b": jnp.asarray(b)}


def demo_classifier_sharp():
  """demo_classifier with logits scaled x3: the same decisions, another model name."""
  apply_fn, variables = demo_classifier()
  return apply_fn, {"w": 3.0 * variables["w"], "b": 3.0 * variables["b"]}


def flip_problem(flip_iterations=(1, 2, 3, 5, 12), step: float = 4.0, slope: float = 10.0):
  """(variables, images [N, 1, 1, 3], labels) of a model that NES flips at known iterations.

  logits = (0, slope (x_r + x_g + x_b - 1.5)): class 0 (the label) while the pixel sum is
  below 1.5.  Example i starts (t_i - 1/2) ``step`` /255 below 0.5 in every channel, so a
  Linf NES run whose signed steps of ``step`` all go up (the loss rises with every channel;
  with enough samples the estimate's signs are right) crosses the boundary at iteration t_i
  exactly, i.e. after ``attacks.queries_at(t_i, samples)`` queries, unless its budget stops it
  first (t_i * step > eps).
  """
  t = np.asarray(flip_iterations, np.float32)
  start = 0.5 - (t - 0.5) * step / 255.0
  images = np.repeat(start[:, None], 3, axis=1).reshape(-1, 1, 1, 3).astype(np.float32)
  w = np.zeros((3, 2), np.float32)
  w[:, 1] = slope
  variables = {"w": jnp.asarray(w), "b": jnp.asarray([0.0, -1.5 * slope], jnp.float32)}
  return variables, images, np.zeros(len(t), np.int32)
