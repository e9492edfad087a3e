"""Parity checks of zoo ports against torchvision 0.28 (a helper module of the model tests).

The torch model gets random weights *and* random values where torchvision's init leaves a
constant that would hide a wrong mapping (BatchNorm statistics and affines, LayerNorm affines,
all-zero biases, class tokens and heads, ConvNeXt's 1e-6 layer scale, Swin's relative-position
tables and V2's logit scales).  Its state dict goes through a real ``.pth`` file and
``models.load(name, checkpoint=path)``.  Tolerance: max |logit diff| <= REL_TOL * max |logit|,
and the same arg-max.
"""
import gc

import jax
import numpy as np
import pytest

from imagenet_cp import models

BATCH = 2
REL_TOL = 1e-4
_TORCH_LEAF = {"kernel": "weight", "scale": "weight", "mean": "running_mean", "var": "running_var"}


def randomize_batch_norm(model, torch, seed=0):
  """Random BN statistics and affine parameters, so a wrong BN mapping shows in the logits."""
  gen = torch.Generator().manual_seed(seed)
  for m in model.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
      n = m.num_features
      m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
      m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
      m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
      m.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)


def randomize(model, torch, seed=0):
  """Random values for every parameter torchvision initialises to a constant (see above)."""
  randomize_batch_norm(model, torch, seed)
  gen = torch.Generator().manual_seed(seed + 1)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.LayerNorm):
        m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
        m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
    for key, p in model.named_parameters():
      leaf = key.rsplit(".", 1)[-1]
      if leaf == "relative_position_bias_table":
        p.copy_(torch.randn(p.shape, generator=gen))
      elif leaf == "logit_scale":  # log(100) = 4.6 is V2's clamp: some heads above it
        p.copy_(torch.rand(p.shape, generator=gen) * 4.5 + 1.0)
      elif leaf == "layer_scale":
        p.copy_(torch.rand(p.shape, generator=gen) * 0.5 + 0.25)
      elif not p.any():  # zero biases, ViT's class token and head
        p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


# timm's layer scales start at a constant (1e-6, init_values): redrawn in [0.25, 0.75).
LAYER_SCALES = {"gamma": (0.25, 0.5)}


def random_timm(timm_model, torch, model_name, seed=0, redraw=LAYER_SCALES, **kwargs):
  """timm's ``model_name`` (``kwargs`` override its hyper-parameters) built by ``timm_model``,
  randomized as above, then every parameter whose last key part is in ``redraw`` uniform in
  [low, low + width) (``redraw``: name -> (low, width))."""
  torch.manual_seed(seed)
  model = timm_model(model_name, **kwargs)
  randomize(model, torch, seed)
  gen = torch.Generator().manual_seed(seed + 2)
  with torch.no_grad():
    for key, p in model.named_parameters():
      leaf = key.rsplit(".", 1)[-1]
      if leaf in redraw:
        low, width = redraw[leaf]
        p.copy_(torch.rand(p.shape, generator=gen) * width + low)
  return model


def inputs(size, batch=BATCH):
  return np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype(np.float32)


def torch_logits(model, x):
  import torch
  with torch.inference_mode():
    return model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


def check_logits(got, expected, what):
  """The tolerance above; returns the relative error."""
  assert got.shape == expected.shape
  err = float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))
  assert err <= REL_TOL, f"{what}: relative max logit error {err:.2e}"
  np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
  return err


def torch_reference(name, size, path, batch=BATCH, state_dict_fn=None):
  """torchvision's ``name`` (randomized), its state dict saved to ``path`` (through
  ``state_dict_fn``, e.g. an older key style); -> (input, logits)."""
  torch = pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import torchvision_model
  torch.manual_seed(0)
  model = torchvision_model(name)
  randomize(model, torch)
  state_dict = model.state_dict()
  torch.save(state_dict_fn(state_dict) if state_dict_fn else state_dict, path)
  x = inputs(size, batch)
  expected = torch_logits(model, x)
  del model, state_dict
  gc.collect()
  return x, expected


def assert_logits_match(name, size, tmp_path, batch=BATCH, state_dict_fn=None):
  """torchvision's ``name`` (randomized) vs ``models.load(name, checkpoint=<its .pth>)`` on a
  [batch, size, size, 3] input; returns the relative error."""
  path = tmp_path / f"{name}.pth"
  x, expected = torch_reference(name, size, path, batch, state_dict_fn)
  module, variables, _ = models.load(name, checkpoint=path)
  path.unlink()
  got = np.asarray(jax.jit(module.apply)(variables, x))
  assert got.shape == (batch, 1000)
  return check_logits(got, expected, f"{name} at {size} px")


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
