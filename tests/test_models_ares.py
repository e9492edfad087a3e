"""ARES-Bench's ImageNet models by name (``ares/<ARES name>``, ``models/ares_weights.py``).

ARES's own files are bare state dicts of the bare model (ARES's strict ``load_state_dict``):
ViT-S AT's stand-in (timm's model, random weights, ``torch.save(model.state_dict())``) is served
over loopback HTTP through the real download code and ``models.load("vits_at")``, its logits
against ARES's forward (``NormalizeByChannelMeanStd`` then timm's model).  The options ARES's
entries add run reduced against torch oracles (random weights, every constant init randomised;
max |logit diff| / max |logit| <= 1e-4 and the same arg-max, ``torchvision_parity``): the GELU
ResNet (timm's ``act_layer``, ARES's way, and torchvision's ResNet with its ReLU swapped),
MAE's head (``fc_norm`` twice, as ARES runs it under timm >= 0.6) and timm's VGG layout.
Every ARES-specific layout is checked structurally on torch's meta device; the ``timm/`` and
torchvision architectures themselves are checked in their own test files.
"""
import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import (ares_weights, checkpoint, convert, layers, resnet, timm_weights,
                                vgg, weights)
from torchvision_parity import (check_logits, flax_state_shapes, inputs, randomize,
                                torch_logits)

torch = pytest.importorskip("torch")
timm_shim = pytest.importorskip("imagenet_cp.oracles.timm_shim")
safetensors_torch = pytest.importorskip("safetensors.torch")
WEIGHTS = ares_weights.WEIGHTS


class _GELU(torch.nn.GELU):
  """An ``act_layer`` for timm's ResNet (it passes ``inplace``), as ARES's ``ResNetGELU``."""

  def __init__(self, inplace=False):
    del inplace
    super().__init__()


def _ares_logits(model, norm, x):
  """ARES's ``Sequential(NormalizeByChannelMeanStd(mean, std), model)`` on [0, 1] pixels."""
  mean, std = (np.asarray(v, np.float32) for v in norm)
  return torch_logits(model, ((x - mean) / std).astype(np.float32))


def test_table_has_aress_55_entries_and_names():
  assert len(WEIGHTS) == 55 and len({w.key for w in WEIGHTS.values()}) == 55
  files = [w.file for w in WEIGHTS.values() if w.file]
  assert len(files) == len(set(files)) == 30
  assert all(f.startswith("ARES_") and f.endswith(".pth") for f in files)
  for name, w in WEIGHTS.items():
    assert name == f"ares/{w.key}", name
    if name not in models.ARES_UNPORTED:
      assert models.resolve(w.key) == models.resolve(name) == name
    assert bool(w.file) != bool(w.hub_id), name  # ARES's file, or timm's pretrained weights
    assert not (w.act_gelu and w.mae), name
  assert {w.key for w in WEIGHTS.values() if w.act_gelu} == {"resnet152_at", "wresnet50_at"}
  assert {w.key for w in WEIGHTS.values() if w.norm == ares_weights.ZERO_ONE} == {
      "resnet152_fd", "xcits_sota", "xcitm_sota", "xcitl_sota"}
  assert {w.key for w in WEIGHTS.values() if w.norm == ares_weights.INCEPTION} == {
      "vits_normal", "vits_21k", "vitb_normal", "vitb_21k", "vitl_normal", "vitl_21k"}


def test_loadable_names_follow_the_registered_architectures():
  """An entry loads exactly when the zoo registers its architecture (the XCiT rows switch on
  with the ``timm/xcit_*`` names); the others say why."""
  listed = set(models.names(ported_only=True, dataset="imagenet"))
  for name, w in WEIGHTS.items():
    if w.architecture in listed:
      assert name in listed and name not in models.ARES_UNPORTED, name
      continue
    assert name not in listed, name
    reason = "needs the XCiT port" if "xcit" in w.architecture else "not ported"
    for alias in (name, w.key):
      with pytest.raises(NotImplementedError, match=f"ARES-Bench's {name}: .*{reason}"):
        models.load(alias)
  unported = {w.key for n, w in WEIGHTS.items() if n in models.ARES_UNPORTED}
  assert {"resnet152_fd", "t2t14_normal", "t2t19_normal", "t2t24_normal"} <= unported
  assert unported <= {"resnet152_fd", "t2t14_normal", "t2t19_normal", "t2t24_normal"} | {
      w.key for w in WEIGHTS.values() if "xcit" in w.architecture}


