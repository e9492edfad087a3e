"""CE, relative CE, FR, T5D and their means: hand cases and the paper's published tables."""
import json

import numpy as np
import pytest

from imagenet_cp import metrics
from imagenet_cp.metrics import baselines

BENCH = baselines.BENCHMARK_CORRUPTIONS
ALEX = metrics.ALEXNET
ALEX_AVG = {c: float(np.mean(ALEX.corruption_errors(c))) for c in baselines.CORRUPTIONS}


# --- AlexNet data -----------------------------------------------------------------------------


def test_alexnet_rows_average_to_the_readme_and_appendix_d():
  for name in baselines.CORRUPTIONS:
    assert ALEX_AVG[name] == pytest.approx(baselines.ALEXNET_AVERAGE_ERRORS[name], abs=1e-9)
    paper = baselines.PAPER_ALEXNET_AVERAGE_ERRORS_PERCENT[name]
    assert abs(100 * ALEX_AVG[name] - paper) <= 0.05 + 1e-9, name


def test_alexnet_own_errors_give_ce_100():
  for name in baselines.CORRUPTIONS:
    errors = ALEX.corruption_errors(name)
    assert metrics.ce(errors, name) == pytest.approx(100.0, abs=1e-12)
    assert metrics.relative_ce(errors, ALEX.clean_error, name) == pytest.approx(100.0, abs=1e-12)
  assert ALEX.clean_error == 0.435


def test_alexnet_perturbation_baseline_is_appendix_e_at_difficulty_1_only():
  assert ALEX.flip_probability[("gaussian_noise", 1)] == pytest.approx(0.2365)
  assert ALEX.flip_probability[("scale", 1)] == pytest.approx(0.2353)
  assert ALEX.top5_distance[("translate", 1)] == 2.63
  assert {d for (_, d) in ALEX.flip_probability} == {1}
  assert len(ALEX.flip_probability) == len(ALEX.top5_distance) == 14
  assert "H.264" in ALEX.note


# --- hand cases ---------------------------------------------------------------------------------

TOY = metrics.Baseline(name="toy", errors={("fog", s): 0.5 for s in range(1, 6)}, clean_error=0.25)


def test_ce_hand_case():
  # sum_s E = 1.5, sum_s E(toy) = 2.5 -> 60.
  assert metrics.ce([0.1, 0.2, 0.3, 0.4, 0.5], "fog", baseline=TOY) == pytest.approx(60.0)
  assert metrics.ce({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5}, "fog", baseline=TOY) == (
      pytest.approx(60.0))
  half = [e / 2 for e in ALEX.corruption_errors("fog")]
  assert metrics.ce(half, "fog") == pytest.approx(50.0)


def test_relative_ce_subtracts_the_clean_error_at_every_severity():
  # sum_s (E - 0.05) = 1.5 - 0.25 = 1.25; sum_s (0.5 - 0.25) = 1.25 -> 100.
  errors = [0.1, 0.2, 0.3, 0.4, 0.5]
  assert metrics.relative_ce(errors, 0.05, "fog", baseline=TOY) == pytest.approx(100.0)
  # Clean error 0.3: sum_s (E - 0.3) = 0 -> 0 (no decline at all).
  assert metrics.relative_ce(errors, 0.3, "fog", baseline=TOY) == pytest.approx(0.0)
  # The section 4.1 formula as printed would give (1.5 - 0.05) / (2.5 - 0.25) = 64.4.
  assert metrics.relative_ce(errors, 0.05, "fog", baseline=TOY) != pytest.approx(100 * 1.45 / 2.25)


def test_means_use_the_15_benchmark_corruptions_only():
  ces = {name: 80.0 for name in BENCH}
  ces.update({name: 500.0 for name in baselines.EXTRA_CORRUPTIONS})
  assert metrics.mce(ces) == 80.0
  assert metrics.relative_mce(ces) == 80.0
  ces["fog"] = 95.0
  assert metrics.mce(ces) == pytest.approx(81.0)


