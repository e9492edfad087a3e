r"""One command for accelerators: throughput on the devices JAX sees, and what it implies.

  python -m launch.device_bench                 # 19 corruptions x 5, 14 sequences, resnet50
  python -m launch.device_bench --models=resnet50,vgg19_bn,densenet121 --output=device_bench.md
  python -m launch.device_bench --corruptions=fog,snow --severities=3 --sequences=rotate \
      --batch=8 --sequence_batch=2 --model_batch=8 --models=resnet18 --estimate_model=resnet18

Measures on ``jax.devices()`` (one process; every batch is rounded up to a multiple of the device
count and sharded along its leading axis over a 1-D mesh of all of them):

  (a) ImageNet-C: ``imagenet_cp.corrupt(images, name, severity, keys)`` on a batch of real photo
      crops (scikit-image's samples, Resize(256) + CenterCrop(224)) with one key per image
      (``imagenet_cp.example_keys``), images/s per (corruption, severity); also the release's
      JPEG q85 stage (``imagenet_cp.release_jpeg``), which the evaluation applies to every
      corrupted image;
  (b) ImageNet-P: ``imagenet_cp.perturb_batch`` (the batched ``perturb``: Resize(256) photos of
      three shapes on one padded canvas, ``pad_to_canvas``), sequences/s per sequence;
  (c) models: zoo models with random weights (nothing is downloaded) through
      ``models.parallel.DataParallel`` on uint8 pixels, as the evaluation feeds them, images/s;
  (d) the implied wall time of a full evaluation of ``--estimate_model`` on these devices, with
      the accounting of ``metrics.bench`` (docs/speed.md): ImageNet-C = 50,000 images x (clean +
      75 benchmark configs), each corrupted image costing corruption + release JPEG + model, the
      clean ones the model only (also for all 19 x 5 configs); ImageNet-P = 50,000 videos of each
      of the 10 test sequences, each costing its generation + one model call per frame.  Costs
      not measured (unlisted corruptions or sequences) are the mean of the measured ones, and the
      table says how many that was.

Inputs are placed on the devices once, so host-to-device copies and image decoding are not in
the figures.  Every timed call blocks on its result (``block_until_ready``); the first call of
each program (compile + one run) is timed apart and reported as warm-up, then the median of at
least ``--repeats`` warm calls (more until they add up to ``--min_seconds``) counts.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import statistics
import sys
import time
from typing import Callable, Sequence

from absl import app, flags
import numpy as np

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program, so that
  importing it beside another entry point (imagenet_cp.run, a test) defines no flag twice."""
  flags.DEFINE_list("corruptions", None, "ImageNet-C corruptions (default: all 19).")
  flags.DEFINE_list("severities", ["1", "2", "3", "4", "5"], "Severities to time.")
  flags.DEFINE_list("sequences", None, "ImageNet-P sequences (default: all 14).")
  flags.DEFINE_list("models", ["resnet50"], "Zoo models to time (random weights).")
  flags.DEFINE_string("estimate_model", "resnet50",
                      "Model of the full-evaluation estimate (timed even if not in --models).")
  flags.DEFINE_integer("batch", 0, "Images per corrupt call (0: 256 on accelerators, 16 on CPU).")
  flags.DEFINE_integer("sequence_batch", 0,
                       "Sequences per perturb_batch call (0: 32 on accelerators, 4 on CPU).")
  flags.DEFINE_integer("model_batch", 0, "Images per model call (0: 256 on accelerators, 32 on CPU).")
  flags.DEFINE_integer("repeats", 3, "Least warm calls per figure; the median counts.")
  flags.DEFINE_float("min_seconds", 0.2, "More warm calls (up to 100) until they add up to this.")
  flags.DEFINE_bool("release_jpeg", True, "Time the JPEG q85 stage and count it in the estimate.")
  flags.DEFINE_string("output", None, "Also write the markdown table to this file.")


IMAGENET_VAL = 50_000  # ImageNet validation images: every ImageNet-C config and ImageNet-P sequence
BENCHMARK_SEVERITIES = 5
MAX_CALLS = 100
DEFAULT_BATCH = {"batch": (256, 16), "sequence_batch": (32, 4), "model_batch": (256, 32)}


