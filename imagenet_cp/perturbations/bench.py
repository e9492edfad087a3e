r"""Speed of the ImageNet-P sequences: ours (jit, vmapped over a batch, warm) vs the original.

  python -m imagenet_cp.perturbations.bench                       # all 14 sequences
  python -m imagenet_cp.perturbations.bench --names=tilt,snow --batch=16 --ref_images=3
  python -m imagenet_cp.bench --suite=p                           # the same rows
  python -m imagenet_cp.perturbations.bench --benchmark=cifar     # another set (imagenet299,
                                                                  # tiny_imagenet, imagenet64)

OURS: ``perturb_batch`` on a padded canvas of real photos (scikit-image samples after
Resize(256), landscape, square and portrait), one key per image, warmed up first (the first
call's time is reported as compile time), timed to ``block_until_ready``; the median of the
timed calls counts.  REFERENCE: ``reference.run_original`` (make_imagenet_p.py line by line,
with the original's own RNG calls) one image at a time, in the same process.  Throughput is
sequences (31 frames, translate 41) per wall-clock second.  The whole set's ratio is the time
of one pass over all the sequences for one image, reference over ours.  Neither side includes
I/O; the original additionally spent 2.0-2.6 s of CPU per sequence in x264 (not timed here).

ALLOCATOR: by default (``--malloc=reuse``) the process keeps freed memory in its heap
(``keep_freed_memory``), for both sides.  glibc otherwise maps every block above 32 MB afresh
and returns it on free; a batch of 8 sequences is 37-49 MB of frames, so each call page-faults
its whole output again (more kernel time than translate's own work: docs/speed.md, ImageNet-P).
``--malloc=default`` measures without it.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Iterator, Sequence

import numpy as np

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


@dataclasses.dataclass
class Row:
  name: str
  ours_s: float  # seconds per sequence, ours
  ref_s: float  # seconds per sequence, reference
  compile_s: float
  ours_cpu_s: float = 0.0  # CPU seconds (all threads, time.process_time) per sequence, ours
  ref_cpu_s: float = 0.0  # the same for the reference

  @property
  def ratio(self) -> float:
    return self.ref_s / self.ours_s if self.ours_s > 0 else float("inf")

  @property
  def cpu_ratio(self) -> float:
    return self.ref_cpu_s / self.ours_cpu_s if self.ours_cpu_s > 0 else float("inf")


def photos_256(n: int) -> list[np.ndarray]:
  """n Resize(256) photos: the samples cycled, every other coffee turned to portrait."""
  import skimage.data
  from imagenet_cp.preprocess import resize_short_side
  base = [resize_short_side(np.asarray(getattr(skimage.data, p)())[..., :3]) for p in PHOTOS]
  base.append(np.ascontiguousarray(base[1].transpose(1, 0, 2)))  # portrait
  return [base[i % len(base)] for i in range(n)]


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def keep_freed_memory(limit: int = 1 << 30) -> bool:
  """Raises glibc's mmap and trim thresholds to ``limit`` so that large blocks come from the
  heap and stay there once freed (repeated calls reuse their output buffers instead of
  page-faulting them in again).  Process-wide; True where glibc accepted both settings."""
  import ctypes
  import ctypes.util
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, limit)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                limit))
  except (OSError, AttributeError):  # not glibc
    return False


def sources(n: int, benchmark: str) -> list[np.ndarray]:
  """n source images of ``benchmark``: the sample photos cycled (a portrait coffee among them);
  cifar: each photo brought to 32x32 (PIL BOX), the stand-in for a CIFAR image."""
  import skimage.data
  from PIL import Image
  base = [np.ascontiguousarray(np.asarray(getattr(skimage.data, p)())[..., :3]) for p in PHOTOS]
  base.append(np.ascontiguousarray(base[1].transpose(1, 0, 2)))  # portrait
  if benchmark == "cifar":
    base = [np.asarray(Image.fromarray(b).resize((32, 32), Image.BOX)) for b in base]
  return [base[i % len(base)] for i in range(n)]


def _ours(name: str, batch: int, benchmark: str):
  """A warm-up-able call of ours on ``batch`` images: ``perturb_batch`` on the set inputs (a
  padded canvas), or ``perturb`` one photo after another for the sequences that start from
  the source photo.  Returns (call, the sources the reference runs on)."""
  import jax
  from imagenet_cp import perturbations as P
  keys = jax.random.split(jax.random.key(0), batch)
  if benchmark == "imagenet":
    images = photos_256(batch)
    canvas, sizes = P.pad_to_canvas(images)
    return lambda: P.perturb_batch(canvas, sizes, name, keys), images
  srcs = sources(batch, benchmark)
  images = [P.perturbation_input(src, benchmark, name) for src in srcs]
  if P.sets.get_set(benchmark).inputs(name) == P.sets.SOURCE:
    return lambda: [P.perturb(x, name, k, 1, benchmark) for x, k in zip(images, keys)], srcs
  canvas, sizes = P.pad_to_canvas(images, benchmark=benchmark)
  return lambda: P.perturb_batch(canvas, sizes, name, keys, 1, benchmark), srcs


def bench_one(name: str, batch: int, repeats: int, ref_images: int,
              benchmark: str = "imagenet") -> Row:
  """Seconds per sequence for ours (batched, warm) and the reference, and compile seconds."""
  import jax
  from imagenet_cp.bench import time_call
  from imagenet_cp.oracles import perturbations as reference
  from imagenet_cp.oracles import perturbations_sets as reference_sets
  call, images = _ours(name, batch, benchmark)
  start = time.perf_counter()
  jax.block_until_ready(call())
  compile_s = time.perf_counter() - start
  ours, ours_cpu = time_call(call, repeats, min_seconds=0.5, max_calls=50, cpu=True)
  ref_times, ref_cpu = [], []
  for image in images[:ref_images]:
    start, start_cpu = time.perf_counter(), time.process_time()
    if benchmark == "imagenet":
      reference.run_original(name, image, 1)
    else:
      reference_sets.run_original(benchmark, name, image, 1)
    ref_times.append(time.perf_counter() - start)
    ref_cpu.append(time.process_time() - start_cpu)
  return Row(name, ours / batch, float(np.mean(ref_times)), compile_s, ours_cpu / batch,
             float(np.mean(ref_cpu)))


HEADER = (f"{'sequence':<15} {'ours seq/s':>10} {'ref seq/s':>10} {'ratio':>8} "
          f"{'compile s':>9} {'ours cpu s':>10} {'ref cpu s':>9} {'cpu ratio':>9}")


def format_row(row: Row) -> str:
  """Throughput (wall) and the CPU seconds per sequence: on a shared machine the wall clock
  also counts other jobs' time slices, CPU time does not."""
  flag = "  SLOWER than reference" if row.ratio < 1 else ""
  return (f"{row.name:<15} {1 / row.ours_s:>10.2f} {1 / row.ref_s:>10.2f} {row.ratio:>7.1f}x "
          f"{row.compile_s:>9.2f} {row.ours_cpu_s:>10.4f} {row.ref_cpu_s:>9.3f} "
          f"{row.cpu_ratio:>8.1f}x{flag}")


