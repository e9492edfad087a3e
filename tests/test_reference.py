"""The oracle harness: the shimmed original code runs, and Replay feeds it exactly our draws."""
import sys

import cv2
import numpy as np
import pytest

from conftest import FROST_DIR, photo_224
from imagenet_cp.oracles import corruptions as ref

try:
  ref.load_original(FROST_DIR)
except ImportError as e:  # pragma: no cover - `make test` installs the oracle
  pytest.skip(str(e), allow_module_level=True)

N_PIX = 224 * 224 * 3


@pytest.fixture(scope="module")
def chelsea():
  return photo_224("chelsea")


def _rng(seed=0):
  return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# The shims: every one of the 19 original functions runs on a real photo.

# glass_blur at severity 2 (48,400 loop steps) is its cheapest; the others at severity 3.
@pytest.mark.parametrize("name", ref.ORIGINAL_NAMES)
def test_original_runs(name, chelsea):
  severity = 2 if name == "glass_blur" else 3
  np.random.seed(0)
  out = ref.run_original(name, chelsea, severity, frost_dir=FROST_DIR)
  assert out.dtype == np.uint8 and out.shape == (224, 224, 3)
  assert out.flags.c_contiguous
  f = ref.fidelity(out, chelsea)
  assert 1.0 < f["mad"] < 100.0, (name, f)  # changed, but still the photo's scale
  assert 20 < out.mean() < 235 and out.std() > 5, (name, out.mean(), out.std())


def test_shims_leave_numpy_and_warnings_alone():
  module = ref.load_original(FROST_DIR)
  assert not hasattr(np, "float_")  # the shim lives in the module's own `np` only
  assert module.np.float_ is np.float64
  assert module.np.random is np.random
  stub = sys.modules.get("pkg_resources")
  assert stub is None or hasattr(stub, "require")  # our stand-in was only there for the import
  assert module.gaussian(np.zeros((8, 8, 3)), sigma=1, multichannel=True).shape == (8, 8, 3)


def test_missing_oracle_names_make_test(monkeypatch):
  monkeypatch.setattr(ref, "_MODULE", None)
  monkeypatch.setitem(sys.modules, "imagenet_c", None)
  monkeypatch.setitem(sys.modules, "imagenet_c.corruptions", None)
  with pytest.raises(ImportError, match=r"make test.*imagenet-c==0.0.3"):
    ref.load_original()


def test_run_original_rejects_bad_input(chelsea):
  with pytest.raises(ValueError, match="unknown corruption"):
    ref.run_original("fgsm", chelsea, 1)
  with pytest.raises(ValueError, match="severity"):
    ref.run_original("contrast", chelsea, 6)
  with pytest.raises(ValueError, match="uint8"):
    ref.run_original("contrast", chelsea.astype(np.float32), 1)


def test_missing_frost_dir_is_clear(chelsea, tmp_path):
  with pytest.raises(FileNotFoundError, match="frost"), ref.Replay(randint=[0, 0, 0]):
    ref.run_original("frost", chelsea, 1, frost_dir=tmp_path)


# ---------------------------------------------------------------------------------------------
# Replay: exact values, exact counts.

def test_replay_gaussian_noise_equals_formula(chelsea):
  z = _rng().standard_normal((224, 224, 3))
  x = chelsea / 255.
  expected = np.uint8(np.clip(x + 0.18 * z, 0, 1) * 255)
  with ref.Replay(normal=z, standard=True) as r:
    out = ref.run_original("gaussian_noise", chelsea, 3)
  np.testing.assert_array_equal(out, expected)
  assert r.calls["normal"] == 1 and r.consumed["normal"] == N_PIX
  assert r.args["normal"] == [(0.0, 0.18, (224, 224, 3))]
  with ref.Replay(normal=0.18 * z):  # raw values: returned as they are
    np.testing.assert_array_equal(ref.run_original("gaussian_noise", chelsea, 3), expected)
  assert np.random.normal is not r.normal  # restored


def test_replay_shot_noise_poisson(chelsea):
  x = chelsea / 255.
  k = _rng().poisson(x * 12)
  with ref.Replay(poisson=k) as r:
    out = ref.run_original("shot_noise", chelsea, 3)
  np.testing.assert_array_equal(out, np.uint8(np.clip(k / 12., 0, 1) * 255))
  lam, shape = r.args["poisson"][0]
  assert shape == (224, 224, 3)
  np.testing.assert_array_equal(lam, x * 12)


