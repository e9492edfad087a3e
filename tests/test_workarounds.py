"""The XLA:CPU workarounds (imagenet_cp.workarounds): the switch, and outputs with each on and off.

Outputs are compared bit for bit, except: the two ImageNet-P cases in ``INEXACT``, where the plain
program's fusions round differently; the batch chunks, compared with the plain vmap at the
chunk's width (the plain vmap's floats depend on the width it is compiled for); the ResNet loops,
held to the tolerance of tests/test_models_parity.py's unrolled-graph check.
"""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

import imagenet_cp
from conftest import photo, photo_224, photo_256
from imagenet_cp import perturbations as P
from imagenet_cp import workarounds
from imagenet_cp.corruptions import REGISTRY as CORRUPTION_REGISTRY
from imagenet_cp.ops import fusion

ALL_ON = dict.fromkeys(workarounds.NAMES, True)
ALL_OFF = dict.fromkeys(workarounds.NAMES, False)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
  monkeypatch.delenv(workarounds.ENV_VAR, raising=False)


# --- the switch ---------------------------------------------------------------------------------

def test_defaults_follow_the_platform():
  assert workarounds.resolve(platform="cpu") == ALL_ON
  assert workarounds.resolve(platform="gpu") == ALL_OFF
  assert workarounds.resolve(platform="tpu") == ALL_OFF
  assert workarounds.resolve() == workarounds.resolve(platform=jax.default_backend())


def test_platform_of_reads_concrete_arrays_devices_else_the_default():
  cpu = jax.devices("cpu")[0]
  assert workarounds.platform_of(jax.device_put(jnp.zeros(2), cpu)) == "cpu"
  assert workarounds.platform_of(np.zeros(2), 3) == jax.default_backend()
  seen = []
  jax.jit(lambda x: seen.append(workarounds.platform_of(x)) or x)(jnp.zeros(2))
  assert seen == [jax.default_backend()]  # a tracer carries no devices
  with jax.default_device(cpu):
    assert workarounds.platform_of() == "cpu"


def test_override_nests_and_names_win_over_all():
  with workarounds.override(all=False):
    assert workarounds.resolve() == ALL_OFF
    with workarounds.override(computed_apart=True):
      assert workarounds.resolve() == dict(ALL_OFF, computed_apart=True)
    assert workarounds.resolve() == ALL_OFF
  with workarounds.override(all=True, resnet_stage_loop=False):
    assert workarounds.resolve(platform="gpu") == dict(ALL_ON, resnet_stage_loop=False)
  with workarounds.override(computed_apart=None):  # None: not overridden
    assert workarounds.resolve(platform="gpu") == ALL_OFF


def test_environment_variable(monkeypatch):
  monkeypatch.setenv(workarounds.ENV_VAR, "off")
  assert workarounds.resolve(platform="cpu") == ALL_OFF
  monkeypatch.setenv(workarounds.ENV_VAR, "all=off, resnet_stage_loop=on")
  assert workarounds.resolve(platform="cpu") == dict(ALL_OFF, resnet_stage_loop=True)
  monkeypatch.setenv(workarounds.ENV_VAR, "computed_apart=1")
  assert workarounds.resolve(platform="gpu") == dict(ALL_OFF, computed_apart=True)
  with workarounds.override(computed_apart=False):  # the context manager wins over the env
    assert not workarounds.enabled("computed_apart", platform="gpu")
  monkeypatch.setenv(workarounds.ENV_VAR, "computed_apart=maybe")
  with pytest.raises(ValueError, match="NAME=on|off"):
    workarounds.resolve()
  monkeypatch.setenv(workarounds.ENV_VAR, "fast_mode=on")
  with pytest.raises(ValueError, match="unknown workaround 'fast_mode'"):
    workarounds.resolve()


def test_unknown_names_are_errors():
  with pytest.raises(ValueError, match="unknown workaround 'resnet_loop'.*resnet_stage_loop"):
    with workarounds.override(resnet_loop=False):
      pass
  with pytest.raises(ValueError, match="unknown workaround"):
    workarounds.enabled("chunks")


# --- computed_apart / applied_if -----------------------------------------------------------------

