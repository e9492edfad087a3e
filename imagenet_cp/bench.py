r"""Speed benchmark: our jitted corruptions against the original code, same process, same machine.

  python -m imagenet_cp.bench                                 # all 19 corruptions x 5 severities
  python -m imagenet_cp.bench --corruptions=fog,contrast --severities=1,3 --batch=32
  python -m imagenet_cp.bench --suite=all                     # also ImageNet-P, if benchmarked
  python -m imagenet_cp.bench --size=32                       # CIFAR-10-C's set (also 64, 299)
  python -m imagenet_cp.bench --suite=augment --batch=32      # random_corrupt vs corrupt
  python -m imagenet_cp.bench --suite=p --benchmark=cifar     # a -P set (imagenet299,
                                                              # tiny_imagenet, imagenet64)

OURS: ``imagenet_cp.corrupt`` on a batch of real photo crops (scikit-image's sample photos through
``imagenet_cp.corruption_input``, which brings them to the input of that size's script) with one
key per image, warmed up first so compilation is excluded (its time is reported separately), timed
to ``block_until_ready``. REFERENCE: the original Hendrycks code, one image at a time, on a few of
the same crops: at 224 the package through ``imagenet_cp.oracles.corruptions.run_original``, at the
other sizes that size's script (``make_cifar_c.py``, ``make_tinyimagenet_c.py``,
``make_imagenet_c_inception.py``) through ``imagenet_cp.oracles.corruptions_sizes.run_original``.
Throughput is images per wall-clock second; the suite figure is total images / total time of each
side over the corruptions both sides ran. CPU time (``time.process_time``, all threads of the
process) is reported too: on a shared machine it is much less noisy than wall time, and its ratio
is the work ratio (ours may spread its work over several cores, the reference mostly runs on
one). The reference needs the test extra.
"""
from __future__ import annotations

import dataclasses
import importlib
import statistics
import time
from typing import Callable, Sequence

