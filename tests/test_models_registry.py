"""The zoo's registry of torchvision weights (imagenet_cp/models/torchvision_weights.py), its
names against ``torchvision.models.list_models``, and the one rule for non-224 models (resize
inside ``models.classifier``) against torchvision's own resize."""
import dataclasses

import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import torchvision_weights, weights
from conftest import import_torchvision

WEIGHTS = torchvision_weights.WEIGHTS


def test_data_module_is_what_torchvision_enums_say():
  from imagenet_cp.oracles import torchvision_registry
  records = torchvision_registry.records()
  assert [r["name"] for r in records] == list(WEIGHTS)
  for r in records:
    assert dataclasses.asdict(WEIGHTS[r["name"]]) == r, r["name"]
  assert torchvision_registry.render() == torchvision_registry.OUTPUT.read_text(), (
      "regenerate: python -m imagenet_cp.oracles.torchvision_registry")
  assert torchvision_weights.TORCHVISION_VERSION == import_torchvision().__version__.split("+")[0]


def test_names_cover_every_torchvision_classifier():
  tv = import_torchvision()
  listed = tv.models.list_models(module=tv.models)
  assert len(listed) == 80 and set(torchvision_weights.MODELS) == set(listed)
  assert {w.model for w in WEIGHTS.values()} == set(listed)
  names = models.names(dataset="imagenet")  # RobustBench's CIFAR models: test_models_cifar.py
  assert len(names) == len(set(names))
  for model in listed:
    assert model in names and models.resolve(model) == model, model
  classifiers = [n for n in WEIGHTS if n not in models.NOT_CLASSIFIERS]
  assert len(classifiers) == 114 and set(classifiers) <= set(names)
  others = set(models.timm_weights.WEIGHTS) | {  # timm ports, RobustBench's ImageNet models
      n for n in models.robustbench_weights.WEIGHTS if n.startswith("imagenet/")} | set(
          models.ares_weights.WEIGHTS)  # and ARES-Bench's (tests/test_models_ares.py)
  assert set(names) - set(classifiers) - others == set(models.LITE_WEIGHTS)
  # The paper's models first, in its order.
  assert names[:6] == ["alexnet", "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg19", "vgg19_bn"]
  assert set(models.NOT_YET_PORTED) == set(names) - set(models.names(ported_only=True))
  assert set(models.names()) - set(names) == set(models.robustbench_weights.WEIGHTS) - {
      n for n in models.robustbench_weights.WEIGHTS if n.startswith("imagenet/")}


def test_bare_names_are_v1_and_tags_name_the_other_weights():
  assert WEIGHTS["resnet50"].enum == "ResNet50_Weights.IMAGENET1K_V1"
  assert WEIGHTS["resnet50.v2"].enum == "ResNet50_Weights.IMAGENET1K_V2"
  assert WEIGHTS["vit_b_16.swag_e2e"].enum == "ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1"
  assert WEIGHTS["vit_b_16.swag_linear"].enum == "ViT_B_16_Weights.IMAGENET1K_SWAG_LINEAR_V1"
  # No V1: the bare name is torchvision's DEFAULT.
  assert WEIGHTS["vit_h_14"].enum == "ViT_H_14_Weights.IMAGENET1K_SWAG_E2E_V1"
  assert models.resolve("vit_h_14.swag_e2e") == "vit_h_14"
  assert models.resolve("resnet50.v1") == "resnet50"
  assert models.resolve("mnasnet0_5.v1") == "mnasnet0_5"
  with pytest.raises(ValueError, match="vgg16.features is not a zoo classifier.*NaN"):
    models.resolve("vgg16.features")
  with pytest.raises(ValueError, match="unknown model 'resnet50.v3'"):
    models.resolve("resnet50.v3")


def test_urls_and_hash_prefixes():
  for name, w in WEIGHTS.items():
    assert weights.URLS[name] == w.url == "https://download.pytorch.org/models/" + w.file
    assert weights.hash_prefix(w.url) == w.sha256 and len(w.sha256) in (8, 10), name
  assert WEIGHTS["shufflenet_v2_x1_0"].sha256 == "5666bf0f80"  # one of the 10-digit ones


