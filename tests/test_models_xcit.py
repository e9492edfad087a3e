"""timm's XCiT port (``models/timm_xcit.py``) against timm 1.0.31's own ``Xcit`` (random weights).

timm's model gets random values wherever its init leaves a constant that would hide a wrong
mapping: BatchNorm statistics and affines, LayerNorm affines, zero biases, the LayerScale
gammas (``gamma1/2/3``, eta = 1 or 1e-5) and XCA's per-head ``temperature`` (ones).  Tolerance:
max |logit diff| / max |logit| <= 1e-4 and the same arg-max (``torchvision_parity``).  Reduced
widths and depths run both ``tokens_norm`` settings (one on a non-square input); XCiT-S12 runs
at full size through ``models.load`` from a hub-style ``.safetensors`` and a RobustBench-style
``.pth``.  Every ``timm/xcit_*`` name's keys and shapes and timm's ``pretrained_cfg`` are
checked in ``tests/test_models_timm.py`` with the other timm ports; the names timm lacks
(ARES's / RobustBench's M12 and L12) against RobustBench's registration source here.
"""
import ast

import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import checkpoint, convert, timm_weights, timm_xcit
from torchvision_parity import check_logits, inputs, random_timm, torch_logits

torch = pytest.importorskip("torch")
timm_shim = pytest.importorskip("imagenet_cp.oracles.timm_shim")
rb_shim = pytest.importorskip("imagenet_cp.oracles.robustbench_shim")
safetensors_torch = pytest.importorskip("safetensors.torch")
XCIT_NAMES = sorted(n for n in timm_weights.WEIGHTS if n.startswith("timm/xcit_"))


def _random_xcit(model_name="xcit_small_12_p16_224", seed=0, **kwargs):
  """timm's XCiT with every constant init randomised (gammas around 0.5, temperatures 0.5-2.5)."""
  redraw = {"gamma1": (0.25, 0.5), "gamma2": (0.25, 0.5), "gamma3": (0.25, 0.5),
            "temperature": (0.5, 2.0)}
  return random_timm(timm_shim.timm_model, torch, model_name, seed, redraw, **kwargs)


def _save(model, path, prefix=""):
  """The hub's safetensors, or RobustBench's ``{'state_dict': {'module.' + key}}`` ``.pth``."""
  state_dict = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
  if path.suffix == ".safetensors":
    safetensors_torch.save_file(state_dict, str(path))
  else:
    torch.save({"state_dict": state_dict, "epoch": 1}, path)


# (timm's hyper-parameter changes, input height and width, file format)
REDUCED = [
    (dict(embed_dim=64, num_heads=4, depth=2, tokens_norm=True), (64, 64), ".safetensors"),
    (dict(embed_dim=96, num_heads=6, depth=1, tokens_norm=False), (48, 80), ".pth"),
]


@pytest.mark.parametrize("updates,size,suffix", REDUCED)
def test_reduced_xcit_matches_timm(updates, size, suffix, tmp_path):
  model = _random_xcit(**updates)
  path = tmp_path / f"xcit{suffix}"
  _save(model, path)
  x = np.random.default_rng(0).standard_normal((2, *size, 3)).astype(np.float32)
  module = models.build("timm/xcit_small_12_p16_224").clone(**updates)
  variables = convert.torch_to_flax(checkpoint.load_state_dict(path, lazy=True),
                                    convert.variable_shapes(module), source=str(path))
  check_logits(np.asarray(jax.jit(module.apply)(variables, x)), torch_logits(model, x),
               f"reduced XCiT {updates} at {size}")


def test_full_xcit_s12_through_load_timm_and_robustbench_files(tmp_path):
  """XCiT-S12 at 224 px: the hub's safetensors by timm's name, and RobustBench's container of
  the same weights by Debenedetti2022Light_XCiT-S12's name (one module, compiled once)."""
  model = _random_xcit()
  x = inputs(224)
  expected = torch_logits(model, x)
  apply, checked = None, []
  for name, file, prefix in [("timm/xcit_small_12_p16_224", "model.safetensors", ""),
                             ("imagenet/Debenedetti2022Light_XCiT-S12", "xcit-s.pth", "module.")]:
    path = tmp_path / file
    _save(model, path, prefix)
    module, variables, _ = models.load(name, checkpoint=path)
    path.unlink()
    apply = apply or jax.jit(module.apply)
    checked.append(check_logits(np.asarray(apply(variables, x)), expected, name))
  assert len(checked) == 2


