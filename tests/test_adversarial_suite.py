"""The adversarial suite (suites.adversarial, `python -m metrics.run --suite=adversarial`).

Closed form: an affine classifier on 4x4 images (tests/attack_models.linear_problem), whose
minimal L2 / Linf distances to misclassification are exact.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import attack_models
from imagenet_cp.suites import adversarial

REPO = pathlib.Path(__file__).resolve().parents[1]
# Search: 8 doublings from 1/255, 12 bisections -> bracket <= 128 / 4096 /255 at the largest.
SEARCH = adversarial.Config(steps=20, initial_eps=1.0, doubling_steps=8, bisection_steps=12,
                            deepfool_steps=20, iterations_eps=(("linf", 4.0), ("l2", 16.0)),
                            transfer_eps=4.0)
BUDGETS = {"linf": (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0), "l2": (0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 32.0)}


@pytest.fixture(scope="module")
def problem():
  return attack_models.linear_problem(n=6, side=4, classes=2, seed=2)


def _evaluate(problem, **kwargs):
  kwargs = {"attack_names": ("bim_linf", "bim_l2", "deepfool_l2"), "budgets": BUDGETS,
            "config": SEARCH, "batch_size": 4, "log": lambda _: None, **kwargs}
  return adversarial.evaluate_adversarial(
      attack_models.linear_apply, problem.variables, images=problem.images,
      labels=problem.labels, file_names=[f"x{i}" for i in range(len(problem.labels))], **kwargs)


@pytest.fixture(scope="module")
def results(problem):
  return _evaluate(problem)


def test_minimal_distortion_matches_closed_form(problem, results):
  assert results["attacked_examples"] == 6 and results["clean_accuracy"] == 1.0
  assert results["example_ids"] == [f"x{i}" for i in range(6)]
  for name, exact in (("bim_linf", problem.linf), ("bim_l2", problem.l2)):
    minimal = np.array(results["attacks"][name]["minimal"], np.float64)
    # The search returns the smallest successful budget: never below the exact distance,
    # above it by at most the final bracket.
    assert np.all(minimal >= exact - 1e-3), (name, minimal, exact)
    assert np.all(minimal - exact <= 128 / 4096 + 1e-3), (name, minimal - exact)
  deepfool = np.array(results["attacks"]["deepfool_l2"]["minimal"], np.float64)
  assert np.all(deepfool >= problem.l2 - 1e-3)
  assert np.all(deepfool <= 1.02 * problem.l2 + 1e-2)


def test_curves_monotone_and_exact(problem, results):
  for name, exact in (("bim_linf", problem.linf), ("bim_l2", problem.l2)):
    a = results["attacks"][name]
    accuracy = np.array(a["accuracy_vs_budget"])
    assert np.all(np.diff(accuracy) <= 0) and accuracy[0] == 1.0
    budgets = np.array(a["budgets"])
    far = np.min(np.abs(exact[None, :] - budgets[:, None]), axis=1) > 0.05
    expected = (exact[None, :] > budgets[:, None]).mean(axis=1)
    np.testing.assert_array_equal(accuracy[far], expected[far])
    assert far.sum() >= 4
    assert 0.0 <= a["auc"] <= 1.0
    iterations = np.array(a["accuracy_vs_iterations"])
    assert iterations.shape == (21,) and np.all(np.diff(iterations) <= 0) and iterations[0] == 1.0
  linf = results["attacks"]["bim_linf"]["distortion"]
  assert linf["success_rate"] == 1.0 and linf["count"] == 6
  np.testing.assert_allclose(linf["linf_mean"], np.mean(results["attacks"]["bim_linf"]["minimal"]),
                             rtol=1e-3)


def test_transfer_matrix_of_a_model_with_itself_is_its_whitebox_success(problem):
  eps = float(np.median(problem.linf))
  config = dataclasses.replace(SEARCH, transfer_eps=eps)
  apply_fn, variables = attack_models.linear_apply, problem.variables
  out = _evaluate(problem, attack_names=("fgsm_linf",), config=config,
                  transfer_models=[("a", apply_fn, variables), ("b", apply_fn, variables)],
                  model_name="a")["transfer"]
  matrix = np.array(out["matrix"])
  whitebox = np.array(out["whitebox_success"])
  # Linf PGD on an affine model succeeds exactly where eps exceeds the exact distance.
  expected = float((problem.linf < eps).mean())
  assert 0 < expected < 1
  np.testing.assert_allclose(whitebox, expected)
  np.testing.assert_allclose(matrix, expected)
  assert out["models"] == ["a", "b"] and out["examples"] == 6


def test_resume_after_interruption_is_identical(problem, results, tmp_path, monkeypatch):
  original = adversarial.attack_records
  calls = []

  def interrupted(name, *args, **kwargs):
    if name == "deepfool_l2":
      raise KeyboardInterrupt
    calls.append(name)
    return original(name, *args, **kwargs)

  monkeypatch.setattr(adversarial, "attack_records", interrupted)
  with pytest.raises(KeyboardInterrupt):
    _evaluate(problem, output_dir=tmp_path)
  assert calls == ["bim_linf", "bim_l2"]
  assert len(list((tmp_path / "adversarial" / "tasks").glob("*.npz"))) == 2
  calls.clear()
  monkeypatch.setattr(adversarial, "attack_records",
                      lambda name, *a, **k: calls.append(name) or original(name, *a, **k))
  resumed = _evaluate(problem, output_dir=tmp_path)
  assert calls == ["deepfool_l2"]
  for key in ("attacks", "transfer", "example_ids", "clean_accuracy"):
    assert json.dumps(resumed[key], sort_keys=True) == json.dumps(results[key], sort_keys=True), key
  saved = json.loads((tmp_path / "adversarial" / "results.json").read_text())
  assert saved["attacks"]["bim_l2"]["minimal"] == resumed["attacks"]["bim_l2"]["minimal"]


def test_bad_input_is_rejected(problem):
  with pytest.raises(ValueError, match="unknown or no attack"):
    _evaluate(problem, attack_names=("nope",))
  with pytest.raises(ValueError, match="increasing"):
    _evaluate(problem, budgets={"linf": (4.0, 1.0)})
  with pytest.raises(ValueError, match="transfer_target"):
    _evaluate(problem, config=adversarial.Config(transfer_target="sideways"))
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    adversarial.evaluate_adversarial(attack_models.linear_apply, problem.variables,
                                     images=problem.images * 9, labels=problem.labels)


def test_cli_adversarial_suite_on_the_demo(tmp_path):
  out = tmp_path / "out"
  proc = subprocess.run(
      [sys.executable, "-m", "metrics.run", "--suite=adversarial", "--source=demo",
       "--model=adversarial_models:demo_classifier", "--attacks=pgd_linf,deepfool_l2,nes_linf,nattack_linf",
       "--attack_steps=3", "--search_steps=5", "--bisection_steps=2", "--budgets_linf=0,0.5,1,2",
       "--blackbox_steps=2", "--query_grid=1,5,10,19", "--nattack_population=3",
       "--transfer_models=adversarial_models:demo_classifier,"
       "adversarial_models:demo_classifier_sharp",
       "--batch_size=4", "--noprogress", f"--output_dir={out}"],
      cwd=tmp_path, capture_output=True, text=True, timeout=300,
      env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  for name in ("results.json", "report.md", "accuracy_vs_budget.png",
               "accuracy_vs_iterations.png", "accuracy_vs_queries.png", "transfer_matrix.png"):
    assert (out / name).is_file(), name
  adv = json.loads((out / "results.json").read_text())["adversarial"]
  assert adv["example_ids"] and all(i.startswith("demo/") for i in adv["example_ids"])
  assert set(adv["attacks"]) == {"pgd_linf", "deepfool_l2", "nes_linf", "nattack_linf"}
  # --nattack_population=3: 1 + t (3 + 1) queries after t of the 2 iterations.
  nattack = adv["attacks"]["nattack_linf"]
  assert nattack["samples"] == 3 and nattack["query_budget"] == 1 + 2 * (3 + 1)
  # The demo config's NES (4 samples: 9 queries per iteration), 2 iterations, the given grid.
  assert adv["attacks"]["nes_linf"]["queries"] == [1, 5, 10, 19]
  assert adv["attacks"]["nes_linf"]["query_budget"] == 19
  assert adv["attacks"]["pgd_linf"]["budgets"] == [0.0, 0.5, 1.0, 2.0]
  assert len(adv["transfer"]["matrix"]) == 2
  report = (out / "report.md").read_text()
  assert "## Adversarial robustness" in report and "Transfer matrix" in report
  assert "Accuracy vs queries" in report and "| nes_linf | 1.0 | 1: " in report
  # The footnote gives the query rule of each family in the table, and only theirs.
  assert "NES / SPSA 1 for the clean image" in report and "NAttack 1 for" in report
  assert "Boundary / Evolutionary" not in report


_ONE_DEVICE = """
import json, sys
sys.path.insert(0, {tests!r})
import jax
import test_adversarial_suite as t
import attack_models
assert jax.device_count() == 1
out = t._evaluate(attack_models.linear_problem(n=6, side=4, classes=2, seed=2))
print(json.dumps({{k: v["minimal"] for k, v in out["attacks"].items()}}))
"""


def test_sharded_over_devices_equals_one_device(results):
  import jax  # pylint: disable=g-import-not-at-top
  assert jax.device_count() > 1   # conftest: 4 host devices, so the fixture ran sharded
  proc = subprocess.run([sys.executable, "-c", _ONE_DEVICE.format(tests=str(REPO / "tests"))],
                        capture_output=True, text=True, timeout=300, cwd=REPO,
                        env={**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
                             "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  one = json.loads(proc.stdout.strip().splitlines()[-1])
  for name, minimal in one.items():
    # Float rounding of the sharded matmuls may flip a decision exactly at the boundary, so
    # equal up to the search's final bracket (the distortions themselves are 8-24 /255).
    np.testing.assert_allclose(minimal, results["attacks"][name]["minimal"], atol=128 / 4096)


def test_transfer_criteria_top1_untargeted_top5_targeted():
  logits = np.tile(np.arange(10, dtype=np.float32)[::-1], (3, 1))   # class k has rank k
  labels = np.array([0, 3, 0])
  np.testing.assert_array_equal(adversarial._fooled(logits, labels, None), [False, True, False])
  goal = np.array([4, 5, 0])   # rank 5 (in the top-5), rank 6 (out), rank 1
  np.testing.assert_array_equal(adversarial._fooled(logits, labels, goal), [True, False, True])


# ----------------------------------------------------------------------------------------------
# Fixed-budget attacks: APGD (accuracy vs iterations) and NES / SPSA (accuracy vs queries).

FLIPS = (1, 2, 3, 5, 12)      # NES iterations at which adversarial_models.flip_problem flips
SAMPLES = 100
STRENGTH = dataclasses.replace(SEARCH, iterations_eps=(("linf", 40.0), ("l2", 16.0)),
                               blackbox_steps=8, nes_samples=SAMPLES, spsa_samples=SAMPLES,
                               apgd_iterations=10, apgd_target_classes=3)


def _strength(output_dir, config=STRENGTH):
  import adversarial_models  # pylint: disable=g-import-not-at-top
  variables, images, labels = adversarial_models.flip_problem(FLIPS, step=4.0)
  return adversarial.evaluate_adversarial(
      adversarial_models.linear_apply, variables, images=images, labels=labels,
      file_names=[f"f{t}" for t in FLIPS], attack_names=("nes_linf", "spsa_linf"),
      config=config, batch_size=4, output_dir=output_dir, log=lambda _: None)


@pytest.fixture(scope="module")
def strength(tmp_path_factory):
  out = tmp_path_factory.mktemp("strength")
  return out, _strength(out)


def test_nes_records_the_exact_query_of_a_known_flip(strength):
  from imagenet_cp import attacks  # pylint: disable=g-import-not-at-top
  _, results = strength
  nes = results["attacks"]["nes_linf"]
  # eps 40 /255 = 10 NES steps of 4: the example that needs 12 is never fooled.
  expected = [int(attacks.queries_at(t, SAMPLES)) if t <= 8 else None for t in FLIPS]
  assert nes["first_success_query"] == expected
  assert nes["queries"] == [int(attacks.queries_at(t, SAMPLES)) for t in range(9)]
  fooled = np.array([q if q is not None else np.inf for q in expected])
  exact = [(fooled > q).mean() for q in nes["queries"]]
  np.testing.assert_array_equal(nes["accuracy_vs_queries"], exact)
  assert nes["query_budget"] == attacks.queries_at(8, SAMPLES) and nes["eps"] == 40.0
  assert nes["distortion"]["success_rate"] == 0.8
  # The successes moved every channel up by t steps of 4 /255.
  np.testing.assert_allclose(nes["distortion"]["linf_mean"], 4.0 * np.mean(FLIPS[:4]), rtol=1e-4)
  assert nes["queries_of_successes"]["median"] == np.median(expected[:4])
  np.testing.assert_allclose(nes["auc_queries"], attacks.area_under_curve(nes["queries"], exact))


def test_accuracy_vs_queries_is_monotone_on_any_grid(strength):
  out, results = strength
  spsa = results["attacks"]["spsa_linf"]
  assert np.all(np.diff(spsa["accuracy_vs_queries"]) <= 0)
  # A grid between the iteration boundaries: the same first-success records, read exactly.
  grid = (0, 1, 150, 201, 202, 500, 1000, 1608, 5000)
  again = _strength(out, dataclasses.replace(STRENGTH, query_grid=grid))
  for name in ("nes_linf", "spsa_linf"):
    a = again["attacks"][name]
    first = np.array([np.inf if q is None else q for q in a["first_success_query"]])
    assert a["queries"] == list(grid)
    np.testing.assert_array_equal(a["accuracy_vs_queries"], [(first > q).mean() for q in grid])
    assert np.all(np.diff(a["accuracy_vs_queries"]) <= 0) and a["accuracy_vs_queries"][0] == 1.0


def test_apgd_accuracy_vs_iterations_is_monotone_with_its_checkpoints(problem):
  from imagenet_cp import attacks  # pylint: disable=g-import-not-at-top
  five = attack_models.linear_problem(n=6, side=4, classes=5, seed=3)
  for name, case, runs in (("apgd_ce_linf", problem, 1), ("apgd_t_linf", five, 3)):
    eps = float(np.median(case.linf))
    config = dataclasses.replace(STRENGTH, iterations_eps=(("linf", eps), ("l2", 16.0)))
    a = _evaluate(case, attack_names=(name,), config=config)["attacks"][name]
    curve = np.array(a["accuracy_vs_iterations"])
    assert curve.shape == (10 * runs + 1,) and curve[0] == 1.0 and np.all(np.diff(curve) <= 0)
    assert curve[-1] == 1 - a["distortion"]["success_rate"]
    # On an affine model no attack fools an example whose exact Linf distance exceeds eps, and
    # APGD-CE fools every other one.
    beyond = (case.linf >= eps).mean()
    assert (curve[-1] == beyond) if name == "apgd_ce_linf" else (beyond <= curve[-1] < 1)
    points = sorted({r * 10 + c for r in range(runs) for c in attacks.apgd_checkpoints(10)} |
                    {10 * runs})
    assert a["checkpoints"] == points and a["iterations"] == list(range(10 * runs + 1))
    np.testing.assert_array_equal(a["accuracy_at_checkpoints"], curve[points])
    assert 0 < a["auc_iterations"] < 1 and a["eps"] == eps
  with pytest.raises(ValueError, match="at least 4 classes"):
    _evaluate(problem, attack_names=("apgd_t_linf",), config=STRENGTH)


def test_fixed_budget_attacks_resume_identically(strength, monkeypatch):
  out, results = strength

  def never(*args, **kwargs):
    raise AssertionError("recomputed an attack that was saved")

  monkeypatch.setattr(adversarial, "attack_records", never)
  resumed = _strength(out)
  assert json.dumps(resumed["attacks"], sort_keys=True) == json.dumps(results["attacks"],
                                                                      sort_keys=True)


# ----------------------------------------------------------------------------------------------
# Transfer attacks (DI/TI/SI-NI/VMI-FGSM) in the matrix, decision-based attacks as entries.

NEW = dataclasses.replace(SEARCH, steps=4, doubling_steps=6, bisection_steps=2,
                          decision_queries=120, transfer_attack="di_fgsm_linf",
                          transfer_attacks=("vmi_fgsm_linf", "si_ni_fgsm_linf"),
                          iterations_eps=(("linf", 4.0), ("l2", 30.0)))


def _new_entries(problem, output_dir):
  apply_fn, variables = attack_models.linear_apply, problem.variables
  return _evaluate(problem, attack_names=("boundary_l2", "ti_fgsm_linf"), config=NEW,
                   transfer_models=[("a", apply_fn, variables), ("b", apply_fn, variables)],
                   model_name="a", output_dir=output_dir)


def test_transfer_and_decision_entries_run_resume_and_report(problem, tmp_path, monkeypatch):
  from imagenet_cp.suites.report import adversarial as report  # pylint: disable=g-import-not-at-top
  results = _new_entries(problem, tmp_path)
  t = results["transfer"]
  assert list(t["by_attack"]) == ["di_fgsm_linf", "vmi_fgsm_linf", "si_ni_fgsm_linf"]
  for attack, m in t["by_attack"].items():
    # Both "models" are the same model: a row's transfer rates equal its white-box rate.
    np.testing.assert_allclose(np.array(m["matrix"]), np.array(m["whitebox_success"])[:, None] *
                               np.ones((1, 2)), err_msg=attack)
  assert t["matrix"] == t["by_attack"]["di_fgsm_linf"]["matrix"]
  b = results["attacks"]["boundary_l2"]
  assert b["kind"] == "decision" and b["query_budget"] == 120
  assert b["queries"] == sorted(set(np.linspace(0, 120, 11).round().astype(int).tolist()))
  accuracy = np.array(b["accuracy_vs_queries"])
  assert accuracy[0] == 1.0 and np.all(np.diff(accuracy) <= 0)
  median = np.array([np.inf if v is None else v for v in b["median_l2_vs_queries"]])
  assert np.all(median[1:] <= median[:-1]) and median[-1] >= np.median(problem.l2) - 1e-3
  assert np.isfinite(median[-1]) and b["distortion"]["success_rate"] == 1.0
  ti = results["attacks"]["ti_fgsm_linf"]
  # The budget search brackets the minimal Linf budget from above (TI smooths the gradient,
  # so it may need more than the exact distance, never less).
  assert np.all(np.array(ti["minimal"], np.float64) >= problem.linf - 1e-3)
  lines = "\n".join(report.markdown(results))
  assert "Decision-based attacks: median L2" in lines and "| boundary_l2 | 120 |" in lines
  assert "| a | vmi_fgsm_linf |" in lines and "| b | si_ni_fgsm_linf |" in lines
  written = report.adversarial_plots(results, tmp_path)
  assert {p.name for p in written} >= {"accuracy_vs_queries.png", "transfer_matrix.png"}

  def never(*args, **kwargs):
    raise AssertionError("recomputed a saved record")

  monkeypatch.setattr(adversarial, "attack_records", never)
  monkeypatch.setattr(adversarial, "transfer_records", never)
  resumed = _new_entries(problem, tmp_path)
  for key in ("attacks", "transfer"):
    assert json.dumps(resumed[key], sort_keys=True) == json.dumps(results[key], sort_keys=True)


def test_transfer_attacks_must_be_budgeted():
  with pytest.raises(ValueError, match="budgeted"):
    dataclasses.replace(NEW, transfer_attacks=("boundary_l2",)).check()


# ----------------------------------------------------------------------------------------------
# RobustBench's images: --image_list / --preprocessing on the ImageNet stand-in; NAttack's entry.

TINY_NATTACK = dataclasses.replace(SEARCH, blackbox_steps=2, nattack_population=4,
                                   iterations_eps=(("linf", 8.0), ("l2", 16.0)))


def _planted_classifier(examples):
  """Pooled linear model (adversarial_models.pooled_apply) right on every given 224 crop."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import adversarial_models  # pylint: disable=g-import-not-at-top
  n = len(examples.labels)
  pooled = examples.images.reshape(n, 8, 28, 8, 28, 3).mean(axis=(2, 4)).reshape(n, -1)
  design = np.concatenate([pooled, np.ones((n, 1), np.float32)], axis=1)
  solution = np.linalg.lstsq(design, np.eye(n), rcond=None)[0]
  w, b = np.zeros((pooled.shape[1], 1000), np.float32), np.full(1000, -1e3, np.float32)
  for i, label in enumerate(examples.labels):
    w[:, label], b[label] = solution[:-1, i], solution[-1, i]
  return adversarial_models.pooled_apply, {"w": jnp.asarray(w), "b": jnp.asarray(b)}


