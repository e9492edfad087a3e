"""metrics.evaluate / python -m metrics.run: planted results, resume, user models, errors."""
import json
import pathlib
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from imagenet_cp import metrics
import planted_model as pm
from imagenet_cp.suites import corruption as ev

REPO = pathlib.Path(__file__).resolve().parents[1]
SEQUENCES = ("translate", "gaussian_noise")


@pytest.fixture(scope="module")
def planted():
  """Plan: clean all right; contrast/1 image 0 wrong; brightness/2 both wrong; translate video 0
  swaps top-2 outside frames 10..24 (2 flips, distance 4 of 40 pairs); gaussian_noise video 0
  swaps at frames 5 and 6 (2 flips vs frame 0, distance 4 of 30 pairs); all else constant."""
  examples, resized, crops = pm.demo_inputs(2)
  names = [e.file_name for e in examples]
  labels = [e.label for e in examples]
  plan = pm.Plan()
  plan.plant(crops, [pm.logits_for(l, False) for l in labels])
  wrong = {("contrast", 1): [True, False], ("brightness", 2): [True, True]}
  for (name, sev), flags in wrong.items():
    plan.plant(pm.corrupted(crops, names, name, sev),
               [pm.logits_for(l, f) for l, f in zip(labels, flags)])
  swaps = {"translate": lambda t: t < 10 or t > 24, "gaussian_noise": lambda t: t in (5, 6)}
  for name, swapped in swaps.items():
    for v, (image, file_name, label) in enumerate(zip(resized, names, labels)):
      seq = np.asarray(pm.frames(image, file_name, name, 1))
      plan.plant(seq, [pm.logits_for(label, v == 0 and swapped(t)) for t in range(len(seq))])
  return plan


def test_planted_figures_come_back_exactly(planted):
  plan = planted
  results = ev.evaluate(pm.apply_fn, plan.variables(), source="demo", max_images=2,
                        corruptions=(), perturbations=SEQUENCES, batch_size=4, bootstrap=0,
                        progress=False)
  assert results["clean"] == {"error": 0.0, "examples": 2}
  tr = results["perturbations"]["translate"]["1"]
  assert (tr["flip_probability"], tr["ut5d"], tr["pairs"], tr["videos"]) == (2 / 80, 4 / 80, 80, 2)
  gn = results["perturbations"]["gaussian_noise"]["1"]
  assert (gn["flip_probability"], gn["ut5d"], gn["pairs"]) == (2 / 60, 4 / 60, 60)
  for (name, sev), errors in (((("contrast", 1)), 0.5), (("brightness", 2), 1.0)):
    one = ev.evaluate(pm.apply_fn, plan.variables(), source="demo", max_images=2,
                      corruptions=(name,), severities=(sev,), perturbations=(), batch_size=4,
                      bootstrap=0, progress=False)
    assert one["corruptions"][name]["severities"][str(sev)] == {"error": errors, "examples": 2}


def test_unplanted_image_is_a_clear_error(planted):
  # brightness at severity 1 was never planted: the stub returns NaN, which must not pass silently.
  with pytest.raises(ValueError, match="NaN logits"):
    ev.evaluate(pm.apply_fn, planted.variables(), source="demo", max_images=2,
                corruptions=("brightness",), severities=(1,), perturbations=(), batch_size=4,
                bootstrap=0, progress=False)


def test_translate_difficulty_2_uses_39_pairs(planted):
  results = ev.evaluate(pm.apply_fn, planted.variables(), source="demo", max_images=2,
                        corruptions=(), perturbations=("translate",), difficulty=2, batch_size=4,
                        bootstrap=0, progress=False)
  tr = results["perturbations"]["translate"]["2"]
  # Stride-2 walks: video 0 flips where a walk crosses 9->10..., i.e. pairs (8,10),(9,11),(23,25),(24,26).
  assert tr["pairs"] == 78
  assert tr["flip_probability"] == 4 / 78 and tr["ut5d"] == 8 / 78


def test_resume_after_interruption_gives_identical_results(planted, tmp_path):
  plan = planted
  kwargs = dict(corruptions=("contrast",), severities=(1,), perturbations=("translate",),
                batch_size=4, bootstrap=20, progress=False, source="demo", max_images=2)
  full = ev.evaluate(pm.apply_fn, plan.variables(), **kwargs)

  original = ev.run_task

  def interrupted(task, *args, **kw):
    if task.kind == "perturbation":
      raise KeyboardInterrupt
    return original(task, *args, **kw)

  ev.run_task = interrupted
  try:
    with pytest.raises(KeyboardInterrupt):
      ev.evaluate(pm.apply_fn, plan.variables(), output_dir=tmp_path, **kwargs)
  finally:
    ev.run_task = original
  saved = json.loads((tmp_path / "results.json").read_text())
  assert saved["run"]["tasks_done"] == 2 and "translate" not in saved["perturbations"]
  done = []
  ev.run_task = lambda task, *a, **k: (done.append(task.id), original(task, *a, **k))[1]
  try:
    resumed = ev.evaluate(pm.apply_fn, plan.variables(), output_dir=tmp_path, **kwargs)
  finally:
    ev.run_task = original
  assert done == ["perturbation/translate/1"]
  for key in ("clean", "corruptions", "perturbations", "confidence_intervals"):
    assert resumed[key] == full[key]


