"""CIFAR-10/100-C and -P on the fly (``benchmark="cifar10"``): the stand-in test set through
``python -m metrics.run`` with a RobustBench model, figures against the saved records, the
pixels the model saw (no JPEG stage) and the refusals."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cifar_standin
import imagenet_cp
import task_records
from imagenet_cp import cifar, models
from imagenet_cp.suites import corruption as ev
from torchvision_parity import flax_state_shapes

REPO = pathlib.Path(__file__).resolve().parents[1]
CORRUPTIONS = ("gaussian_noise", "fog")
SEVERITIES = (1, 3)
N = 6


def _run_cli(*args, cwd):
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=900, env={**os.environ,
                                                     "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def _random_checkpoint(name, path, seed=0):
  """A RobustBench-layout state dict (DataParallel ``module.`` keys, as Standard's file) with
  random He-scaled weights and unit BatchNorm statistics."""
  torch = pytest.importorskip("torch")
  gen = torch.Generator().manual_seed(seed)
  state = {}
  for key, shape in flax_state_shapes(models.build(name), 32).items():
    if key.endswith(("running_var",)) or (key.endswith("weight") and len(shape) == 1):
      value = torch.ones(shape)
    elif key.endswith(("running_mean", "bias")):
      value = torch.randn(shape, generator=gen) * 0.1
    else:
      value = torch.randn(shape, generator=gen) * (2.0 / np.prod(shape[1:])) ** 0.5
    state["module." + key] = value
  torch.save(state, path)
  return path


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("cifar")
  _, images, labels = cifar_standin.make_archive(folder, cifar.CIFAR10, n=N)
  return folder, images, labels


def _records(output_dir):
  return task_records.read(output_dir)


def test_cli_cifar10_standard_figures_equal_the_records(cifar10_dir, tmp_path):
  folder, _, labels = cifar10_dir
  checkpoint = _random_checkpoint("cifar10/Standard", tmp_path / "Standard.pt")
  out = tmp_path / "out"
  proc = _run_cli("--benchmark=cifar10", f"--cifar_dir={folder}", "--model=cifar10/Standard",
                  f"--checkpoint={checkpoint}", f"--corruptions={','.join(CORRUPTIONS)}",
                  f"--severities={','.join(map(str, SEVERITIES))}", "--perturbations=brightness",
                  "--batch_size=6", "--bootstrap=0", "--noprogress", f"--output_dir={out}",
                  cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  results = json.loads((out / "results.json").read_text())
  records = _records(out)
  assert list(records["clean"]["ids"]) == [cifar.file_name(i) for i in range(N)]
  assert results["run"]["benchmark"] == "cifar10" and results["run"]["release_jpeg"] is False
  assert results["run"]["source"] == "cifar10" and results["run"]["images"] == N
  assert results["clean"]["error"] == pytest.approx(np.mean(records["clean"]["predictions"] != labels))
  for name in CORRUPTIONS:
    cells = results["corruptions"][name]
    errors = [np.mean(records[f"corruption__{name}__{s}"]["predictions"] != labels)
              for s in SEVERITIES]
    for s, error in zip(SEVERITIES, errors):
      assert cells["severities"][str(s)] == {"error": pytest.approx(error), "examples": N}
    assert cells["mean_error"] == pytest.approx(np.mean(errors))
    assert cells.get("ce") is None  # unnormalised: no CE without a measured baseline
  # The summary needs all 15 x 5 cells; FR only with a baseline; FP as cifar-p-eval.py prints it.
  assert results["mean_error"] is None and results["mean_accuracy"] is None
  assert "15 benchmark corruptions" in results["mean_error_unavailable"]
  video = records["perturbation__brightness__1"]
  fp = results["perturbations"]["brightness"]["1"]
  assert fp["flip_probability"] == pytest.approx(
      video["flips"].sum() / (N * int(video["pairs_per_video"])))
  assert fp["fr"] is None and int(video["frames"]) == 31
  assert results["mean_flip_probability"] == {"1": None}
  assert "none (cifar10" in results["baseline"]["name"]


def _digest_model(variables, images):
  """Predicts (sum of the 0..255 pixels) mod 10: the prediction fingerprints the exact input."""
  del variables
  pixels = jnp.round(images * 255.0).astype(jnp.int32)
  return jax.nn.one_hot(jnp.sum(pixels, axis=(1, 2, 3)) % 10, 10) * 10.0


def _fingerprint(images):
  return np.asarray(images, np.int64).sum(axis=(1, 2, 3)) % 10


def test_the_model_sees_corrupt_output_without_jpeg(cifar10_dir, tmp_path):
  folder, images, labels = cifar10_dir
  out = tmp_path / "out"
  results = ev.evaluate(_digest_model, {}, benchmark="cifar10", cifar_dir=folder,
                        corruptions=("gaussian_noise",), severities=(2,), perturbations=(),
                        batch_size=4, bootstrap=0, progress=False, output_dir=out, log=lambda m: None)
  names = [cifar.file_name(i) for i in range(N)]
  keys = imagenet_cp.example_keys(0, "gaussian_noise", 2, names)
  corrupted = imagenet_cp.corrupt(images, "gaussian_noise", 2, keys)
  stored = _records(out)["corruption__gaussian_noise__2"]["predictions"]
  np.testing.assert_array_equal(stored, _fingerprint(corrupted))
  assert not np.array_equal(stored, _fingerprint(imagenet_cp.release_jpeg(corrupted)))
  np.testing.assert_array_equal(_records(out)["clean"]["predictions"], _fingerprint(images))
  assert results["run"]["release_jpeg"] is False
  # The same pixels as arrays (ids from the digest: other keys) run through the same path.
  arrays = ev.evaluate(_digest_model, {}, images=images, labels=labels, benchmark="cifar10",
                       source_id="mine", corruptions=("gaussian_noise",), severities=(2,),
                       perturbations=("translate",), bootstrap=0, progress=False,
                       output_dir=tmp_path / "arrays", log=lambda m: None)
  keys = imagenet_cp.example_keys(0, "gaussian_noise", 2, [f"mine/{i}" for i in range(N)])
  error = np.mean(_fingerprint(imagenet_cp.corrupt(images, "gaussian_noise", 2, keys)) != labels)
  assert arrays["corruptions"]["gaussian_noise"]["severities"]["2"]["error"] == pytest.approx(error)
  assert arrays["perturbations"]["translate"]["1"]["frames"] == 16
  # Resuming that folder as CIFAR-100 is refused (the benchmark is part of the run).
  with pytest.raises(ValueError, match=r"differs in: benchmark: benchmark was \"cifar10\""):
    ev.evaluate(_digest_model, {}, images=images, labels=labels, benchmark="cifar100",
                source_id="mine", corruptions=("gaussian_noise",), severities=(2,),
                perturbations=("translate",), bootstrap=0, progress=False,
                output_dir=tmp_path / "arrays")


def test_complete_summary_is_the_mean_over_15_by_5():
  from imagenet_cp.metrics.scores import unnormalized_means
  rng = np.random.default_rng(0)
  cells = {n: rng.uniform(size=5) for n in imagenet_cp.BENCHMARK_CORRUPTIONS}
  summary = {"corruptions": {n: {"unnormalized_ce": float(np.mean(e))} for n, e in cells.items()},
             "perturbations": {n: {"1": {"flip_probability": 0.01 * i}}
                               for i, n in enumerate(imagenet_cp.TEST_PERTURBATIONS)}}
  got = unnormalized_means(summary)
  assert got["mean_error"] == pytest.approx(np.mean(list(cells.values())))
  assert got["mean_accuracy"] == pytest.approx(1 - got["mean_error"])
  assert got["mean_flip_probability"] == {"1": pytest.approx(0.045)}


@pytest.mark.parametrize("kwargs,message", [
    (dict(release_jpeg=True), "no JPEG stage"),
    (dict(images=np.zeros((2, 224, 224, 3), np.uint8), labels=[0, 1]), "32x32 CIFAR images"),
    (dict(cifar_dir="/nonexistent"), "cifar-10-python.tar.gz .*not in /nonexistent"),
    (dict(imagenet_dir="/x"), "imagenet_dir= with benchmark"),
])
def test_bad_cifar_usage_is_refused_before_tracing(kwargs, message, cifar10_dir):
  kwargs.setdefault("cifar_dir", None if "images" in kwargs else str(cifar10_dir[0]))
  with pytest.raises(ValueError, match=message):
    ev.evaluate(lambda v, x: 1 / 0, {}, benchmark="cifar10", progress=False, **kwargs)


def test_cli_refuses_models_of_another_dataset(cifar10_dir, tmp_path):
  folder = cifar10_dir[0]
  proc = _run_cli("--benchmark=cifar10", f"--cifar_dir={folder}", "--model=resnet50",
                  cwd=tmp_path)
  assert proc.returncode == 2 and "error: --model=resnet50 classifies imagenet" in proc.stderr
  proc = _run_cli("--model=cifar10/Standard", cwd=tmp_path)
  assert proc.returncode == 2 and "--benchmark=cifar10 --cifar_dir" in proc.stderr
  proc = _run_cli("--benchmark=cifar10", f"--cifar_dir={folder}", "--model=cifar10/Standard",
                  "--release_jpeg", cwd=tmp_path)
  assert proc.returncode == 2 and "no JPEG stage" in proc.stderr
