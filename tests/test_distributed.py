"""Two CPU processes on 127.0.0.1 give exactly the single-process results (the corruption and
the adversarial suite, in the one two-process run)."""
import json
import os
import pathlib
import socket
import subprocess
import sys

from distributed_worker import EVAL_KWARGS, adversarial_results, arrays_results, tiny_classifier
from metrics import evaluation

TESTS = pathlib.Path(__file__).resolve().parent


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
  port, out = _free_port(), tmp_path / "results.json"
  env = {**os.environ, "PYTHONPATH": f"{TESTS.parent}:{TESTS}",
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  procs = [subprocess.Popen([sys.executable, str(TESTS / "distributed_worker.py"), str(port),
                             str(i), str(out)], env=env, stdout=subprocess.PIPE,
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
