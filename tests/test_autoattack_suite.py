"""The AutoAttack suite (suites.autoattack, `python -m metrics.run --suite=autoattack`) on the
demo photos with a pooled linear model (tests/adversarial_models.py), 4 fake CPU devices
(conftest), cheap attack settings; and APGD's random start (the authors' formula)."""
from __future__ import annotations

import importlib
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import adversarial_models
import imagenet_cp
from imagenet_cp import attacks
from imagenet_cp.attacks import core as attack_core
from imagenet_cp.suites import autoattack as suite
from imagenet_cp.suites.common import Model
from imagenet_cp.suites.report import autoattack as report

REPO = pathlib.Path(__file__).resolve().parents[1]
# The module (the attacks package exports a function of the same name).
apgd = importlib.import_module("imagenet_cp.attacks.apgd")
CHEAP = (("n_iter", 3), ("fab_steps", 3), ("square_queries", 8), ("n_target_classes", 2))
# The photos lie 0.4-0.5 /255 (Linf) from this model's boundary: some are broken, some not.
EPS = 0.42


@pytest.fixture(scope="module")
def model():
  return Model("pooled", *adversarial_models.demo_classifier())


def _config(**changes):
  base = dict(source="demo", max_images=4, batch_size=4, eps=EPS, settings=CHEAP)
  return suite.SuiteConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def full(model, tmp_path_factory):
  out = tmp_path_factory.mktemp("full")
  return out, suite.run(_config(), model, out, log=lambda _: None)


def test_sharded_suite_equals_the_library_on_one_device(model, full):
  _, results = full
  assert jax.device_count() == 4 and results["images"] == 4
  examples = suite.source_examples("demo", max_images=4)
  keys = imagenet_cp.example_keys(0, "autoattack", 0, examples.file_names)
  alone = attacks.autoattack(model.apply_fn, model.variables, examples.images, examples.labels,
                             eps=EPS, key=keys, **dict(CHEAP))
  # Robust or not agrees exactly; which attack broke an example may differ where the sharded
  # and the single-device programs round a point on its boundary differently (example 3 here).
  ours = np.array([o == "robust" for o in results["example_outcomes"]])
  np.testing.assert_array_equal(ours, alone.robust)
  assert results["robust_accuracy"] == alone.robust_accuracy
  # Not a trivial case: something robust, something broken by an attack.
  assert 0 < results["robust_images"] < 4 and sum(results["broken_by"].values()) > 0
  assert results["clean_accuracy"] == 1.0 and results["example_ids"] == examples.file_names


def test_killed_run_resumes_identically(model, full, tmp_path, monkeypatch):
  _, results = full
  original, seen = suite.aa.autoattack, []

  def killed_after_two_attacks(*args, on_attack, resume, **kwargs):
    def save_then_die(state):
      on_attack(state)
      if len(state.done) == 2:
        raise KeyboardInterrupt
    seen.append(resume)
    return original(*args, on_attack=save_then_die, resume=resume, **kwargs)

  monkeypatch.setattr(suite.aa, "autoattack", killed_after_two_attacks)
  with pytest.raises(KeyboardInterrupt):
    suite.run(_config(), model, tmp_path, log=lambda _: None)
  seen.clear()
  monkeypatch.setattr(suite.aa, "autoattack",
                      lambda *a, resume, **k: seen.append(resume) or original(*a, resume=resume,
                                                                                 **k))
  resumed = suite.run(_config(), model, tmp_path, log=lambda _: None)
  # The shard resumed after its first two attacks (they did not run again).
  assert len(seen) == 1 and seen[0].done == ("apgd-ce", "apgd-t")
  for key in ("example_outcomes", "robust_accuracy", "accuracy_after", "broken_by",
              "median_distance_of_broken"):
    assert json.dumps(resumed[key]) == json.dumps(results[key]), key
  saved = json.loads((tmp_path / "autoattack" / "results.json").read_text())
  assert saved["example_outcomes"] == results["example_outcomes"]


def test_resume_with_other_settings_is_refused(model, full):
  out, _ = full
  for change, field in ((dict(eps=2.0), "eps"), (dict(norm="l2"), "norm"),
                        (dict(seed=1), "seed"),
                        (dict(version="custom", attacks=("apgd-ce",)), "attacks")):
    with pytest.raises(ValueError, match=f"different run.*{field}"):
      suite.run(_config(**change), model, out, log=lambda _: None)


def test_report_section_and_csv(full):
  _, results = full
  lines = report.section({"autoattack": results})
  assert lines[0] == "## AutoAttack"
  assert any(line.startswith("| apgd-ce | ") for line in lines)
  assert any(line.startswith("| square | ") for line in lines)
  rows = report.csv_rows({"autoattack": results})
  robust = [r for r in rows if r["metric"] == "robust_accuracy"]
  assert robust[0]["value"] == results["robust_accuracy"] and robust[0]["n"] == 4
  assert report.section({}) == [] and "autoattack" in suite_names()


def suite_names():
  from imagenet_cp import suites  # pylint: disable=g-import-not-at-top
  return suites.NAMES


def test_bad_settings_are_rejected():
  for config, match in ((_config(norm="l3"), "norm"), (_config(eps=-1.0), "eps"),
                        (_config(version="fast"), "version"),
                        (_config(version="custom", attacks=("pgd",)), "attacks must be"),
                        (_config(settings=(("steps", 3),)), "unknown AutoAttack settings")):
    with pytest.raises(ValueError, match=match):
      suite.check(config)
  assert _config(eps=None, norm="l2").budget == 127.5 and _config(eps=None).budget == 4.0


def test_cli_bad_flag_is_a_usage_error(tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "metrics.run", "--suite=autoattack", "--source=demo", "--norm=l3",
       "--model=adversarial_models:demo_classifier", f"--output_dir={tmp_path / 'out'}"],
      cwd=tmp_path, capture_output=True, text=True, timeout=120,
      env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith("error: --suite=autoattack: ")
  assert "norm" in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_apgd_start_is_the_authors(norm):
  """x + eps t / ||t||: on the sphere of radius eps (Linf: one coordinate at +-eps), boxed."""
  images = jnp.full((3, 6, 6, 3), 0.5, jnp.float32)
  eps = jnp.array([0.01, 0.02, 0.05], jnp.float32)
  keys = jax.random.split(jax.random.key(0), 3)
  start = apgd.random_start(keys, images, eps, norm)
  size = np.asarray(attack_core.flat_norm(start - images, norm))
  np.testing.assert_allclose(size, eps, rtol=1e-5)
  # The box clips: images at 1 only move down.
  top = apgd.random_start(keys, jnp.ones_like(images), eps, norm)
  assert float(top.max()) == 1.0 and float(top.min()) < 1.0