def test_specs_carry_each_weights_own_transform():
  for name in models.names(dataset="imagenet"):
    spec = models.spec(name)  # also for weights not ported yet
    assert (spec.resize, spec.crop) == (256, 224), name
    if name not in WEIGHTS:
      continue
    w = WEIGHTS[name]
    assert (spec.native_resize, spec.native_crop, spec.native_interpolation) == (
        w.resize, w.crop, w.interpolation), name
    assert spec.mean == pytest.approx(tuple(255 * v for v in w.mean)), name
    assert spec.std == pytest.approx(tuple(255 * v for v in w.std)), name
    assert spec.native_error == pytest.approx(1 - w.acc1 / 100), name
    assert spec.weights == w.url
  inception = models.spec("inception_v3")
  assert (inception.native_resize, inception.input_size) == (342, 299)
  assert models.spec("resnet50.v2").native_resize == 232
  assert models.spec("resnet50").native_error == pytest.approx(0.2387)
  assert models.spec("efficientnet_v2_l").mean == pytest.approx((127.5,) * 3)
  assert models.spec("vit_h_14").native_crop == 518
  assert models.spec("efficientnet_lite2").native_interpolation == "bicubic"


def test_a_weight_not_yet_ported_says_so():
  if not models.NOT_YET_PORTED:
    assert models.names(ported_only=True) == models.names()
    return
  name = models.NOT_YET_PORTED[0]
  with pytest.raises(NotImplementedError, match=f"{name} .*not yet ported"):
    models.load(name)


@pytest.mark.parametrize("interpolation,src,dst", [
    ("bilinear", 224, 299), ("bicubic", 224, 384), ("bicubic", 224, 240), ("bilinear", 300, 224)])
def test_native_resizer_is_torchvisions_antialiased_resize(interpolation, src, dst):
  torch = pytest.importorskip("torch")
  tv = import_torchvision()
  spec = models.Spec(native_crop=dst, native_interpolation=interpolation)
  if dst == spec.crop:  # a 224-native model is never resized: check a real resize instead
    spec = dataclasses.replace(spec, crop=0)
  x = np.random.default_rng(src).uniform(size=(2, src, src, 3)).astype(np.float32)
  got = np.asarray(models.native_resizer(spec)(jax.numpy.asarray(x)))
  mode = getattr(tv.transforms.InterpolationMode, interpolation.upper())
  want = tv.transforms.functional.resize(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                                         [dst, dst], interpolation=mode, antialias=True)
  want = want.numpy().transpose(0, 2, 3, 1)
  assert got.shape == want.shape == (2, dst, dst, 3)
  np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


def test_native_resizer_leaves_224_models_and_native_sizes_alone():
  x = np.zeros((1, 64, 64, 3), np.float32)
  assert models.native_resizer(models.spec("resnet50.v2"))(x) is x  # native crop 224: identity
  spec = models.spec("inception_v3")
  assert models.native_resizer(spec)(np.zeros((1, 299, 299, 3), np.float32)).shape[1] == 299
  assert models.native_resizer(spec)(x).shape == (1, 299, 299, 3)


def test_classifier_resizes_224_images_to_the_native_crop_like_torchvision(tmp_path):
  """Inception V3 (native 299, bilinear) through ``models.classifier`` on 224-px images in
  [0, 1] = torchvision's antialiased resize to 299 + normalize + the torch model."""
  torch = pytest.importorskip("torch")
  tv = import_torchvision()
  from imagenet_cp.oracles.torchvision_shim import torchvision_model
  from torchvision_parity import randomize_batch_norm
  torch.manual_seed(0)
  model = torchvision_model("inception_v3")
  randomize_batch_norm(model, torch)
  path = tmp_path / "inception_v3.pth"
  torch.save(model.state_dict(), path)
  images = np.random.default_rng(0).uniform(size=(1, 224, 224, 3)).astype(np.float32)
  apply_fn, variables = models.classifier("inception_v3", checkpoint=path)
  got = np.asarray(jax.jit(apply_fn)(variables, images))
  t = tv.transforms.functional.resize(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()),
                                      [299, 299], antialias=True)
  t = tv.transforms.functional.normalize(t, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
  with torch.inference_mode():
    want = model(t).numpy()
  assert np.max(np.abs(got - want)) <= 1e-4 * np.max(np.abs(want))
