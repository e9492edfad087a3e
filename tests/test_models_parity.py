"""The paper's classifiers and one member of each family against torchvision 0.28 (weights=None,
randomized BatchNorm); the other members' keys and shapes: tests/test_models_structure.py.

The torch model's state dict goes through a real ``.pth`` file and ``models.load(name,
checkpoint=path)``, i.e. the restricted unpickler and the converter users run.  Inputs are
small where adaptive pooling allows, to keep CI time down; odd sizes exercise ceil-mode and
adaptive-pool bin rules.  Tolerance: max |logit diff| <= 1e-4 * max |logit|.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_cp import models
from torchvision_parity import REL_TOL, assert_logits_match, torch_reference

# (name, input side).  Sizes are the smallest that keep every stage non-degenerate-ish while
# still covering the interesting paths (AlexNet 6x6 and VGG 7x7 adaptive pools up-sample here).
CASES = [
    ("alexnet", 99),
    ("alexnet", 224),  # the fused conv + pool at full size (55, 27, 13 px)
    ("squeezenet1_0", 99),
    ("squeezenet1_1", 97),
    ("vgg11", 48),
    ("vgg19_bn", 40),
    ("resnet18", 64),
    ("resnet34", 64),
    ("resnet50", 64),
    ("resnext50_32x4d", 64),
    ("densenet121", 64),
    ("resnext101_32x8d", 64),
]


def _old_densenet_keys(state_dict):
  """The released DenseNet files' key style: ``denselayer1.norm1.weight`` -> ``norm.1.weight``."""
  out = {}
  for key, value in state_dict.items():
    for part in ("norm1", "conv1", "norm2", "conv2"):
      key = key.replace(f".{part}.", f".{part[:-1]}.{part[-1]}.")
    out[key] = value
  return out


@pytest.mark.parametrize("name,size", CASES)
def test_logits_match_torchvision(name, size, tmp_path):
  assert_logits_match(name, size, tmp_path,
                      state_dict_fn=_old_densenet_keys if name.startswith("densenet") else None)


def test_resnet_cpu_loops_match_unrolled_graph_and_torchvision(tmp_path):
  """ResNet-34 at batch 8: the CPU workarounds of ``imagenet_cp/models/resnet.py`` (4-image
  ``lax.map`` chunks, each stage's repeated blocks as a scan + switch loop) give the logits of
  the plain unrolled whole-batch graph (both workarounds off), and torchvision's."""
  from imagenet_cp import workarounds
  from imagenet_cp.models import resnet
  path = tmp_path / "resnet34.pth"
  x, expected = torch_reference("resnet34", 64, path, batch=8)
  module, variables, _ = models.load("resnet34", checkpoint=path)
  assert resnet.batch_chunk(8) == 4
  with workarounds.override(resnet_batch_chunks=True, resnet_stage_loop=True):
    got = np.asarray(jax.jit(lambda v, x: module.apply(v, x))(variables, x))
  with workarounds.override(resnet_batch_chunks=False, resnet_stage_loop=False):
    unrolled = np.asarray(jax.jit(lambda v, x: module.apply(v, x))(variables, x))
  np.testing.assert_allclose(got, unrolled, rtol=1e-6, atol=1e-6 * np.abs(unrolled).max())
  err = np.max(np.abs(got - expected)) / np.max(np.abs(expected))
  assert err <= REL_TOL, f"relative max logit error {err:.2e}"


@pytest.mark.parametrize("cin,groups,cout,stride", [
    (128, 32, 128, 1), (256, 32, 256, 2), (256, 64, 256, 1), (2048, 32, 2048, 2), (12, 3, 6, 1)])