def test_fr_and_t5d_hand_cases():
  assert metrics.fr(0.2365 / 2, "gaussian_noise") == pytest.approx(50.0)
  assert metrics.t5d(2.63 * 1.5, "translate") == pytest.approx(150.0)
  mine = metrics.Baseline(name="my AlexNet", flip_probability={("translate", 2): 0.2},
                          top5_distance={("translate", 2): 4.0})
  assert metrics.fr(0.1, "translate", difficulty=2, baseline=mine) == pytest.approx(50.0)
  assert metrics.t5d(1.0, "translate", difficulty=2, baseline=mine) == pytest.approx(25.0)
  frs = {name: 60.0 for name in baselines.PERTURBATIONS}
  frs["shear"] = 1000.0  # a validation perturbation: not in mFR
  assert metrics.mfr(frs) == 60.0 and metrics.mt5d(frs) == 60.0


# --- published outputs from published inputs ---------------------------------------------------


def relative_from_table1(name, row):
  """Relative CE from a Table 1 CE and clean error: sum_s E_s = CE * sum_s E_s(AlexNet)."""
  ce_value = row.values[name]
  errors = [ce_value / 100 * ALEX_AVG[name]] * 5  # only the sum over severities matters
  return metrics.relative_ce(errors, row.clean_error / 100, name)


def test_table2_headline_cells():
  assert relative_from_table1("gaussian_noise", baselines.TABLE1_CE["ResNet-50"]) == (
      pytest.approx(104, abs=1))
  # CE 134 exactly gives 230.2; Table 1's rounding allows CE in [133.5, 134.5] and clean
  # error in [41.75, 41.85], i.e. 228.1..232.2 before Table 2 rounds to the integer.
  squeezenet_jpeg = relative_from_table1("jpeg_compression", baselines.TABLE1_CE["SqueezeNet"])
  assert squeezenet_jpeg == pytest.approx(230.2, abs=0.05)
  assert abs(squeezenet_jpeg - 229) <= 1.2
  # The formula printed in section 4.1 (clean error subtracted once) does not give Table 2.
  row = baselines.TABLE1_CE["ResNet-50"]
  once = (5 * 0.80 * ALEX_AVG["gaussian_noise"] - 0.239) / (5 * ALEX_AVG["gaussian_noise"] - 0.435)
  assert abs(100 * once - 104) > 15 and row.values["gaussian_noise"] == 80


@pytest.mark.parametrize("network", [n for n in baselines.TABLE1_CE if n != "AlexNet"])
def test_table2_recomputed_from_table1_within_rounding(network):
  t1, t2 = baselines.TABLE1_CE[network], baselines.TABLE2_RELATIVE_CE[network]
  assert t1.clean_error == t2.clean_error
  recomputed = {}
  for name in BENCH:
    recomputed[name] = relative_from_table1(name, t1)
    # Table 1 prints CE to the integer and the clean error to 0.1%: the interval those
    # roundings allow, widened by Table 2's own rounding to the integer.
    ce_value, clean = t1.values[name], t1.clean_error

    def rel(c, e):
      return metrics.relative_ce([c / 100 * ALEX_AVG[name]] * 5, e / 100, name)

    low, high = rel(ce_value - 0.5, clean + 0.05) - 0.5, rel(ce_value + 0.5, clean - 0.05) + 0.5
    assert low <= t2.values[name] <= high, (network, name, recomputed[name], t2.values[name])
    assert abs(recomputed[name] - t2.values[name]) <= 2.0
  assert metrics.relative_mce(recomputed) == pytest.approx(t2.mean, abs=0.5)


@pytest.mark.parametrize("table_name,mean_fn", [
    ("TABLE1_CE", metrics.mce), ("TABLE2_RELATIVE_CE", metrics.relative_mce),
    ("TABLE3_FR", metrics.mfr), ("TABLE4_T5D", metrics.mt5d)])
def test_each_published_mean_is_its_row_mean(table_name, mean_fn):
  for network, row in getattr(baselines, table_name).items():
    if (table_name, network) in baselines.PAPER_TABLE_INCONSISTENCIES:
      # The one row where the paper disagrees with itself, kept as documented data.
      assert (mean_fn(row.values), row.mean) == (pytest.approx(64.4), 65.1)
      continue
    # 15 (or 10) integers each rounded by up to 0.5, a mean printed to 0.1.
    assert mean_fn(row.values) == pytest.approx(row.mean, abs=0.55), (table_name, network)


# --- counts -> figures ---------------------------------------------------------------------------

N_IMAGES = 50_000
N_VIDEOS, N_FRAMES = 10_000, 31  # 30 pairs per video