@dataclasses.dataclass
class Timing:
  """One program: ``items`` per call, median warm seconds per call, first-call seconds."""
  items: int
  seconds: float
  warm_up_s: float
  calls: int
  sharded: bool = True  # the output came back split over the batch axis of every device

  @property
  def rate(self) -> float:
    return self.items / self.seconds

  @property
  def per_item_s(self) -> float:
    return self.seconds / self.items


def measure(fn: Callable[[], object], items: int, repeats: int, min_seconds: float,
            dev: "Devices | None" = None) -> Timing:
  """Times ``fn()`` to ``block_until_ready``: the first call apart, then the warm calls; with
  ``dev``, also whether the output stayed sharded over its devices."""
  import jax
  start = time.perf_counter()
  out = jax.block_until_ready(fn())
  warm_up = time.perf_counter() - start
  sharded = dev.is_sharded(out) if dev is not None else True
  times = []
  while len(times) < max(1, repeats) or (sum(times) < min_seconds and len(times) < MAX_CALLS):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return Timing(items, statistics.median(times), warm_up, len(times), sharded)


class Devices:
  """All of ``jax.devices()`` on a 1-D ``batch`` mesh; batches rounded up to the device count."""

  def __init__(self):
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    if jax.process_count() > 1:
      raise app.UsageError(
          f"launch.device_bench times one process's devices; this is one of {jax.process_count()} "
          "processes (run it on one host without jax.distributed)", exitcode=2)
    self.devices = jax.devices()
    self.count = len(self.devices)
    self.platform = self.devices[0].platform
    self.kind = self.devices[0].device_kind
    mesh = Mesh(np.asarray(self.devices), ("batch",))
    self.sharding = NamedSharding(mesh, PartitionSpec("batch"))

  def round_batch(self, n: int) -> int:
    return -(-n // self.count) * self.count

  def shard(self, array):
    import jax
    return jax.device_put(array, self.sharding)

  def is_sharded(self, out) -> bool:
    """Every output array split along its leading axis over all the devices (a program that
    ran replicated, or gathered its result, returns it whole on each)."""
    import jax
    if self.count == 1:
      return True
    return all(isinstance(x, jax.Array) and x.sharding.is_equivalent_to(self.sharding, x.ndim)
               for x in jax.tree.leaves(out))

  def default(self, flag: str, value: int) -> int:
    if value < 0:
      raise app.UsageError(f"--{flag} must be >= 0 (0: the default), got {value}", exitcode=2)
    accelerator, cpu = DEFAULT_BATCH[flag]
    return self.round_batch(value or (cpu if self.platform == "cpu" else accelerator))


def photos_256(n: int) -> list[np.ndarray]:
  """n Resize(256) photos (landscape, square and portrait), as the ImageNet-P bench uses."""
  from imagenet_cp.perturbations.bench import photos_256 as bench_photos
  return bench_photos(n)


def crops_224(n: int) -> np.ndarray:
  """uint8 [n, 224, 224, 3]: the same photos after CenterCrop(224), i.e. ``preprocess``'d."""
  from imagenet_cp.preprocess import center_crop
  return np.stack([center_crop(p, 224) for p in photos_256(n)])


def file_names(n: int) -> list[str]:
  return [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)]


@dataclasses.dataclass
class Results:
  devices: Devices
  batch: int
  sequence_batch: int
  model_batch: int
  cells: dict[tuple[str, int], Timing]  # (corruption, severity)
  jpeg: Timing | None
  sequences: dict[str, Timing]
  frames: dict[str, int]  # frames per video of each timed sequence
  models: dict[str, Timing]
  estimate_model: str
  total_s: float


def bench_corruptions(dev: Devices, names: Sequence[str], severities: Sequence[int], batch: int,
                      repeats: int, min_seconds: float, log) -> dict[tuple[str, int], Timing]:
  import imagenet_cp
  images = dev.shard(crops_224(batch))
  names_n = file_names(batch)
  cells = {}
  for name in names:
    for s in severities:
      keys = dev.shard(imagenet_cp.example_keys(0, name, s, names_n))
      cells[name, s] = t = measure(
          lambda name=name, s=s, keys=keys: imagenet_cp.corrupt(images, name, s, keys), batch,
          repeats, min_seconds, dev)
      log(f"corrupt {name} s{s}: {t.rate:.1f} images/s (warm-up {t.warm_up_s:.2f} s)")
  return cells


