"""timm's ViT / DeiT / ConvNeXt / Swin ports against timm 1.0.31 (random weights), 1e-4 relative.

timm's model gets random values wherever its init leaves a constant that would hide a wrong
mapping (LayerNorm affines, zero biases, class token, head, layer scales), and its state dict
goes through a real file in both formats timm publishes (``.safetensors``, ``.pth``) and the
zoo's readers.  Full depth only for ViT-S/DeiT-S at 224 px (through ``models.load``); the larger
ones run with fewer blocks (timm's own class with the same widths, heads and patches), and
every ``timm/`` name is checked structurally: timm's state-dict keys and shapes (built on torch's
meta device) are exactly those the converter fills the zoo module's variables from, and
its spec is timm's ``pretrained_cfg`` (XCiT's numeric parity: ``tests/test_models_xcit.py``).
"""
import math

import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import checkpoint, convert, timm_vit, timm_weights
from torchvision_parity import (check_logits, flax_state_shapes, inputs, random_timm, randomize,
                                torch_logits, torch_state_shapes)

torch = pytest.importorskip("torch")
timm_shim = pytest.importorskip("imagenet_cp.oracles.timm_shim")
safetensors_torch = pytest.importorskip("safetensors.torch")
TIMM_NAMES = sorted(timm_weights.WEIGHTS)
# ARES's / RobustBench's own registrations have no timm pretrained_cfg (test_models_xcit.py).
TIMM_CFG_NAMES = [n for n in TIMM_NAMES if timm_weights.WEIGHTS[n].model not in
                  timm_weights.NOT_IN_TIMM]


def _random_timm(model_name, seed=0, **kwargs):
  """timm's ``model_name`` (``kwargs`` override its hyper-parameters), randomized as above."""
  return random_timm(timm_shim.timm_model, torch, model_name, seed, **kwargs)


def _save(model, path):
  """The state dict as timm publishes it: the hub's safetensors, or DeiT's ``{'model': ...}``."""
  state_dict = {k: v.contiguous() for k, v in model.state_dict().items()}
  if path.suffix == ".safetensors":
    safetensors_torch.save_file(state_dict, str(path))
  else:
    torch.save({"model": state_dict}, path)


def test_full_depth_vit_s_and_deit_s_through_load_in_both_formats(tmp_path):
  """DeiT-S/16 and ViT-S/16 are one architecture; each file goes through ``models.load``."""
  model = _random_timm("deit_small_patch16_224")
  x = inputs(224)
  expected = torch_logits(model, x)
  apply, errors = None, {}
  for name, suffix in [("timm/deit_small_patch16_224", ".pth"),
                       ("timm/vit_small_patch16_224", ".safetensors")]:
    path = tmp_path / f"weights{suffix}"
    _save(model, path)
    module, variables, _ = models.load(name, checkpoint=path)
    apply = apply or jax.jit(module.apply)  # the same module: compiled once
    errors[suffix] = check_logits(np.asarray(apply(variables, x)), expected, f"{name} {suffix}")
  assert set(errors) == {".pth", ".safetensors"}


# (timm model name, its hyper-parameters changed for the test, zoo module's, input side,
# file format).  ViT-B's class is DeiT-B's; ConvNeXt-B and Swin-B/L are ConvNeXt-L's and
# Swin-S's with other widths and heads: the structural test covers those (the file's budget).
REDUCED = [
    ("vit_base_patch16_224", {"depth": 2}, {"depth": 2}, 224, ".safetensors"),
    ("vit_large_patch16_224", {"depth": 1}, {"depth": 1}, 224, ".pth"),
    ("convnext_small", {"depths": (1, 1, 1, 1)}, None, 64, ".safetensors"),
    ("convnext_large", {"depths": (1, 1, 1, 1)}, None, 32, ".pth"),
    # a shifted block at 56 px, and one on the last 7x7 map, where the shift is dropped
    ("swin_small_patch4_window7_224", {"depths": (2, 1, 1, 2)}, {"depths": (2, 1, 1, 2)}, 224,
     ".safetensors"),
]


def _reduced_module(model_name, torch_updates, flax_updates):
  module = models.build(f"timm/{model_name}")
  if flax_updates is not None:
    return module.clone(**flax_updates)
  stages = tuple((w, d) for (w, _), d in zip(module.stages, torch_updates["depths"]))
  return module.clone(stages=stages)


@pytest.mark.parametrize("model_name,torch_updates,flax_updates,size,suffix", REDUCED)
def test_reduced_depth_variants_match_timm(model_name, torch_updates, flax_updates, size, suffix,
                                           tmp_path):
  model = _random_timm(model_name, **torch_updates)
  path = tmp_path / f"reduced{suffix}"
  _save(model, path)
  x = inputs(size)
  expected = torch_logits(model, x)
  module = _reduced_module(model_name, torch_updates, flax_updates)
  variables = convert.torch_to_flax(checkpoint.load_state_dict(path, lazy=True),
                                    convert.variable_shapes(module, size), source=str(path))
  check_logits(np.asarray(jax.jit(module.apply)(variables, x)), expected,
               f"reduced {model_name} at {size} px")


