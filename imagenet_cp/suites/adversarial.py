"""Adversarial robustness suite: ARES-Bench curves and Adversarial_Survey statistics.

Runs the attacks of ``attacks/`` on the same source images as the corruption benchmark (the
clean 224 crops of ``imagenet_cp.preprocess``; labels from the source), on the examples the
model classifies correctly when clean (their file names are recorded).  Per attack:

* per-example minimal distortion: ``attacks.search_budget`` (doubling + bisection) for the
  iterative attacks (PGD, BIM, MIM, FGSM), the attack's own optimised distortion for C&W L2,
  EAD L1 and DeepFool;
* accuracy-vs-budget curve (budgets /255 in the attack's norm) and its normalised area (ARES);
* accuracy-vs-iterations curve at a fixed budget (iterative attacks, from ``AttackResult.curve``)
  and its normalised area;
* APGD-CE and APGD-T (AutoAttack) at the fixed budget: accuracy vs iterations (APGD-T: over its
  target runs one after another), its area, and the accuracy at APGD's checkpoints;
* NES and SPSA (score-based black-box) at the fixed budget: one run per example records the
  exact query at which it was fooled, which gives accuracy after q queries for any grid of q
  (ARES's accuracy vs queries) and its normalised area;
* success rate, mean / std / median of L0, L1, L2, Linf over successful examples.

And the transfer matrix over a list of models: adversarials crafted on model i at a fixed
budget, scored on model j (top-1 untargeted, top-5 targeted), on the examples every model
classifies correctly when clean; the diagonal is each model's white-box success.

Accuracies are over the attacked (clean-correct) examples.  The model runs data-parallel over
the local devices (``models.parallel.DataParallel``, the machinery ``suites.corruption``'s
``Classifier`` wraps); with an ``output_dir`` each finished attack (and each transfer source
model) is saved at once as ``adversarial/tasks/*.npz`` by ``suites.corruption.Store``, so a
rerun resumes.  Random starts and black-box draws use ``imagenet_cp.example_key(seed, attack,
0, file_name)``, so an example's result does not depend on its batch.

With several processes (``jax.distributed``) each process loads and attacks its own share of
the examples (source chunks or array rows round-robin); per-example records are all-gathered
(``suites.distributed``) so the figures equal one process's, and process 0 writes the files.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from imagenet_cp import attacks
import imagenet_cp
from imagenet_cp.preprocess import CROP
from imagenet_cp.suites import corruption as evaluation
from imagenet_cp.suites.corruption import Store, Task

# name -> (attack function, norm, kind).  Kinds: "search" (minimal distortion by the budget
# search; accuracy vs budget and vs iterations), "optimised" (the attack's own distortion;
# accuracy vs budget), "iterations" (a fixed budget; accuracy vs iterations), "queries" (a fixed
# budget; accuracy vs queries).
ATTACKS = {
    "pgd_linf": ("pgd", "linf", "search"), "pgd_l2": ("pgd", "l2", "search"),
    "bim_linf": ("bim", "linf", "search"), "bim_l2": ("bim", "l2", "search"),
    "mim_linf": ("mim", "linf", "search"), "fgsm_linf": ("fgsm", "linf", "search"),
    "fgsm_l2": ("fgsm", "l2", "search"),
    "cw_l2": ("cw_l2", "l2", "optimised"), "ead_l1": ("ead", "l1", "optimised"),
    "deepfool_l2": ("deepfool", "l2", "optimised"),
    "deepfool_linf": ("deepfool", "linf", "optimised"),
    "apgd_ce_linf": ("apgd", "linf", "iterations"), "apgd_ce_l2": ("apgd", "l2", "iterations"),
    "apgd_t_linf": ("apgd_t", "linf", "iterations"), "apgd_t_l2": ("apgd_t", "l2", "iterations"),
    "nes_linf": ("nes", "linf", "queries"), "nes_l2": ("nes", "l2", "queries"),
    "spsa_linf": ("spsa", "linf", "queries"),
}
DEFAULT_ATTACKS = ("pgd_linf", "cw_l2", "deepfool_l2", "apgd_ce_linf", "apgd_t_linf", "nes_linf",
                   "spsa_linf")
DEFAULT_BUDGETS = {"linf": (0, 0.5, 1, 2, 4, 8, 16), "l2": (0, 32, 64, 128, 256, 512, 1024),
                   "l1": (0, 1000, 2000, 4000, 8000, 16000, 32000)}
TRANSFER_TARGETS = ("untargeted", "random", "least_likely", "second_most_likely")


@dataclasses.dataclass(frozen=True)
class Config:
  """Attack settings (budgets /255).  ``steps``: iterations of the iterative attacks;
  ``iterations_eps``: the fixed budget (per norm) of the accuracy-vs-iterations curve;
  search: ``initial_eps`` doubled ``doubling_steps`` times, then ``bisection_steps`` bisections;
  ``optimiser_steps`` / ``optimiser_search_steps``: C&W's and EAD's Adam/FISTA iterations and
  binary search over c; ``deepfool_steps`` and ``deepfool_candidates`` (classes considered, one
  backward pass each per iteration); transfer: ``transfer_attack`` at ``transfer_eps``
  with ``transfer_target`` ('untargeted', or a target mode of ``attacks.select_targets``).
  The fixed-budget attacks (APGD, NES, SPSA) run at ``iterations_eps``: APGD for
  ``apgd_iterations`` (APGD-T: per target class, ``apgd_target_classes`` classes), NES and SPSA
  for ``blackbox_steps`` iterations of ``nes_samples`` / ``spsa_samples`` antithetic pairs
  (``attacks.queries_at``: 1 + t (2 samples + 1) queries after t iterations);
  ``query_grid``: the query counts of the accuracy-vs-queries curve (empty: the count after
  each iteration)."""
  steps: int = 20
  iterations_eps: tuple = (("linf", 4.0), ("l2", 255.0))
  initial_eps: float = 0.25
  doubling_steps: int = 10
  bisection_steps: int = 8
  optimiser_steps: int = 100
  optimiser_search_steps: int = 5
  deepfool_steps: int = 50
  deepfool_candidates: int = 10
  transfer_attack: str = "pgd_linf"
  transfer_eps: float = 4.0
  transfer_target: str = "untargeted"
  apgd_iterations: int = 100
  apgd_target_classes: int = 9
  blackbox_steps: int = 100
  nes_samples: int = 50
  spsa_samples: int = 32
  query_grid: tuple = ()

  def check(self) -> None:
    for name in ("steps", "doubling_steps", "optimiser_steps", "optimiser_search_steps",
                 "deepfool_steps", "deepfool_candidates", "apgd_iterations",
                 "apgd_target_classes", "blackbox_steps", "nes_samples", "spsa_samples"):
      if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
        raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
    if self.bisection_steps < 0 or self.initial_eps <= 0 or self.transfer_eps < 0:
      raise ValueError("bisection_steps and transfer_eps must be >= 0, initial_eps > 0")
    if self.transfer_attack not in ATTACKS or ATTACKS[self.transfer_attack][2] != "search":
      raise ValueError(f"transfer_attack must be one of the budgeted attacks "
                       f"{[a for a, s in ATTACKS.items() if s[2] == 'search']}, "
                       f"got {self.transfer_attack!r}")
    grid = list(self.query_grid)
    if any(int(q) != q or q < 0 for q in grid) or grid != sorted(set(grid)):
      raise ValueError(f"query_grid must be increasing non-negative integers, got {grid}")
    if self.transfer_target not in TRANSFER_TARGETS:
      raise ValueError(f"transfer_target must be one of {TRANSFER_TARGETS}, "
                       f"got {self.transfer_target!r}")

  def iterations_budget(self, norm: str) -> float:
    return dict(self.iterations_eps).get(norm, 4.0)

  def samples(self, method: str) -> int:
    """Antithetic pairs per gradient estimate of a black-box attack."""
    return self.nes_samples if method == "nes" else self.spsa_samples


# The demo's short run (4 photos, efficientnet_lite0, 2 CPU cores): ~8 search rounds of 3
# steps, C&W with 2 x 8 Adam steps, DeepFool 3 steps over 3 candidate classes; the demo's
# attacks are DEMO_ATTACKS.
DEMO_CONFIG = Config(steps=3, initial_eps=0.25, doubling_steps=6, bisection_steps=2,
                     optimiser_steps=8, optimiser_search_steps=2, deepfool_steps=3,
                     deepfool_candidates=3,
                     iterations_eps=(("linf", 1.0), ("l2", 64.0)), transfer_eps=1.0,
                     apgd_iterations=5, apgd_target_classes=2, blackbox_steps=3, nes_samples=4,
                     spsa_samples=4)
# APGD-T and SPSA would add about 25 s more to the demo (measured: docs/attacks.md).
DEMO_ATTACKS = ("pgd_linf", "cw_l2", "deepfool_l2", "apgd_ce_linf", "nes_linf")
DEMO_BUDGETS = {"linf": (0, 0.25, 0.5, 1, 2, 4), "l2": (0, 16, 32, 64, 128, 256),
                "l1": (0, 500, 1000, 2000, 4000, 8000)}


def check_attacks(names: Sequence[str]) -> list[str]:
  unknown = [n for n in names if n not in ATTACKS]
  if unknown or not names:
    raise ValueError(f"unknown or no attack(s) {list(unknown)}; expected some of "
                     f"{', '.join(ATTACKS)}")
  return list(names)


# ----------------------------------------------------------------------------------------------
# The model on sharded batches.


class Model:
  """A classifier on float pixels: ``DataParallel`` forward (padded global batch, variables
  replicated once) and attack inputs sharded over the same mesh."""

  def __init__(self, name: str, apply_fn: Callable, variables, batch_size: int):
    from imagenet_cp.models.parallel import DataParallel  # pylint: disable=g-import-not-at-top
    self.name = name
    self.apply_fn = apply_fn
    self.parallel = DataParallel(apply_fn, variables, batch_size, model_name=name)
    self.batch_size = self.parallel.batch_size
    mesh = self.parallel.mesh
    self._sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))

  def attack_batch(self, n: int) -> int:
    """Padded batch of an attack over n examples: the global batch, or n rounded up to the
    device count when fewer (attacks cost a backward pass per padded row)."""
    devices = len(self.parallel.mesh.devices.ravel())
    return max(min(self.batch_size, -(-n // devices) * devices), devices)

  @property
  def variables(self):
    return self.parallel.variables

  def shard(self, array):
    """A padded batch [batch_size, ...] split over the devices."""
    return jax.device_put(array, self._sharding)

  def logits(self, images: np.ndarray) -> np.ndarray:
    """float32 [N, H, W, 3] in [0, 1] -> float32 logits [N, C] (NumPy)."""
    if images.shape[0] == 0:
      return np.zeros((0, 0), np.float32)
    return self.parallel(np.asarray(images, np.float32))


def _pad(array, n: int):
  return evaluation.pad_batch(np.asarray(array), n)


def _padded_keys(seed: int, name: str, file_names: Sequence[str], n: int):
  keys = imagenet_cp.example_keys(seed, name, 0, list(file_names))
  return evaluation.pad_keys(keys, n)


# ----------------------------------------------------------------------------------------------
# One attack, one batch.


@dataclasses.dataclass(frozen=True)
class _BudgetedAttack:
  """attack(variables=(model variables, keys), images, labels, eps=[N], targets) for
  ``attacks.search_budget``: hashable (a static argument) with the keys kept out of it."""
  method: str
  apply_fn: Callable
  norm: str
  steps: int

  def __call__(self, variables, images, labels, *, eps, targets=None):
    model_variables, keys = variables
    fn = getattr(attacks, self.method)
    if self.method == "fgsm":
      return fn(self.apply_fn, model_variables, images, labels, eps=eps, targets=targets,
                norm=self.norm)
    extra = {"key": keys} if self.method == "pgd" else {}
    return fn(self.apply_fn, model_variables, images, labels, eps=eps, steps=self.steps,
              targets=targets, norm=self.norm, **extra)


def _fixed_budget_attack(method: str, norm: str, model: Model, images, labels, keys,
                         config: Config):
  """APGD-CE / APGD-T / NES / SPSA at the fixed budget ``config.iterations_budget(norm)``."""
  eps = config.iterations_budget(norm)
  common = dict(eps=eps, key=keys)
  if method == "apgd":
    return attacks.apgd(model.apply_fn, model.variables, images, labels,
                        n_iter=config.apgd_iterations, norm=norm, loss="ce", **common)
  if method == "apgd_t":
    return attacks.apgd_t(model.apply_fn, model.variables, images, labels,
                          n_iter=config.apgd_iterations, norm=norm,
                          n_target_classes=config.apgd_target_classes, **common)
  if method == "nes":
    return attacks.nes(model.apply_fn, model.variables, images, labels, norm=norm,
                       steps=config.blackbox_steps, samples=config.nes_samples, **common)
  return attacks.spsa(model.apply_fn, model.variables, images, labels,
                      steps=config.blackbox_steps, samples=config.spsa_samples, **common)


def _attack_batch(name: str, model: Model, images, labels, keys, config: Config) -> dict:
  """Records of one padded batch: success, norms, and per kind the minimal distortion, the
  iterations curve (bool [T + 1, N]) or the query at which each example was fooled."""
  method, norm, kind = ATTACKS[name]
  images, labels = model.shard(images), model.shard(labels)
  extra = {}
  if kind in ("iterations", "queries"):
    result = _fixed_budget_attack(method, norm, model, images, labels, model.shard(keys), config)
    success, adversarial = result.success, result.adversarial
    if kind == "queries":
      extra["queries"] = np.asarray(result.queries, np.int32)
      curve = np.zeros((0, images.shape[0]), bool)
    else:
      curve = np.asarray(result.curve)
    minimal = None   # not searched: the attack runs at one fixed budget
  elif kind == "search":
    attack = _BudgetedAttack(method, model.apply_fn, norm, config.steps)
    found = attacks.search_budget(attack, (model.variables, model.shard(keys)), images, labels,
                                  initial_eps=config.initial_eps,
                                  doubling_steps=config.doubling_steps,
                                  bisection_steps=config.bisection_steps)
    minimal, success, adversarial = found.minimal, found.success, found.adversarial
    n = images.shape[0]
    fixed = attack((model.variables, model.shard(keys)), images, labels,
                   eps=jnp.full((n,), config.iterations_budget(norm), jnp.float32))
    curve = np.asarray(fixed.curve)
  else:
    if method == "cw_l2":
      result = attacks.cw_l2(model.apply_fn, model.variables, images, labels,
                             steps=config.optimiser_steps,
                             binary_search_steps=config.optimiser_search_steps)
    elif method == "ead":
      result = attacks.ead(model.apply_fn, model.variables, images, labels,
                           steps=config.optimiser_steps,
                           binary_search_steps=config.optimiser_search_steps)
    else:
      result = attacks.deepfool(model.apply_fn, model.variables, images, labels, norm=norm,
                                steps=config.deepfool_steps,
                                candidates=max(config.deepfool_candidates, 2))
    minimal = attacks.optimised_distortion(result, images, norm)
    success, adversarial = result.success, result.adversarial
    curve = np.zeros((0, images.shape[0]), bool)
  norms = attacks.perturbation_norms(adversarial, images)
  out = {"success": np.asarray(success), "curve": curve, **extra}
  if minimal is not None:
    out["minimal"] = np.asarray(minimal)
  out.update({k: np.asarray(v) for k, v in norms.items()})
  return out


# ----------------------------------------------------------------------------------------------
# Images and clean predictions.


@dataclasses.dataclass
class Examples:
  """Examples with their ids (with several processes: this process's share)."""
  file_names: list[str]
  labels: np.ndarray     # int32 [N]
  images: np.ndarray     # float32 [N, H, W, 3] in [0, 1]

  def rows(self, index) -> "Examples":
    index = np.asarray(index, np.int64)
    return Examples([self.file_names[i] for i in index], self.labels[index], self.images[index])


def source_examples(source: str = "demo", imagenet_dir=None, max_images: int | None = None,
                    cache_dir=None, process_index: int = 0, process_count: int = 1,
                    chunk_size: int = evaluation.CHUNK) -> Examples:
  """The clean crops of the source images (those the corruption benchmark uses); with several
  processes, this process's share (cache chunks round-robin, as the corruption suite splits)."""
  cache = evaluation.ImageCache(
      evaluation.source_examples(source, imagenet_dir, max_images),
      cache_dir, process_index, process_count, chunk_size)
  names, labels, crops = [], [], []
  for chunk in cache:
    names += list(chunk.file_names)
    labels.append(chunk.labels)
    crops.append(chunk.crops)
  if not names:
    if process_count == 1:
      raise ValueError(f"no source images in {source!r}")
    return Examples([], np.zeros(0, np.int32), np.zeros((0, CROP, CROP, 3), np.float32))
  return Examples(names, np.concatenate(labels).astype(np.int32),
                  np.concatenate(crops).astype(np.float32) / 255.0)


def _check_examples(images, labels, file_names) -> Examples:
  images = np.asarray(images)
  if images.dtype != np.float32 or images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"images must be float32 [N, H, W, 3], got {images.dtype} {images.shape}")
  if images.size and (images.min() < 0 or images.max() > 1):
    raise ValueError("images must be pixels in [0, 1]")
  labels = np.asarray(labels, np.int32)
  if labels.shape != (images.shape[0],):
    raise ValueError(f"labels must be [{images.shape[0]}], got {labels.shape}")
  file_names = [str(f) for f in (file_names if file_names is not None else
                                 [f"example_{i:06d}" for i in range(images.shape[0])])]
  if len(file_names) != images.shape[0] or len(set(file_names)) != len(file_names):
    raise ValueError("file_names must be unique, one per image")
  return Examples(file_names, labels, images)


