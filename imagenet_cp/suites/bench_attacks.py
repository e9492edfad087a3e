"""PGD throughput on ResNet-50: ours (JAX, jit) against the same PGD in PyTorch, one process.

  python -m attacks.bench [--batch=8] [--steps=3] [--size=224] [--runs=3] [--threads=0]

Images/s counts forward + backward passes: batch * steps / seconds per attack call (both
implementations also do the random start, the first-success bookkeeping and one final forward
pass, so the figure is slightly pessimistic for both alike).  Both models have random weights:
ours from ``models.build('resnet50')`` + ``init`` (speed does not depend on the values),
torchvision's ``resnet50(weights=None)`` in eval mode; both normalise [0, 1] pixels with the
ImageNet mean/std inside the attacked function.  The two are timed interleaved (one call of
each per round, median over rounds) so that load from other processes hits both alike.
torch and torchvision are needed here only; this module is a tool, not part of the attack
library's import graph (``attacks`` itself never imports ``models``).
"""
from __future__ import annotations

import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.oracles.torchvision_shim import import_torchvision

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program, so that
  importing it beside another entry point (imagenet_cp.run, a test) defines no flag twice."""
  flags.DEFINE_integer("batch", 8, "images per attack call")
  flags.DEFINE_integer("steps", 3, "PGD iterations (forward + backward each)")
  flags.DEFINE_integer("size", 224, "input side")
  flags.DEFINE_integer("runs", 3, "timed rounds after one warm-up")
  flags.DEFINE_integer("threads", 0, "torch threads (0: torch's default)")
  flags.DEFINE_float("eps", 4.0, "Linf budget, /255")


def jax_attack(size: int, steps: int, eps: float):
  """-> (attack(images, labels, key) -> AttackResult, jitted), on a random-init Flax ResNet-50."""
  from imagenet_cp import models
  from imagenet_cp import attacks
  module = models.build("resnet50")
  variables = module.init(jax.random.key(0), jnp.zeros((1, size, size, 3), jnp.float32))
  normalize = models.normalizer(models.spec("resnet50"))

  def apply_fn(variables, images):
    return module.apply(variables, normalize(images))

  @jax.jit
  def attack(images, labels, key):
    return attacks.pgd(apply_fn, variables, images, labels, eps=eps, key=key, steps=steps)

  return attack


def torch_pgd(model, images, labels, eps: float, step: float, steps: int):
  """The same Linf PGD in PyTorch: uniform random start, signed steps, projection, box, and the
  first successful iterate kept.  images: float32 [N, 3, H, W] in [0, 1]; eps, step in [0, 1]."""
  import torch
  import torch.nn.functional as F
  mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
  std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
  adv = (images + (2 * torch.rand_like(images) - 1) * eps).clamp(0, 1)
  first = images.clone()
  fooled = torch.zeros(images.shape[0], dtype=torch.bool)
  for _ in range(steps):
    adv.requires_grad_(True)
    logits = model((adv - mean) / std)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, labels, reduction="sum"), adv)
    with torch.no_grad():
      now = logits.argmax(1) != labels
      first[now & ~fooled] = adv[now & ~fooled]
      fooled |= now
      adv = adv + step * grad.sign()
      adv = torch.minimum(torch.maximum(adv, images - eps), images + eps).clamp(0, 1)
  with torch.no_grad():
    last = model((adv - mean) / std).argmax(1) != labels
  return torch.where(fooled.view(-1, 1, 1, 1), first, adv), fooled | last


def _seconds(fn) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def measure(batch: int, size: int, steps: int, runs: int, eps: float) -> dict:
  """-> images/s (forward + backward) of both, and our compile time."""
  import torch
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
  y = rng.integers(0, 1000, batch).astype(np.int32)
  attack = jax_attack(size, steps, eps)
  xj, yj = jax.device_put(x), jax.device_put(y)
  key = jax.random.key(1)
  compile_s = _seconds(lambda: jax.block_until_ready(attack(xj, yj, key)))
  model = import_torchvision().models.resnet50(weights=None).eval()
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  yt = torch.from_numpy(y.astype(np.int64))
  e = eps / 255.0
  ours = lambda: jax.block_until_ready(attack(xj, yj, key))  # noqa: E731
  theirs = lambda: torch_pgd(model, xt, yt, e, 2.5 * e / steps, steps)  # noqa: E731
  theirs()  # warm-up
  times = {"jax": [], "torch": []}
  for _ in range(runs):
    times["jax"].append(_seconds(ours))
    times["torch"].append(_seconds(theirs))
  rate = {k: batch * steps / float(np.median(v)) for k, v in times.items()}
  rate["compile_s"] = compile_s
  return rate


def main(argv):
  del argv
  import torch
  if FLAGS.threads:
    torch.set_num_threads(FLAGS.threads)
  device = jax.devices()[0]
  print(f"PGD Linf eps {FLAGS.eps}/255, {FLAGS.steps} steps, batch {FLAGS.batch}, "
        f"{FLAGS.size}px ResNet-50 (random init); torch {torch.__version__} "
        f"({torch.get_num_threads()} threads, CPU), jax {jax.__version__} on {device.platform} "
        f"({device.device_kind}); load avg {open('/proc/loadavg').read().split()[0]}")
  r = measure(FLAGS.batch, FLAGS.size, FLAGS.steps, FLAGS.runs, FLAGS.eps)
  print(f"images/s (fwd+bwd): jax {r['jax']:.2f}  torch {r['torch']:.2f}  "
        f"ratio jax/torch {r['jax'] / r['torch']:.2f}  (jax compile {r['compile_s']:.1f}s)",
        flush=True)


if __name__ == "__main__":
  define_flags()
  app.run(main)
