"""The demo and several-model runs (`python -m metrics.run` with no flags, `--models=a,b,c`):
per-model folders, the combined report, the transfer matrix across the models."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from imagenet_cp import gallery, perturbations, sources
from imagenet_cp.suites import compare
from imagenet_cp.suites.report import compare as compare_report

REPO = pathlib.Path(__file__).resolve().parents[1]
STANDINS = ("demo_models:small", "demo_models:sharp", "demo_models:flat")


def _run_cli(*args, cwd):
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=600,
                        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def _table(report: str, header_start: str) -> list[list[str]]:
  """The rows (cells) of the markdown table whose header line starts with ``header_start``."""
  lines = report.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
  rows = []
  for line in lines[start + 2:]:
    if not line.startswith("|"):
      break
    rows.append([c.strip() for c in line.strip("|").split("|")])
  return rows


def test_several_models_on_the_demo_photos(tmp_path):
  out = tmp_path / "out"
  proc = _run_cli("--models=" + ",".join(STANDINS), "--max_images=2",
                  "--corruptions=contrast,fog", "--perturbations=translate", "--bootstrap=20",
                  "--attacks=pgd_linf", "--nogallery", "--noprogress", f"--output_dir={out}",
                  cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "DEMO" in proc.stdout
  folders = [out / compare.model_dir(".", m).name for m in STANDINS]
  results = {}
  for model, folder in zip(STANDINS, folders):
    for name in ("results.json", "results.csv", "report.md", "error_vs_severity.png"):
      assert (folder / name).is_file(), (folder, name)
    results[model] = json.loads((folder / "results.json").read_text())
    assert results[model]["run"]["model"] == model
    assert results[model]["run"]["images"] == 2
    assert set(results[model]["corruptions"]) == {"contrast", "fog"}
    assert set(results[model]["perturbations"]) == {"translate"}
  # The demo attacks the first model only; its transfer matrix spans the three.
  assert "adversarial" in results[STANDINS[0]]
  assert all("adversarial" not in results[m] for m in STANDINS[1:])
  t = results[STANDINS[0]]["adversarial"]["transfer"]
  assert t["models"] == list(STANDINS) and len(t["matrix"]) == 3
  assert all(len(row) == 3 for row in t["matrix"])
  assert not any((out / n).exists() for n in ("gallery.png", "rotate.gif"))

  report = (out / "report.md").read_text()
  assert report.startswith("# Robustness comparison: " + ", ".join(STANDINS))
  assert "DEMO on 2 packaged photos" in report
  photos = _table(report, "| photo | label | source | licence |")
  assert [r[0] for r in photos] == [p.name for p in sources.DEMO_PHOTOS[:2]]
  first = sources.DEMO_PHOTOS[0]
  assert photos[0] == [first.name, f"{first.label} {first.class_name}", f"`{first.origin}`",
                       first.licence]
  # The stand-ins get every demo photo right when clean.
  predictions = _table(report, "| image | label | " + " | ".join(STANDINS))
  assert predictions == [[f"{p.name}.png", compare_report.class_label(p.label)]
                         + [compare_report.class_label(p.label) + " ✓"] * 3
                         for p in sources.DEMO_PHOTOS[:2]]
  summary = _table(report, "| model | clean error (%) |")
  assert [r[0] for r in summary] == list(STANDINS)
  for row, model in zip(summary, STANDINS):
    assert row[1].split(" [")[0] == f"{100 * results[model]['clean']['error']:.1f}"
  errors = _table(report, "| corruption | " + " | ".join(STANDINS))
  assert [r[0] for r in errors] == ["clean", "Fog", "Contrast"]
  for j, model in enumerate(STANDINS, 1):
    fog = results[model]["corruptions"]["fog"]
    mean = sum(c["error"] for c in fog["severities"].values()) / 5
    assert errors[1][j] == f"{100 * mean:.1f} ({fog['ce']:.0f})"
  matrix = _table(report, "| source \\ target | " + " | ".join(STANDINS) + " |")
  assert [r[0] for r in matrix] == list(STANDINS)
  assert [r[1:] for r in matrix] == [[f"{100 * v:.1f}" for v in row] for row in t["matrix"]]
  assert "Only demo_models:small is attacked" in report
  # --perturbations was given: the demo's 10 test sequences do not apply, nor their note.
  assert "the 10 test sequences" not in report

  data = json.loads((out / "comparison.json").read_text())
  assert data["models"] == list(STANDINS) and data["transfer"] == t
  assert [p["name"] for p in data["photos"]] == [p.name for p in sources.DEMO_PHOTOS[:2]]
  for model in STANDINS:
    assert data["figures"][model]["clean_error"] == results[model]["clean"]["error"]
    assert set(data["figures"][model]["clean_predictions"]) == {
        f"demo/{p.name}.png" for p in sources.DEMO_PHOTOS[:2]}
  assert (out / "comparison.png").is_file()


@pytest.mark.parametrize("argv, expected", [
    ([], list(compare.DEMO_MODELS)),
    (["--source=demo", "--suite=corruption"], list(compare.DEMO_MODELS)),
    (["--model=efficientnet_lite0"], None),
    (["--imagenet_dir=/data/imagenet"], None),
    (["--suite=ood"], None),
    (["--checkpoint=lite0.pth"], None),
    (["--models=efficientnet_lite1,demo_models:small"],
     ["efficientnet_lite1", "demo_models:small"]),
])
def test_which_runs_compare_several_models(argv, expected):
  from imagenet_cp import run
  run.FLAGS.unparse_flags()
  try:
    run.FLAGS(["metrics.run", *argv])
    assert run.several_models() == expected
  finally:
    run.FLAGS.unparse_flags()


def test_several_models_refuse_clashes(tmp_path):
  proc = _run_cli("--model=efficientnet_lite0", "--models=efficientnet_lite1,efficientnet_lite2",
                  cwd=tmp_path)
  assert proc.returncode == 2 and "--model and --models" in proc.stderr
  with pytest.raises(ValueError, match="more than once"):
    compare.check_names(["a:b", "a:b"])


def test_demo_configs_shrink_only_what_the_command_line_left_open():
  from imagenet_cp.suites import adversarial, corruption
  configs = {"corruption": corruption.SuiteConfig(), "adversarial": adversarial.SuiteConfig()}
  shrunk, notes = compare.demo_configs(configs, given=set(), photos=6)
  assert tuple(shrunk["corruption"].perturbations) == tuple(perturbations.TEST_PERTURBATIONS)
  assert shrunk["corruption"].severities == (1, 2, 3, 4, 5)
  assert {c.batch_size for c in shrunk.values()} == {6}
  assert tuple(shrunk["adversarial"].attack_names) == compare.DEMO_ATTACKS
  assert shrunk["adversarial"].attack_config.transfer_eps == compare.DEMO_TRANSFER_EPS
  assert shrunk["adversarial"].attack_config.steps == configs["adversarial"].attack_config.steps
  assert len(notes) == 2 and "10 test sequences" in notes[0] and "cw_l2" in notes[1]
  kept, notes = compare.demo_configs(
      configs, given={"perturbations", "batch_size", "attacks", "transfer_eps"}, photos=6)
  assert kept == configs and notes == []


def test_class_names_are_in_label_order():
  names = compare_report.class_names()
  assert names is not None and len(names) == 1000
  for photo in sources.DEMO_PHOTOS:
    assert names[photo.label] == photo.class_name
    assert compare_report.class_label(photo.label) == f"{photo.label} {photo.class_name.split(',')[0]}"


def test_gallery_is_written_once_and_linked(tmp_path, monkeypatch):
  calls = []

  def fake_write_demo(out_dir, log=None):
    calls.append(out_dir)
    paths = {"gallery": pathlib.Path(out_dir) / gallery.GRID_FILE}
    paths.update({n: pathlib.Path(out_dir) / f"{n}.gif" for n in perturbations.PERTURBATIONS})
    for p in paths.values():
      p.write_bytes(b"x")
    return paths

  monkeypatch.setattr(gallery, "write_demo", fake_write_demo)
  first = compare.write_gallery(tmp_path, log=lambda _: None)
  again = compare.write_gallery(tmp_path, log=lambda _: None)
  assert calls == [tmp_path] and sorted(first) == sorted(again) and len(first) == 15
  results = {"m": {"run": {"source": "demo", "images": 1, "model": "m",
                           "file_names_sha256": compare.common.file_digest(["demo/chelsea.png"])},
                   "clean": {"error": 0.0, "examples": 1}}}
  compare.write(tmp_path, results, pictures=first)
  report = (tmp_path / compare_report.REPORT).read_text()
  assert "[gallery.png](gallery.png)" in report and "[rotate.gif](rotate.gif)" in report


def test_comparison_of_ood_only_runs(tmp_path):
  # --models with --suite=ood: no corruption figures, one OOD column per model.
  def ood(accuracy):
    return {"run": {"source": "tfds", "model": "m"},
            "ood": {"datasets": {"imagenet_r": {"title": "ImageNet-R", "accuracy": accuracy}}}}
  results = {"a:f": ood(0.25), "b:g": ood(0.5)}
  compare.write(tmp_path, results)
  report = (tmp_path / compare_report.REPORT).read_text()
  assert _table(report, "| dataset | a:f | b:g |") == [["ImageNet-R", "25.00", "50.00"]]
  assert "## Summary" not in report and not (tmp_path / compare_report.PLOT).exists()
