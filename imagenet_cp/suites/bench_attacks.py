"""PGD throughput on ResNet-50: ours (JAX, jit) against the same PGD in PyTorch, one process;
and AutoAttack standard against torchattacks' (``--suite=autoattack``).

  python -m attacks.bench [--batch=8] [--steps=3] [--size=224] [--runs=3] [--threads=0]
  python -m attacks.bench --suite=autoattack [--images=4] [--eps=4] [--n_iter=100]

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
  flags.DEFINE_enum("suite", "pgd", ["pgd", "autoattack"], "pgd: PGD on a random ResNet-50 "
                    "against PyTorch; autoattack: AutoAttack standard on EfficientNet-Lite0 "
                    "(real weights) against torchattacks 3.5.1, per attack and in total.")
  flags.DEFINE_integer("images", 4, "--suite=autoattack: demo photos the model gets right")
  flags.DEFINE_integer("n_iter", 100, "--suite=autoattack: APGD and FAB iterations")
  flags.DEFINE_integer("square_queries", 5000, "--suite=autoattack: Square's query budget")
  flags.DEFINE_integer("n_target_classes", 9, "--suite=autoattack: APGD-T / FAB-T targets")


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


# ----------------------------------------------------------------------------------------------
# AutoAttack standard against torchattacks' AutoAttack (--suite=autoattack).

AUTOATTACK_ORDER = ("apgd-ce", "apgd-t", "fab-t", "square")


def lite0_twins():
  """-> (apply_fn, variables, torch module): EfficientNet-Lite0 with its real weights in Flax
  (``models.classifier``) and in efficientnet_lite_pytorch, both on [0, 1] pixels."""
  import torch
  from efficientnet_lite_pytorch import EfficientNet
  from imagenet_cp import models
  apply_fn, variables = models.classifier("efficientnet_lite0")
  net = EfficientNet.from_name("efficientnet-lite0", image_size=224)
  net.load_state_dict(torch.load(models.lite0_checkpoint(), map_location="cpu"))
  spec = models.spec("efficientnet_lite0")
  mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1) / 255
  std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1) / 255

  class Normalized(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.net = net

    def forward(self, x):
      return self.net((x - mean) / std)

  return apply_fn, variables, Normalized().eval()


def correct_photos(apply_fn, variables, model, n: int):
  """The first n demo photos (224 crops in [0, 1], labels) both twins classify correctly."""
  import torch
  from imagenet_cp import preprocess, sources
  examples = sources.demo_examples()
  x = np.stack([preprocess(sources.decode(e)) for e in examples]).astype(np.float32) / 255
  y = np.array([e.label for e in examples], np.int32)
  ours = np.asarray(jnp.argmax(apply_fn(variables, x), axis=-1))
  with torch.no_grad():
    theirs = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()
  right = np.flatnonzero((ours == y) & (theirs == y))
  if len(right) < n:
    raise ValueError(f"only {len(right)} demo photos are classified correctly; asked for {n}")
  return x[right[:n]], y[right[:n]]


def torchattacks_autoattack(model, eps: float, attack_names, n_iter: int, queries: int,
                            targets: int):
  """torchattacks' AutoAttack standard set to the authors' settings where it differs: 100 (not
  10) steps for APGD, APGD-T and FAB-T, Square's schedule not rescaled, its n_queries the
  iterations after the start (ours counts the start too); only ``attack_names`` kept."""
  import torchattacks
  auto = torchattacks.AutoAttack(model, norm="Linf", eps=eps / 255, version="standard",
                                 n_classes=targets + 1, seed=0)
  apgd, apgdt, fab, square = auto._autoattack.attacks
  apgd.steps = apgdt.steps = fab.steps = n_iter
  square.n_queries, square.rescale_schedule = queries - 1, False
  chosen = dict(zip(AUTOATTACK_ORDER, (apgd, apgdt, fab, square)))
  auto._autoattack.attacks = [chosen[a] for a in attack_names]
  return auto


def time_autoattack(apply_fn, variables, model, x, y, attack_names, *, eps, n_iter, queries,
                    targets) -> dict:
  """Wall seconds of ours (first call, compile included; then a second, compiled call) and
  torchattacks' on the same images with the same attacks, and the robust accuracy each found."""
  import torch
  from imagenet_cp import attacks, models
  version = "standard" if tuple(attack_names) == AUTOATTACK_ORDER else "custom"
  kwargs = {} if version == "standard" else {"attacks": list(attack_names),
                                             "apgd_restarts": 1, "fab_restarts": 1}
  def run_ours():
    # Compiled as metrics.run compiles the attacks on this model (the zoo's XLA options).
    with attacks.compile_with(models.compiler_options("efficientnet_lite0")):
      return attacks.autoattack(apply_fn, variables, x, y, norm="linf", eps=eps,
                                key=jax.random.key(0), version=version, n_iter=n_iter,
                                fab_steps=n_iter, square_queries=queries,
                                n_target_classes=targets, **kwargs)
  start = time.perf_counter()
  ours = run_ours()
  ours_s = time.perf_counter() - start
  # Again, compiled: what every further batch of a run costs.
  start = time.perf_counter()
  run_ours()
  warm_s = time.perf_counter() - start
  auto = torchattacks_autoattack(model, eps, attack_names, n_iter, queries, targets)
  xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
  start = time.perf_counter()
  adv = auto(xt, torch.from_numpy(y.astype(np.int64))).detach()
  theirs_s = time.perf_counter() - start
  with torch.no_grad():
    theirs_robust = float((model(adv).argmax(1).numpy() == y).mean())
  return {"ours_s": ours_s, "warm_s": warm_s, "theirs_s": theirs_s,
          "ours_robust": ours.robust_accuracy,
          "theirs_robust": theirs_robust}


