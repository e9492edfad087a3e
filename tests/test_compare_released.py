"""``metrics.compare_released``: one model on released CIFAR-10-C stand-ins and on our
regeneration of the same images; the figures against the model's errors computed here."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import cifar_standin
import released_standin as rs
from imagenet_cp import cifar
from imagenet_cp.suites import compare_released

REPO = pathlib.Path(__file__).resolve().parents[1]
N = 24
KW = dict(benchmark="cifar10", corruptions=("gaussian_noise", "contrast"), severities=(2, 5),
          batch_size=8, bootstrap=200, progress=False, log=lambda line: None)


@pytest.fixture(scope="module")
def cifar_data(tmp_path_factory):
  root = tmp_path_factory.mktemp("compare")
  _, images, labels = cifar_standin.make_archive(root / "cifar", cifar.CIFAR10, n=N)
  # seed 0 = the run's own keys (identical images); seed 1 stands for the unseeded original.
  rs.write_cifar(root / "same", images, labels, KW["corruptions"], seed=0)
  rs.write_cifar(root / "other", images, labels, KW["corruptions"], seed=1)
  return root, images, labels


def _errors(apply_fn, variables, pixels, labels) -> np.ndarray:
  logits = apply_fn(variables, np.asarray(pixels, np.float32) / 255)
  return np.asarray(np.argmax(logits, -1)) != labels


def test_same_pixels_differ_by_nothing(cifar_data, tmp_path):
  root, _, _ = cifar_data
  apply_fn, variables = rs.cifar_classifier()
  cells = compare_released.compare(apply_fn, variables, released_dir=root / "same",
                                   cifar_dir=root / "cifar", output_dir=tmp_path, **KW)
  assert [(c.corruption, c.severity) for c in cells] == [
      ("gaussian_noise", 2), ("gaussian_noise", 5), ("contrast", 2), ("contrast", 5)]
  for c in cells:
    assert c.images == N and c.released_error == c.regenerated_error
    assert c.difference == 0.0 and c.interval == (0.0, 0.0)
  assert json.loads((tmp_path / "compare_released.json").read_text())["cells"][0]["images"] == N
  assert "| gaussian_noise | 2 | 24 |" in (tmp_path / "compare_released.md").read_text()


def test_other_draws_are_compared_image_by_image(cifar_data, tmp_path):
  root, images, labels = cifar_data
  apply_fn, variables = rs.cifar_classifier()
  cells = compare_released.compare(apply_fn, variables, released_dir=root / "other",
                                   cifar_dir=root / "cifar", output_dir=tmp_path, **KW)
  released = np.load(root / "other" / "CIFAR-10-C" / "gaussian_noise.npy")
  regenerated = np.load(root / "same" / "CIFAR-10-C" / "gaussian_noise.npy")
  differences = []
  for c in cells[:2]:
    rows = slice((c.severity - 1) * N, c.severity * N)
    wrong_rel = _errors(apply_fn, variables, released[rows], labels)
    wrong_gen = _errors(apply_fn, variables, regenerated[rows], labels)
    # Exact: both are means of the same N booleans.
    assert c.released_error == pytest.approx(wrong_rel.mean(), abs=1e-12)
    assert c.regenerated_error == pytest.approx(wrong_gen.mean(), abs=1e-12)
    assert c.difference == pytest.approx(wrong_rel.mean() - wrong_gen.mean(), abs=1e-12)
    lo, hi = c.interval
    # A resample's mean difference lies between the smallest and largest per-image difference.
    per_image = wrong_rel.astype(int) - wrong_gen.astype(int)
    assert per_image.min() <= lo <= hi <= per_image.max()
    differences.append(per_image)
  # The seed-1 noise moves some predictions (else this test would not test the pairing).
  assert any(d.any() for d in differences)


def _cli(*args, cwd):
  return subprocess.run([sys.executable, "-m", "metrics.compare_released", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=600,
                        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def test_cli(cifar_data, tmp_path):
  root, _, _ = cifar_data
  args = ("--benchmark=cifar10", "--model=released_standin:cifar_classifier",
          "--corruptions=contrast", "--severities=1", "--bootstrap=50", "--noprogress",
          f"--output_dir={tmp_path / 'out'}")
  proc = _cli(*args, f"--released_dir={root / 'same'}", f"--cifar_dir={root / 'cifar'}",
              cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert "| contrast | 1 |" in proc.stdout
  assert (tmp_path / "out" / "compare_released.json").is_file()
  bad = _cli(*args, f"--released_dir={root / 'same'}", cwd=tmp_path)
  assert bad.returncode == 2 and "error:" in bad.stderr and "cifar_dir" in bad.stderr