def test_specs_are_aress_preprocessing_and_sources():
  for name, w in WEIGHTS.items():
    if name in models.ARES_UNPORTED:
      continue
    spec = models.spec(name)
    assert (spec.native_resize, spec.native_crop, spec.native_interpolation) == (
        256, 224, "bilinear"), name
    assert spec.mean == pytest.approx(tuple(255 * v for v in w.norm[0])), name
    assert spec.std == pytest.approx(tuple(255 * v for v in w.norm[1])), name
    if w.file:
      assert spec.weights == ares_weights.BASE_URL + w.file, name
    elif w.same_as:  # torchvision's pinned file, and its compiler setting (the VGGs')
      assert spec.weights == weights.URLS[w.same_as] and w.architecture == w.same_as, name
      assert models.compiler_options(name) == models.compiler_options(w.same_as), name
    else:
      assert spec.weights == f"https://huggingface.co/{w.hub_id}/resolve/main/model.safetensors"
      with pytest.raises(FileNotFoundError, match="does not download timm weights"):
        models.load(name)
  assert models.build("ares/resnet152_at").activation is layers.gelu
  assert models.build("ares/wresnet50_at").width_per_group == 128
  assert models.build("ares/resnet50_at").activation is layers.relu
  mae = models.build("ares/vitl_mae")
  assert (mae.embed_dim, mae.global_pool, mae.fc_norm, mae.fc_norm_twice) == (1024, "avg", True,
                                                                              True)


@pytest.fixture(scope="module")
def vit_s():
  """timm's ViT-S/16 with random weights (ARES's ``vits_at`` architecture)."""
  torch.manual_seed(0)
  model = timm_shim.timm_model("vit_small_patch16_224")
  randomize(model, torch)
  return model


