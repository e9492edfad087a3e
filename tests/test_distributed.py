"""Two CPU processes on 127.0.0.1 give exactly the single-process results (the corruption, the
adversarial and the OOD suite, in the one two-process run)."""
import json
import os
import pathlib
import socket
import subprocess
import sys

from distributed_worker import (EVAL_KWARGS, OOD_DATASETS, adversarial_results, arrays_results,
                                ood_kwargs, ood_results, tiny_classifier)
from imagenet_cp.suites import corruption as evaluation
import test_ood

TESTS = pathlib.Path(__file__).resolve().parent


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
  port, out = _free_port(), tmp_path / "results.json"
  data_dir, ood_out = tmp_path / "tfds", tmp_path / "ood_out"
  test_ood.build_all(data_dir, tmp_path / "src", OOD_DATASETS)
  # One process saves ImageNet-A's slices; the two processes must resume them, not redo them.
  before = ood_results(data_dir, ood_out, datasets=["imagenet_a"])
  assert before["scored_slices"] == 4 and list(before["results"]["datasets"]) == ["imagenet_a"]
  env = {**os.environ, "PYTHONPATH": f"{TESTS.parent}:{TESTS}",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  procs = [subprocess.Popen([sys.executable, str(TESTS / "distributed_worker.py"), str(port),
                             str(i), str(out), str(data_dir), str(ood_out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for i in range(2)]
  logs = [p.communicate(timeout=600)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-3000:] for log in logs)
  multi = json.loads(out.read_text())
  apply_fn, variables = tiny_classifier()
  single = json.loads(json.dumps(evaluation.evaluate(apply_fn, variables, **EVAL_KWARGS)))
  assert multi["run"]["processes"] == 2 and single["run"]["processes"] == 1
  for key in ("clean", "corruptions", "perturbations"):
    assert multi[key] == single[key], key
  assert multi["clean"]["examples"] == 4
  adv_multi, adv_single = multi["adversarial"], json.loads(json.dumps(adversarial_results()))
  assert adv_multi["run"]["processes"] == 2 and adv_single["run"]["processes"] == 1
  assert adv_single["attacked_examples"] == 4 and len(adv_single["attacks"]) == 3
  for key in ("clean_accuracy", "example_ids", "attacks", "transfer"):
    assert adv_multi[key] == adv_single[key], key
  one_multi, one_single = multi["adversarial_arrays"], json.loads(json.dumps(arrays_results()))
  assert one_single["attacked_examples"] == 1 and one_multi["run"]["processes"] == 2
  for key in ("example_ids", "attacks", "transfer"):
    assert one_multi[key] == one_single[key], key
  _check_ood(out, data_dir, ood_out)


def _check_ood(out, data_dir, ood_out):
  """Both processes hold the one-process results; ReaL's 4 slices were scored 2 + 2, ImageNet-A's
  resumed; process 0 saved them all, and one process resumes every slice two processes saved."""
  from imagenet_cp.suites import ood
  import ood_standin
  single = ood.evaluate_ood(ood_standin.planted_apply, test_ood.planted_variables(),
                            **ood_kwargs(data_dir))
  assert single["datasets"]["imagenet2012_real"]["correct"] == 3
  multi = [json.loads(pathlib.Path(f"{out}.ood{p}").read_text()) for p in range(2)]
  assert [m["scored_slices"] for m in multi] == [2, 2]
  for m in multi:
    assert (m["results"]["run"]["processes"], m["results"]["run"]["devices"]) == (2, 4)
    assert test_ood.comparable(m["results"])["datasets"] == test_ood.comparable(single)["datasets"]
  saved = json.loads((ood_out / "ood" / "results.json").read_text())
  assert test_ood.comparable(saved)["datasets"] == test_ood.comparable(single)["datasets"]
  assert len(list((ood_out / "ood" / "tasks").glob("ood__*.npz"))) == 8
  again = ood_results(data_dir, ood_out)
  assert again["scored_slices"] == 0
  assert test_ood.comparable(again["results"])["datasets"] == test_ood.comparable(single)["datasets"]