def _fn(x):
  return jnp.sin(x) * 3.0 + x[::-1]


@pytest.mark.parametrize("on", [True, False])
def test_computed_apart_switches_the_loop_and_keeps_the_value(on):
  x = jnp.linspace(-2.0, 2.0, 37, dtype=jnp.float32)
  plain = np.asarray(jax.jit(_fn)(x))
  with workarounds.override(computed_apart=on):
    f = jax.jit(lambda x, s: fusion.computed_apart(_fn, s, x))
    text = str(jax.make_jaxpr(f)(x, jnp.int32(3)))
    got = np.asarray(f(x, jnp.int32(3)))
  assert ("while" in text) == on
  np.testing.assert_array_equal(got, plain)


@pytest.mark.parametrize("on", [True, False])
def test_applied_if_switches_the_loop_and_keeps_the_value(on):
  x = jnp.arange(12, dtype=jnp.uint8)
  with workarounds.override(computed_apart=on):
    f = jax.jit(lambda p, x: fusion.applied_if(p, lambda y: y * 2 + 1, x))
    assert ("while" in str(jax.make_jaxpr(f)(True, x))) == on
    np.testing.assert_array_equal(f(True, x), np.arange(12, dtype=np.uint8) * 2 + 1)
    np.testing.assert_array_equal(f(False, x), np.arange(12, dtype=np.uint8))


# --- ImageNet-C: computed_apart call sites and the batch chunks ----------------------------------

# The corruptions that call computed_apart / applied_if, and those with a batch chunk.
APART = ("glass_blur", "pixelate", "elastic_transform", "snow", "spatter", "jpeg_compression")
CHUNKED = tuple(n for n, c in CORRUPTION_REGISTRY.items() if c.chunk_for(224))


@pytest.fixture(scope="module")
def images():
  return np.stack([photo_224(n) for n in ("chelsea", "coffee", "rocket")])  # odd: chunk padding


def test_the_corruption_lists_are_current():
  assert set(CHUNKED) == {"defocus_blur", "glass_blur", "motion_blur", "gaussian_blur",
                          "elastic_transform", "pixelate", "saturate", "snow", "spatter"}


def _trace(name, images, keys):
  return str(jax.make_jaxpr(lambda x: imagenet_cp.corrupt(x, name, 3, keys))(images))


@pytest.mark.parametrize("name", sorted(set(APART) - set(CHUNKED)))
def test_corruption_is_identical_with_workarounds_on_and_off(images, name):
  keys = jax.random.split(jax.random.key(5), len(images))
  outs, programs = {}, {}
  for on in (True, False):
    with workarounds.override(all=on):
      outs[on] = np.asarray(imagenet_cp.corrupt(images, name, 3, keys))
      programs[on] = _trace(name, images, keys)
  assert programs[True] != programs[False], "the switch changed nothing"
  np.testing.assert_array_equal(outs[True], outs[False])


def test_jpeg_compression_runs_in_chunks_at_299_only():
  """Integer arithmetic throughout: the 4-image chunks at 299 px equal the plain vmap bit for bit
  (5 images: the last chunk is padded)."""
  jpeg = CORRUPTION_REGISTRY["jpeg_compression"]
  assert [jpeg.chunk_for(s) for s in (32, 64, 224, 299)] == [0, 0, 0, 4]
  images = np.stack([photo(n)[:299, 50:349] for n in ("chelsea", "coffee", "astronaut", "rocket",
                                                        "chelsea")])
  images[-1] = images[-1, ::-1]
  keys = jax.random.split(jax.random.key(5), len(images))
  outs, programs = {}, {}
  for on in (True, False):
    with workarounds.override(all=on):
      outs[on] = np.asarray(imagenet_cp.corrupt(images, "jpeg_compression", 3, keys))
      programs[on] = _trace("jpeg_compression", images, keys)
  assert "scan" in programs[True] and "scan" not in programs[False]  # the chunks' lax.map
  np.testing.assert_array_equal(outs[True], outs[False])