def test_changed_run_in_same_output_dir_is_refused(planted, tmp_path):
  kwargs = dict(corruptions=(), perturbations=(), batch_size=4, bootstrap=0, progress=False,
                source="demo", max_images=2)
  first = ev.evaluate(pm.apply_fn, planted.variables(), output_dir=tmp_path, **kwargs)
  with pytest.raises(ValueError, match="differs in: seed: seed was 0, now 1"):
    ev.evaluate(pm.apply_fn, planted.variables(), output_dir=tmp_path, seed=1, **kwargs)
  # A damaged task file is recomputed, and the log says so.
  (tmp_path / "tasks" / "clean.npz").write_bytes(b"PK\x03\x04 truncated")
  lines = []
  again = ev.evaluate(pm.apply_fn, planted.variables(), output_dir=tmp_path, log=lines.append,
                      **kwargs)
  assert any("clean.npz: unreadable" in line and "recomputing clean" in line for line in lines)
  assert again["clean"] == first["clean"]
  (tmp_path / "run.json").write_text("{not json")
  with pytest.raises(ValueError, match="run.json is corrupt"):
    ev.evaluate(pm.apply_fn, planted.variables(), output_dir=tmp_path, **kwargs)


class TinyNet(nn.Module):
  @nn.compact
  def __call__(self, x):
    x = nn.Conv(8, (3, 3), strides=(4, 4), padding=((1, 1), (1, 1)))(x)
    x = jnp.mean(nn.relu(x), axis=(1, 2))
    return nn.Dense(1000)(x)


def test_evaluate_a_user_defined_flax_model():
  model = TinyNet()
  variables = model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
  results = metrics.evaluate(model.apply, variables, source="demo", max_images=3,
                        corruptions=("contrast",), severities=(1, 2, 3, 4, 5),
                        perturbations=("brightness",), batch_size=2, bootstrap=30, progress=False)
  assert results["clean"]["examples"] == 3
  contrast = results["corruptions"]["contrast"]
  assert contrast["examples"] == 15 and contrast["ce"] is not None
  assert results["perturbations"]["brightness"]["1"]["videos"] == 3
  assert results["run"]["demo"] and "DEMO" in results["run"]["warning"]
  assert "ce/contrast" in results["confidence_intervals"]


def _run_cli(*args, cwd):
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=900, env={**__import__("os").environ,
                                                     "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def test_cli_explains_missing_imagenet_and_weights(tmp_path):
  proc = _run_cli("--model=resnext101", cwd=tmp_path)
  assert proc.returncode == 2
  assert "resnext101_32x8d" in proc.stderr and "ILSVRC2012_img_val.tar" in proc.stderr
  assert "--checkpoint" in proc.stderr and "download.pytorch.org" in proc.stderr
  proc = _run_cli("--model=no_such_net", cwd=tmp_path)
  assert proc.returncode == 2 and "unknown model 'no_such_net'" in proc.stderr
  proc = _run_cli("--model=alexnet", f"--imagenet_dir={tmp_path}", cwd=tmp_path)
  assert proc.returncode == 2 and "no ImageNet validation data" in proc.stderr


def test_cli_demo_writes_every_output(tmp_path):
  # One model: its files in OUTPUT_DIR itself (with no --model the demo compares three:
  # tests/test_demo.py).  The demo's suites (corruption and adversarial), one attack of the
  # adversarial suite (the others: tests/test_adversarial_suite.py).
  proc = _run_cli("--model=efficientnet_lite0", "--corruptions=contrast", "--severities=1,5",
                  "--perturbations=translate", "--attacks=pgd_linf", "--max_images=2",
                  "--bootstrap=20", "--batch_size=4", "--noprogress",
                  f"--output_dir={tmp_path / 'out'}", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = tmp_path / "out"
  for name in ("results.json", "results.csv", "report.md", "error_vs_severity.png",
               "flip_probability.png", "accuracy_vs_budget.png", "transfer_matrix.png"):
    assert (out / name).is_file(), name
  results = json.loads((out / "results.json").read_text())
  assert results["run"]["model"] == "efficientnet_lite0" and results["run"]["release_jpeg"] is True
  assert list(results["adversarial"]["attacks"]) == ["pgd_linf"]
  assert "DEMO" in (out / "report.md").read_text()
  assert "DEMO" in proc.stdout
