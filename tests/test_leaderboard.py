"""``python -m metrics.leaderboard``: two generated results.json (the layout ``metrics.run``
writes) -> markdown / CSV with the right numbers, the plot file, mixed benchmarks refused."""
import csv
import io
import json
import subprocess
import sys

import pytest

from imagenet_cp import leaderboard


def _results(model, clean_error, contrast_errors, fr, budgets_acc, aa=None, ids="1c3773421fe3",
             ood=None):
  """A results.json as metrics.run writes it (corruption + adversarial [+ autoattack, ood])."""
  run = {"model": model, "benchmark": "imagenet", "source": "demo", "file_names_sha256": ids}
  out = {"run": run, "clean": {"error": clean_error, "examples": 2},
         "corruptions": {"contrast": {"benchmark": True, "severities": {
             str(s + 1): {"error": e, "examples": 2} for s, e in enumerate(contrast_errors)}},
                         "spatter": {"benchmark": False, "severities": {"1": {"error": 0.0}}}},
         "mce": 80.0 + fr, "relative_mce": None, "mfr": {"1": fr}, "mt5d": {"1": None},
         "adversarial": {"clean_accuracy": 1 - clean_error, "run": run, "attacks": {
             "pgd_linf": {"norm": "linf", "budgets": [0.0, 2.0, 4.0],
                          "accuracy_vs_budget": budgets_acc},
             "cw_l2": {"norm": "l2", "budgets": [0.0, 4.0], "accuracy_vs_budget": [1.0, 0.0]}}}}
  if aa is not None:
    out["autoattack"] = {"norm": "linf", "eps": 4.0, "robust_accuracy": aa}
  if ood:
    out["ood"] = {"datasets": {"imagenet_r": {"title": "ImageNet-R", "accuracy": ood}}}
  return out


@pytest.fixture
def two_runs(tmp_path):
  paths = []
  for model, args, kw in (("resnet50", (0.25, [0.5, 0.7], 60.0, [1.0, 0.5, 0.2]), {"aa": 0.1}),
                          ("vgg16", (0.5, [0.9, 0.9], 90.0, [1.0, 0.4, 0.4]), {"ood": 0.3})):
    path = tmp_path / model / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(_results(model, *args, **kw)))
    paths.append(path)
  return paths


def test_markdown_and_csv_hold_the_runs_figures(two_runs, tmp_path):
  written = leaderboard.write_all(two_runs, tmp_path / "board", layout="ares")
  md = written["markdown"].read_text().splitlines()
  assert md[0] == ("| rank | model | clean acc. (%) | Linf 4/255 acc., suite (%) | AutoAttack acc."
                   " (%) | mCE (%) | ImageNet-R acc. (%) |")
  # Ranked by the suite's Linf 4/255 accuracy: vgg16 0.5 x 0.4 = 20 % above resnet50's 15 %.
  assert md[2] == "| 1 | vgg16 | 50.00 | 20.00 | — | 170.00 | 30.00 |"
  assert md[3] == "| 2 | resnet50 | 75.00 | 15.00 | 10.00 | 140.00 | — |"
  rows = {r["model"]: r for r in csv.DictReader(io.StringIO(written["csv"].read_text()))}
  # ImageNet-C accuracy: 1 - mean of contrast's severities; spatter (not benchmark) left out.
  assert float(rows["resnet50"]["ImageNet-C acc. (%)"]) == pytest.approx(40.0)
  assert float(rows["vgg16"]["mFR (%)"]) == pytest.approx(90.0)
  assert rows["vgg16"]["AutoAttack acc. (%)"] == "" and rows["vgg16"]["mT5D (%)"] == ""
  assert written["plot"].stat().st_size > 1000


def test_robustbench_layout_ranks_by_autoattack(two_runs):
  header, rows = leaderboard.table(leaderboard.read(two_runs), "robustbench")
  assert header[2:] == ["clean acc. (%)", "ImageNet-C acc. (%)", "AutoAttack acc. (%)"]
  assert [r[1] for r in rows] == ["resnet50", "vgg16"] and rows[1][4] is None


def test_mixed_benchmarks_are_refused_or_labelled(two_runs, tmp_path):
  other = tmp_path / "cifar" / "results.json"
  other.parent.mkdir()
  other.write_text(json.dumps(_results("resnet18", 0.1, [0.2], 50.0, [1.0, 1.0, 1.0],
                                       ids="ffffeeee")))
  runs = leaderboard.read([*two_runs, other])
  with pytest.raises(ValueError, match="different benchmarks or image lists.*resnet18"):
    leaderboard.table(runs)
  header, rows = leaderboard.table(runs, allow_mixed=True)
  assert header[-1] == "benchmark"
  assert {r[1]: r[-1] for r in rows}["resnet18"] == "imagenet/demo/ffffeeee"


def test_command_line(two_runs, tmp_path):
  out = subprocess.run([sys.executable, "-m", "metrics.leaderboard", *map(str, two_runs),
                        "--layout=robustbench_corruptions"], capture_output=True, text=True,
                       check=True).stdout
  assert out.splitlines()[2] == "| 1 | resnet50 | 75.00 | 40.00 |"