def bench_release_jpeg(dev: Devices, batch: int, repeats: int, min_seconds: float, log) -> Timing:
  import imagenet_cp
  images = dev.shard(crops_224(batch))
  t = measure(lambda: imagenet_cp.release_jpeg(images), batch, repeats, min_seconds, dev)
  log(f"release_jpeg: {t.rate:.1f} images/s (warm-up {t.warm_up_s:.2f} s)")
  return t


def bench_sequences(dev: Devices, names: Sequence[str], batch: int, repeats: int,
                    min_seconds: float, log) -> dict[str, Timing]:
  import imagenet_cp
  canvas, sizes = imagenet_cp.pad_to_canvas(photos_256(batch))
  canvas, sizes = dev.shard(canvas), dev.shard(np.asarray(sizes, np.int32))
  names_n = file_names(batch)
  out = {}
  for name in names:
    keys = dev.shard(imagenet_cp.example_keys(0, name, 1, names_n))
    out[name] = t = measure(
        lambda name=name, keys=keys: imagenet_cp.perturb_batch(canvas, sizes, name, keys), batch,
        repeats, min_seconds, dev)
    log(f"perturb {name}: {t.rate:.2f} sequences/s (warm-up {t.warm_up_s:.2f} s)")
  return out


def bench_model(dev: Devices, name: str, batch: int, repeats: int, min_seconds: float,
                log) -> Timing:
  """A zoo model with random weights on uint8 pixels (scaled to [0, 1], resized to its native
  crop and normalized in the program, as ``suites.common.Classifier`` runs it)."""
  import jax.numpy as jnp
  from imagenet_cp.models.parallel import DataParallel
  from imagenet_cp.suites.bench import random_classifier
  apply_fn, variables = random_classifier(name)
  parallel = DataParallel(lambda v, pixels: apply_fn(v, pixels.astype(jnp.float32) / 255.0),
                          variables, batch, devices=dev.devices, model_name=name)
  pixels = dev.shard(crops_224(parallel.batch_size))
  t = measure(lambda: parallel.apply_padded(pixels)[0], parallel.batch_size, repeats, min_seconds,
              dev)
  log(f"model {name}: {t.rate:.1f} images/s (warm-up {t.warm_up_s:.2f} s)")
  return t


# ----------------------------------------------------------------------------------------------
# The estimate.


@dataclasses.dataclass
class Estimate:
  what: str
  model_inputs: int  # images or frames through the model
  generation_s: float
  model_s: float
  basis: str

  @property
  def total_s(self) -> float:
    return self.generation_s + self.model_s


def _mean(values: Sequence[float]) -> float:
  return float(np.mean(values))


def estimates(results: Results) -> list[Estimate]:
  """Full ImageNet-C and ImageNet-P evaluations of ``results.estimate_model`` (see module doc)."""
  from imagenet_cp.corruptions import BENCHMARK_CORRUPTIONS, CORRUPTIONS
  from imagenet_cp.perturbations import TEST_PERTURBATIONS, num_frames
  model_s = results.models[results.estimate_model].per_item_s
  jpeg_s = results.jpeg.per_item_s if results.jpeg else 0.0
  jpeg_note = " + release JPEG" if results.jpeg else " (no release JPEG)"
  out = []
  if results.cells:
    for label, listed in (
        ("ImageNet-C benchmark: clean + 15 corruptions x 5", BENCHMARK_CORRUPTIONS),
        ("ImageNet-C all: clean + 19 corruptions x 5", CORRUPTIONS)):
      configs = len(listed) * BENCHMARK_SEVERITIES
      measured = [t.per_item_s for (n, _), t in results.cells.items() if n in listed]
      basis = f"{len(measured)} of {configs} cells measured{jpeg_note}"
      if not measured:
        measured = [t.per_item_s for t in results.cells.values()]
        basis = f"none of its cells measured: mean of the {len(measured)} timed cells{jpeg_note}"
      images = IMAGENET_VAL * (1 + configs)
      out.append(Estimate(label, images, IMAGENET_VAL * configs * (_mean(measured) + jpeg_s),
                          images * model_s, basis))
  if results.sequences:
    measured = [t.per_item_s for n, t in results.sequences.items() if n in TEST_PERTURBATIONS]
    basis = f"{len(measured)} of {len(TEST_PERTURBATIONS)} sequences measured"
    if not measured:
      measured = [t.per_item_s for t in results.sequences.values()]
      basis = f"no test sequence measured: mean of the {len(measured)} timed sequences"
    frames = IMAGENET_VAL * sum(num_frames(n) for n in TEST_PERTURBATIONS)
    out.append(Estimate("ImageNet-P: 10 test sequences", frames,
                        IMAGENET_VAL * len(TEST_PERTURBATIONS) * _mean(measured), frames * model_s,
                        basis))
  if results.cells and results.sequences:
    c, p = out[0], out[-1]
    out.append(Estimate("ImageNet-C benchmark + ImageNet-P", c.model_inputs + p.model_inputs,
                        c.generation_s + p.generation_s, c.model_s + p.model_s, "the rows above"))
  return out


