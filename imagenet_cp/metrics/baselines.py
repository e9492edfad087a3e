"""AlexNet baselines and the paper's published tables, as data with their sources.

The paper (Hendrycks & Dietterich, ICLR 2019) normalises every corruption and perturbation
figure by AlexNet's.  The original evaluation code (hendrycks/robustness ``ImageNet-C/test.py``,
``ImageNet-P/test.py``) prints only raw errors, flip probabilities and distances; the AlexNet
constants live in the paper and in the repository's README history:

* Per-corruption, per-severity AlexNet top-1 errors on the released ImageNet-C JPEGs:
  hendrycks/robustness ``README.md`` from commit 76d9393 (2019-10-10, PR #20 "Add AlexNet
  errors on ImageNet-C") until 5aa129e (2020-05-05), which replaced the table by a link to a
  spreadsheet.  Each printed average equals the mean of its five severities; the 15 averages
  match ``ALEXNET_ERR`` in google-research/augmix ``imagenet.py`` and, rounded to 0.1%, the
  values listed in the paper's appendix D.
* AlexNet clean top-1 error 43.5%: the paper's Table 1 (torchvision's AlexNet is 43.48%).
* AlexNet flip probabilities and uT5D per perturbation: the paper's appendix E, difficulty 1
  only, measured on the released ImageNet-P videos, which are lossy H.264 MP4 files.  A model
  evaluated on regenerated (lossless) sequences is therefore compared with a baseline measured
  on different pixels; every FR and T5D built on these values says so (``ALEXNET.note``).
  FR and T5D at difficulty 2 or 3 need a baseline the user measured (``Baseline``).

The paper's Tables 1-4 are kept here too (rounded as printed) so that tests and
``python -m metrics.example`` can recompute published outputs from published inputs.
"""
from __future__ import annotations

import dataclasses
import math
import types
from typing import Mapping

# The names every table is indexed by, in the paper's order, and the level checks: the data
# side's own, so the metrics accept exactly the severities and difficulties it generates.
from imagenet_cp.corruptions import (
    BENCHMARK_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES, check_severity)
from imagenet_cp.perturbations import (  # NOISE_PERTURBATIONS are compared with frame 0
    DIFFICULTIES, NOISE_PERTURBATIONS, PERTURBATIONS, TEST_PERTURBATIONS,
    VALIDATION_PERTURBATIONS, check_difficulty)
from imagenet_cp.metrics.ranking import MAX_TOP5_DISTANCE

ALEXNET_ERRORS_SOURCE = (
    "hendrycks/robustness README.md, commits 76d9393 (2019-10-10, PR #20) to 5aa129e "
    "(2020-05-05): AlexNet top-1 errors on the released ImageNet-C JPEGs")
ALEXNET_CLEAN_SOURCE = "Hendrycks & Dietterich (ICLR 2019), Table 1: AlexNet clean error 43.5%"
ALEXNET_P_SOURCE = (
    "Hendrycks & Dietterich (ICLR 2019), appendix E: AlexNet FP and uT5D, difficulty 1")
ALEXNET_P_NOTE = (
    "AlexNet FP/uT5D from the paper's appendix E (difficulty 1), measured on the released "
    "ImageNet-P videos, which are lossy H.264; sequences regenerated here are not those pixels")

