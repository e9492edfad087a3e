"""A worked example of the paper's metrics on the paper's own published numbers.

  python -m metrics.example

No model is run and no image is corrupted: this pushes the numbers printed in Hendrycks &
Dietterich (ICLR 2019) through ``metrics`` and shows that the published outputs come back.
"""
from __future__ import annotations

import numpy as np

from imagenet_cp import metrics
from imagenet_cp.metrics import baselines

ALEX = metrics.ALEXNET


def _alexnet_section() -> list[str]:
  lines = ["1. AlexNet is the yardstick (CE = 100 by definition). Its per-severity errors, from",
           "   the hendrycks/robustness README history, averaged and normalised by themselves:",
           f"   {'corruption':<18} {'s1':>6} {'s2':>6} {'s3':>6} {'s4':>6} {'s5':>6}"
           f" {'mean':>6} {'appx D':>7} {'CE':>6}"]
  for name in ("gaussian_noise", "glass_blur", "fog", "jpeg_compression", "saturate"):
    errors = ALEX.corruption_errors(name)
    row = " ".join(f"{e:6.3f}" for e in errors)
    paper = baselines.PAPER_ALEXNET_AVERAGE_ERRORS_PERCENT[name]
    lines.append(f"   {name:<18} {row} {100 * np.mean(errors):5.1f}% {paper:6.1f}%"
                 f" {metrics.ce(errors, name):6.1f}")
  lines.append(f"   AlexNet clean error: {100 * ALEX.clean_error:.1f}% (Table 1).")
  return lines


def _relative(name: str, ce_percent: float, clean_percent: float) -> tuple[float, float]:
  """(relative CE with the clean error subtracted at every severity, subtracted once)."""
  average = float(np.mean(ALEX.corruption_errors(name)))
  errors = [ce_percent / 100 * average] * 5  # only sum_s E_s matters
  clean = clean_percent / 100
  every = metrics.relative_ce(errors, clean, name)
  once = 100 * (sum(errors) - clean) / (5 * average - ALEX.clean_error)
  return every, once


def _relative_from_table1(network: str, name: str) -> tuple[float, float]:
  row = baselines.TABLE1_CE[network]
  return _relative(name, row.values[name], row.clean_error)


def _table2_section() -> list[str]:
  lines = ["", "2. Relative CE (Table 2) recomputed from Table 1's CE and clean error:",
           "   relative CE = sum_s (E_s - E_clean) / sum_s (E_s(AlexNet) - E_clean(AlexNet))",
           f"   {'network':<11} {'corruption':<17} {'CE':>4} {'clean':>6} {'recomputed':>11}"
           f" {'Table 2':>8} {'sec. 4.1 as printed':>20}"]
  for network, name in (("ResNet-50", "gaussian_noise"), ("SqueezeNet", "jpeg_compression"),
                        ("VGG-19", "elastic_transform"), ("ResNet-18", "brightness")):
    every, once = _relative_from_table1(network, name)
    row = baselines.TABLE1_CE[network]
    lines.append(f"   {network:<11} {name:<17} {row.values[name]:4.0f} {row.clean_error:5.1f}%"
                 f" {every:11.1f} {baselines.TABLE2_RELATIVE_CE[network].values[name]:8.0f}"
                 f" {once:20.1f}")
  low = _relative("jpeg_compression", 133.5, 41.85)[0]
  high = _relative("jpeg_compression", 134.5, 41.75)[0]
  lines += ["   Table 1 rounds CE to integers, so recomputed cells agree within that rounding",
            "   (e.g. SqueezeNet JPEG: CE 133.5-134.5, clean 41.75-41.85% allow"
            f" {low:.1f}-{high:.1f}).",
            "   The section 4.1 formula as printed subtracts the clean error once and does not",
            "   reproduce Table 2.",
            f"   {'network':<11} {'relative mCE (recomputed)':>26} {'Table 2':>8}"]
  for network in ("SqueezeNet", "VGG-19+BN", "ResNet-50"):
    recomputed = metrics.relative_mce(
        {n: _relative_from_table1(network, n)[0] for n in baselines.BENCHMARK_CORRUPTIONS})
    published = baselines.TABLE2_RELATIVE_CE[network].mean
    lines.append(f"   {network:<11} {recomputed:26.1f} {published:8.1f}")
  return lines


