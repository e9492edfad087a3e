r"""Images/s of each zoo model: Flax (jit, XLA) vs PyTorch on CPU, same process, batch 32.

  python -m models.bench [--models=resnet50,resnext50_32x4d] [--batch=32] [--size=224] [--runs=5]

PyTorch runs with its default NCHW layout and with channels_last, under ``inference_mode``.
Flax runs as the zoo compiles it (``jax.jit(..., compiler_options=models.compiler_options(name))``,
what ``DataParallel`` and so ``metrics.run`` use) and, in the ``plain`` columns, under a plain
``jax.jit(module.apply)`` with XLA's defaults, what a user's own jit gets.
The three are timed interleaved (one run of each per round, median over rounds) so that load
from other processes hits all of them alike; ratios are Flax / PyTorch, by wall clock and by
CPU time (process time over all threads, the steadier figure on a shared machine); each row
ends with the load average when it finished.  The Flax model gets
the torch model's (random) weights through the real converter, so the script also prints the
relative logit difference.  torch, torchvision, timm (for the ``timm/`` names) and (for
efficientnet_lite0/1/2) the efficientnet-lite-pytorch package are needed here only.
"""
from __future__ import annotations

import time

from absl import app, flags
import jax
import numpy as np

from imagenet_cp import models
from imagenet_cp.models import convert