# AlexNet top-1 error per corruption, severities 1..5 (fractions).
_ALEXNET_ERRORS = {
    "gaussian_noise": (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    "shot_noise": (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    "impulse_noise": (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    "defocus_blur": (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    "glass_blur": (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    "motion_blur": (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    "zoom_blur": (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    "snow": (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    "frost": (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    "fog": (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    "brightness": (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    "contrast": (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    "elastic_transform": (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    "pixelate": (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    "jpeg_compression": (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
    "speckle_noise": (0.66192, 0.74440, 0.90246, 0.94548, 0.97268),
    "gaussian_blur": (0.54732, 0.70444, 0.82574, 0.89864, 0.95940),
    "spatter": (0.47196, 0.62194, 0.75052, 0.84132, 0.90182),
    "saturate": (0.59342, 0.65514, 0.51174, 0.70834, 0.82260),
}

# The README's "Average" column, kept to check the per-severity rows against.
ALEXNET_AVERAGE_ERRORS = types.MappingProxyType({
    "gaussian_noise": 0.886428, "shot_noise": 0.894468, "impulse_noise": 0.922640,
    "defocus_blur": 0.819880, "glass_blur": 0.826268, "motion_blur": 0.785948,
    "zoom_blur": 0.798360, "snow": 0.866816, "frost": 0.826572, "fog": 0.819324,
    "brightness": 0.564592, "contrast": 0.853204, "elastic_transform": 0.646056,
    "pixelate": 0.717840, "jpeg_compression": 0.606500, "speckle_noise": 0.845388,
    "gaussian_blur": 0.787108, "spatter": 0.717512, "saturate": 0.658248,
})

# Appendix D: (1/5) sum_s E_s,c(AlexNet) in percent, as printed (one decimal).
PAPER_ALEXNET_AVERAGE_ERRORS_PERCENT = types.MappingProxyType({
    "gaussian_noise": 88.6, "shot_noise": 89.4, "impulse_noise": 92.3, "defocus_blur": 82.0,
    "glass_blur": 82.6, "motion_blur": 78.6, "zoom_blur": 79.8, "snow": 86.7, "frost": 82.7,
    "fog": 81.9, "brightness": 56.5, "contrast": 85.3, "elastic_transform": 64.6,
    "pixelate": 71.8, "jpeg_compression": 60.7, "speckle_noise": 84.5, "gaussian_blur": 78.7,
    "spatter": 71.8, "saturate": 65.8,
})

# Appendix E: FP (in percent, as printed) and uT5D of AlexNet at difficulty 1.
_ALEXNET_FP_PERCENT = {
    "gaussian_noise": 23.65, "shot_noise": 30.06, "motion_blur": 9.30, "zoom_blur": 5.94,
    "snow": 11.93, "brightness": 4.89, "translate": 11.01, "rotate": 13.10, "tilt": 7.05,
    "scale": 23.53, "speckle_noise": 18.65, "gaussian_blur": 2.78, "spatter": 5.05,
    "shear": 10.66,
}
_ALEXNET_UT5D = {
    "gaussian_noise": 4.77, "shot_noise": 5.76, "motion_blur": 1.93, "zoom_blur": 1.34,
    "snow": 2.42, "brightness": 1.19, "translate": 2.63, "rotate": 2.95, "tilt": 1.75,
    "scale": 4.48, "speckle_noise": 3.89, "gaussian_blur": 0.70, "spatter": 1.26,
    "shear": 2.48,
}


@dataclasses.dataclass(frozen=True)
class Baseline:
  """The network every CE, FR and T5D is divided by (AlexNet in the paper).

  Attributes:
    name: what network this is, e.g. ``"AlexNet"``.
    errors: top-1 error (fraction in [0, 1]) per ``(corruption, severity)``.
    clean_error: top-1 error on the clean images (fraction), for relative CE.
    flip_probability: FP (fraction in [0, 1]) per ``(perturbation, difficulty)``.
    top5_distance: uT5D (mean top-5 distance, in [0, 18]) per ``(perturbation, difficulty)``.
    source: where the numbers come from.
    note: printed next to every FR and T5D normalised by this baseline.
  """
  name: str
  errors: Mapping[tuple[str, int], float] = dataclasses.field(default_factory=dict)
  clean_error: float | None = None
  flip_probability: Mapping[tuple[str, int], float] = dataclasses.field(default_factory=dict)
  top5_distance: Mapping[tuple[str, int], float] = dataclasses.field(default_factory=dict)
  source: str = "measured by the user"
  note: str = ""

  def __post_init__(self):
    for (name, severity), value in self.errors.items():
      check_corruption(name)
      check_severity(severity)
      check_fraction(value, f"{self.name} error on {name} severity {severity}")
    if self.clean_error is not None:
      check_fraction(self.clean_error, f"{self.name} clean error")
    for table, what, upper in ((self.flip_probability, "flip probability", 1.0),
                               (self.top5_distance, "uT5D", MAX_TOP5_DISTANCE)):
      for (name, difficulty), value in table.items():
        check_perturbation(name)
        check_difficulty(difficulty)
        check_fraction(value, f"{self.name} {what} on {name} difficulty {difficulty}", upper)

  def corruption_errors(self, corruption: str) -> tuple[float, ...]:
    """The five per-severity errors of ``corruption``, else a ValueError saying what is missing."""
    check_corruption(corruption)
    missing = [s for s in SEVERITIES if (corruption, s) not in self.errors]
    if missing:
      raise ValueError(
          f"baseline {self.name!r} has no error for {corruption} at severities {missing}")
    return tuple(self.errors[(corruption, s)] for s in SEVERITIES)

  def require_clean_error(self) -> float:
    if self.clean_error is None:
      raise ValueError(f"baseline {self.name!r} has no clean error (needed for relative CE)")
    return self.clean_error

  def perturbation_value(self, kind: str, perturbation: str, difficulty: int) -> float:
    """FP (``kind="fp"``) or uT5D (``kind="ut5d"``) of the baseline, else a clear ValueError."""
    check_perturbation(perturbation)
    check_difficulty(difficulty)
    table = {"fp": self.flip_probability, "ut5d": self.top5_distance}[kind]
    key = (perturbation, difficulty)
    if key not in table:
      raise ValueError(
          f"baseline {self.name!r} has no {kind.upper()} for {perturbation} at difficulty "
          f"{difficulty}; the paper publishes AlexNet's at difficulty 1 only: pass "
          "baseline=metrics.Baseline(...) with values you measured (e.g. Baseline.from_counts)")
    return table[key]


def check_corruption(name) -> str:
  if name not in CORRUPTIONS:
    raise ValueError(f"unknown corruption {name!r}; expected one of {', '.join(CORRUPTIONS)}")
  return name


def check_perturbation(name) -> str:
  if name not in PERTURBATIONS:
    raise ValueError(
        f"unknown perturbation {name!r}; expected one of {', '.join(PERTURBATIONS)}")
  return name


def check_fraction(value, what: str, upper: float = 1.0) -> float:
  """``value`` as a float in [0, upper] (errors and probabilities), else ValueError."""
  try:
    value = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{what} must be a number in [0, {upper:g}], got {value!r}") from None
  if math.isnan(value) or not 0.0 <= value <= upper:
    raise ValueError(f"{what} must be in [0, {upper:g}], got {value}")
  return value


ALEXNET = Baseline(
    name="AlexNet",
    errors=types.MappingProxyType({
        (c, s): e for c, row in _ALEXNET_ERRORS.items() for s, e in zip(SEVERITIES, row)}),
    clean_error=0.435,
    flip_probability=types.MappingProxyType({
        (p, 1): v / 100 for p, v in _ALEXNET_FP_PERCENT.items()}),
    top5_distance=types.MappingProxyType({(p, 1): v for p, v in _ALEXNET_UT5D.items()}),
    source="; ".join((ALEXNET_ERRORS_SOURCE, ALEXNET_CLEAN_SOURCE, ALEXNET_P_SOURCE)),
    note=ALEXNET_P_NOTE,
)

# ---------------------------------------------------------------------------------------------
# The paper's tables, as printed (percent; CE rounded to integers, means to one decimal).

PAPER_TABLES_SOURCE = "Hendrycks & Dietterich (ICLR 2019), Tables 1-4 (appendices D and E)"


@dataclasses.dataclass(frozen=True)
class PaperRow:
  """One network's row of a paper table: clean error, the mean, and the per-column values."""
  clean_error: float      # percent
  mean: float             # mCE / relative mCE / mFR / mT5D, percent
  values: Mapping[str, float]   # per corruption or perturbation, percent


def _rows(columns, table):
  return types.MappingProxyType({
      net: PaperRow(err, mean, types.MappingProxyType(dict(zip(columns, vals, strict=True))))
      for net, (err, mean, vals) in table.items()})


# Table 1: Corruption Error and mCE on ImageNet-C (15 benchmark corruptions).
TABLE1_CE = _rows(BENCHMARK_CORRUPTIONS, {
    "AlexNet": (43.5, 100.0, [100] * 15),
    "SqueezeNet": (41.8, 104.4,
        [107, 106, 105, 100, 103, 101, 100, 101, 103, 97, 97, 98, 106, 109, 134]),
    "VGG-11": (31.0, 93.5, [97, 97, 100, 92, 99, 93, 91, 92, 91, 84, 75, 86, 97, 107, 100]),
    "VGG-19": (27.6, 88.9, [89, 91, 95, 89, 98, 90, 90, 89, 86, 75, 68, 80, 97, 102, 94]),
    "VGG-19+BN": (25.8, 81.6, [82, 83, 88, 82, 94, 84, 86, 80, 78, 69, 61, 74, 94, 85, 83]),
    "ResNet-18": (30.2, 84.7, [87, 88, 91, 84, 91, 87, 89, 86, 84, 78, 69, 78, 90, 80, 85]),
    "ResNet-50": (23.9, 76.7, [80, 82, 83, 75, 89, 78, 80, 78, 75, 66, 57, 71, 85, 77, 77]),
})

# Table 2 (appendix D): Relative CE and relative mCE.
TABLE2_RELATIVE_CE = _rows(BENCHMARK_CORRUPTIONS, {
    "AlexNet": (43.5, 100.0, [100] * 15),
    "SqueezeNet": (41.8, 117.9,
        [118, 116, 114, 104, 110, 106, 105, 106, 110, 98, 101, 100, 126, 129, 229]),
    "VGG-11": (31.0, 123.3,
        [122, 121, 125, 116, 129, 121, 115, 114, 113, 99, 86, 102, 151, 161, 174]),
    "VGG-19": (27.6, 122.9,
        [114, 117, 122, 118, 136, 123, 122, 114, 111, 88, 82, 98, 165, 161, 172]),
    "VGG-19+BN": (25.8, 111.1,
        [104, 105, 114, 108, 132, 114, 119, 102, 100, 79, 68, 89, 165, 125, 144]),
    "ResNet-18": (30.2, 103.9,
        [104, 106, 111, 100, 116, 108, 112, 103, 101, 89, 67, 87, 133, 97, 126]),
    "ResNet-50": (23.9, 105.0,
        [104, 107, 107, 97, 126, 107, 110, 101, 97, 79, 62, 89, 146, 111, 132]),
})

# Table 3 (appendix E): Flip Rate and mFR on ImageNet-P (10 test perturbations, difficulty 1).
TABLE3_FR = _rows(TEST_PERTURBATIONS, {
    "AlexNet": (43.5, 100.0, [100] * 10),
    "SqueezeNet": (41.8, 112.6, [147, 140, 109, 109, 105, 110, 101, 103, 109, 93]),
    "VGG-11": (31.0, 74.9, [89, 90, 85, 84, 80, 76, 52, 64, 69, 59]),
    "VGG-19": (27.6, 66.9, [75, 76, 82, 84, 73, 74, 41, 54, 60, 49]),
    "VGG-19+BN": (25.8, 65.1, [67, 66, 75, 86, 70, 72, 45, 56, 56, 51]),
    "ResNet-18": (30.2, 72.8, [74, 73, 75, 85, 75, 78, 63, 66, 73, 66]),
    "ResNet-50": (23.9, 58.0, [59, 58, 64, 72, 63, 62, 44, 52, 57, 48]),
})

# Appendix C's worked examples: sigma (ranks in b of the classes ranked 1, 2, ... in a) -> d.
PAPER_APPENDIX_C_DISTANCES = (
    ((1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0),
    ((2, 1, 3, 4, 5, 6, 7, 8, 9, 10), 2),
    ((3, 1, 2, 4, 5, 6, 7, 8, 9, 10), 4),
    ((2, 3, 4, 5, 6, 7, 8, 9, 10, 1), 5),
    ((1, 2, 3, 4, 6, 5, 7, 8, 9, 10), 1),
    ((1, 2, 3, 4, 6, 7, 5, 8, 9, 10), 1),
    ((1, 2, 3, 5, 6, 4, 7, 8, 9, 10), 2),
    ((5, 4, 3, 2, 1, 6, 7, 8, 9, 10), 12),
)

# Where the paper's tables disagree with themselves (found by recomputing the row means).
PAPER_TABLE_INCONSISTENCIES = types.MappingProxyType({
    ("TABLE3_FR", "VGG-19+BN"): "the ten printed Flip Rates average 64.4; the printed mFR is 65.1",
})

# Table 4 (appendix E): Top-5 Distance and mT5D.
TABLE4_T5D = _rows(TEST_PERTURBATIONS, {
    "AlexNet": (43.5, 100.0, [100] * 10),
    "SqueezeNet": (41.8, 112.9, [139, 133, 109, 111, 107, 112, 104, 106, 111, 98]),
    "VGG-11": (31.0, 83.9, [98, 97, 93, 90, 87, 85, 63, 75, 79, 71]),
    "VGG-19": (27.6, 78.6, [89, 88, 92, 93, 82, 86, 53, 67, 74, 62]),
    "VGG-19+BN": (25.8, 80.5, [85, 82, 90, 97, 84, 88, 61, 72, 80, 66]),
    "ResNet-18": (30.2, 87.0, [89, 87, 89, 95, 88, 92, 78, 82, 89, 80]),
    "ResNet-50": (23.9, 78.3, [82, 79, 84, 89, 80, 84, 64, 73, 80, 67]),
})
