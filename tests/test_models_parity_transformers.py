"""ViT, Swin (V1, V2) and MaxViT against torchvision 0.28 (random weights), 1e-4 relative.

As tests/test_models_parity.py: the torch model's state dict goes through a real ``.pth`` file
and the zoo's reader and converter (``models.load(name, checkpoint=path)`` for zoo names).
Every parameter that torchvision initialises to a constant (LayerNorm affine, biases, ViT's
class token and zero head, Swin V2's logit scale, BatchNorm statistics) is randomised, the
relative-position tables get unit scale and some logit scales exceed V2's clamp, so that a wrong
mapping or a skipped step shows in the logits.

To keep the file fast, one native-size case per family runs through ``models.load``; every zoo
name is checked (a) structurally: torchvision's state-dict keys and shapes are exactly those the
converter fills the zoo module's variables from (torch's meta device: no weights are made), and
the other architectures (b) numerically, on variants with fewer blocks built from the zoo module
(``module.clone``) and from torchvision's own classes with the same widths, heads, patch and
window sizes, at the weights' input size (ViT: the position embedding's) or a small one (Swin:
the padding paths).  ViT-H runs only so, never at full depth.
"""
import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import attention, checkpoint, convert, swin
from torchvision_parity import (BATCH, assert_logits_match, check_logits, inputs, randomize,
                                torch_logits)

TRANSFORMERS = [n for n in models.names(ported_only=True)
                if n.split(".")[0].startswith(("vit_", "swin_", "maxvit_"))]


# (zoo name, input side): through models.load; one native-size case per family.
LOAD_CASES = [
    ("vit_b_32", 224),
    ("swin_t", 224),
    ("swin_v2_t", 256),
    ("maxvit_t", 224),  # window cells 7x7, grid cells 8x8 .. 1x1
]


@pytest.mark.parametrize("name,size", LOAD_CASES)
def test_zoo_logits_match_torchvision(name, size, tmp_path):
  assert_logits_match(name, size, tmp_path)


def _torch_shapes(shapes):
  """{torch key: torch shape} that the converter maps onto Flax variable ``shapes``: Linear
  kernels transposed, conv kernels HWIO -> OIHW, scale -> weight, other names as they are."""
  out = {}
  for path, spec in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    keys = [p.key for p in path]
    leaf, shape = keys[-1], tuple(spec.shape)
    if leaf == "kernel":
      shape = shape[::-1] if len(shape) == 2 else (shape[3], shape[2], shape[0], shape[1])
    leaf = {"kernel": "weight", "scale": "weight", "mean": "running_mean",
            "var": "running_var"}.get(leaf, leaf)
    out[".".join(keys[1:-1] + [leaf])] = shape
  return out


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_zoo_variables_have_torchvision_keys_and_shapes(name):
  """torchvision's state dict (its index buffers and BN counters aside) has exactly the keys and
  shapes of the zoo module's variables: the registry's depth, widths, heads, windows and input
  size are torchvision's.  (Built on torch's meta device: no weights are made.)  The variables
  come from the benchmark's 224-px images through ``native_resizer``, the zoo's one rule."""
  torch = pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import torchvision_model
  with torch.device("meta"):
    model = torchvision_model(name)
  want = {k: tuple(v.shape) for k, v in model.state_dict().items()
          if not k.endswith(("relative_position_index", "relative_coords_table",
                             "num_batches_tracked"))}
  module, spec = models.build(name), models.spec(name)
  images = jax.ShapeDtypeStruct((1, spec.crop, spec.crop, 3), np.float32)
  shapes = jax.eval_shape(
      lambda x: module.init(jax.random.key(0), models.native_resizer(spec)(x)), images)
  got = _torch_shapes(shapes)
  assert sorted(set(want) ^ set(got)) == []
  assert {k: v for k, v in got.items() if want[k] != v} == {}


def _reduced_torch_model(name, module):
  """torchvision's classes with the zoo module's (reduced) hyper-parameters."""
  from imagenet_cp.oracles.torchvision_shim import import_torchvision
  tv = import_torchvision()
  if name.startswith("vit_"):
    return tv.models.vision_transformer.VisionTransformer(
        image_size=module.image_size, patch_size=module.patch_size, num_layers=module.num_layers,
        num_heads=module.num_heads, hidden_dim=module.hidden_dim, mlp_dim=module.mlp_dim)
  if name.startswith("swin_"):
    st = tv.models.swin_transformer
    v2 = (dict(block=st.SwinTransformerBlockV2, downsample_layer=st.PatchMergingV2)
          if module.v2 else {})
    return st.SwinTransformer(
        patch_size=[4, 4], embed_dim=module.embed_dim, depths=list(module.depths),
        num_heads=list(module.num_heads), window_size=[module.window_size] * 2,
        stochastic_depth_prob=0.0, **v2)
  raise ValueError(f"no reduced torchvision variant for {name}")


