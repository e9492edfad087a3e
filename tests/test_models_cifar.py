"""RobustBench's CIFAR-10/100 corruption-leaderboard models (models/cifar.py) against RobustBench's
own torch classes (imagenet_cp/oracles/robustbench_shim.py: its architecture files and wrapper
classes, random weights and BatchNorm statistics), through a real ``.pt`` file in RobustBench's
layouts and ``models.load(name, checkpoint=...)``; every registered name's keys and shapes, and
the registry's Google Drive ids and architectures, against the installed robustbench's source."""
import importlib.util

import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import robustbench_weights, weights
from torchvision_parity import (check_logits, flax_state_shapes, randomize_batch_norm,
                                torch_logits, torch_state_shapes)

torch = pytest.importorskip("torch")
shim = pytest.importorskip("imagenet_cp.oracles.robustbench_shim")
if importlib.util.find_spec("robustbench") is None:  # not imported: its __init__ needs timm
  pytest.skip("needs robustbench (pip install --no-deps robustbench)", allow_module_level=True)

# The CIFAR models (robustbench_weights.WEIGHTS also holds ImageNet's, tested apart).
WEIGHTS = {n: w for n, w in robustbench_weights.WEIGHTS.items() if w.dataset != "imagenet"}

# One case per architecture and normalisation; (name, how the file wraps the state dict).
CASES = [
    ("cifar10/Standard", "module."),  # WRN-28-10 (36M), no normalisation, DataParallel keys
    ("cifar100/Hendrycks2020AugMix_WRN", "state_dict"),  # WRN-40-2, (x - 0.5) / 0.5
    ("cifar10/Hendrycks2020AugMix_ResNeXt", None),  # ResNeXt-29 4x32d, (x - 0.5) / 0.5
    ("cifar100/Modas2021PRIMEResNet18", None),  # ResNet-18, the file's own mu / sigma
    ("cifar10/Kireev2021Effectiveness_RLAT", "last"),  # PreAct-18 + bn_before_fc, CIFAR-10 stats
    ("cifar100/Addepalli2021Towards_WRN34", None),  # WRN-34-10 with its unused sub_block1
]


def _oracle(name, seed=0):
  w = WEIGHTS[name]
  torch.manual_seed(seed)
  model = shim.model(w.dataset, w.model)
  randomize_batch_norm(model, torch, seed)
  with torch.no_grad():
    for key, p in model.named_parameters():
      if key.endswith("bias") and not p.any():  # the zero-initialised fc bias
        p.copy_(torch.randn(p.shape) * 0.1)
    if w.norm == "checkpoint":  # PRIME's mu / sigma come from its file: not RobustBench's 0.5
      model.mu.copy_(torch.tensor([0.49, 0.48, 0.45]).view(1, 3, 1, 1))
      model.sigma.copy_(torch.tensor([0.25, 0.24, 0.26]).view(1, 3, 1, 1))
  return model


def _save(model, name, path, wrap):
  w = WEIGHTS[name]
  state_dict = model.state_dict()
  if w.norm != "checkpoint":  # RobustBench's files lack the wrappers' constant mu / sigma
    state_dict = {k: v for k, v in state_dict.items() if k not in ("mu", "sigma")}
  if wrap == "module.":
    state_dict = {"module." + k: v for k, v in state_dict.items()}
  elif wrap is not None:
    state_dict = {wrap: state_dict, "epoch": 200}
  torch.save(state_dict, path)