@pytest.mark.parametrize("name", CHUNKED)
def test_chunked_corruption_is_the_plain_one_at_the_chunks_width(images, name):
  """All workarounds on (a loop over 2-image slices, the last one padded with the batch's first
  image) equals all off run on those same slices.  The plain vmap's floats depend on the batch
  width it is compiled for (elastic_transform and motion_blur differ by 1 grey level in a few
  values between widths 2 and 3), which is why the chunks keep one width whatever the batch."""
  chunk = CORRUPTION_REGISTRY[name].chunk
  keys = jax.random.split(jax.random.key(5), len(images))
  with workarounds.override(all=True):
    got = np.asarray(imagenet_cp.corrupt(images, name, 3, keys))
    on = _trace(name, images, keys)
  n = len(images)
  padded = np.concatenate([images, np.repeat(images[:1], -n % chunk, axis=0)])
  padded_keys = jnp.concatenate([keys, jnp.repeat(keys[:1], -n % chunk, axis=0)])
  with workarounds.override(all=False):
    want = np.concatenate([
        np.asarray(imagenet_cp.corrupt(padded[i:i + chunk], name, 3, padded_keys[i:i + chunk]))
        for i in range(0, len(padded), chunk)])[:n]
    assert _trace(name, images, keys) != on, "the switch changed nothing"
  largest, share = CHUNK_INEXACT.get(name, (0, 0.0))
  diff = np.abs(got.astype(np.int32) - want)
  assert diff.max() <= largest and np.mean(diff > 0) <= share, (diff.max(), np.mean(diff > 0))


# The loop body and the top-level program fuse differently, so XLA:CPU's FMA contraction (see
# INEXACT below) may round a value differently, depending on the CPU's instruction set: on an
# AMD EPYC VM motion_blur's chunks differ from the plain 2-wide vmap in 1 of 451,584 values by
# 1 grey level (bit for bit on the VM where the test was written).  Bound: (max |diff|, share).
CHUNK_INEXACT = {"motion_blur": (1, 1e-5)}


@pytest.mark.parametrize("flag,name", [("computed_apart", "pixelate"),
                                       ("corruption_batch_chunks", "saturate")])
def test_each_corruption_workaround_has_its_own_switch(images, flag, name):
  """One flag off, the other on: the program changes, the pixels do not (saturate's floats do
  not depend on the batch width)."""
  keys = jax.random.split(jax.random.key(6), len(images))
  with workarounds.override(all=True):
    on, out_on = _trace(name, images, keys), np.asarray(imagenet_cp.corrupt(images, name, 3, keys))
    with workarounds.override(**{flag: False}):
      off = _trace(name, images, keys)
      out_off = np.asarray(imagenet_cp.corrupt(images, name, 3, keys))
  assert on != off
  np.testing.assert_array_equal(out_on, out_off)


def test_jpeg_roundtrips_inner_jit_follows_the_switch():
  """``ops.jpeg``'s own jit takes the switch as a static argument: flipping it retraces."""
  from imagenet_cp.ops import jpeg
  x = jnp.asarray(photo_224("coffee")[None, :64, :64])
  texts = {}
  for on in (True, False):
    with workarounds.override(computed_apart=on):
      texts[on] = str(jax.make_jaxpr(lambda x: jpeg.jpeg_roundtrip(x, 30))(x))
      out = np.asarray(jpeg.jpeg_roundtrip(x, 30))
    texts[on] = (texts[on].count("while"), out)
  assert texts[True][0] > texts[False][0]
  np.testing.assert_array_equal(texts[True][1], texts[False][1])


# --- ImageNet-P: computed_apart call sites and the per-image loop --------------------------------

IMAGE_LOOP = tuple(n for n, s in P.REGISTRY.items() if s.one_image_at_a_time)


def test_the_image_loop_list_is_current():
  assert set(IMAGE_LOOP) == {"shot_noise", "motion_blur", "zoom_blur", "gaussian_blur", "snow",
                             "brightness", "translate", "tilt"}