def _never(*args, **kwargs):
  raise AssertionError("recomputed a saved record")


def test_image_list_attacks_exactly_the_listed_images_and_resume_checks_it(tmp_path, monkeypatch):
  import imagenet_standin  # pylint: disable=g-import-not-at-top
  from imagenet_cp.suites.report import adversarial as report  # pylint: disable=g-import-not-at-top
  root = imagenet_standin.make_val_folder(tmp_path, n=4)
  every = adversarial.source_examples("imagenet", root)
  apply_fn, variables = _planted_classifier(every)
  names = [imagenet_standin.val_name(i) for i in (3, 1)]   # the list's order, not the folder's
  (tmp_path / "two.txt").write_text("\n".join(names) + "\n")
  (tmp_path / "other.txt").write_text(f"{names[1]}\n{names[0]}\n")
  kw = dict(source="imagenet", imagenet_dir=root, attack_names=("nattack_linf",),
            config=TINY_NATTACK, batch_size=4, output_dir=tmp_path / "out", log=lambda _: None)
  results = adversarial.evaluate_adversarial(apply_fn, variables,
                                             image_list=str(tmp_path / "two.txt"), **kw)
  assert results["clean_accuracy"] == 1.0 and results["example_ids"] == names
  run = results["run"]
  assert run["images"] == 2 and run["image_list_images"] == 2
  assert run["image_list"] == str((tmp_path / "two.txt").resolve())
  a = results["attacks"]["nattack_linf"]
  # NAttack's grid: 1 + t (population + 1) queries after t iterations.
  assert a["queries"] == [1, 6, 11] and a["query_budget"] == 11 and a["samples"] == 4
  assert any(line.startswith("| nattack_linf | 8.0 | 1: ") for line in report.markdown(results))
  assert "accuracy_vs_queries.png" in {p.name for p in report.adversarial_plots(results, tmp_path)}
  # The same list resumes without attacking again; another list or preprocessing is refused.
  monkeypatch.setattr(adversarial, "attack_records", _never)
  resumed = adversarial.evaluate_adversarial(apply_fn, variables,
                                             image_list=str(tmp_path / "two.txt"), **kw)
  assert json.dumps(resumed["attacks"], sort_keys=True) == json.dumps(results["attacks"],
                                                                      sort_keys=True)
  with pytest.raises(ValueError, match="different run.*image_list"):
    adversarial.evaluate_adversarial(apply_fn, variables, image_list=str(tmp_path / "other.txt"),
                                     **kw)
  with pytest.raises(ValueError, match="different run.*preprocessing"):
    adversarial.evaluate_adversarial(apply_fn, variables, image_list=str(tmp_path / "two.txt"),
                                     preprocessing="BicubicRes256Crop224", **kw)
  with pytest.raises(ValueError, match="your own images"):
    _evaluate(attack_models.linear_problem(n=2, side=4), image_list=str(tmp_path / "two.txt"))
