"""torch state dict (NumPy) -> Flax variables, by name mirroring.

Every Flax submodule is named after its torch path, so the torch key of a Flax leaf is
``'.'.join(module path) + '.' + torch leaf name``:

  params/.../kernel (4-D)  <- weight, OIHW -> HWIO (also right for grouped and depthwise convs)
  params/.../kernel (2-D)  <- weight, transposed (Linear)
  params/.../bias          <- bias
  params/.../scale         <- weight (BatchNorm)
  batch_stats/.../mean     <- running_mean
  batch_stats/.../var      <- running_var
  params/.../<other name>  <- the torch parameter of that name, as is (``class_token``,
                              ``pos_embedding``, ``in_proj_weight``, ``relative_position_bias_table``,
                              ``logit_scale`` ...)

BatchNorm's ``num_batches_tracked`` is dropped, and so are the Transformers' index buffers
(``relative_position_index``, ``relative_coords_table``): the ports derive them from the window
size, whose table shapes the converter checks.  Old ViT files' ``mlp.linear_1|2`` are renamed to
``mlp.0|3`` as torchvision's ``MLPBlock`` loader does.  Every leaf of the model's own variable tree
must be found with the right shape and every torch tensor must be used; otherwise a
CheckpointError names the key.
"""
from __future__ import annotations

import re
from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.models import checkpoint
from imagenet_cp.models.checkpoint import CheckpointError

# torchvision's DenseNet loader renames the released files' ``norm.1`` to ``norm1`` etc.
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
# torchvision's ViT ``MLPBlock._load_from_state_dict``: version-1 files name its Linears linear_1/2.
_VIT_OLD_MLP_KEY = re.compile(r"^(.*encoder_layer_\d+\.mlp\.)linear_([12])\.(weight|bias)$")
# Buffers that torchvision's Swin / MaxViT compute from the window size (the ports do too).
_DERIVED_BUFFERS = ("relative_position_index", "relative_coords_table")
_TORCH_LEAF = {
    ("params", "bias"): "bias",
    ("params", "scale"): "weight",
    ("params", "kernel"): "weight",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}


def variable_shapes(module: nn.Module, size: int | None = None) -> dict:
  """The module's variable tree as ShapeDtypeStructs (no computation), for input [1, size, size, 3];
  ``size`` defaults to the module's ``image_size`` where it has one (ViT), else 224."""
  size = size or getattr(module, "image_size", 224)
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  return jax.eval_shape(module.init, jax.random.key(0), x)


def normalize_keys(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Drops ``num_batches_tracked``, derived index buffers and a DataParallel ``module.`` prefix;
  renames old DenseNet and ViT keys."""
  out = {}
  for key, value in state_dict.items():
    if key.endswith("num_batches_tracked") or key.rsplit(".", 1)[-1] in _DERIVED_BUFFERS:
      continue
    if key.startswith("module."):
      key = key[len("module."):]
    key = _VIT_OLD_MLP_KEY.sub(lambda m: f"{m[1]}{3 * (int(m[2]) - 1)}.{m[3]}", key)
    out[_DENSENET_OLD_KEY.sub(r"\1\2", key)] = value
  return out


def _from_torch(value: np.ndarray, leaf: str) -> np.ndarray:
  if leaf == "kernel" and value.ndim == 4:
    return value.transpose(2, 3, 1, 0)
  if leaf == "kernel" and value.ndim == 2:
    return value.T
  return value


def torch_to_flax(state_dict: Mapping[str, np.ndarray], shapes: Mapping, source: str = "checkpoint"
                  ) -> dict:
  """{torch key: array} + the model's variable shapes -> Flax variables (float32 NumPy leaves).

  Raises CheckpointError naming ``source`` and the first missing, unexpected or misshapen key.
  The values may be lazy (``checkpoint.load_state_dict(path, lazy=True)``): every key, shape
  and dtype is checked against the model before any value is materialised, so a file cannot
  make this allocate more than the model's variables.
  """
  torch_sd = normalize_keys(state_dict)
  plan = []
  for path, spec in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    names = [p.key for p in path]
    collection, modules, leaf = names[0], names[1:-1], names[-1]
    torch_leaf = _TORCH_LEAF.get((collection, leaf), leaf if collection == "params" else None)
    if torch_leaf is None:
      raise CheckpointError(f"no torch counterpart for Flax variable {'/'.join(names)}")
    key = ".".join(modules + [torch_leaf])
    if key not in torch_sd:
      raise CheckpointError(f"{source}: missing key {key!r} (needed for {'/'.join(names)})")
    declared = tuple(torch_sd[key].shape)
    if declared != _torch_shape(spec.shape, leaf):
      raise CheckpointError(
          f"{source}: key {key!r} has shape {declared}, the model needs "
          f"{_torch_shape(spec.shape, leaf)}")
    if not np.issubdtype(torch_sd[key].dtype, np.floating):
      raise CheckpointError(f"{source}: key {key!r} has dtype {torch_sd[key].dtype}, expected "
                            "floating point")
    plan.append((tuple(names), key, leaf))
  extra = sorted(set(torch_sd) - {key for _, key, _ in plan})
  if extra:
    more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
    raise CheckpointError(f"{source}: unexpected key {extra[0]!r}{more} (not part of this model)")
  flat, torch_values = {}, {}
  for names, key, leaf in plan:
    torch_values[key] = np.asarray(torch_sd[key])
    flat[names] = np.ascontiguousarray(_from_torch(torch_values[key], leaf), dtype=np.float32)
  checkpoint.warn_nonfinite(torch_values, source)
  return _unflatten(flat)


def _torch_shape(shape, leaf):
  if leaf == "kernel" and len(shape) == 4:
    return (shape[3], shape[2], shape[0], shape[1])
  if leaf == "kernel" and len(shape) == 2:
    return (shape[1], shape[0])
  return tuple(shape)


def _unflatten(flat: Mapping[tuple[str, ...], np.ndarray]) -> dict:
  tree: dict = {}
  for names, value in flat.items():
    node = tree
    for name in names[:-1]:
      node = node.setdefault(name, {})
    node[names[-1]] = value
  return tree


def check_variables(variables: Mapping, shapes: Mapping, source: str) -> None:
  """Raises CheckpointError unless ``variables`` has exactly the paths and shapes of ``shapes``."""
  have = {tuple(p.key for p in path): np.shape(v)
          for path, v in jax.tree_util.tree_flatten_with_path(variables)[0]}
  want = {tuple(p.key for p in path): tuple(s.shape)
          for path, s in jax.tree_util.tree_flatten_with_path(shapes)[0]}
  for path in sorted(set(want) | set(have)):
    if path not in have:
      raise CheckpointError(f"{source}: missing variable {'/'.join(path)}")
    if path not in want:
      raise CheckpointError(f"{source}: unexpected variable {'/'.join(path)}")
    if have[path] != want[path]:
      raise CheckpointError(f"{source}: variable {'/'.join(path)} has shape {have[path]}, "
                            f"expected {want[path]}")