from imagenet_cp.oracles.timm_shim import timm_model
from imagenet_cp.oracles.torchvision_shim import torchvision_model

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program, so that
  importing it beside another entry point (imagenet_cp.run, a test) defines no flag twice."""
  flags.DEFINE_list("models", None, "models to time (default: the whole zoo)")
  flags.DEFINE_integer("batch", 32, "batch size")
  flags.DEFINE_list("small_batch_models", ["vit_h_14", "regnet_y_128gf"],
                    "models timed at --small_batch instead (the largest: minutes per batch of 32)")
  flags.DEFINE_integer("small_batch", 8, "batch size of --small_batch_models")
  flags.DEFINE_integer("size", 0, "input side (0: 224, or the side a model's architecture fixes: "
                       "a ViT's position embedding, e.g. 384 and 518 for the SWAG weights)")
  flags.DEFINE_integer("runs", 5, "timed rounds after one warm-up")
  flags.DEFINE_integer("threads", 0, "torch threads (0: torch's default)")


def torch_model(name: str, size: int = 224):
  """The reference PyTorch model with random weights, in eval mode (timm's for ``timm/`` names)."""
  if name.startswith("timm/"):
    from imagenet_cp.models.timm_weights import timm_class_args
    # RobustBench's / ARES's own XCiT sizes: timm's class with their hyper-parameters.
    base, overrides = timm_class_args(name.removeprefix("timm/"))
    return timm_model(base, **overrides)
  if name.startswith("efficientnet_lite"):
    from efficientnet_lite_pytorch import EfficientNet
    # its TF-SAME padding is fixed at build time: build it for the input size
    return EfficientNet.from_name(name.replace("_", "-"), image_size=size).eval()
  return torchvision_model(name, aux=False)


def _timed(fn) -> tuple[float, float]:
  """-> (wall seconds, CPU seconds of this process over all its threads) of one call."""
  wall, cpu = time.perf_counter(), time.process_time()
  fn()
  return time.perf_counter() - wall, time.process_time() - cpu


def measure(name: str, batch: int, size: int, runs: int) -> dict:
  """-> images/s for torch NCHW, torch channels_last and Flax (wall clock, and ``<key>_cpu``:
  images per CPU-second, the steadier figure when other processes share the cores), plus
  compile time and parity."""
  import torch
  model = torch_model(name, size)
  shapes = convert.variable_shapes(models.build(name), size)
  # On the device once, as models.load returns them: NumPy leaves would be copied in on every
  # timed call (AlexNet's 244 MB of weights: a third of its batch time).
  variables = jax.device_put(convert.torch_to_flax(
      {k: v.detach().numpy() for k, v in model.state_dict().items()}, shapes, source=name))
  module = models.build(name)
  x = np.random.default_rng(0).standard_normal((batch, size, size, 3)).astype(np.float32)
  x_nchw = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  x_cl = x_nchw.contiguous(memory_format=torch.channels_last)
  model_cl = torch_model(name, size)
  model_cl.load_state_dict(model.state_dict())
  model_cl = model_cl.to(memory_format=torch.channels_last)
  apply = jax.jit(module.apply, compiler_options=models.compiler_options(name))
  plain = jax.jit(module.apply)
  xj = jax.device_put(x)
  start = time.perf_counter()
  flax_logits = np.asarray(apply(variables, xj))
  compile_s = time.perf_counter() - start
  plain(variables, xj).block_until_ready()
  with torch.inference_mode():
    ref = model(x_nchw).numpy()
    model_cl(x_cl)
    steps = {
        "torch": lambda: model(x_nchw),
        "torch_cl": lambda: model_cl(x_cl),
        "flax": lambda: apply(variables, xj).block_until_ready(),
        "plain": lambda: plain(variables, xj).block_until_ready(),
    }
    times = {k: [] for k in steps}
    for _ in range(runs):
      for k, fn in steps.items():
        times[k].append(_timed(fn))
  rate = {k: batch / float(np.median([t[0] for t in v])) for k, v in times.items()}
  rate.update({f"{k}_cpu": batch / float(np.median([t[1] for t in v])) for k, v in times.items()})
  rate["compile_s"] = compile_s
  rate["rel_err"] = float(np.max(np.abs(flax_logits - ref)) / np.max(np.abs(ref)))
  return rate


def main(argv):
  del argv
  import torch
  if FLAGS.threads:
    torch.set_num_threads(FLAGS.threads)
  names = [models.resolve(n) for n in (FLAGS.models or models.names(ported_only=True, dataset="imagenet"))]
  print(f"batch {FLAGS.batch}, {FLAGS.size or 224}px, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), jax {jax.__version__} on "
        f"{jax.devices()[0].platform}, load avg {_load()}")
  print(f"{'model':18s} {'torch':>8s} {'torch_cl':>8s} {'flax':>8s} {'x torch':>8s} "
        f"{'x cl':>6s} {'compile':>8s} {'rel err':>8s} {'cpu: x torch':>12s} {'x cl':>6s} "
        f"{'plain':>7s} {'x torch':>8s} {'cpu':>5s} {'load':>5s}")
  for name in names:
    size = FLAGS.size or input_side(name)
    small = name.split(".")[0] in FLAGS.small_batch_models
    batch = FLAGS.small_batch if small else FLAGS.batch
    note = "" if (size, batch) == (FLAGS.size or 224, FLAGS.batch) else f"  ({size}px, batch {batch})"
    r = measure(name, batch, size, FLAGS.runs)
    print(f"{name:18s} {r['torch']:8.2f} {r['torch_cl']:8.2f} {r['flax']:8.2f} "
          f"{r['flax'] / r['torch']:8.2f} {r['flax'] / r['torch_cl']:6.2f} "
          f"{r['compile_s']:7.1f}s {r['rel_err']:8.1e} "
          f"{r['flax_cpu'] / r['torch_cpu']:12.2f} {r['flax_cpu'] / r['torch_cl_cpu']:6.2f} "
          f"{r['plain']:7.2f} {r['plain'] / r['torch']:8.2f} "
          f"{r['plain_cpu'] / r['torch_cpu']:5.2f} {_load():5.1f}{note}", flush=True)


def input_side(name: str) -> int:
  """224, or the side the architecture fixes (a ViT's position embedding)."""
  return getattr(models.build(name), "image_size", None) or 224


def _load() -> float:
  """The 1-minute load average (Linux), or NaN where /proc is absent."""
  try:
    with open("/proc/loadavg") as f:
      return float(f.read().split()[0])
  except OSError:
    return float("nan")


if __name__ == "__main__":
  define_flags()
  app.run(main)