from absl import app, flags
import numpy as np

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "immunohistochemistry", "hubble_deep_field")

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program, so that
  importing it beside another entry point (imagenet_cp.run, a test) defines no flag twice."""
  flags.DEFINE_list("corruptions", None, "Corruption names (default: all 19).")
  flags.DEFINE_list("severities", ["1", "2", "3", "4", "5"], "Severities to time.")
  flags.DEFINE_integer("batch", 16, "Images per call of ours.")
  flags.DEFINE_integer("repeats", 3, "Least timed calls of ours per (corruption, severity) (more until "
                       "they add up to 0.2 s); the median counts.")
  flags.DEFINE_integer("ref_images", 3, "Images the reference corrupts per (corruption, severity).")
  flags.DEFINE_enum("suite", "c", ["c", "p", "all", "augment"],
                    "ImageNet-C, ImageNet-P, both, or random_corrupt against corrupt "
                    "(imagenet_cp.bench_augment).")
  flags.DEFINE_bool("augment_switch", True, "--suite=augment: also time the naive vmap of a "
                    "lax.switch over the 19 corruptions (slow to compile).")
  flags.DEFINE_enum("size", "224", ["32", "64", "224", "299"],
                    "Image size, which selects the original's constant set (ImageNet-C only).")
  flags.DEFINE_enum("benchmark", "imagenet",
                    ["imagenet", "imagenet299", "tiny_imagenet", "imagenet64", "cifar"],
                    "The -P set: its constants, inputs and original script (ImageNet-P only).")


def time_call(fn: Callable[[], object], repeats: int = 3, min_seconds: float = 0.0,
              max_calls: int = 200, cpu: bool = False):
  """Median wall seconds of ``fn()`` (results blocked until ready); with ``cpu``, the pair
  (median wall seconds, median CPU seconds of the process).

  Calls ``fn`` at least ``repeats`` times, and more (up to ``max_calls``) until the calls add up
  to ``min_seconds``, so that millisecond kernels are not timed from a handful of samples.
  """
  import jax
  times, cpu_times = [], []
  while len(times) < max(1, repeats) or (sum(times) < min_seconds and len(times) < max_calls):
    start, start_cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
    cpu_times.append(time.process_time() - start_cpu)
  if cpu:
    return statistics.median(times), statistics.median(cpu_times)
  return statistics.median(times)


def photos_224(n: int) -> np.ndarray:
  """uint8 [n, 224, 224, 3]: scikit-image sample photos, Resize(256) + CenterCrop(224), cycled."""
  return photos(n, 224)


def photos(n: int, size: int) -> np.ndarray:
  """uint8 [n, size, size, 3]: scikit-image sample photos brought to the size's input
  (``imagenet_cp.corruption_input``), cycled."""
  import skimage.data
  from imagenet_cp.preprocess import corruption_input
  crops = [corruption_input(np.asarray(getattr(skimage.data, p)()), size) for p in PHOTOS]
  return np.stack([crops[i % len(crops)] for i in range(n)])


@dataclasses.dataclass
class Row:
  """One (corruption, severity) cell, or a sum of cells. Times in seconds."""
  name: str
  severity: str
  ours_images: int = 0
  ours_s: float = 0.0
  ref_images: int = 0
  ref_s: float = 0.0
  compile_s: float = 0.0
  ours_cpu_s: float = 0.0
  ref_cpu_s: float = 0.0

  @property
  def ours_ips(self) -> float:
    return self.ours_images / self.ours_s if self.ours_s else float("nan")

  @property
  def ref_ips(self) -> float:
    return self.ref_images / self.ref_s if self.ref_s else float("nan")

  @property
  def ratio(self) -> float:
    return self.ours_ips / self.ref_ips

  @property
  def ours_cpu_ms(self) -> float:
    return 1e3 * self.ours_cpu_s / self.ours_images if self.ours_cpu_s else float("nan")

  @property
  def ref_cpu_ms(self) -> float:
    return 1e3 * self.ref_cpu_s / self.ref_images if self.ref_cpu_s else float("nan")

  @property
  def cpu_ratio(self) -> float:
    return self.ref_cpu_ms / self.ours_cpu_ms

  def __add__(self, other: "Row") -> "Row":
    return Row(self.name, "all", self.ours_images + other.ours_images, self.ours_s + other.ours_s,
               self.ref_images + other.ref_images, self.ref_s + other.ref_s,
               self.compile_s + other.compile_s, self.ours_cpu_s + other.ours_cpu_s,
               self.ref_cpu_s + other.ref_cpu_s)


def time_ours(name: str, severity: int, images, file_names,
              repeats: int) -> tuple[float, float, float]:
  """(wall seconds per batch warm, seconds of the first call minus a warm call ~ compile, CPU
  seconds per batch warm)."""
  import jax
  import imagenet_cp
  keys = imagenet_cp.example_keys(0, name, severity, file_names)
  fn = lambda: imagenet_cp.corrupt(images, name, severity, keys)  # noqa: E731
  start = time.perf_counter()
  jax.block_until_ready(fn())
  first = time.perf_counter() - start
  warm, warm_cpu = time_call(fn, repeats, min_seconds=0.2, cpu=True)
  return warm, max(first - warm, 0.0), warm_cpu


def time_reference(name: str, severity: int, images: np.ndarray,
                   warm_up: bool = False) -> tuple[float, float]:
  """(wall, CPU) seconds for the original to corrupt ``images`` one at a time (np.uint8 output
  included): the package at 224, the size's script otherwise."""
  if images.shape[1] == 224:
    from imagenet_cp.oracles import corruptions as reference
  else:
    from imagenet_cp.oracles import corruptions_sizes as reference
  np.random.seed(0)
  if warm_up:  # first-call costs (imports, library caches, frost file reads) are not throughput
    reference.run_original(name, images[0], severity)
  start, start_cpu = time.perf_counter(), time.process_time()
  for image in images:
    reference.run_original(name, image, severity)
  return time.perf_counter() - start, time.process_time() - start_cpu


def bench_corruptions(names: Sequence[str], severities: Sequence[int], batch: int, repeats: int,
                      ref_images: int, reference: bool = True, size: int = 224) -> list[Row]:
  """Rows per (corruption, severity); unimplemented corruptions are skipped with a note."""
  import jax.numpy as jnp
  from imagenet_cp import corruptions
  host = photos(max(batch, ref_images), size)
  images = jnp.asarray(host[:batch])
  file_names = [f"bench_{i}.JPEG" for i in range(batch)]
  rows = []
  for name in names:
    try:
      corruptions.get(name)
    except NotImplementedError:
      print(f"{name:<18} skipped: not implemented yet")
      continue
    for i, s in enumerate(severities):
      warm, compile_s, warm_cpu = time_ours(name, s, images, file_names, repeats)
      row = Row(name, str(s), batch, warm, compile_s=compile_s, ours_cpu_s=warm_cpu)
      if reference:
        row.ref_images = ref_images
        row.ref_s, row.ref_cpu_s = time_reference(name, s, host[:ref_images], warm_up=i == 0)
      rows.append(row)
      print(f"  {_fmt(row)}", flush=True)
  return rows