def _pixels(batch=2, seed=0):
  return np.random.default_rng(seed).uniform(size=(batch, 32, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("name,wrap", CASES)
def test_logits_match_robustbench(name, wrap, tmp_path):
  model = _oracle(name)
  path = tmp_path / f"{WEIGHTS[name].model}.pt"
  _save(model, name, path, wrap)
  x = _pixels()
  expected = torch_logits(model, x)
  del model
  module, variables, spec = models.load(name, checkpoint=path)
  got = np.asarray(jax.jit(module.apply)(variables, x))
  assert got.shape == (2, WEIGHTS[name].num_classes)
  err = check_logits(got, expected, name)
  print(f"{name}: relative max logit error {err:.1e}")
  # classifier(): [0, 1] pixels in, the spec's normalisation is the identity.
  apply_fn = models.classifier_apply(module, spec)
  np.testing.assert_array_equal(models.normalizer(spec)(x), x)
  check_logits(np.asarray(jax.jit(apply_fn)(variables, x)), expected, f"{name} (classifier)")


def test_every_name_has_robustbenchs_keys_and_shapes():
  for name, w in WEIGHTS.items():
    with torch.device("meta"):
      want = torch_state_shapes(shim.model(w.dataset, w.model))
    if w.norm != "checkpoint":
      want = {k: v for k, v in want.items() if k not in ("mu", "sigma")}
    want = {k: v for k, v in want.items() if not k.startswith(w.ignore)}
    assert flax_state_shapes(models.build(name), 32) == want, name


def test_registry_is_robustbenchs_corruption_leaderboard():
  for dataset in ("cifar10", "cifar100"):
    entries = shim.corruption_entries(dataset)
    ours = {w.model: w for w in WEIGHTS.values() if w.dataset == dataset}
    for model, w in ours.items():
      assert entries[model]["gdrive_id"] == w.gdrive_id, w.name
  assert models.names(dataset="cifar10") == [n for n in WEIGHTS if n.startswith("cifar10/")]
  assert models.names(dataset="cifar100") == [n for n in WEIGHTS if n.startswith("cifar100/")]
  assert set(models.names(ported_only=True)) >= set(WEIGHTS)
  assert "resnet50" not in models.names(dataset="cifar10")
  every = models.names()  # the CIFAR models follow every ImageNet weight but RobustBench's
  start = every.index(next(iter(WEIGHTS)))
  assert every[start:start + len(WEIGHTS)] == list(WEIGHTS)
  assert all(n.startswith("imagenet/") for n in every[start + len(WEIGHTS):])
  assert models.resolve("Standard") == "cifar10/Standard"
  assert models.resolve("Hendrycks2020AugMix_WRN") == "cifar10/Hendrycks2020AugMix_WRN"
  spec = models.spec("cifar100/Hendrycks2020AugMix_ResNeXt")
  assert (spec.resize, spec.crop, spec.input_size, spec.dataset) == (32, 32, 32, "cifar100")
  assert spec.mean == (0.0, 0.0, 0.0) and spec.std == (255.0,) * 3
  assert spec.native_error == pytest.approx(0.211)
  assert spec.weights == "https://drive.google.com/uc?id=1ocnHbvDdOBLvgNr6K7vEYL08hUdkD1Rv"


def test_a_wrong_architecture_checkpoint_is_a_clear_error(tmp_path):
  path = tmp_path / "Hendrycks2020AugMix_WRN.pt"
  _save(_oracle("cifar10/Hendrycks2020AugMix_WRN"), "cifar10/Hendrycks2020AugMix_WRN", path, None)
  with pytest.raises(models.CheckpointError,
                     match=r"Hendrycks2020AugMix_WRN.pt: (missing )?key '.*'( has shape .*, the "
                           r"model needs|)"):
    models.load("cifar10/Modas2021PRIMEResNet18", checkpoint=path)
  with pytest.raises(models.CheckpointError, match=r"key 'block1\.layer\.0\..*' has shape \(32"):
    models.load("cifar100/Addepalli2022Efficient_WRN_34_10", checkpoint=path)
  with pytest.raises(models.CheckpointError, match="missing key 'mu'"):
    models.load("cifar10/Modas2021PRIMEResNet18", checkpoint=_prime_without_mu(tmp_path))


def _prime_without_mu(tmp_path):
  path = tmp_path / "prime_no_mu.pt"
  model = _oracle("cifar10/Modas2021PRIMEResNet18")
  torch.save({k: v for k, v in model.state_dict().items() if k not in ("mu", "sigma")}, path)
  return path


def test_other_input_sizes_are_refused():
  module = models.build("cifar10/Hendrycks2020AugMix_WRN")
  with pytest.raises(ValueError, match=r"takes \[N, 32, 32, 3\]"):
    jax.eval_shape(module.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 64, 64, 3), np.float32))




def test_download_records_the_digest_at_first_use(tmp_path, http_server, monkeypatch):
  w = WEIGHTS["cifar10/Modas2021PRIMEResNet18"]
  served = tmp_path / "served"
  served.mkdir()
  _save(_oracle(w.name), w.name, served / "prime.pt", None)
  (served / "page.html").write_text("<!DOCTYPE html><html>quota exceeded</html>")
  base = http_server(served)
  root = tmp_path / "cache"
  path = weights.robustbench_file(w, root, url=f"{base}/prime.pt")
  assert path == root / "robustbench" / "cifar10" / "corruptions" / "Modas2021PRIMEResNet18.pt"
  digest = path.with_name(path.name + ".sha256").read_text().split()[0]
  assert digest == weights.sha256_file(served / "prime.pt")
  path.write_bytes(path.read_bytes()[:-7])  # damaged in the cache: fetched again, checked
  assert weights.robustbench_file(w, root, url=f"{base}/prime.pt") == path
  assert weights.sha256_file(path) == digest
  path.unlink()  # the source changed since the first download: refused
  (served / "changed.pt").write_bytes((served / "prime.pt").read_bytes() + b"changed")
  with pytest.raises(models.CheckpointError, match="differs from the .* recorded"):
    weights.robustbench_file(w, root, url=f"{base}/changed.pt")
  with pytest.raises(OSError, match="sent a web page"):
    weights.robustbench_file(w, tmp_path / "other", url=f"{base}/page.html")
  assert not list((tmp_path / "other").rglob("*.pt*"))
  # models.load without a checkpoint: downloaded into the cache, converted once, reused.
  monkeypatch.setenv("IMAGENET_CP_CACHE", str(tmp_path / "env"))
  monkeypatch.setattr(weights, "GDRIVE_DOWNLOAD", base + "/prime.pt?id={}")
  module, variables, _ = models.load(w.name)
  cached = weights.robustbench_path(w, tmp_path / "env" / "models")
  assert cached.exists() and weights.converted_path(cached).exists()
  monkeypatch.setattr(weights, "GDRIVE_DOWNLOAD", base + "/missing?id={}")  # no network needed now
  _, again, _ = models.load(w.name)
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables, again)
