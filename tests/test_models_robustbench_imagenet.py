"""RobustBench's ImageNet models by name (``imagenet/<name>``): one random-weight stand-in in
RobustBench's container (``{'state_dict': {'module.' + key}}``) served over loopback HTTP through
the real download code and ``models.load``, its logits against RobustBench's own
``normalize_model`` around torchvision's twin; every other name by table checks against the
installed robustbench's ``model_zoo/imagenet.py`` source."""
import ast
import importlib.util

import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import robustbench_weights, weights
from torchvision_parity import check_logits, randomize, torch_logits

torch = pytest.importorskip("torch")
shim = pytest.importorskip("imagenet_cp.oracles.robustbench_shim")
if importlib.util.find_spec("robustbench") is None:
  pytest.skip("needs robustbench (pip install --no-deps robustbench)", allow_module_level=True)

IMAGENET = {w.name: w for w in robustbench_weights.IMAGENET}




def _robustbench_model(architecture):
  """RobustBench's ``normalize_model(pt_models.<architecture>(), mu, sigma)``, random weights."""
  from imagenet_cp.oracles.torchvision_shim import torchvision_model
  torch.manual_seed(0)
  net = torchvision_model(architecture)
  randomize(net, torch)
  mu, sigma = robustbench_weights.IMAGENET_NORM
  return shim.architecture("utils_architectures").normalize_model(net, mu, sigma).eval()


def _save(model, path, prefix="module."):
  """The file as RobustBench's loader reads it: the inner network's keys (RobustBench adds
  ``model.`` itself), a DataParallel prefix, under ``state_dict``."""
  state = {prefix + k.removeprefix("model."): v for k, v in model.state_dict().items()
           if not k.startswith("normalize.")}
  torch.save({"state_dict": state, "epoch": 90}, path)


