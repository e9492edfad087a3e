"""Speed of ``random_corrupt`` (a corruption and severity per image) against plain ``corrupt``.

  python -m imagenet_cp.bench --suite=augment                  # batch 32, 224 px
  python -m imagenet_cp.bench --suite=augment --batch=32 --size=32 --augment_switch=false

Same process, same photos, one key per image, every program warm (its first call, compile plus
one run, is reported apart); medians of timed calls, blocked until ready:

- ``random_corrupt``: a mix drawn from the keys (uniform over the 19 corruptions and 5
  severities), one call per batch;
- ``corrupt``: each of the 19 corruptions at severity 3 on the whole batch; their mean is the
  cost of a batch whose images each get one uniformly drawn corruption, the ratio's denominator;
- the naive way (``--augment_switch``): ``vmap`` of a ``lax.switch`` over the 19 corruptions,
  which computes every corruption for every image.
"""
from __future__ import annotations

import statistics
import time

import numpy as np


def _warm(fn) -> float:
  import jax
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def switch_corrupt(images, keys, positions, severities):
  """The naive per-example augmentation: ``vmap`` over ``lax.switch`` of the 19 corruptions."""
  import jax
  from imagenet_cp.corruptions import CORRUPTIONS, REGISTRY

  def branch(corruption):
    return lambda x, k, s: corruption.apply(x, corruption.draw(k, s, x.shape[0]), s)

  branches = [branch(REGISTRY[n]) for n in CORRUPTIONS]
  return jax.vmap(lambda x, k, p, s: jax.lax.switch(p, branches, x, k, s))(
      images, keys, positions, severities)


def bench_augment(batch: int = 32, size: int = 224, repeats: int = 3,
                  naive_switch: bool = True) -> dict:
  """Prints the table and returns its numbers (seconds per batch)."""
  import jax
  import imagenet_cp
  from imagenet_cp.bench import photos, time_call
  from imagenet_cp.corruptions import CORRUPTIONS, augment

  images = jax.numpy.asarray(photos(batch, size))
  keys = jax.random.split(jax.random.key(0), batch)
  positions, severities = augment.draw_choices(keys, len(CORRUPTIONS))
  print(f"augmentation at {size} px, batch {batch}: {len(set(np.asarray(positions).tolist()))} "
        f"corruptions in the drawn mix")
  out = {}
  call = lambda: imagenet_cp.random_corrupt(images, keys)
  out["random_corrupt_compile_s"] = _warm(call)
  out["random_corrupt_s"] = time_call(call, repeats, min_seconds=1.0)
  plain = {}
  for name in CORRUPTIONS:
    call = lambda name=name: imagenet_cp.corrupt(images, name, 3, keys)
    _warm(call)
    plain[name] = time_call(call, repeats, min_seconds=0.3)
  out["corrupt_mean_s"] = statistics.mean(plain.values())
  rows = [("random_corrupt (drawn mix)", out["random_corrupt_s"], out["random_corrupt_compile_s"])]
  if naive_switch:
    fn = jax.jit(switch_corrupt)
    call = lambda: fn(images, keys, positions, severities)
    out["switch_compile_s"] = _warm(call)
    out["switch_s"] = time_call(call, repeats)
    rows.append(("vmap(lax.switch) of the 19", out["switch_s"], out["switch_compile_s"]))
  rows.append(("corrupt, mean of the 19 (s3)", out["corrupt_mean_s"], float("nan")))
  fastest, slowest = min(plain, key=plain.get), max(plain, key=plain.get)
  rows.append((f"corrupt, fastest ({fastest})", plain[fastest], float("nan")))
  rows.append((f"corrupt, slowest ({slowest})", plain[slowest], float("nan")))
  print(f"{'call':<36} {'s / batch':>10} {'img/s':>8} {'x corrupt mean':>15} {'compile s':>10}")
  for label, seconds, compile_s in rows:
    print(f"{label:<36} {seconds:>10.4f} {batch / seconds:>8.1f} "
          f"{seconds / out['corrupt_mean_s']:>14.2f}x {compile_s:>10.1f}")
  return out