def main_autoattack() -> None:
  """Per attack alone on every image, then the whole standard run; one line each."""
  import torch
  apply_fn, variables, model = lite0_twins()
  x, y = correct_photos(apply_fn, variables, model, FLAGS.images)
  settings = dict(eps=FLAGS.eps, n_iter=FLAGS.n_iter, queries=FLAGS.square_queries,
                  targets=FLAGS.n_target_classes)
  print(f"AutoAttack standard, Linf eps {FLAGS.eps}/255, EfficientNet-Lite0 (real weights), "
        f"{len(y)} demo photos classified correctly; {FLAGS.n_iter} iterations, "
        f"{FLAGS.square_queries} Square queries, {FLAGS.n_target_classes} targets; torch "
        f"{torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__} on "
        f"{jax.devices()[0].platform}; load avg {open('/proc/loadavg').read().split()[0]}",
        flush=True)
  print("| attack | ours s, first call (compile included) | ours s, compiled | torchattacks s "
        "| ratio torch/ours compiled (first call) | robust acc. ours / theirs |\n"
        "|---|---|---|---|---|---|", flush=True)
  rows = [(a,) for a in AUTOATTACK_ORDER] + [AUTOATTACK_ORDER]
  for names in rows:
    r = time_autoattack(apply_fn, variables, model, x, y, names, **settings)
    label = names[0] if len(names) == 1 else "standard (all four, in order)"
    print(f"| {label} | {r['ours_s']:.1f} | {r['warm_s']:.2f} | {r['theirs_s']:.2f} | "
          f"{r['theirs_s'] / r['warm_s']:.2f} ({r['theirs_s'] / r['ours_s']:.2f}) | "
          f"{r['ours_robust']:.2f} / "
          f"{r['theirs_robust']:.2f} |", flush=True)
  print(f"load avg at the end {open('/proc/loadavg').read().split()[0]}", flush=True)


def main(argv):
  del argv
  import torch
  if FLAGS.threads:
    torch.set_num_threads(FLAGS.threads)
  if FLAGS.suite == "autoattack":
    main_autoattack()
    return
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
