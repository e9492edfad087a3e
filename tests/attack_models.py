"""Small models with closed-form adversarial distances, shared by the attack tests."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

HIGHEST = jax.lax.Precision.HIGHEST


def linear_apply(variables, images):
  """logits = W^T x + b on flattened pixels."""
  flat = images.reshape(images.shape[0], -1)
  return jnp.dot(flat, variables["w"], precision=HIGHEST) + variables["b"]


def mlp_apply(variables, images):
  flat = images.reshape(images.shape[0], -1)
  hidden = jnp.tanh(jnp.dot(flat, variables["w1"], precision=HIGHEST) + variables["b1"])
  return jnp.dot(hidden, variables["w2"], precision=HIGHEST) + variables["b2"]


def constant_apply(variables, images):
  """Logits that ignore the input (every loss is flat; nothing ever succeeds)."""
  return jnp.broadcast_to(variables["b"], (images.shape[0],) + variables["b"].shape) + 0.0 * (
      jnp.sum(images, axis=(1, 2, 3))[:, None])


@dataclasses.dataclass
class LinearProblem:
  variables: dict
  images: np.ndarray       # float32 [N, H, W, 3], well inside the box
  labels: np.ndarray       # int32 [N], the model's own predictions
  l2: np.ndarray           # exact minimal L2 distance to misclassification, /255
  linf: np.ndarray         # exact minimal Linf distance, /255
  l1: np.ndarray           # exact minimal L1 distance (no box), /255
  l2_slope: np.ndarray     # ||w_k - w_y||_2 of the class k nearest in L2
  linf_slope: np.ndarray   # ||w_k - w_y||_1 of the class k nearest in Linf


def linear_problem(n=6, side=4, classes=2, seed=0, low=8.0, high=24.0) -> LinearProblem:
  """Points at L2 distances uniform in [low, high] /255 from the boundary of their runner-up.

  For an affine classifier the region where class k beats y is the half-space
  f_k(x) = (w_k - w_y).x + b_k - b_y >= 0, so the minimal distance to misclassification is
  min_k |f_k| / ||w_k - w_y||_dual (dual of L2: L2, of Linf: L1, of L1: Linf).  The points sit
  at least 0.25 from the box faces, further than any of these distances.
  """
  rng = np.random.default_rng(seed)
  dim = side * side * 3
  w = rng.standard_normal((dim, classes)).astype(np.float64)
  base = rng.uniform(0.45, 0.55, (n, dim))
  labels = rng.integers(0, classes, n)
  runner = (labels + 1 + rng.integers(0, classes - 1, n)) % classes
  # Every pairwise boundary passes through the grey image 0.5.
  b = -0.5 * w.sum(axis=0)
  x = np.empty((n, dim))
  for i in range(n):
    u = w[:, labels[i]] - w[:, runner[i]]
    # On the y-vs-runner boundary, then inward by the chosen distance.
    on = base[i] - ((base[i] - 0.5) @ u) / (u @ u) * u
    x[i] = on + rng.uniform(low, high) / 255.0 * u / np.linalg.norm(u)
  logits = x @ w + b
  assert np.all(logits.argmax(1) == labels) or classes > 2
  labels = logits.argmax(1)
  f = logits - logits[np.arange(n), labels][:, None]
  l2 = np.full(n, np.inf)
  linf = np.full(n, np.inf)
  l1 = np.full(n, np.inf)
  l2_slope = np.zeros(n)
  linf_slope = np.zeros(n)
  for i in range(n):
    for k in range(classes):
      if k == labels[i]:
        continue
      u = w[:, k] - w[:, labels[i]]
      if -f[i, k] / np.linalg.norm(u) < l2[i]:
        l2[i], l2_slope[i] = -f[i, k] / np.linalg.norm(u), np.linalg.norm(u)
      if -f[i, k] / np.abs(u).sum() < linf[i]:
        linf[i], linf_slope[i] = -f[i, k] / np.abs(u).sum(), np.abs(u).sum()
      l1[i] = min(l1[i], -f[i, k] / np.abs(u).max())
  assert np.all(x > 0.25) and np.all(x < 0.75) and np.all(linf * 255 < 0.25 * 255)
  variables = {"w": jnp.asarray(w, jnp.float32), "b": jnp.asarray(b, jnp.float32)}
  return LinearProblem(variables, x.reshape(n, side, side, 3).astype(np.float32),
                       labels.astype(np.int32), l2 * 255, linf * 255, l1 * 255, l2_slope,
                       linf_slope)


def mlp_problem(n=8, side=4, classes=5, hidden=16, seed=1):
  """A tiny random MLP on random images -> (variables, images, its own predictions)."""
  rng = np.random.default_rng(seed)
  dim = side * side * 3
  variables = {
      "w1": jnp.asarray(rng.standard_normal((dim, hidden)) / np.sqrt(dim) * 4, jnp.float32),
      "b1": jnp.zeros(hidden, jnp.float32),
      "w2": jnp.asarray(rng.standard_normal((hidden, classes)), jnp.float32),
      "b2": jnp.zeros(classes, jnp.float32),
  }
  images = rng.uniform(0.0, 1.0, (n, side, side, 3)).astype(np.float32)
  labels = np.asarray(mlp_apply(variables, images)).argmax(1).astype(np.int32)
  return variables, images, labels


def twin_mlp(side=8, classes=10, hidden=32, seed=0):
  """A tanh MLP in JAX and its twin in torch with the same weights -> (variables, torch model).

  The torch model takes NCHW images and flattens them in the JAX model's NHWC order, so both see
  the same function of the same pixels."""
  import torch
  rng = np.random.default_rng(seed)
  dim = side * side * 3
  w1 = rng.standard_normal((dim, hidden)) * 3.0 / np.sqrt(dim)
  w2 = rng.standard_normal((hidden, classes)) * 2.0 / np.sqrt(hidden)
  b1 = rng.standard_normal(hidden) * 0.1
  b2 = rng.standard_normal(classes) * 0.1
  variables = {"w1": jnp.asarray(w1, jnp.float32), "b1": jnp.asarray(b1, jnp.float32),
               "w2": jnp.asarray(w2, jnp.float32), "b2": jnp.asarray(b2, jnp.float32)}

  class Twin(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.hidden = torch.nn.Linear(dim, hidden)
      self.out = torch.nn.Linear(hidden, classes)
      with torch.no_grad():
        self.hidden.weight.copy_(torch.tensor(w1.T, dtype=torch.float32))
        self.hidden.bias.copy_(torch.tensor(b1, dtype=torch.float32))
        self.out.weight.copy_(torch.tensor(w2.T, dtype=torch.float32))
        self.out.bias.copy_(torch.tensor(b2, dtype=torch.float32))

    def forward(self, x):
      flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
      return self.out(torch.tanh(self.hidden(flat)))

  return variables, Twin().eval()


def twin_inputs(variables, n=200, side=8, seed=0):
  """Random images the twin MLP classifies as their labels (its own predictions) and the torch
  NCHW copy -> (images [N, H, W, 3], labels [N], torch images, torch labels)."""
  import torch
  rng = np.random.default_rng(seed)
  images = rng.uniform(0.0, 1.0, (n, side, side, 3)).astype(np.float32)
  labels = np.asarray(mlp_apply(variables, images)).argmax(1).astype(np.int32)
  return (images, labels, torch.tensor(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
          torch.tensor(labels, dtype=torch.long))


class CountingApply:
  """An apply_fn that counts the images it scored (run the attack under jax.disable_jit, so its
  loops call it from Python)."""

  def __init__(self, fn):
    self.fn, self.rows = fn, 0

  def __call__(self, variables, images):
    self.rows += images.shape[0]
    return self.fn(variables, images)