def clean_correct(model: Model, examples: Examples) -> np.ndarray:
  """bool [N]: top-1 of the clean image equals the label."""
  if not examples.file_names:
    return np.zeros(0, bool)
  return np.argmax(model.logits(examples.images), axis=-1) == examples.labels


# ----------------------------------------------------------------------------------------------
# Several processes: shares, gathering, who decides.


def _share(n: int) -> np.ndarray:
  """This process's rows of n examples every process holds (round-robin)."""
  return np.arange(jax.process_index(), n, jax.process_count())


def _global_names(local: Examples, chunk_size: int) -> list[str]:
  """The ids of every process's source examples, in the sources' order (the one process's
  order): process p holds cache chunks p, p + P, ... of ``chunk_size`` examples."""
  if jax.process_count() == 1:
    return list(local.file_names)
  from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
  j = np.arange(len(local.file_names))
  chunk = jax.process_index() + (j // chunk_size) * jax.process_count()
  return distributed.gather_ordered_names(local.file_names, chunk * chunk_size + j % chunk_size)


def _gather(records: dict, names: Sequence[str], axes: dict | None = None) -> dict:
  """Per-example records of every process aligned with ``names`` (one process: as they are,
  already in that order)."""
  if jax.process_count() == 1:
    return records
  from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
  return distributed.gather_records(records, names, axes)


def _correct_everywhere(models: Sequence[Model], examples: Examples, names: Sequence[str]):
  """-> (bool [len(names)]: every model right on the clean example, this process's rows of
  ``examples`` that are)."""
  local = np.all([clean_correct(m, examples) for m in models], axis=0).astype(bool)
  gathered = _gather({"file_names": np.array(examples.file_names, dtype=str),
                      "correct": local}, names)
  return np.asarray(gathered["correct"], bool), np.flatnonzero(local)


# ----------------------------------------------------------------------------------------------
# Records: one attack over the attacked examples, streamed in batches.

CURVE_AXES = {"curve": 1}      # records whose examples are on axis 1
TRANSFER_AXES = {"fooled": 1}


def attack_records(name: str, model: Model, examples: Examples, index: np.ndarray,
                   config: Config, seed: int) -> dict:
  """Per-example records of attack ``name`` on ``examples`` rows ``index``."""
  b = model.attack_batch(len(index))
  parts = []
  for start in range(0, len(index), b):
    rows = index[start:start + b]
    names = [examples.file_names[i] for i in rows]
    out = _attack_batch(name, model, _pad(examples.images[rows], b),
                        _pad(examples.labels[rows], b), _padded_keys(seed, name, names, b), config)
    parts.append({k: (v[:, :len(rows)] if k == "curve" else v[:len(rows)]) for k, v in out.items()})
  if not parts:
    parts = [_empty_records(name, model, examples, config, seed)]
  records = {k: np.concatenate([p[k] for p in parts], axis=1 if k == "curve" else 0)
             for k in parts[0]}
  records["file_names"] = np.array([examples.file_names[i] for i in index], dtype=str)
  return records


def _empty_records(name: str, model: Model, examples: Examples, config: Config, seed: int):
  """Records of no example with the shapes and dtypes of real ones (from one batch of a blank
  image), so that a process with nothing to attack gathers the same keys as the others."""
  b = model.attack_batch(1)
  blank = np.zeros((b,) + examples.images.shape[1:], np.float32)
  out = _attack_batch(name, model, blank, np.zeros(b, np.int32),
                      _padded_keys(seed, name, ["blank"], b), config)
  return {k: (v[:, :0] if k == "curve" else v[:0]) for k, v in out.items()}


def _targets(mode: str, model: Model, examples: Examples, index, seed: int):
  if mode == "untargeted":
    return None
  if len(index) == 0:
    return np.zeros(0, np.int32)
  logits = jnp.asarray(model.logits(examples.images[index]))
  labels = jnp.asarray(examples.labels[index])
  keys = imagenet_cp.example_keys(seed, "transfer_target", 0, [examples.file_names[i] for i in index])
  if mode == "random":
    # One draw per example from its own key, so targets do not depend on the batch.
    classes = logits.shape[-1]
    offset = jax.vmap(lambda k: jax.random.randint(k, (), 1, classes))(keys)
    return np.asarray((labels + offset) % classes, np.int32)
  return np.asarray(attacks.select_targets(mode, logits, labels), np.int32)


def transfer_records(source: Model, targets: Sequence[Model], examples: Examples,
                     index: np.ndarray, config: Config, seed: int) -> dict:
  """Adversarials crafted on ``source`` at ``config.transfer_eps``, scored on every target model:
  fooled bool [M, n] (top-1 != label untargeted; target in top-5 targeted) and whitebox [n]."""
  method, norm, _ = ATTACKS[config.transfer_attack]
  attack = _BudgetedAttack(method, source.apply_fn, norm, config.steps)
  goal = _targets(config.transfer_target, source, examples, index, seed)
  b = source.attack_batch(len(index))
  fooled, whitebox = [], []
  for start in range(0, len(index), b):
    rows = index[start:start + b]
    names = [examples.file_names[i] for i in rows]
    labels = _pad(examples.labels[rows], b)
    tgt = None if goal is None else source.shard(_pad(goal[start:start + b], b))
    keys = source.shard(_padded_keys(seed, config.transfer_attack, names, b))
    result = attack((source.variables, keys), source.shard(_pad(examples.images[rows], b)),
                    source.shard(labels), eps=jnp.full((b,), config.transfer_eps, jnp.float32),
                    targets=tgt)
    adversarial = np.asarray(result.adversarial)[:len(rows)]
    whitebox.append(np.asarray(result.success)[:len(rows)])
    fooled.append(np.stack([_fooled(m.logits(adversarial), labels[:len(rows)],
                                    None if goal is None else goal[start:start + b])
                            for m in targets]))
  return {"fooled": np.concatenate(fooled, axis=1) if fooled else np.zeros((len(targets), 0), bool),
          "whitebox": np.concatenate(whitebox) if whitebox else np.zeros(0, bool),
          "file_names": np.array([examples.file_names[i] for i in index], dtype=str)}


def _fooled(logits: np.ndarray, labels: np.ndarray, goal) -> np.ndarray:
  if goal is None:
    return np.argmax(logits, axis=-1) != labels
  top5 = np.argsort(-logits, axis=-1)[:, :5]
  return np.any(top5 == goal[:, None], axis=-1)


# ----------------------------------------------------------------------------------------------
# Summaries.


def attack_summary(name: str, records: dict, budgets: Sequence[float],
                   config: Config = Config()) -> dict:
  """Curves, areas and distortion statistics of one attack's records."""
  method, norm, kind = ATTACKS[name]
  norms = {k: records[k] for k in ("l0", "l1", "l2", "linf")}
  out = {"norm": norm, "kind": kind, "examples": int(len(records["success"])),
         "distortion": _finite_or_none(attacks.distortion_summary(norms, records["success"]))}
  if kind in ("search", "optimised"):
    out.update(_budget_summary(kind, records["minimal"], budgets))
  else:
    out["eps"] = config.iterations_budget(norm)
  curve = records.get("curve")
  if curve is not None and curve.size:
    out.update(_iterations_summary(method, curve, config))
  if kind == "queries":
    out.update(_queries_summary(method, records, config))
  return out


def _budget_summary(kind: str, minimal, budgets) -> dict:
  budgets = [float(b) for b in budgets]
  accuracy = attacks.accuracy_vs_budget(minimal, budgets) if len(minimal) \
      else np.full(len(budgets), np.nan)
  return {"minimal_distortion": kind, "budgets": budgets, "accuracy_vs_budget": _floats(accuracy),
          "auc": attacks.area_under_curve(budgets, accuracy) if len(budgets) > 1 else None,
          "minimal": [None if not np.isfinite(v) else float(v) for v in minimal]}


def _iterations_summary(method: str, curve, config: Config) -> dict:
  """Accuracy after 0, 1, ... iterations, its normalised area; APGD: also at its checkpoints
  (APGD-T: the checkpoints of each target run, its iterations counted one run after another)."""
  accuracy = attacks.accuracy_vs_iterations(curve)
  x = np.arange(len(accuracy))
  out = {"iterations": x.tolist(), "accuracy_vs_iterations": accuracy.tolist(),
         "auc_iterations": attacks.area_under_curve(x, accuracy) if len(x) > 1 else None}
  if method in ("apgd", "apgd_t"):
    points = apgd_points(len(accuracy) - 1, config.apgd_iterations)
    out["checkpoints"] = points
    out["accuracy_at_checkpoints"] = accuracy[points].tolist()
  return out


def apgd_points(total: int, n_iter: int) -> list[int]:
  """APGD's checkpoints (and the last iteration) over ``total`` iterations made of runs of
  ``n_iter`` (one run for APGD-CE, one per target class for APGD-T)."""
  points = {total}
  for run in range(total // n_iter):
    points |= {run * n_iter + c for c in attacks.apgd_checkpoints(n_iter)}
  return sorted(points)


def _queries_summary(method: str, records: dict, config: Config) -> dict:
  """Accuracy after q queries for q in the grid (exact: each example's fooling query is
  recorded), its normalised area, and the queries the successes took."""
  samples = config.samples(method)
  budget = int(attacks.queries_at(config.blackbox_steps, samples))
  grid = np.asarray(config.query_grid or
                    attacks.queries_at(np.arange(config.blackbox_steps + 1), samples), np.int64)
  success = np.asarray(records["success"], bool)
  accuracy = attacks.accuracy_after_queries(records["queries"], success, grid)
  spent = np.asarray(records["queries"], np.float64)[success]
  return {"samples": samples, "steps": config.blackbox_steps, "query_budget": budget,
          "queries": grid.tolist(), "accuracy_vs_queries": _floats(accuracy),
          "auc_queries": attacks.area_under_curve(grid, accuracy)
                         if len(grid) > 1 and success.size else None,
          "first_success_query": [int(q) if ok else None
                                  for q, ok in zip(records["queries"], success)],
          "queries_of_successes": _finite_or_none({
              "mean": float(spent.mean()) if spent.size else float("nan"),
              "median": float(np.median(spent)) if spent.size else float("nan")})}


def _floats(values) -> list:
  """A curve as JSON numbers (NaN, i.e. no examples: None)."""
  return [float(v) if np.isfinite(v) else None for v in np.asarray(values, np.float64)]


def _finite_or_none(summary: dict) -> dict:
  """NaN (no successful example) -> None, so results.json stays strict JSON."""
  return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in summary.items()}


def transfer_summary(names: Sequence[str], records: dict[str, dict], config: Config) -> dict:
  """matrix[i][j]: fraction of model i's adversarials that fool model j."""
  matrix = [[float(records[s]["fooled"][j].mean()) if records[s]["fooled"].shape[1] else None
             for j in range(len(names))] for s in names]
  whitebox = [float(records[s]["whitebox"].mean()) if records[s]["whitebox"].size else None
              for s in names]
  any_records = records[names[0]]
  return {"models": list(names), "matrix": matrix, "whitebox_success": whitebox,
          "attack": config.transfer_attack, "eps": config.transfer_eps,
          "target": config.transfer_target,
          "criterion": "top-1 != label" if config.transfer_target == "untargeted" else
                       "target in top-5",
          "examples": int(any_records["file_names"].size),
          "example_ids": [str(f) for f in any_records["file_names"]]}


# ----------------------------------------------------------------------------------------------
# The public entry points.


def evaluate_adversarial(apply_fn: Callable, variables, *,
                         images=None, labels=None, file_names=None,
                         source: str = "demo", imagenet_dir=None, max_images: int | None = None,
                         attack_names: Sequence[str] = DEFAULT_ATTACKS,
                         budgets: dict | None = None,
                         config: Config = Config(),
                         transfer_models: Sequence[tuple] = (),
                         batch_size: int = 32, seed: int = 0, output_dir=None,
                         model_name: str = "user model", chunk_size: int = evaluation.CHUNK,
                         log: Callable[[str], None] = print) -> dict:
  """Adversarial robustness of ``apply_fn``; returns the ``results.json["adversarial"]`` dict.

  Args:
    apply_fn, variables: ``apply_fn(variables, images float32 [N, H, W, 3] in [0, 1]) -> logits``.
    images, labels, file_names: your own examples (float32 [N, H, W, 3], int [N], unique ids);
      else the clean crops of ``source`` ('demo' or 'imagenet', ``max_images`` first ones).
    attack_names: keys of ``ATTACKS``.
    budgets: {'linf' | 'l2' | 'l1': budgets /255} of the accuracy-vs-budget curves
      (``DEFAULT_BUDGETS`` for missing norms).
    config: a ``Config`` (steps, search, optimiser, fixed-budget and transfer settings).
    transfer_models: [(name, apply_fn, variables)] for the transfer matrix (with this model
      first when you list it); empty: the matrix of this model alone (its white-box success).
    output_dir: per-attack records in ``output_dir/adversarial/tasks`` (resumable).
    chunk_size: source images per cache chunk (the unit split between processes).

  With several processes (``jax.distributed``) each attacks its share of the examples and
  process 0 holds the complete results (and writes them); the others' lack the attacks that
  process 0 resumed from its output directory.
  """
  config.check()
  attack_names = check_attacks(list(attack_names))
  budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
  for norm, values in budgets.items():
    if any(b < 0 for b in values) or list(values) != sorted(values):
      raise ValueError(f"{norm} budgets must be non-negative and increasing, got {values}")
  started = time.time()
  pid, pcount = jax.process_index(), jax.process_count()
  if images is not None:
    every = _check_examples(images, labels, file_names)
    names, examples, source = every.file_names, every.rows(_share(len(every.file_names))), "arrays"
  else:
    cache_dir = pathlib.Path(output_dir) / "cache" if output_dir is not None else None
    examples = source_examples(source, imagenet_dir, max_images, cache_dir, pid, pcount,
                               chunk_size)
    names = _global_names(examples, chunk_size)
  model = Model(model_name, apply_fn, variables, batch_size)
  run_info = {"model": model_name, "source": source, "seed": seed, "images": len(names),
              "file_names_sha256": evaluation.file_digest(names)}
  store = (Store(pathlib.Path(output_dir) / "adversarial", run_info)
           if output_dir is not None and pid == 0 else None)
  correct, index = _correct_everywhere([model], examples, names)
  attacked = [n for n, c in zip(names, correct) if c]
  results = {"run": dict(run_info, config=dataclasses.asdict(config), processes=pcount,
                         devices=jax.device_count()),
             "clean_accuracy": float(correct.mean()),
             "attacked_examples": len(attacked), "example_ids": attacked, "attacks": {}}
  for name in attack_names:
    records = _cached(store, Task("adversarial", name), _config_id(name, config), log,
                      lambda n=name: _gather(attack_records(n, model, examples, index, config,
                                                            seed), attacked, CURVE_AXES))
    if records is not None:
      results["attacks"][name] = attack_summary(name, records, budgets[ATTACKS[name][1]], config)
  models = [model if n == model_name else Model(n, f, v, batch_size)
            for n, f, v in transfer_models] or [model]
  results["transfer"] = transfer_matrix(models, examples, names=names, config=config, seed=seed,
                                        store=store, log=log)
  results["run"]["seconds"] = round(time.time() - started, 1)
  if store:
    store.write_json("results.json", results)
  return results


def transfer_matrix(models: Sequence[Model], examples: Examples, *, names=None,
                    config: Config = Config(), seed: int = 0, store: Store | None = None,
                    log=print) -> dict | None:
  """Transfer matrix over ``models`` (``Model`` objects) on the examples all of them classify
  correctly when clean.  names: every process's example ids in order (default: those of
  ``examples``, one process).  None on a process other than 0 when process 0 resumed a part."""
  model_names = [m.name for m in models]
  if len(set(model_names)) != len(model_names):
    raise ValueError(f"transfer model names must be unique, got {model_names}")
  names = list(examples.file_names) if names is None else list(names)
  correct, index = _correct_everywhere(models, examples, names)
  common = [n for n, c in zip(names, correct) if c]
  config_id = json.dumps({"targets": model_names, "attack": config.transfer_attack,
                          "eps": config.transfer_eps, "steps": config.steps,
                          "target": config.transfer_target}, sort_keys=True)
  records = {}
  for m in models:
    records[m.name] = _cached(
        store, Task("transfer", m.name.replace("/", "_").replace(":", "_")), config_id, log,
        lambda m=m: _gather(transfer_records(m, models, examples, index, config, seed), common,
                            TRANSFER_AXES))
  if any(r is None for r in records.values()):
    return None
  return transfer_summary(model_names, records, config)


def _config_id(name: str, config: Config) -> str:
  fields = {
      "search": ("steps", "initial_eps", "doubling_steps", "bisection_steps", "iterations_eps"),
      "optimised": ("optimiser_steps", "optimiser_search_steps", "deepfool_steps",
                    "deepfool_candidates"),
      "iterations": ("apgd_iterations", "apgd_target_classes", "iterations_eps"),
      "queries": ("blackbox_steps", "nes_samples", "spsa_samples", "iterations_eps"),
  }[ATTACKS[name][2]]
  return json.dumps({f: getattr(config, f) for f in fields}, sort_keys=True)


def _cached(store: Store | None, task: Task, config_id: str, log, compute) -> dict | None:
  """A saved record with the same settings, or a fresh one (saved atomically at once).  Only
  process 0 reads and writes the store; it decides for all, and a resumed task is None on the
  other processes."""
  saved = store.load(task) if store is not None else None
  done = saved is not None and str(saved.get("config_id")) == config_id
  if jax.process_count() > 1:
    from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
    done = distributed.broadcast_from_first(done)
  if done:
    log(f"resuming: {task.id} already done")
    return saved
  records = compute()
  if store is not None:
    store.save(task, dict(records, config_id=np.array(config_id)))
  return records