_HEADER = (f"{'corruption':<18} {'sev':>3} {'ours img/s':>11} {'ref img/s':>10} {'ratio':>8} "
           f"{'compile s':>9} {'ours cpu ms':>11} {'ref cpu ms':>10} {'cpu ratio':>9}")


def _fmt(row: Row) -> str:
  flag = "  SLOWER than reference" if row.ratio < 1 else ""
  return (f"{row.name:<18} {row.severity:>3} {row.ours_ips:>11.1f} {row.ref_ips:>10.2f} "
          f"{row.ratio:>7.1f}x {row.compile_s:>9.2f} {row.ours_cpu_ms:>11.3f} "
          f"{row.ref_cpu_ms:>10.3f} {row.cpu_ratio:>8.1f}x{flag}")


def summarize(rows: Sequence[Row]) -> str:
  """Per-cell table, per-corruption sums (over severities) and the whole-suite ratio."""
  if not rows:
    return "no corruption was benchmarked"
  per_name: dict[str, Row] = {}
  for row in rows:
    per_name[row.name] = per_name.get(row.name, Row(row.name, "all")) + row
  cells = len(rows)
  total = sum(rows, Row(f"SUITE ({cells} cells)", "all"))
  lines = ["per (corruption, severity):", _HEADER] + [_fmt(r) for r in rows]
  lines += ["", "per corruption (all severities; compile = sum over severities):", _HEADER]
  lines += [_fmt(r) for r in per_name.values()]
  lines += ["", f"suite: {len(per_name)} corruptions, {cells} (corruption, severity) cells",
            _fmt(total),
            f"ours: {total.ours_images} images in {total.ours_s:.4f} s; reference: "
            f"{total.ref_images} images in {total.ref_s:.3f} s; "
            f"slower than reference: {sum(r.ratio < 1 for r in per_name.values())} corruption(s); "
            f"CPU time: ours {total.ours_cpu_ms:.2f} ms/image, reference {total.ref_cpu_ms:.1f} "
            f"ms/image for one cell on average ({total.cpu_ratio:.1f}x)"]
  return "\n".join(lines)


def bench_perturbations(benchmark: str = "imagenet") -> None:
  try:
    module = importlib.import_module("imagenet_cp.perturbations.bench")
  except ModuleNotFoundError as e:
    if e.name != "imagenet_cp.perturbations.bench":
      raise
    print("ImageNet-P: skipped (imagenet_cp.perturbations.bench does not exist yet)")
    return
  for row in module.main_rows(benchmark=benchmark):
    print(row)


def describe_machine() -> str:
  import os
  import jax
  return (f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}, "
          f"{os.cpu_count()} CPU(s)")


def main(argv):
  del argv
  from imagenet_cp.corruptions import CORRUPTIONS
  print(describe_machine())
  if FLAGS.suite in ("c", "all"):
    names = FLAGS.corruptions or list(CORRUPTIONS)
    unknown = sorted(set(names) - set(CORRUPTIONS))
    if unknown:
      raise app.UsageError(f"unknown corruptions {unknown}")
    severities = [int(s) for s in FLAGS.severities]
    from imagenet_cp.corruptions import sizes
    size = sizes.constants(int(FLAGS.size))
    print(f"ImageNet-C at {size.size}x{size.size} ({size.dataset}, {size.script}): batch "
          f"{FLAGS.batch}, {FLAGS.repeats} repeats (median), reference on {FLAGS.ref_images} "
          "image(s) per cell")
    rows = bench_corruptions(names, severities, FLAGS.batch, FLAGS.repeats, FLAGS.ref_images,
                             size=size.size)
    print()
    print(summarize(rows))
  if FLAGS.suite in ("p", "all"):
    bench_perturbations(FLAGS.benchmark)
  if FLAGS.suite == "augment":
    from imagenet_cp.bench_augment import bench_augment
    bench_augment(FLAGS.batch, int(FLAGS.size), FLAGS.repeats, FLAGS.augment_switch)


if __name__ == "__main__":
  define_flags()
  app.run(main)