def test_salman_r18_downloads_and_matches_robustbench(tmp_path, http_server, monkeypatch):
  name = "imagenet/Salman2020Do_R18"
  model = _robustbench_model("resnet18")
  served = tmp_path / "served"
  served.mkdir()
  _save(model, served / "r18.pt")
  base = http_server(served)
  monkeypatch.setenv("IMAGENET_CP_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(weights, "GDRIVE_DOWNLOAD", base + "/r18.pt?id={}")
  x = np.random.default_rng(0).uniform(size=(2, 224, 224, 3)).astype(np.float32)
  expected = torch_logits(model, x)
  module, variables, spec = models.load("Salman2020Do_R18")  # the bare name
  got = np.asarray(jax.jit(models.classifier_apply(module, spec))(variables, x))
  check_logits(got, expected, name)
  cached = weights.robustbench_path(IMAGENET[name], tmp_path / "cache" / "models")
  assert cached.parts[-3:] == ("imagenet", "Linf", "Salman2020Do_R18.pt")
  digest = cached.with_name(cached.name + ".sha256").read_text().split()[0]
  assert digest == weights.sha256_file(served / "r18.pt")
  # The source changed since the digest was recorded: a clear error, nothing replaced.
  cached.unlink()
  weights.converted_path(cached).unlink()
  (served / "r18.pt").write_bytes((served / "r18.pt").read_bytes() + b"changed")
  with pytest.raises(models.CheckpointError, match="differs from the .* recorded"):
    models.load(name)
  assert not cached.exists()


def test_a_hidden_prefix_is_a_clear_error(tmp_path):
  path = tmp_path / "hidden.pt"
  _save(_robustbench_model("resnet18"), path, prefix="module.backbone.")
  with pytest.raises(models.CheckpointError, match=r"hidden.pt: .*key 'backbone\.|missing key"):
    models.load("imagenet/Salman2020Do_R18", checkpoint=path)


def _installed_zoo() -> dict[str, dict]:
  """{name: {threat model, gdrive_id, preprocessing, model source}} of the installed
  robustbench's ``model_zoo/imagenet.py`` (read as source: importing it needs timm)."""
  source = (shim.package_dir() / "model_zoo" / "imagenet.py").read_text()
  out = {}
  for node in ast.parse(source).body:
    target = getattr(node.targets[0], "id", None) if isinstance(node, ast.Assign) else None
    if target in ("linf", "common_corruptions"):
      for entry in node.value.args[0].elts:
        name, fields = entry.elts
        fields = dict(zip((k.value for k in fields.keys), fields.values))
        info = out.setdefault(ast.literal_eval(name), {"threats": set()})
        info["threats"].add({"linf": "Linf", "common_corruptions": "corruptions"}[target])
        info.update(gdrive_id=ast.literal_eval(fields["gdrive_id"]),
                    preprocessing=ast.literal_eval(fields["preprocessing"]),
                    model=ast.get_source_segment(source, fields["model"]))
  return out


def test_table_is_robustbenchs_imagenet_zoo():
  installed = _installed_zoo()
  assert len(installed) >= 12
  for model, info in installed.items():
    w = IMAGENET[f"imagenet/{model}"]
    assert set(w.threat_models) == info["threats"], model
    assert w.preprocessing == info["preprocessing"], model
    assert f"pt_models.{w.architecture}(" in info["model"], model
    assert ("normalize_model" in info["model"]) == (w.norm is not None), model
    if info["gdrive_id"]:
      assert w.gdrive_id == info["gdrive_id"] and w.url.endswith(w.gdrive_id), model
    else:  # Standard_R50: torchvision's own pretrained file
      assert w.same_as and models.resolve(model) == w.same_as, model


def test_names_specs_and_unported_entries():
  for name, w in IMAGENET.items():
    if name in models.ROBUSTBENCH_UNPORTED:
      for alias in (name, w.model):
        with pytest.raises(NotImplementedError, match=r"needs the zoo architecture .*(timm port|"
                                                      r"custom code)"):
          models.resolve(alias)
      continue
    assert models.resolve(w.model) in (name, w.same_as), name
    if w.same_as:
      continue
    spec = models.spec(name)
    resize, crop, interpolation = robustbench_weights.PREPROCESSING[w.preprocessing]
    assert (spec.native_resize, spec.native_crop, spec.native_interpolation) == (
        resize, crop, interpolation), name
    assert spec.native_error == pytest.approx(1 - w.clean_acc / 100), name
    assert spec.weights == w.url and spec.dataset == "imagenet", name
  # Every torchvision-architecture entry loads; the custom ones never do.
  loadable = {n for n, w in IMAGENET.items() if not w.architecture.startswith(("timm/", "custom:"))}
  assert loadable <= set(models.names(ported_only=True)) | {
      n for n, w in IMAGENET.items() if w.same_as}
  assert all(n in models.ROBUSTBENCH_UNPORTED for n, w in IMAGENET.items()
             if w.architecture.startswith("custom:"))
  assert models.resolve("imagenet/Standard_R50") == "resnet50"
  assert models.resolve("AlexNet") == "alexnet"
  assert models.resolve("Standard") == "cifar10/Standard"  # CIFAR-10 keeps the bare CIFAR names


def test_normalisation_and_input_size_rules():
  """normalize_model's ImageNet mean/std in the spec; Chen2024Data has none ([0, 1] pixels in);
  Wong2020Fast sees 288 px (Crop288) through ``classifier``'s native resize."""
  x = np.random.default_rng(1).uniform(size=(1, 224, 224, 3)).astype(np.float32)
  salman = models.spec("Salman2020Do_R50")
  assert salman.mean == models.IMAGENET_MEAN and salman.std == models.IMAGENET_STD
  np.testing.assert_array_equal(models.normalizer(models.spec("Chen2024Data_WRN_50_2"))(x), x)
  wong = models.spec("Wong2020Fast")
  assert wong.input_size == 288
  assert models.native_resizer(wong)(x).shape == (1, 288, 288, 3)
  assert models.native_resizer(salman)(x).shape == (1, 224, 224, 3)
