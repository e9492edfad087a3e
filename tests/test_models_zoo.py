"""The zoo's registry, its real-weight offline model (EfficientNet-Lite0) and sharded apply."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import parallel
from conftest import photo_224

EXPECTED = [
    "alexnet", "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg19", "vgg19_bn", "resnet18",
    "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet161",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "efficientnet_lite0",
    "efficientnet_lite1", "efficientnet_lite2"]


def test_registry_names_aliases_and_specs():
  # The paper's models and the offline EfficientNet-Lites first, in this order; the rest of
  # torchvision's weights follow (tests/test_models_registry.py).
  assert models.names()[:len(EXPECTED)] == EXPECTED
  assert models.resolve("resnext101") == "resnext101_32x8d"
  assert "Torch7" in models.spec("resnext101").note
  with pytest.raises(ValueError, match="unknown model 'resnet99'.*alexnet"):
    models.load("resnet99")
  for name in models.names():
    spec = models.spec(name)
    assert (spec.resize, spec.crop) == ((32, 32) if spec.dataset.startswith("cifar") else (256, 224)), name
  assert models.spec("resnext101_64x4d").native_resize == 232
  assert models.spec("resnet50").mean == pytest.approx((123.675, 116.28, 103.53))
  assert models.spec("resnet50").std == pytest.approx((58.395, 57.12, 57.375))


@pytest.fixture(scope="module")
def lite0():
  return models.load("efficientnet_lite0")


@pytest.fixture(scope="module")
def photos():
  return np.stack([photo_224("chelsea"), photo_224("coffee")]).astype(np.float32) / 255.0


def _torch_lite0_logits(x_normalized):
  torch = pytest.importorskip("torch")
  ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
  model = ref_pkg.EfficientNet.from_pretrained(
      "efficientnet-lite0", weights_path=str(models.lite0_checkpoint())).eval()
  with torch.inference_mode():
    return model(torch.from_numpy(x_normalized.transpose(0, 3, 1, 2).copy())).numpy()


def test_lite0_real_weights_classify_photos_and_match_reference(lite0, photos):
  module, variables, spec = lite0
  assert spec.mean == (127.0, 127.0, 127.0) and spec.std == (128.0, 128.0, 128.0)
  x = np.asarray(models.normalizer(spec)(photos))
  np.testing.assert_allclose(x, (photos * 255 - 127) / 128, rtol=1e-6, atol=1e-6)
  logits = np.asarray(jax.jit(module.apply)(variables, x))
  top1 = logits.argmax(-1)
  assert 281 <= top1[0] <= 285, f"chelsea top-1 {top1[0]}"  # tabby/tiger/Persian/Siamese/Egyptian cat
  assert top1[1] == 967, f"coffee top-1 {top1[1]}"  # espresso
  ref = _torch_lite0_logits(x)
  assert np.max(np.abs(logits - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_classifier_takes_unit_pixels(lite0, photos):
  module, variables, spec = lite0
  apply_fn, variables2 = models.classifier("efficientnet_lite0")
  got = jax.jit(apply_fn)(variables2, photos[:1])
  want = module.apply(variables, (photos[:1] * 255.0 - np.float32(127)) / np.float32(128))
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-4)


def test_sharded_apply_matches_single_device_with_ragged_batch():
  devices = jax.local_devices()
  assert len(devices) == 4, "conftest sets 4 fake CPU devices"
  module = models.build("squeezenet1_1")
  x = np.random.default_rng(0).uniform(size=(7, 48, 48, 3)).astype(np.float32)
  variables = module.init(jax.random.key(0), x[:1])
  on_one = jax.device_put((variables, x), devices[0])
  single = np.asarray(jax.jit(module.apply)(*on_one))
  assert len(jax.jit(module.apply)(*on_one).sharding.device_set) == 1
  dp = parallel.DataParallel(module.apply, variables, batch_size=4)
  assert dp.batch_size == 4
  batches = list(dp.batches(x))
  assert [int(mask.sum()) for _, mask in batches] == [4, 3]
  logits, _ = batches[0]
  assert len(logits.sharding.device_set) == 4
  np.testing.assert_allclose(dp(x), single, rtol=1e-5, atol=1e-5 * np.abs(single).max())
  # batch sizes round up to the device count; empty or oversized batches are errors
  assert parallel.DataParallel(module.apply, variables, batch_size=5).batch_size == 8
  with pytest.raises(ValueError, match="1..4 images"):
    dp.apply_padded(np.zeros((5, 48, 48, 3), np.float32))
  with pytest.raises(ValueError, match="batch_size"):
    parallel.DataParallel(module.apply, variables, batch_size=0)


def _optimized_hlo(fn, *args, **jit_kwargs) -> str:
  return jax.jit(fn, **jit_kwargs).lower(*args).compile().as_text()


def test_compiler_options_move_convolutions_off_ynnpack_and_keep_logits():
  from imagenet_cp.models import compiler
  options = models.compiler_options()
  x, w = jnp.ones((2, 56, 56, 64)), jnp.ones((3, 3, 64, 64))  # (a 9x9x8 conv stays in XLA)
  conv = lambda x, w: jax.lax.conv_general_dilated(  # noqa: E731
      x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  if not compiler._accepted({compiler.YNN_FUSION_OPTION: compiler.YNN_FUSION_TYPES}):
    # An older jaxlib (setup.cfg's oldest, 0.6.2) knows no such option and has no YNNPACK
    # fusions to move: the plain compile, which loses nothing there.
    assert options == {} and "__ynn_fusion" not in _optimized_hlo(conv, x, w)
    return
  assert options == {compiler.YNN_FUSION_OPTION: compiler.YNN_FUSION_TYPES}, (
      "this jaxlib (pinned) accepts the option on CPU; a newer one that drops it gets {}")
  assert models.compiler_options("resnext101") == models.compiler_options("my own model") == options
  assert models.compiler_options("vgg19_bn") == {compiler.YNN_FUSION_OPTION: ""}
  assert compiler.compiler_options("resnet50", platform="gpu") == {}
  assert not compiler._accepted({"xla_cpu_no_such_option": "1"})
  assert "__ynn_fusion" in _optimized_hlo(conv, x, w), "the default this option works around"
  assert "__ynn_fusion" not in _optimized_hlo(conv, x, w, compiler_options=options)
  a = jnp.ones((64, 32))
  assert "__ynn_fusion" in _optimized_hlo(jnp.dot, a, a.T, compiler_options=options)
  assert "__ynn_fusion" not in _optimized_hlo(
      jnp.dot, a, a.T, compiler_options=models.compiler_options("vgg11"))
  module = models.build("resnet18")
  x = np.random.default_rng(1).standard_normal((2, 64, 64, 3)).astype(np.float32)
  variables = module.init(jax.random.key(0), x[:1])
  plain = np.asarray(jax.jit(module.apply)(variables, x))
  tuned = np.asarray(jax.jit(module.apply, compiler_options=options)(variables, x))
  assert np.max(np.abs(tuned - plain)) <= 1e-5 * np.max(np.abs(plain))