def main_rows(names: Sequence[str] | None = None, batch: int = 8, repeats: int = 3,
              ref_images: int = 2, malloc: str = "reuse",
              benchmark: str = "imagenet") -> Iterator[str]:
  """The benchmark as printable lines (``imagenet_cp.bench --suite=p`` prints them).

  ``benchmark``: the -P set (``perturbations.BENCHMARKS``); the reference is then that set's
  script (``oracles.perturbations_sets``) on the source images.

  The reference's torch runs single-threaded: the original works on one 3x224x224 tensor at a
  time, where extra threads only wait for each other on a shared machine (with default
  threads the gaussian_noise reference took seconds per sequence here).  ``malloc``: 'reuse'
  (``keep_freed_memory``, see the module docstring) or 'default'.
  """
  import os
  import torch
  from imagenet_cp import perturbations as P
  torch.set_num_threads(1)
  names = list(names or P.PERTURBATIONS)
  dataset = P.sets.get_set(benchmark).dataset
  kept = malloc == "reuse" and keep_freed_memory()
  yield (f"{dataset}: batch {batch} (padded canvas), median of >= {repeats} warm calls; "
         f"reference on {ref_images} image(s) per sequence; {os.cpu_count()} CPU(s), load "
         f"average {os.getloadavg()[0]:.1f} at start; freed memory "
         f"{'kept in the heap' if kept else 'returned (default allocator)'}")
  yield HEADER
  rows = []
  for name in names:
    row = bench_one(name, batch, repeats, ref_images, benchmark)
    rows.append(row)
    yield format_row(row)
  total = Row(f"SET ({len(rows)})", sum(r.ours_s for r in rows), sum(r.ref_s for r in rows),
              sum(r.compile_s for r in rows), sum(r.ours_cpu_s for r in rows),
              sum(r.ref_cpu_s for r in rows))
  yield format_row(total)
  yield (f"one pass over the {len(rows)} sequences for one image: ours {total.ours_s:.3f} s "
         f"({total.ours_cpu_s:.3f} s CPU), reference {total.ref_s:.2f} s "
         f"({total.ref_cpu_s:.2f} s CPU); slower than reference: "
         f"{sum(r.ratio < 1 for r in rows)} sequence(s); load average "
         f"{os.getloadavg()[0]:.1f} at the end")


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--names", default="", help="comma-separated sequence names (default all)")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--ref_images", type=int, default=2)
  parser.add_argument("--malloc", choices=("reuse", "default"), default="reuse",
                      help="keep freed memory in the heap for both sides (default) or not")
  parser.add_argument("--benchmark", default="imagenet",
                      choices=("imagenet", "imagenet299", "tiny_imagenet", "imagenet64", "cifar"),
                      help="the -P set (its constants, inputs and script)")
  args = parser.parse_args(argv)
  import jax
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
  names = [n for n in args.names.split(",") if n] or None
  for line in main_rows(names, args.batch, args.repeats, args.ref_images, args.malloc,
                        args.benchmark):
    print(line, flush=True)


if __name__ == "__main__":
  main()