@pytest.mark.parametrize("pool,fc_norm", [("avg", None), ("token", True)])
def test_mae_style_heads_and_layer_scale_match_timm(pool, fc_norm, tmp_path):
  """timm's global-average pool with ``fc_norm`` (MAE's fine-tunes: no final ``norm``), the
  class token with ``fc_norm``, and LayerScale (``init_values``) on a small ViT."""
  hyper = dict(patch_size=16, embed_dim=64, depth=2, num_heads=4, global_pool=pool,
               fc_norm=fc_norm, init_values=1e-5)
  torch.manual_seed(0)
  # Through the shim (timm imports torchvision), whatever ran before this test.
  VisionTransformer = timm_shim.import_timm().models.vision_transformer.VisionTransformer
  model = VisionTransformer(img_size=32, **hyper).eval()
  randomize(model, torch)
  path = tmp_path / "mae.safetensors"
  _save(model, path)
  keys = set(checkpoint.load_state_dict(path, lazy=True))
  assert "fc_norm.weight" in keys and "blocks.0.ls1.gamma" in keys
  x = inputs(32)
  module = timm_vit.VisionTransformer(image_size=32, **hyper)
  variables = convert.torch_to_flax(checkpoint.load_state_dict(path),
                                    convert.variable_shapes(module), source=str(path))
  check_logits(np.asarray(jax.jit(module.apply)(variables, x)), torch_logits(model, x),
               f"{pool} pool")


@pytest.mark.parametrize("name", TIMM_NAMES)
def test_zoo_variables_have_timm_keys_and_shapes(name):
  """timm's state dict has exactly the keys and shapes of the zoo module's variables (timm's
  model on torch's meta device: no weights are made; a ``NOT_IN_TIMM`` name is timm's class
  with ARES's / RobustBench's hyper-parameters).  BatchNorm's ``num_batches_tracked`` (XCiT)
  is left out: the converter drops it."""
  model_name = timm_weights.WEIGHTS[name].model
  base, updates = timm_weights.timm_class_args(model_name)
  with torch.device("meta"):
    model = timm_shim.timm_model(base, **updates)
  want = torch_state_shapes(model)
  got = flax_state_shapes(models.build(name))
  assert sorted(set(want) ^ set(got)) == []
  assert {k: v for k, v in got.items() if want[k] != v} == {}


@pytest.mark.parametrize("name", TIMM_CFG_NAMES)
def test_spec_is_timms_pretrained_cfg(name):
  cfg = timm_shim.import_timm().models.get_pretrained_cfg(timm_weights.WEIGHTS[name].model)
  spec = models.spec(name)
  assert spec.mean == pytest.approx(tuple(v * 255 for v in cfg.mean), abs=1e-9)
  assert spec.std == pytest.approx(tuple(v * 255 for v in cfg.std), abs=1e-9)
  assert (spec.native_crop, spec.native_interpolation) == (cfg.input_size[1], cfg.interpolation)
  assert spec.native_resize == math.floor(cfg.input_size[1] / cfg.crop_pct)
  assert (spec.resize, spec.crop) == (256, 224)
  w = timm_weights.WEIGHTS[name]
  assert (w.hf_hub_id, w.url) == (cfg.hf_hub_id, cfg.url or "")
  assert spec.weights == f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/model.safetensors"


def _small_convnext():
  return models.build("timm/convnext_small").clone(stages=((8, 1), (16, 1), (24, 1), (32, 1)))


def _small_convnext_file(path, edit):
  model = timm_shim.timm_model("convnext_small", dims=(8, 16, 24, 32), depths=(1, 1, 1, 1))
  state_dict = {k: v.contiguous() for k, v in model.state_dict().items()}
  safetensors_torch.save_file(edit(state_dict), str(path))
  return convert.variable_shapes(_small_convnext(), 32)


@pytest.mark.parametrize("edit,message", [
    (lambda sd: {k: v for k, v in sd.items() if k != "head.norm.bias"},
     "missing key 'head.norm.bias'"),
    (lambda sd: {**sd, "head.extra": sd["head.fc.bias"].clone()}, "unexpected key 'head.extra'"),
    (lambda sd: {**sd, "stem.0.bias": sd["stem.0.bias"][:4].contiguous()},
     r"key 'stem.0.bias' has shape \(4,\)"),
])
def test_a_missing_extra_or_misshapen_key_is_a_clear_error(edit, message, tmp_path):
  path = tmp_path / "bad.safetensors"
  shapes = _small_convnext_file(path, edit)
  with pytest.raises(checkpoint.CheckpointError, match=message):
    convert.torch_to_flax(checkpoint.load_state_dict(path, lazy=True), shapes, source=str(path))


def test_truncated_safetensors_file_is_a_clear_error(tmp_path):
  path = tmp_path / "ok.safetensors"
  _small_convnext_file(path, lambda sd: sd)
  cut = tmp_path / "cut.safetensors"
  cut.write_bytes(path.read_bytes()[:-8])
  with pytest.raises(checkpoint.CheckpointError, match="not a valid safetensors file"):
    checkpoint.load_state_dict(cut, lazy=True)


def test_load_without_a_file_names_the_hub_file():
  with pytest.raises(FileNotFoundError, match="huggingface.co/timm/convnext_base"):
    models.load("timm/convnext_base")