def test_vits_at_downloads_and_matches_ares(vit_s, tmp_path, http_server, monkeypatch):
  w = WEIGHTS["ares/vits_at"]
  served = tmp_path / "served"
  served.mkdir()
  torch.save(vit_s.state_dict(), served / w.file)  # ARES's format: the bare state dict
  monkeypatch.setenv("IMAGENET_CP_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(ares_weights, "BASE_URL", http_server(served) + "/")
  x = np.random.default_rng(0).uniform(size=(2, 224, 224, 3)).astype(np.float32)
  module, variables, spec = models.load("vits_at")  # the bare ARES name
  got = np.asarray(jax.jit(models.classifier_apply(module, spec))(variables, x))
  check_logits(got, _ares_logits(vit_s, w.norm, x), w.name)
  cached = weights.ares_path(w, tmp_path / "cache" / "models")
  assert cached.parts[-3:] == ("ares", "imagenet", w.file)
  digest = cached.with_name(cached.name + ".sha256").read_text().split()[0]
  assert digest == weights.sha256_file(served / w.file)
  # The source changed since the digest was recorded: a clear error, nothing replaced.
  cached.unlink()
  weights.converted_path(cached).unlink()
  (served / w.file).write_bytes((served / w.file).read_bytes() + b"changed")
  with pytest.raises(models.CheckpointError, match="differs from the .* recorded"):
    models.load(w.name)
  assert not cached.exists()


def test_every_ares_file_downloads_to_its_own_cache_path(tmp_path, http_server, monkeypatch):
  """Each of ARES's 30 file names through the real download code (small stand-ins: the
  bytes of one file each), its digest recorded; a copy damaged in the cache is fetched again."""
  served = tmp_path / "served"
  served.mkdir()
  own = [w for w in WEIGHTS.values() if w.file]
  for i, w in enumerate(own):
    (served / w.file).write_bytes(f"{w.file} {i}".encode())
  monkeypatch.setattr(ares_weights, "BASE_URL", http_server(served) + "/")
  root = tmp_path / "cache"
  for w in own:
    path = weights.ares_file(w, root)
    assert path == root / "ares" / "imagenet" / w.file and path.read_bytes() == (
        served / w.file).read_bytes(), w.name
    assert path.with_name(w.file + ".sha256").read_text().split()[0] == weights.sha256_file(path)
  path = weights.ares_path(own[0], root)
  path.write_bytes(b"damaged")
  assert weights.ares_file(own[0], root).read_bytes() == (served / own[0].file).read_bytes()


def test_a_hidden_prefix_is_a_clear_error(vit_s, tmp_path):
  """ARES's wrapped model (``Sequential(normalisation, model)``) saved whole: ``model.1.`` keys
  and the normalisation's buffers are not ARES's checkpoint format."""
  path = tmp_path / "wrapped.pth"
  state = {f"model.1.{k}": v for k, v in vit_s.state_dict().items()}
  state.update({"model.0.mean": torch.zeros(3), "model.0.std": torch.ones(3)})
  torch.save(state, path)
  with pytest.raises(models.CheckpointError, match=r"wrapped.pth: missing key '"):
    models.load("ares/vits_at", checkpoint=path)


def test_gelu_resnet_matches_aress_timm_and_torchvision_with_gelu(tmp_path):
  """A Wide ResNet (width 128) with stages (1, 1, 3, 1), so that a stage loop runs: timm's
  ResNet with ``act_layer`` GELU (ARES's ``act_gelu``) and torchvision's with every ReLU module
  swapped for GELU share one random state dict; the zoo's ``activation=layers.gelu`` gives
  both their logits, and ReLU does not."""
  from timm.models.resnet import Bottleneck, ResNet
  from imagenet_cp.oracles.torchvision_shim import import_torchvision
  torch.manual_seed(0)
  ares = ResNet(block=Bottleneck, layers=[1, 1, 3, 1], base_width=128, act_layer=_GELU).eval()
  randomize(ares, torch)
  tv_resnet = import_torchvision().models.resnet
  swapped = tv_resnet.ResNet(tv_resnet.Bottleneck, [1, 1, 3, 1], width_per_group=128).eval()
  swapped.load_state_dict(ares.state_dict())
  for m in swapped.modules():
    if hasattr(m, "relu"):
      m.relu = torch.nn.GELU()
  path = tmp_path / "gelu.pth"
  torch.save(ares.state_dict(), path)
  x = inputs(64)
  module = models.build("ares/wresnet50_at").clone(stage_sizes=(1, 1, 3, 1))
  variables = convert.torch_to_flax(checkpoint.load_state_dict(path, lazy=True),
                                    convert.variable_shapes(module, 64), source=str(path))
  got = np.asarray(jax.jit(module.apply)(variables, x))
  check_logits(got, torch_logits(ares, x), "GELU ResNet vs timm act_layer")
  check_logits(got, torch_logits(swapped, x), "GELU ResNet vs torchvision with GELU")
  relu = np.asarray(jax.jit(module.clone(activation=layers.relu).apply)(variables, x))
  assert np.abs(relu - got).max() > 1e-2 * np.abs(got).max()


def test_mae_head_matches_ares_forward(tmp_path):
  """MAE's ViT as ARES runs it: ``fc_norm(mean of the patch tokens)`` in its forward_features,
  then timm's forward_head applies ``fc_norm`` again; a small ViT through ``ares/vitb_mae``'s
  own options (the file: ARES's keys, ``fc_norm`` and no ``norm``)."""
  from timm.models.vision_transformer import VisionTransformer
  hyper = dict(patch_size=16, embed_dim=64, depth=2, num_heads=4)
  torch.manual_seed(0)
  model = VisionTransformer(img_size=32, global_pool="avg", fc_norm=True, **hyper).eval()
  randomize(model, torch)
  path = tmp_path / "mae.pth"
  torch.save(model.state_dict(), path)
  state = checkpoint.load_state_dict(path, lazy=True)
  assert "fc_norm.weight" in state and "norm.weight" not in state
  x = inputs(32)
  with torch.inference_mode():
    pooled = model.forward_head(model.forward_features(
        torch.from_numpy(x.transpose(0, 3, 1, 2).copy())), pre_logits=True)
    expected = model.head(model.fc_norm(pooled)).numpy()
  module = models.build("ares/vitb_mae").clone(image_size=32, **hyper)
  variables = convert.torch_to_flax(state, convert.variable_shapes(module), source=str(path))
  got = np.asarray(jax.jit(module.apply)(variables, x))
  check_logits(got, expected, "ARES MAE head")
  once = np.asarray(module.clone(fc_norm_twice=False).apply(variables, x))
  check_logits(once, torch_logits(model, x), "MAE's own head (fc_norm once)")
  assert np.abs(once - got).max() > 1e-2 * np.abs(got).max()


def test_timm_vgg_file_maps_onto_the_zoo_vgg(tmp_path):
  """timm's VGG (``pre_logits`` 7x7 and 1x1 convs, ``head.fc``) with a narrow cfg at 224 px,
  saved as the hub's safetensors, read through ``vgg.from_timm``."""
  from timm.models.vgg import VGG
  cfg = (8, "M", 16, "M", 16, 16, "M", 16, "M", 16, "M")
  torch.manual_seed(0)
  model = VGG(list(cfg)).eval()
  randomize(model, torch)
  path = tmp_path / "vgg.safetensors"
  safetensors_torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
  module = vgg.VGG(cfg=cfg)
  state = vgg.from_timm(checkpoint.load_state_dict(path, lazy=True))
  variables = convert.torch_to_flax(state, convert.variable_shapes(module), source=str(path))
  x = inputs(224)
  check_logits(np.asarray(jax.jit(module.apply)(variables, x)), torch_logits(model, x),
               "timm VGG via from_timm")


def _ares_model_on_meta(w):
  """ARES's model of ``w`` on torch's meta device (timm 1.0.31's class for timm 0.9.7's name;
  the state-dict keys of every architecture here are the same in both)."""
  kwargs = {"global_pool": "avg", "fc_norm": True} if w.mae else {}
  name = {"tv_densenet121": "densenet121", "vit_base_patch16": "vit_base_patch16_224",
          "vit_large_patch16": "vit_large_patch16_224"}.get(w.model, w.model)
  with torch.device("meta"):
    return timm_shim.timm_model(name, **kwargs)


# One entry per ARES layout that no other test file checks: timm's ResNets and DenseNets (ARES's
# AT files, the timm hub files), timm's VGGs through ``from_timm``, MAE's ViTs.
STRUCTURE = ["ares/resnet50_at", "ares/resnet101_at", "ares/resnet152_at", "ares/wresnet50_at",
             "ares/vgg13_normal", "ares/vgg16_normal", "ares/vgg19_normal",
             "ares/densenet121_normal", "ares/densenet161_normal", "ares/densenet201_normal",
             "ares/vitb_mae", "ares/vitl_mae"]


@pytest.mark.parametrize("name", STRUCTURE)
def test_ares_layouts_have_the_zoo_keys_and_shapes(name):
  model = _ares_model_on_meta(WEIGHTS[name])
  state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
  if name.startswith("ares/vgg"):
    state = vgg.from_timm(state)
  want = {k: tuple(v.shape) for k, v in state.items()}
  got = flax_state_shapes(models.build(name))
  assert sorted(set(want) ^ set(got)) == []
  assert {k: v for k, v in got.items() if want[k] != v} == {}


def test_timm_architectures_are_the_ports_of_aress_timm_models():
  """ARES's timm model functions (timm 0.9.7's deprecated ``*_in22ft1k`` names included) are
  the ``timm/`` ports' models, whose keys ``tests/test_models_timm.py`` checks."""
  for name, w in WEIGHTS.items():
    if not w.architecture.startswith("timm/"):
      continue
    base = w.model.removesuffix("_in22ft1k")
    if w.mae:
      base += "_224"
    assert w.architecture == f"timm/{base}", name
    assert w.architecture in timm_weights.WEIGHTS or name in models.ARES_UNPORTED, name
    if w.hub_id:
      assert w.hub_id.startswith(f"timm/{base}."), name