def test_replay_impulse_noise_through_default_rng(chelsea):
  flipped_u, salted_u = _rng().random((2, 224, 224, 3))
  with ref.Replay(random=[flipped_u, salted_u]) as r:
    out = ref.run_original("impulse_noise", chelsea, 3)
  assert r.calls["default_rng"] == 1 and r.calls["random"] == 2
  flipped, salted = flipped_u <= 0.09, salted_u <= 0.5
  expected = chelsea / 255.
  expected[flipped & salted] = 1
  expected[flipped & ~salted] = 0
  np.testing.assert_array_equal(out, np.uint8(np.clip(expected, 0, 1) * 255))


def test_replay_fog_consumes_65535_uniforms(chelsea):
  u = _rng().random(65535)
  with ref.Replay(uniform=u, standard=True) as r:
    out = ref.run_original("fog", chelsea, 1)
  assert r.consumed["uniform"] == 65535 and r.calls["uniform"] == 24
  assert r.args["uniform"][0] == (-100, 100, (1, 1))  # wibbledmean: wibble * U(-wibble, wibble)
  assert r.args["uniform"][3] == (-50.0, 50.0, (2, 2))  # wibble /= wibbledecay (2 at severity 1)
  with ref.Replay(uniform=u, standard=True):
    np.testing.assert_array_equal(ref.run_original("fog", chelsea, 1), out)


def test_replay_glass_blur_98568_randint_calls(chelsea):
  d, iters = ref.glass_blur_iterations(1)
  offsets = _rng().integers(-d, d, size=(2, iters, 224, 224))  # values in [-d, d-1]
  queue = ref.glass_blur_queue(offsets[0], offsets[1], 1)
  assert queue.size == 2 * 98568 == 2 * ref.glass_blur_calls(1)
  with ref.Replay(randint=queue) as r:
    out = ref.run_original("glass_blur", chelsea, 1)
  assert r.calls["randint"] == 98568
  assert set(r.args["randint"]) == {(-1, 1, (2,))}
  with ref.Replay(randint=queue):
    np.testing.assert_array_equal(ref.run_original("glass_blur", chelsea, 1), out)
  assert [ref.glass_blur_calls(s) for s in range(1, 6)] == [98568, 48400, 145200, 95048, 93312]


def test_replay_glass_blur_copy_order_on_one_pixel(chelsea):
  # Severity 2 (d=2, one iteration): all offsets 0 except the FIRST call, at pixel (222, 222),
  # which copies pixel (221, 221) onto it (dx = dy = -1); offset-0 calls are no-ops.
  zeros = np.zeros((1, 224, 224), np.int64)
  dx, dy = zeros.copy(), zeros.copy()
  dx[0, 222, 222] = dy[0, 222, 222] = -1
  assert ref.glass_blur_queue(dx, dy, 2)[:4].tolist() == [-1, -1, 0, 0]
  with ref.Replay(randint=ref.glass_blur_queue(zeros, zeros, 2)):
    plain = ref.run_original("glass_blur", chelsea, 2)
  with ref.Replay(randint=ref.glass_blur_queue(dx, dy, 2)):
    moved = ref.run_original("glass_blur", chelsea, 2)
  changed = np.argwhere(np.any(plain != moved, axis=-1))
  assert changed.size and changed.min() >= 222 - 8 and changed.max() <= 223  # only near (222, 222)


def test_replay_frost_three_randints(chelsea):
  with ref.Replay(randint=[1, 50, 300]) as r:
    out = ref.run_original("frost", chelsea, 1, frost_dir=FROST_DIR)
  assert r.calls["randint"] == 3
  assert r.args["randint"] == [(0, 5, ()), (0, 315 - 224, ()), (0, 560 - 224, ())]  # frost2: 560x315
  tex = cv2.imread(str(FROST_DIR / "frost2.png"))[50:50 + 224, 300:300 + 224][..., [2, 1, 0]]
  np.testing.assert_array_equal(out, np.uint8(np.clip(1 * chelsea.astype(float) + 0.4 * tex, 0, 255)))


@pytest.mark.parametrize("name,severity,normal,uniform", [
    ("speckle_noise", 1, [N_PIX], []),
    ("motion_blur", 1, [], [1]),
    ("snow", 1, [224 * 224], [1]),
    ("spatter", 1, [224 * 224], []),
    ("spatter", 5, [224 * 224], []),
    ("elastic_transform", 3, [], [6, 224 * 224, 224 * 224]),
])
def test_replay_draw_counts(chelsea, name, severity, normal, uniform):
  rng = _rng(1)
  with ref.Replay(normal=[rng.standard_normal(n) for n in normal],
                  uniform=[rng.random(n) for n in uniform], standard=True) as r:
    ref.run_original(name, chelsea, severity)
  assert r.calls["normal"] == len(normal) and r.calls["uniform"] == len(uniform)
  if name == "motion_blur":
    assert r.args["uniform"] == [(-45, 45, ())]
  if name == "snow":
    assert r.args["normal"] == [(0.1, 0.3, (224, 224))] and r.args["uniform"] == [(-135, -45, ())]
  if name == "elastic_transform":
    assert [a[2] for a in r.args["uniform"]] == [(3, 2), (224, 224), (224, 224)]