# Not bit for bit on XLA:CPU, though the same arithmetic: XLA:CPU contracts a multiply and an add
# into one FMA (one rounding) wherever they land in one fusion, with no flag to turn it off
# (openxla/xla#41579), so a program fused differently rounds a few values differently.  gaussian_blur's row pass fused into its column taps (computed_apart off) moves
# 0.08% of the values by one grey level; tilt vmapped instead of looped (perturbation_image_loop
# off, even for a single image) moves 49 of 9.3 M values by up to 2.  Bound: (max |diff|, share).
INEXACT = {"gaussian_blur": (1, 1e-3), "tilt": (2, 1e-5)}


@pytest.mark.parametrize("name", IMAGE_LOOP)  # gaussian_blur and snow call computed_apart too
def test_perturbation_with_workarounds_on_and_off(name):
  canvas, sizes = P.pad_to_canvas([photo_256("coffee"), photo_256("astronaut")])
  keys = jax.random.split(jax.random.key(7), 2)
  trace = lambda: str(jax.make_jaxpr(lambda c: P.perturb_batch(c, sizes, name, keys))(canvas))
  outs, programs = {}, {}
  for on in (True, False):
    with workarounds.override(all=on):
      outs[on] = np.asarray(P.perturb_batch(canvas, sizes, name, keys))
      programs[on] = trace()
  assert programs[True] != programs[False], "the switch changed nothing"
  if name not in INEXACT:
    np.testing.assert_array_equal(outs[True], outs[False])
    return
  largest, share = INEXACT[name]
  diff = np.abs(outs[True].astype(np.int32) - outs[False])
  assert diff.max() <= largest and np.mean(diff > 0) <= share, (diff.max(), np.mean(diff > 0))


# --- ResNet and RegNet: the stage loops and the batch chunks -------------------------------------

@pytest.fixture(scope="module")
def small_resnet():
  from imagenet_cp.models import resnet
  module = resnet.ResNet(block=resnet.BasicBlock, stage_sizes=(3, 1), num_classes=10)
  x = jax.random.normal(jax.random.key(0), (8, 32, 32, 3), jnp.float32)
  return module, _random_stats(module.init(jax.random.key(1), x)), x


@pytest.fixture(scope="module")
def small_regnet():
  from imagenet_cp.models import regnet
  stages = (regnet.StageParams(16, 3, 8), regnet.StageParams(32, 1, 8))
  module = regnet.RegNet(stages=stages, se_ratio=0.25, num_classes=10)
  x = jax.random.normal(jax.random.key(0), (16, 32, 32, 3), jnp.float32)
  return module, _random_stats(module.init(jax.random.key(1), x)), x


def _random_stats(variables):
  """Non-trivial BatchNorm statistics, so that every block's BN pass matters."""
  leaves, tree = jax.tree.flatten(variables["batch_stats"])
  stats = [jax.random.uniform(jax.random.key(10 + i), l.shape, l.dtype, 0.5, 1.5)
           for i, l in enumerate(leaves)]
  return dict(variables, batch_stats=jax.tree.unflatten(tree, stats))


def _logits(module, variables, x, **flags):
  with workarounds.override(**flags):
    program = str(jax.make_jaxpr(lambda v, x: module.apply(v, x))(variables, x))
    logits = np.asarray(jax.jit(lambda v, x: module.apply(v, x))(variables, x))
  return logits, program


@pytest.mark.parametrize("chunks,loop", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("family", ["resnet", "regnet"])
def test_stage_loops_and_chunks_match_the_unrolled_graph(request, family, chunks, loop):
  """ResNet's and RegNet's ``<family>_batch_chunks`` and ``<family>_stage_loop``."""
  import importlib
  from imagenet_cp.models import layers
  module, variables, x = request.getfixturevalue(f"small_{family}")
  chunk = importlib.import_module(f"imagenet_cp.models.{family}").BATCH_CHUNK
  assert layers.batch_chunk(x.shape[0], chunk) == chunk
  names = (f"{family}_batch_chunks", f"{family}_stage_loop")
  plain, plain_program = _logits(module, variables, x, **dict.fromkeys(names, False))
  got, program = _logits(module, variables, x, **dict(zip(names, (chunks, loop))))
  assert "scan" not in plain_program and "scan" in program  # lax.map and the stage loop
  assert ("cond" in program) == loop  # the scan's lax.switch
  # The tolerance of tests/test_models_parity.py's check of the zoo's ResNet-34.
  np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-6 * np.abs(plain).max())