# ----------------------------------------------------------------------------------------------
# The table.


def _num(x: float) -> str:
  """Three significant figures, no exponent below a billion."""
  if not math.isfinite(x):
    return str(x)
  if x == 0 or abs(x) >= 100:
    return f"{x:,.0f}"
  return f"{x:.{max(0, 2 - int(math.floor(math.log10(abs(x)))))}f}"


def render(results: Results, settings: str) -> str:
  """The markdown report: machine, ImageNet-C, ImageNet-P, models, estimate."""
  import jax
  import jaxlib
  dev = results.devices
  lines = [
      "## Device benchmark (`python -m launch.device_bench`)", "",
      "| item | value |", "|---|---|",
      f"| device kind | {dev.kind} |",
      f"| device count | {dev.count} |",
      f"| platform | {dev.platform} |",
      f"| jax | {jax.__version__} (jaxlib {jaxlib.__version__}) |",
      f"| host | {os.cpu_count()} CPUs, Python {platform.python_version()} |",
      f"| date | {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC |",
      f"| settings | {settings} |",
      f"| batch sharding | {_sharding_note(results)} |",
      f"| wall time of this run | {_num(results.total_s)} s |",
  ]
  if results.cells:
    severities = sorted({s for _, s in results.cells})
    names = list(dict.fromkeys(n for n, _ in results.cells))
    lines += ["", f"### ImageNet-C: images/s (batch {results.batch} over {dev.count} device(s))",
              "",
              "| corruption | " + " | ".join(f"s{s}" for s in severities) + " | all | warm-up s |",
              "|---|" + "---|" * (len(severities) + 2)]
    for name in names:
      row = [results.cells[name, s] for s in severities]
      lines.append(f"| {name} | " + " | ".join(_num(t.rate) for t in row)
                   + f" | {_num(_suite_rate(row))} | {_num(sum(t.warm_up_s for t in row))} |")
    every = list(results.cells.values())
    lines.append(f"| **all {len(every)} cells** | " + " | ".join(
        _num(_suite_rate([results.cells[n, s] for n in names])) for s in severities)
        + f" | **{_num(_suite_rate(every))}** | {_num(sum(t.warm_up_s for t in every))} |")
  if results.jpeg:
    lines += ["", f"### ImageNet-C release stage: JPEG q85 (batch {results.batch})", "",
              "| stage | images/s | warm-up s |", "|---|---|---|",
              f"| `imagenet_cp.release_jpeg` | {_num(results.jpeg.rate)} | "
              f"{_num(results.jpeg.warm_up_s)} |"]
  if results.sequences:
    lines += ["", f"### ImageNet-P: sequences/s (batch {results.sequence_batch} over {dev.count} "
              "device(s), difficulty 1)", "",
              "| sequence | frames | sequences/s | frames/s | warm-up s |", "|---|---|---|---|---|"]
    for name, t in results.sequences.items():
      lines.append(f"| {name} | {results.frames[name]} | {_num(t.rate)} | "
                   f"{_num(t.rate * results.frames[name])} | {_num(t.warm_up_s)} |")
    every = list(results.sequences.values())
    frame_rate = (sum(t.items * results.frames[n] for n, t in results.sequences.items())
                  / sum(t.seconds for t in every))
    lines.append(f"| **all {len(every)}** | {sum(results.frames[n] for n in results.sequences)} | "
                 f"**{_num(_suite_rate(every))}** | {_num(frame_rate)} | "
                 f"{_num(sum(t.warm_up_s for t in every))} |")
  lines += ["", f"### Models: images/s (random weights, batch {results.model_batch} over "
            f"{dev.count} device(s))", "", "| model | images/s | warm-up s |", "|---|---|---|"]
  for name, t in results.models.items():
    lines.append(f"| {name} | {_num(t.rate)} | {_num(t.warm_up_s)} |")
  rows = estimates(results)
  if rows:
    lines += ["", f"### Estimate: full evaluation of {results.estimate_model} on these "
              f"{dev.count} device(s), 50,000 validation images", "",
              "| evaluation | model inputs | generation h | model h | total h | basis |",
              "|---|---|---|---|---|---|"]
    for e in rows:
      lines.append(f"| {e.what} | {e.model_inputs:,} | {_num(e.generation_s / 3600)} | "
                   f"{_num(e.model_s / 3600)} | {_num(e.total_s / 3600)} | {e.basis} |")
  return "\n".join(lines) + "\n"