@pytest.mark.parametrize("name", [n for n in ref.ORIGINAL_NAMES if n != "glass_blur"])
def test_expected_draws_table(chelsea, name):
  """Every severity consumes exactly what ``expected_draws`` says (glass_blur: tested above)."""
  rng = _rng(2)
  for severity in range(1, 6):
    shapes = ref.expected_draws(name, severity)
    queues = {
        "normal": [rng.standard_normal(s) for s in shapes.get("normal", [])],
        "uniform": [rng.random(s) for s in shapes.get("uniform", [])],
        "random": [rng.random(s) for s in shapes.get("random", [])],
        "poisson": [rng.poisson(5.0, s) for s in shapes.get("poisson", [])],
        "randint": [1, 20, 30] if name == "frost" else [],
    }
    with ref.Replay(**{k: v for k, v in queues.items() if v or k in shapes},
                    standard=True) as r:
      ref.run_original(name, chelsea, severity, frost_dir=FROST_DIR)
    for kind, expected in shapes.items():
      assert [a[-1] for a in r.args[kind]] == expected, (name, severity, kind)
    assert r.calls["default_rng"] == (name == "impulse_noise")
    if not shapes:
      assert not any(r.calls.values())


def test_replay_raises_on_under_over_and_unqueued_consumption(chelsea):
  with pytest.raises(ref.ReplayError, match=r"normal: 150528 of 150529 queued values consumed in 1"):
    with ref.Replay(normal=np.zeros(N_PIX + 1)):
      ref.run_original("gaussian_noise", chelsea, 1)
  with pytest.raises(ref.ReplayError, match=r"normal over-consumed.*150528.*only 10"):
    with ref.Replay(normal=np.zeros(10)):
      ref.run_original("gaussian_noise", chelsea, 1)
  with pytest.raises(ref.ReplayError, match="no values were queued"):
    with ref.Replay():
      ref.run_original("gaussian_noise", chelsea, 1)
  with pytest.raises(ref.ReplayError, match="uniform: 0 of 3"):
    with ref.Replay(normal=np.zeros(N_PIX), uniform=np.zeros(3)):
      ref.run_original("gaussian_noise", chelsea, 1)
  with pytest.raises(ref.ReplayError, match="outside"):  # randint(5) replayed with a 5
    with ref.Replay(randint=[5, 0, 0]):
      ref.run_original("frost", chelsea, 1, frost_dir=FROST_DIR)
  with ref.Replay(normal=np.zeros(N_PIX + 1), strict=False) as r:
    ref.run_original("gaussian_noise", chelsea, 1)
  assert r.consumed["normal"] == N_PIX
  assert np.random.normal(size=3).shape == (3,)  # the real RNG is back


def test_fidelity_and_assert_faithful():
  a = np.zeros((10, 10, 3), np.uint8)
  b = a.copy()
  b[0, 0, 0] = 3
  b[0, 1, 0] = 1
  f = ref.fidelity(a, b)
  assert f == dict(mad=4 / 300, frac_gt2=1 / 300, max=3.0)
  assert ref.assert_faithful(a, b) == f
  with pytest.raises(AssertionError, match=r"ctx: not faithful: mad=0.0133.*frac_gt2=0.00333.*max=3"):
    ref.assert_faithful(a, b, frac_gt2=0.001, context="ctx")


# ---------------------------------------------------------------------------------------------
# The benchmark script's pieces (the benchmark itself is not a timed test).

def test_bench_summary_and_skips(monkeypatch, capsys):
  from imagenet_cp import bench, corruptions

  assert bench.time_call(lambda: np.zeros(3), repeats=2) >= 0
  rows = [bench.Row("fog", "1", 16, 0.1, 2, 0.2, 1.0), bench.Row("fog", "2", 16, 0.1, 2, 0.2, 0.0),
          bench.Row("contrast", "1", 16, 1.0, 2, 0.1, 0.5)]
  text = bench.summarize(rows)
  assert "SUITE (3 cells)" in text and "SLOWER" in text  # contrast: 16 img/s vs 20 img/s
  suite = sum(rows, bench.Row("s", "all"))
  assert suite.ours_images == 48 and suite.ref_images == 6
  assert suite.ratio == pytest.approx((48 / 1.2) / (6 / 0.5))

  def not_yet(name):
    raise NotImplementedError(name)

  monkeypatch.setattr(corruptions, "get", not_yet)
  assert bench.bench_corruptions(["fog"], [1], batch=2, repeats=1, ref_images=1) == []
  assert "fog                skipped: not implemented yet" in capsys.readouterr().out