def _robustbench_xcit_kwargs(function: str) -> dict:
  """The literal ``model_kwargs`` of ``function`` in RobustBench's ``architectures/xcit.py``
  (read as source: it registers the robust XCiTs into timm)."""
  source = (rb_shim.package_dir() / "model_zoo" / "architectures" / "xcit.py").read_text()
  for node in ast.parse(source).body:
    if isinstance(node, ast.FunctionDef) and node.name == function:
      call = next(n.value for n in node.body if isinstance(n, ast.Assign)
                  and n.targets[0].id == "model_kwargs")
      return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
  raise LookupError(function)


@pytest.mark.parametrize("size,build", [("s", timm_xcit.XCiT_S12), ("m", timm_xcit.XCiT_M12),
                                        ("l", timm_xcit.XCiT_L12)])
def test_12_block_models_are_robustbenchs_registrations(size, build):
  """RobustBench's debenedetti2022light_xcit_<s|m|l>12_imagenet_linf = the zoo's XCiT-S/M/L12,
  and timm's class as the timm tests build it for the names timm lacks."""
  want = _robustbench_xcit_kwargs(f"debenedetti2022light_xcit_{size}12_imagenet_linf")
  assert want.pop("patch_size") == 16
  assert build.keywords == want
  model_name = {"s": "xcit_small", "m": "xcit_medium", "l": "xcit_large"}[size] + "_12_p16_224"
  base, updates = timm_weights.timm_class_args(model_name)
  with torch.device("meta"):
    model = timm_shim.timm_model(base, **updates)
  assert (model.embed_dim, len(model.blocks), model.blocks[0].attn.num_heads,
          model.cls_attn_blocks[0].tokens_norm) == (
              want["embed_dim"], want["depth"], want["num_heads"], want["tokens_norm"])


def test_names_specs_and_robustbench_entries():
  assert [n.removeprefix("timm/") for n in XCIT_NAMES] == sorted(
      f"xcit_{s}_{d}_p16_224" for s in ("small", "medium", "large") for d in (12, 24))
  assert not any(k.startswith("xcit") for k in timm_weights.NOT_PORTED)
  cfg = timm_shim.import_timm().models.xcit._cfg()  # ARES's / RobustBench's cfg for M12 / L12
  for model_name in timm_weights.NOT_IN_TIMM:
    spec = models.spec(f"timm/{model_name}")
    assert spec.mean == pytest.approx(tuple(v * 255 for v in cfg["mean"]), abs=1e-9)
    assert spec.std == pytest.approx(tuple(v * 255 for v in cfg["std"]), abs=1e-9)
    assert (spec.native_resize, spec.native_crop, spec.native_interpolation) == (
        int(224 / cfg["crop_pct"]), cfg["input_size"][1], cfg["interpolation"])
    assert spec.weights == "" and cfg["url"] == ""
    with pytest.raises(FileNotFoundError, match="no default weights.*checkpoint="):
      models.load(f"timm/{model_name}")
  with pytest.raises(FileNotFoundError, match="huggingface.co/timm/xcit_small_12_p16_224.fb_in1k"):
    models.load("timm/xcit_small_12_p16_224")
  for size, build in [("S", timm_xcit.XCiT_S12), ("M", timm_xcit.XCiT_M12),
                      ("L", timm_xcit.XCiT_L12)]:
    name = f"imagenet/Debenedetti2022Light_XCiT-{size}12"
    assert name not in models.ROBUSTBENCH_UNPORTED
    assert models.resolve(name.removeprefix("imagenet/")) == name
    assert models.build(name) == build()
    assert models.spec(name).native_resize == 256 and "Linf" in models.spec(name).note


def test_input_sides_must_be_multiples_of_16():
  module = timm_xcit.Xcit(embed_dim=16, depth=1, num_heads=2)
  with pytest.raises(ValueError, match="divisible by 16.*40x32"):
    jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 40, 32, 3), "float32"))