def alexnet_error_counts(scale=1.0, names=baselines.CORRUPTIONS):
  return {(c, s): metrics.ErrorCounts(errors=round(scale * e * N_IMAGES), examples=N_IMAGES)
          for c in names for s, e in zip(baselines.SEVERITIES, ALEX.corruption_errors(c))}


def alexnet_sequence_counts():
  pairs = N_VIDEOS * (N_FRAMES - 1)
  return {(p, 1): metrics.SequenceCounts(
      frames=N_FRAMES, noise=p in baselines.NOISE_PERTURBATIONS, difficulty=1, videos=N_VIDEOS,
      flips=round(ALEX.flip_probability[(p, 1)] * pairs),
      distance=round(ALEX.top5_distance[(p, 1)] * pairs))
      for p in baselines.PERTURBATIONS}


def test_summarize_alexnet_counts_give_100_everywhere():
  errors = alexnet_error_counts(names=BENCH)
  errors.update(alexnet_error_counts(0.5, baselines.EXTRA_CORRUPTIONS))
  clean = metrics.ErrorCounts(errors=round(0.435 * N_IMAGES), examples=N_IMAGES)
  out = metrics.summarize(errors, clean, alexnet_sequence_counts())
  assert out["clean"] == {"error": 0.435, "examples": N_IMAGES}
  assert out["mce"] == pytest.approx(100.0) and out["relative_mce"] == pytest.approx(100.0)
  assert out["extra_mce"] == pytest.approx(50.0, abs=1e-3)  # reported separately, not in mCE
  fog = out["corruptions"]["fog"]
  assert fog["benchmark"] and fog["examples"] == 5 * N_IMAGES
  assert fog["severities"]["1"] == {"error": 0.67474, "examples": N_IMAGES}
  assert fog["unnormalized_ce"] == pytest.approx(0.819324)
  assert not out["corruptions"]["saturate"]["benchmark"]
  assert out["mfr"]["1"] == pytest.approx(100.0) and out["mt5d"]["1"] == pytest.approx(100.0)
  translate = out["perturbations"]["translate"]["1"]
  assert translate["flip_probability"] == pytest.approx(0.1101)
  assert translate["ut5d"] == pytest.approx(2.63)
  assert translate["pairs"] == N_VIDEOS * 30 and translate["videos"] == N_VIDEOS
  assert "H.264" in translate["baseline_note"]
  assert "source" in out["baseline"]
  assert json.loads(json.dumps(out))["mfr"]["1"] == pytest.approx(100.0)  # results.json-ready


def test_summarize_partial_results_and_difficulty_2_needs_a_measured_baseline():
  errors = alexnet_error_counts(names=("fog",))
  sequences = {("translate", 2): metrics.SequenceCounts(
      frames=41, noise=False, difficulty=2, videos=10, flips=39, distance=390)}
  out = metrics.summarize(errors, None, sequences)
  assert out["mce"] is None and out["relative_mce"] is None and "clean" not in out
  assert out["corruptions"]["fog"]["ce"] == pytest.approx(100.0)
  translate = out["perturbations"]["translate"]["2"]
  assert translate["flip_probability"] == pytest.approx(0.1) and translate["ut5d"] == 1.0
  assert translate["fr"] is None and "difficulty 1" in translate["fr_unavailable"]
  assert out["mfr"] == {"2": None}
  mine = metrics.baseline_from_counts("my AlexNet", sequences=sequences)
  again = metrics.summarize(sequences=sequences, baseline=mine)["perturbations"]["translate"]["2"]
  assert again["fr"] == pytest.approx(100.0) and again["t5d"] == pytest.approx(100.0)


def test_measured_baseline_from_counts_normalises_to_100():
  errors = alexnet_error_counts(0.9, names=BENCH)
  clean = metrics.ErrorCounts(errors=20_000, examples=N_IMAGES)
  mine = metrics.baseline_from_counts("my AlexNet", errors=errors, clean=clean)
  out = metrics.summarize(errors, clean, baseline=mine)
  assert out["mce"] == pytest.approx(100.0) and out["relative_mce"] == pytest.approx(100.0)
  assert out["baseline"]["name"] == "my AlexNet"
  assert metrics.summarize(errors, clean)["mce"] == pytest.approx(90.0, abs=1e-3)
