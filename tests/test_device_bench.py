"""python -m launch.device_bench at tiny sizes on 2 CPU devices: the table's structure, every
figure positive and finite, the estimate's accounting, the batch split over the devices."""
import math
import os
import pathlib
import re
import subprocess
import sys

import jax

from imagenet_cp.perturbations import TEST_PERTURBATIONS, num_frames

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--corruptions=fog,contrast", "--severities=3", "--sequences=rotate", "--batch=2",
        "--sequence_batch=2", "--model_batch=2", "--models=squeezenet1_1",
        "--estimate_model=squeezenet1_1", "--repeats=1", "--min_seconds=0"]


def _run(*args, cwd):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO),
         "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  return subprocess.run([sys.executable, "-m", "launch.device_bench", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=300)


def _sections(text: str) -> dict[str, list[list[str]]]:
  """'### heading' (the machine table under '') -> the rows of its table, header row first."""
  sections, current = {}, ""
  for line in text.splitlines():
    if line.startswith("### "):
      current = line[4:]
    elif line.startswith("|") and not line.startswith("|---"):
      sections.setdefault(current, []).append([c.strip() for c in line.strip("|").split("|")])
  return sections


def _figure(cell: str) -> float:
  value = float(cell.replace("*", "").replace(",", ""))
  assert math.isfinite(value) and value > 0, cell
  return value


def _find(sections, prefix: str) -> list[list[str]]:
  matches = [rows for heading, rows in sections.items() if heading.startswith(prefix)]
  assert len(matches) == 1, (prefix, list(sections))
  return matches[0]


def test_tiny_run_writes_a_complete_table(tmp_path):
  out = tmp_path / "bench.md"
  proc = _run(*TINY, f"--output={out}", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = out.read_text()
  assert proc.stdout == text
  sections = _sections(text)

  machine = dict(sections[""][1:])
  assert machine["device count"] == "2" and machine["platform"] == "cpu"
  assert machine["device kind"] == jax.devices()[0].device_kind
  assert machine["jax"].startswith(jax.__version__ + " ")
  # fog and contrast are vmapped whole on every backend; squeezenet through DataParallel.
  assert machine["batch sharding"] == "every output split over the 2 devices"
  _figure(machine["wall time of this run"].removesuffix(" s"))

  c = _find(sections, "ImageNet-C: images/s (batch 2 over 2 device(s))")
  assert c[0] == ["corruption", "s3", "all", "warm-up s"]
  assert [r[0] for r in c[1:]] == ["fog", "contrast", "**all 2 cells**"]
  for row in c[1:]:
    assert all(_figure(x) for x in row[1:])
  jpeg = _find(sections, "ImageNet-C release stage")
  assert jpeg[1][0] == "`imagenet_cp.release_jpeg`" and all(_figure(x) for x in jpeg[1][1:])

  p = _find(sections, "ImageNet-P: sequences/s (batch 2 over 2 device(s)")
  assert p[0] == ["sequence", "frames", "sequences/s", "frames/s", "warm-up s"]
  assert [r[0] for r in p[1:]] == ["rotate", "**all 1**"]
  rotate = p[1]
  assert rotate[1] == "31" and all(_figure(x) for x in rotate[1:])
  assert math.isclose(_figure(rotate[3]), 31 * _figure(rotate[2]), rel_tol=0.01)

  m = _find(sections, "Models: images/s")
  assert m[0] == ["model", "images/s", "warm-up s"]
  assert [r[0] for r in m[1:]] == ["squeezenet1_1"] and all(_figure(x) for x in m[1][1:])

  e = _find(sections, "Estimate: full evaluation of squeezenet1_1 on these 2 device(s)")
  assert e[0] == ["evaluation", "model inputs", "generation h", "model h", "total h", "basis"]
  frames = 50_000 * sum(num_frames(n) for n in TEST_PERTURBATIONS)
  expected = {"ImageNet-C benchmark: clean + 15 corruptions x 5": 50_000 * 76,
              "ImageNet-C all: clean + 19 corruptions x 5": 50_000 * 96,
              "ImageNet-P: 10 test sequences": frames,
              "ImageNet-C benchmark + ImageNet-P": 50_000 * 76 + frames}
  assert {r[0]: int(r[1].replace(",", "")) for r in e[1:]} == expected
  hours = {r[0]: [_figure(x) for x in r[2:5]] for r in e[1:]}
  for gen, model, total in hours.values():
    assert math.isclose(gen + model, total, rel_tol=0.02)
  # One model cost per input: the model hours scale with the inputs.
  rows = list(hours.values())
  assert math.isclose(rows[2][1] / rows[0][1], frames / (50_000 * 76), rel_tol=0.02)
  assert [r[5] for r in e[1:3]] == ["2 of 75 cells measured + release JPEG",
                                     "2 of 95 cells measured + release JPEG"]
  assert e[3][5] == "1 of 10 sequences measured"


def test_bad_flags_are_one_usage_error(tmp_path):
  proc = _run("--corruptions=fog,fogg", "--sequences=rotate,spin", "--severities=3,6",
              "--models=resnet18,resnet5", cwd=tmp_path)
  assert proc.returncode == 2  # a usage error, as for every command line of the project
  for message in ("unknown corruptions ['fogg']", "unknown sequences ['spin']",
                  "--severities must be integers in 1..5, got ['3', '6']",
                  "unknown model 'resnet5'"):
    assert message in proc.stderr, proc.stderr[-2000:]
  assert "unknown model 'resnet18'" not in proc.stderr and "'fog'" not in proc.stderr
