"""A run killed with SIGKILL at random moments, then resumed, gives the results of a run never
interrupted (issue 16): nothing half-written is read back, nothing temporary is left behind, and
the killed run's lock does not block the next one.

tests/fault_worker.py is the run (the demo photos, a tiny classifier, 6 tasks); for each seed
it is started, killed after a random delay (drawn from that seed, within the time an
uninterrupted run takes), started and killed again, then run to the end.  (Killed runs are
timed after a warm run, with JAX's compilation cache shared, so the kills land in the work, not
only in the start-up.)
"""
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)
KILLS = 2


def _start(output_dir: pathlib.Path, cache: pathlib.Path) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, str(REPO / "tests" / "fault_worker.py"),
                           str(output_dir), str(cache)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def _finish(proc: subprocess.Popen) -> None:
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0 and "RESULTS 6" in out, err[-3000:]


def _comparable(results: dict) -> dict:
  results = json.loads(json.dumps(results))
  results["run"].pop("seconds")
  return results


def _check_tasks(output_dir: pathlib.Path) -> None:
  """Every file left is complete: no temporary file, every npz readable."""
  left = [p for p in output_dir.rglob("tmp*")]
  assert not left, left
  for path in output_dir.rglob("*.npz"):
    with np.load(path) as data:
      for key in data.files:
        data[key]  # noqa: B018  (reads every member, so a cut-short file fails here)


def test_killed_runs_resume_to_the_uninterrupted_results(tmp_path):
  cache = tmp_path / "jax_cache"
  _finish(_start(tmp_path / "reference", cache))
  # The first run filled the compilation cache; later ones start faster, so time a warm one.
  started = time.monotonic()
  _finish(_start(tmp_path / "warm", cache))
  duration = time.monotonic() - started
  reference = _comparable(json.loads((tmp_path / "reference" / "results.json").read_text()))
  killed_at = []
  for seed in SEEDS:
    rng = random.Random(seed)
    output_dir = tmp_path / f"seed{seed}"
    for _ in range(KILLS):
      proc = _start(output_dir, cache)
      delay = rng.uniform(0.2, 0.95) * duration
      try:
        proc.wait(timeout=delay)
      except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
      killed_at.append(round(delay, 1))
    # A kill inside a write leaves that write's temporary file; the windows are too short to
    # hit reliably, so plant what such a kill leaves (the next run must delete them).
    for folder, name in (("", "tmpkilled1.tmp"), ("tasks", "tmpkilled2.tmp.npz"),
                         ("cache", "tmpkilled3.tmp.npz")):
      (output_dir / folder).mkdir(parents=True, exist_ok=True)
      (output_dir / folder / name).write_bytes(b"PK\x03\x04 cut short by SIGKILL")
    _finish(_start(output_dir, cache))
    _check_tasks(output_dir)
    resumed = _comparable(json.loads((output_dir / "results.json").read_text()))
    assert resumed == reference, (seed, killed_at)
