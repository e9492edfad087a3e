"""Parity checks of zoo ports against torchvision 0.28 (a helper module of the model tests).

The torch model gets random weights *and* random values where torchvision's init leaves a
constant that would hide a wrong mapping (BatchNorm statistics and affines, LayerNorm affines,
zero-initialised biases, ConvNeXt's 1e-6 layer scale).  Its state dict goes through a real
``.pth`` file and ``models.load(name, checkpoint=path)``.  Tolerance: max |logit diff| <=
REL_TOL * max |logit|, and the same arg-max.
"""
import gc

import jax
import numpy as np
import pytest

from imagenet_cp import models
from test_models_parity import BATCH, REL_TOL, _randomize_batch_norm

_TORCH_LEAF = {"kernel": "weight", "scale": "weight", "mean": "running_mean", "var": "running_var"}


def randomize(model, torch, seed=0):
  """Random BN/LN statistics and affines, random values for all-zero biases and layer scales."""
  _randomize_batch_norm(model, torch, seed)
  gen = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.LayerNorm):
        m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
        m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
    for key, p in model.named_parameters():
      if key.endswith("bias") and not p.any():
        p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
      elif key.endswith("layer_scale"):
        p.copy_(torch.rand(p.shape, generator=gen) * 0.5 + 0.25)


def assert_logits_match(name, size, tmp_path, batch=BATCH):
  """torchvision's ``name`` (randomized) vs ``models.load(name, checkpoint=<its .pth>)`` on a
  [batch, size, size, 3] input; returns the relative error."""
  torch = pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import torchvision_model
  torch.manual_seed(0)
  model = torchvision_model(name)
  randomize(model, torch)
  path = tmp_path / f"{name}.pth"
  torch.save(model.state_dict(), path)
  x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype(np.float32)
  with torch.inference_mode():
    expected = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  del model
  gc.collect()
  module, variables, _ = models.load(name, checkpoint=path)
  path.unlink()
  got = np.asarray(jax.jit(module.apply)(variables, x))
  assert got.shape == expected.shape == (batch, 1000)
  err = float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))
  assert err <= REL_TOL, f"{name} at {size} px: relative max logit error {err:.2e}"
  np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
  return err


def torch_state_shapes(model) -> dict:
  """{state-dict key: shape} of a torch model (e.g. one built on the meta device)."""
  return {k: tuple(v.shape) for k, v in model.state_dict().items()
          if not k.endswith("num_batches_tracked")}


def flax_state_shapes(module, size=224) -> dict:
  """The torch state-dict {key: shape} that ``module``'s variables convert from: an oracle
  written apart from models/convert.py (conv kernels HWIO <- OIHW, dense kernels transposed)."""
  from imagenet_cp.models import convert
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(convert.variable_shapes(module, size))[0]:
    names = [p.key for p in path]
    shape = tuple(leaf.shape)
    if names[-1] == "kernel" and len(shape) == 4:
      shape = (shape[3], shape[2], shape[0], shape[1])
    elif names[-1] == "kernel" and len(shape) == 2:
      shape = shape[::-1]
    out[".".join(names[1:-1] + [_TORCH_LEAF.get(names[-1], names[-1])])] = shape
  return out