def _means_section() -> list[str]:
  lines = ["", "3. Each published mean is the mean of its row (15 benchmark corruptions for mCE,",
           "   10 test perturbations for mFR / mT5D; the extra ones are never mixed in):",
           f"   {'network':<11} {'mCE':>12} {'mFR':>12} {'mT5D':>12}   (row mean / printed)"]
  for network in baselines.TABLE1_CE:
    cells = []
    for table, mean_fn in ((baselines.TABLE1_CE, metrics.mce), (baselines.TABLE3_FR, metrics.mfr),
                           (baselines.TABLE4_T5D, metrics.mt5d)):
      row = table[network]
      cells.append(f"{mean_fn(row.values):5.1f}/{row.mean:5.1f}")
    lines.append(f"   {network:<11} " + " ".join(f"{c:>12}" for c in cells))
  for (table, network), what in baselines.PAPER_TABLE_INCONSISTENCIES.items():
    lines.append(f"   Note, {table} {network}: {what}")
    lines.append("   (an inconsistency in the paper itself).")
  return lines


def _distance_section() -> list[str]:
  lines = ["", "4. Top-5 distance d (appendix C): sigma(i) = rank in frame b of the class ranked i",
           "   in the reference frame a (logits built to realise each sigma over 10 classes,",
           "   then metrics.top5_distance):"]
  examples = baselines.PAPER_APPENDIX_C_DISTANCES
  num_classes = 10
  a = np.arange(num_classes, 0, -1, dtype=np.float32)
  b = np.stack([num_classes - np.asarray(sigma, np.float32) for sigma, _ in examples])
  distances = np.asarray(metrics.top5_distance(np.broadcast_to(a, b.shape), b))
  for (sigma, printed), d in zip(examples, distances):
    shown = "(" + ", ".join(map(str, sigma)) + ")"
    lines.append(f"   sigma = {shown:<34} d = {int(d):2d}   (appendix C: {printed})")
  return lines


def _streaming_section() -> list[str]:
  # Three hand-made videos of top-1 predictions, streamed in two batches (the second padded).
  videos = np.array([[0, 1, 1, 1, 0], [2, 2, 2, 2, 2], [3, 4, 3, 4, 3]], np.int32)
  first = metrics.sequence_counts(videos[:2], noise=False, difficulty=1)
  padded = np.concatenate([videos[2:], np.full((1, 5), 9, np.int32)])
  second = metrics.sequence_counts(padded, noise=False, difficulty=1,
                                   mask=np.array([True, False]))
  total = (first + second).host()
  per_video = [float(np.mean(v[1:] != v[:-1])) for v in videos]
  return ["", "5. Streaming counts: 3 hand-made prediction sequences in 2 batches (one padded):",
          f"   flips {total.flips} / pairs {total.pairs} = FP {total.flip_probability:.4f};"
          f" mean of per-video FPs {per_video} = {np.mean(per_video):.4f}",
          "   FR against AlexNet's translate FP"
          f" {100 * ALEX.flip_probability[('translate', 1)]:.2f}%:"
          f" {metrics.fr(total.flip_probability, 'translate'):.1f}%"
          " (toy numbers; the AlexNet FP/uT5D were",
          "   measured on the released lossy H.264 ImageNet-P videos, difficulty 1 only)."]


def report() -> str:
  lines = ["Worked example of the ImageNet-C / ImageNet-P metrics (Hendrycks & Dietterich,",
           "ICLR 2019) on the paper's published numbers. No model is run and no image is",
           "corrupted here.", ""]
  lines += _alexnet_section() + _table2_section() + _means_section()
  lines += _distance_section() + _streaming_section()
  return "\n".join(lines)


def main() -> None:
  print(report())


if __name__ == "__main__":
  main()