def test_fast_grouped_conv_equals_feature_group_count(cin, groups, cout, stride):
  from imagenet_cp.models import grouped
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 9, 9, cin)).astype(np.float32)
  k = rng.standard_normal((3, 3, cin // groups, cout)).astype(np.float32)
  want = jax.lax.conv_general_dilated(
      x, k, (stride, stride), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=groups, precision=jax.lax.Precision.HIGHEST)
  got = grouped.grouped_conv(x, k, groups, stride, 1)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("n,side,cin,cout,chunk", [
    (2, 9, 64, 32, 4), (6, 8, 16, 24, 4), (5, 7, 8, 8, 2), (3, 1, 4, 4, 4), (4, 10, 3, 5, 1)])
def test_winograd_conv3x3_equals_direct_convolution(n, side, cin, cout, chunk):
  from imagenet_cp.models import winograd
  rng = np.random.default_rng(0)
  x = rng.standard_normal((n, side, side + 3, cin)).astype(np.float32)
  k = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
  b = rng.standard_normal(cout).astype(np.float32)
  want = jax.lax.conv_general_dilated(
      x, k, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST) + b
  got = winograd.conv3x3(x, k, b, activation=jax.nn.relu, chunk=chunk)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, np.maximum(want, 0), rtol=1e-5, atol=1e-5 * np.abs(want).max())
  size = winograd.chunk_size(32, tiles=49, chunk=chunk)
  assert 32 % size == 0 and size >= min(chunk, 8)
  pooled = winograd.conv3x3(x, k, b, activation=jax.nn.relu, chunk=chunk, pool=True)
  from imagenet_cp.models import layers
  np.testing.assert_array_equal(pooled, layers.max_pool(got, 2, 2))


@pytest.mark.parametrize("side,c,k,stride,pad", [
    (9, 8, 3, 1, ((1, 1), (1, 1))), (10, 6, 5, 2, ((1, 2), (1, 2))), (7, 4, 3, 2, ((0, 1), (0, 1)))])
def test_depthwise_taps_equal_feature_group_count(side, c, k, stride, pad):
  from imagenet_cp.models import depthwise
  rng = np.random.default_rng(0)
  x = rng.standard_normal((3, side, side + 1, c)).astype(np.float32)
  w = rng.standard_normal((k, k, 1, c)).astype(np.float32)
  want = jax.lax.conv_general_dilated(
      x, w, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"),
      feature_group_count=c, precision=jax.lax.Precision.HIGHEST)
  got = depthwise.depthwise_conv(x, w, stride, pad)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("side,c,k,stride,pad", [
    (9, 8, 3, 1, ((1, 1), (1, 1))), (10, 6, 5, 2, ((1, 2), (1, 2))), (7, 4, 3, 2, ((0, 1), (0, 1))),
    (11, 3, 5, 2, ((2, 2), (2, 2))), (8, 3, 3, 3, ((0, 0), (1, 1))), (9, 2, 2, 2, ((0, 0), (0, 0)))])
def test_depthwise_gradients_equal_feature_group_count(side, c, k, stride, pad):
  """The hand-written VJP (per-phase taps) against autodiff of XLA's grouped convolution."""
  from imagenet_cp.models import depthwise
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, side, side + 1, c)).astype(np.float32)
  w = rng.standard_normal((k, k, 1, c)).astype(np.float32)

  def grouped(x, w):
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=c, precision=jax.lax.Precision.HIGHEST)

  y, want_vjp = jax.vjp(grouped, x, w)
  g = rng.standard_normal(y.shape).astype(np.float32)
  _, got_vjp = jax.vjp(lambda x, w: depthwise.depthwise_conv(x, w, stride, pad), x, w)
  for want, got in zip(want_vjp(g), got_vjp(g)):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
  # Jitted, inside a loss, as an attack takes it.
  loss = lambda f: (lambda x: jnp.sum(f(x, w) ** 2))
  want = jax.grad(loss(grouped))(x)
  got = jax.jit(jax.grad(loss(lambda x, w: depthwise.depthwise_conv(x, w, stride, pad))))(x)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("side,k,stride,pad,ceil", [
    (9, 3, 2, 0, False), (8, 2, 2, 0, False), (13, 3, 2, 0, True),  # no padding: separable path
    (12, 3, 2, 1, False), (10, 3, 2, 0, True), (8, 3, 2, 1, True)])  # padded: reduce_window path
def test_max_pool_equals_torch_on_both_paths(side, k, stride, pad, ceil):
  import torch
  from imagenet_cp.models import layers
  x = np.random.default_rng(side).standard_normal((2, side, side + 2, 3)).astype(np.float32)
  want = torch.nn.functional.max_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), k, stride,
                                        pad, ceil_mode=ceil).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_array_equal(np.asarray(layers.max_pool(jax.numpy.asarray(x), k, stride, pad,
                                                           ceil)), want)