# zoo name -> (hyper-parameters changed for the test, input side for size-free models).  Swin-S
# and the SWAG-linear ViTs differ from these only in depth or embedding size (structural test).
REDUCED = {
    "vit_b_16.swag_e2e": ({"num_layers": 2}, None),  # 384 px: 577 tokens
    "vit_l_16": ({"num_layers": 2}, None),
    "vit_l_32": ({"num_layers": 2}, None),
    "vit_h_14": ({"num_layers": 2}, None),  # 518 px: 1370 tokens, SWAG E2E's embedding
    "swin_b": ({"depths": (2, 2, 2, 2)}, 64),  # windows padded (16 -> 21 px), shifts dropped
    "swin_v2_b": ({"depths": (2, 2, 2, 2)}, 72),  # and odd patch merging (9 -> 5)
}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_reduced_depth_variants_match_torchvision(name, tmp_path):
  torch = pytest.importorskip("torch")
  updates, _ = REDUCED[name]
  module = models.build(name).clone(**updates)
  torch.manual_seed(0)
  model = _reduced_torch_model(name, module).eval()
  randomize(model, torch)
  path = tmp_path / "reduced.pth"
  torch.save(model.state_dict(), path)
  size = getattr(module, "image_size", None) or REDUCED[name][1]
  x = inputs(size, batch=1 if name.startswith("vit_h") else BATCH)
  expected = torch_logits(model, x)
  del model
  variables = convert.torch_to_flax(checkpoint.load_state_dict(path),
                                    convert.variable_shapes(module, size), source=str(path))
  check_logits(np.asarray(jax.jit(module.apply)(variables, x)), expected,
               f"reduced {name} at {size} px")


def test_old_vit_mlp_keys_convert_like_new_ones():
  """Version-1 ViT files name the MLP's Linears ``linear_1``/``linear_2``; torchvision renames
  them to ``0``/``3`` on load, and so does the converter."""
  pytest.importorskip("torch")
  module = models.build("vit_b_32").clone(num_layers=1, hidden_dim=64, mlp_dim=128, num_heads=4)
  model = _reduced_torch_model("vit_b_32", module)
  new = {k: v.detach().numpy() for k, v in model.state_dict().items()}
  old = {k.replace("mlp.0.", "mlp.linear_1.").replace("mlp.3.", "mlp.linear_2."): v
         for k, v in new.items()}
  assert "encoder.layers.encoder_layer_0.mlp.linear_2.bias" in old
  shapes = convert.variable_shapes(module)
  jax.tree_util.tree_map(np.testing.assert_array_equal, convert.torch_to_flax(new, shapes),
                         convert.torch_to_flax(old, shapes))


@pytest.mark.parametrize("window", [7, 8])
def test_dropped_index_buffers_are_what_the_ports_compute(window):
  """The converter drops ``relative_position_index`` / ``relative_coords_table``: the ports
  derive the same values from the window size."""
  torch = pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import import_torchvision
  st = import_torchvision().models.swin_transformer
  v1 = st.ShiftedWindowAttention(32, [window, window], [0, 0], 4)
  np.testing.assert_array_equal(
      attention.relative_position_index(window, window).reshape(-1),
      v1.relative_position_index.numpy())
  v2 = st.ShiftedWindowAttentionV2(32, [window, window], [0, 0], 4)
  np.testing.assert_allclose(swin.v2_coords_table(window),
                             v2.relative_coords_table.numpy().reshape(-1, 2), rtol=1e-6, atol=1e-7)
  mv = import_torchvision().models.maxvit._get_relative_position_index(window, window)
  np.testing.assert_array_equal(attention.relative_position_index(window, window), mv.numpy())
  del torch


def test_vit_refuses_other_input_sizes():
  module = models.build("vit_b_32")
  with pytest.raises(ValueError, match="takes 224x224 inputs"):
    jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 256, 256, 3),
                                                                        np.float32))