def test_resnet_eager_apply_follows_its_inputs_devices(small_resnet):
  module, variables, x = small_resnet
  x = jax.device_put(x, jax.devices("cpu")[0])
  with workarounds.override(resnet_stage_loop=False):
    eager = np.asarray(module.apply(variables, x))
  plain, _ = _logits(module, variables, x, resnet_batch_chunks=False, resnet_stage_loop=False)
  np.testing.assert_allclose(eager, plain, rtol=1e-6, atol=1e-6 * np.abs(plain).max())


def test_data_parallel_resolves_the_switch_for_its_devices(small_resnet):
  from imagenet_cp.models.parallel import DataParallel
  module, variables, x = small_resnet
  devices = jax.devices("cpu")[:1]
  assert DataParallel(module.apply, variables, 8, devices).workarounds == ALL_ON
  with workarounds.override(all=False):
    plain = DataParallel(module.apply, variables, 8, devices)
  assert plain.workarounds == ALL_OFF
  fast = DataParallel(module.apply, variables, 8, devices)
  with workarounds.override(all=False):  # later contexts do not change a built DataParallel
    got = fast(np.asarray(x))
  want = plain(np.asarray(x))
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())
  assert "scan" in str(fast._step.trace(fast.variables, x).jaxpr)
  assert "scan" not in str(plain._step.trace(plain.variables, x).jaxpr)


# --- ConvNeXt: the depthwise convs computed apart, the batch chunks -----------------------------

@pytest.fixture(scope="module")
def small_convnext():
  from imagenet_cp.models import convnext
  module = convnext.ConvNeXt(stages=((8, 2), (16, 1)), num_classes=10)
  x = jax.random.normal(jax.random.key(0), (8, 32, 32, 3), jnp.float32)
  variables = module.init(jax.random.key(1), x)
  # Every parameter random (the 1e-6 layer scales and zero biases would hide the blocks).
  leaves, tree = jax.tree.flatten(variables)
  leaves = [jax.random.normal(jax.random.key(10 + i), l.shape, l.dtype) * 0.5
            for i, l in enumerate(leaves)]
  return module, jax.tree.unflatten(tree, leaves), x


@pytest.mark.parametrize("flags", [
    dict(computed_apart=True, convnext_batch_chunks=True),
    dict(computed_apart=True, convnext_batch_chunks=False),
    dict(computed_apart=False, convnext_batch_chunks=True)])
def test_convnext_workarounds_match_the_plain_graph(small_convnext, flags):
  from imagenet_cp.models import convnext
  module, variables, x = small_convnext
  assert x.shape[0] > convnext.BATCH_CHUNK
  plain, plain_program = _logits(module, variables, x, computed_apart=False,
                                 convnext_batch_chunks=False)
  got, program = _logits(module, variables, x, **flags)
  assert "while" not in plain_program and "scan" not in plain_program
  assert ("scan" in program) == flags["convnext_batch_chunks"]  # lax.map
  assert ("while" in program) == flags["computed_apart"]  # the one-trip loops
  # The tolerance of tests/test_models_parity.py's check of the zoo's ResNet-34.
  np.testing.assert_allclose(got, plain, rtol=1e-6, atol=1e-6 * np.abs(plain).max())


@pytest.mark.parametrize("family,names", [
    ("convnext", ("computed_apart", "convnext_batch_chunks")),
    ("regnet", ("regnet_batch_chunks", "regnet_stage_loop"))])
def test_workarounds_keep_the_gradients(request, family, names):
  """Attacks differentiate w.r.t. the images, training w.r.t. the parameters: the one-trip loops
  (no reverse-mode derivative of their own), the chunks and the stage loops give the plain
  graph's gradients."""
  module, variables, x = request.getfixturevalue(f"small_{family}")

  def grads(on):
    def loss(variables, x):
      with workarounds.override(**dict.fromkeys(names, on)):
        return jnp.sum(jnp.tanh(module.apply(variables, x)))
    return jax.jit(jax.grad(loss, argnums=(0, 1)))(variables, x)

  want, got = grads(False), grads(True)
  for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * np.abs(w).max())