def _sharding_note(results: Results) -> str:
  """Which programs did not keep the batch split over the devices (they ran replicated)."""
  count = results.devices.count
  if count == 1:
    return "one device"
  labels = [f"{n} s{s}" for (n, s), t in results.cells.items() if not t.sharded]
  labels += ["release_jpeg"] if results.jpeg and not results.jpeg.sharded else []
  labels += [n for n, t in results.sequences.items() if not t.sharded]
  labels += [n for n, t in results.models.items() if not t.sharded]
  if not labels:
    return f"every output split over the {count} devices"
  return f"outputs NOT split over the {count} devices (ran replicated): {', '.join(labels)}"


def _suite_rate(timings: Sequence[Timing]) -> float:
  """Items over seconds of one call of each: the rate of running them all once."""
  return sum(t.items for t in timings) / sum(t.seconds for t in timings)


# ----------------------------------------------------------------------------------------------


def _unknown(values, known: Sequence[str], what: str) -> list[str]:
  unknown = [v for v in values if v not in known]
  return [f"unknown {what} {unknown}; known: {', '.join(known)}"] if unknown else []


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}", exitcode=2)
  import jax
  import imagenet_cp
  from imagenet_cp import models
  from imagenet_cp.perturbations import num_frames
  start = time.perf_counter()
  # Every bad name in one message: a run on a lent accelerator should fail once, not per flag.
  names = list(dict.fromkeys(FLAGS.corruptions or imagenet_cp.CORRUPTIONS))
  sequences = list(dict.fromkeys(FLAGS.sequences or imagenet_cp.PERTURBATIONS))
  errors = (_unknown(names, imagenet_cp.CORRUPTIONS, "corruptions")
            + _unknown(sequences, imagenet_cp.PERTURBATIONS, "sequences"))
  levels = [s.strip() for s in FLAGS.severities or []]
  if not levels or not set(levels) <= set("12345"):
    errors.append(f"--severities must be integers in 1..5, got {FLAGS.severities}")
  severities = sorted({int(s) for s in levels if s in set("12345")})
  model_names = []
  for name in dict.fromkeys((FLAGS.models or []) + [FLAGS.estimate_model]):
    try:
      model_names.append(models.resolve(name))
    except ValueError as e:
      errors.append(str(e))
  if errors:
    raise app.UsageError("\n".join(errors), exitcode=2)
  model_names = list(dict.fromkeys(model_names))
  estimate_model = models.resolve(FLAGS.estimate_model)
  dev = Devices()
  batch = dev.default("batch", FLAGS.batch)
  sequence_batch = dev.default("sequence_batch", FLAGS.sequence_batch)
  model_batch = dev.default("model_batch", FLAGS.model_batch)
  log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
  log(f"jax {jax.__version__}: {dev.count} x {dev.kind} ({dev.platform}); batch {batch}, "
      f"sequence batch {sequence_batch}, model batch {model_batch}")
  timing = (FLAGS.repeats, FLAGS.min_seconds, log)
  cells = bench_corruptions(dev, names, severities, batch, *timing)
  jpeg = bench_release_jpeg(dev, batch, *timing) if FLAGS.release_jpeg else None
  seqs = bench_sequences(dev, sequences, sequence_batch, *timing)
  model_t = {n: bench_model(dev, n, model_batch, *timing) for n in model_names}
  results = Results(dev, batch, sequence_batch, model_batch, cells, jpeg, seqs,
                    {n: num_frames(n) for n in sequences}, model_t, estimate_model,
                    time.perf_counter() - start)
  settings = (f"{len(names)} corruptions x severities {','.join(map(str, severities))}, "
              f"{len(sequences)} sequence(s); median of >= {FLAGS.repeats} warm calls "
              f"(>= {FLAGS.min_seconds} s)")
  table = render(results, settings)
  print(table, end="")
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      f.write(table)
    log(f"wrote {FLAGS.output}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
