"""AutoAttack suite: robust accuracy under ``attacks.autoattack`` (``--suite=autoattack``).

The source images are the clean crops the other suites use (``images.source_listing``, with
``image_list`` and ``preprocessing``: RobustBench's 5,000 images and its crops).  They are
attacked in shards of one global batch (``batch_size``, split over the local devices: every
model call inside the attacks is sharded on its batch axis when the batch divides evenly).
Per shard, the state after every attack (robust flags, the breaking attack, the norm of the
breaking point, the attacks done) is saved at once as ``autoattack/tasks/*.npz``; a rerun
resumes each shard after its last finished attack (``autoattack``'s ``resume``).  Random
starts and draws use ``imagenet_cp.example_key(seed, 'autoattack', 0, id)``, so an example's
result does not depend on its shard or on a resume.

``autoattack/run.json`` pins the images (listing digest, image list, preprocessing), the model
and its weights, the seed and the attack settings (eps, norm, version, attacks and the
hyper-parameters); a rerun with any other is refused (``common.StoreError``).

With several processes each attacks its share of the source chunks (as the other suites split
them) and the flags are all-gathered, so the figures equal one process's; only process 0 saves
and resumes its shards (the others recompute theirs on a rerun).
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import pathlib
import time
from typing import Callable, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

import imagenet_cp
from imagenet_cp.attacks import core
from imagenet_cp.attacks.jit import compile_with
from imagenet_cp.preprocess import DEFAULT_PREPROCESSING
from imagenet_cp.suites import distributed
from imagenet_cp.suites.adversarial import Examples, source_examples
from imagenet_cp.suites.common import (Classifier, Model, Store, Task, file_digest, model_identity,
                                       pad_batch, pad_keys, records_problem, with_results_json)
from imagenet_cp.suites.images import CHUNK, check_max_images, source_listing

# The module, not the function of the same name that the attacks package exports.
aa = importlib.import_module("imagenet_cp.attacks.autoattack")

SECTION = "autoattack"   # results.json key
AUTO_SOURCES = ()        # hours per model on ImageNet, minutes even on the demo: never automatic
NORMS = ("linf", "l2")
# AutoAttack's standard budgets, /255: 4/255 Linf (RobustBench ImageNet), 0.5 L2 in [0, 1] units.
DEFAULT_EPS = {"linf": 4.0, "l2": 127.5}
# broken_by as small integers in the task files ('' = still robust).
OUTCOMES = ("", "clean") + aa.ATTACK_NAMES


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
  """What to attack and how.  eps: /255 (None: ``DEFAULT_EPS[norm]``); version: 'standard',
  'plus', 'rand' or 'custom' with ``attacks``; settings: (name, value) pairs overriding the
  version's hyper-parameters (``attacks.autoattack.settings``)."""
  source: str = "demo"
  imagenet_dir: str | None = None
  max_images: int | None = None
  batch_size: int = 32
  seed: int = 0
  chunk_size: int = CHUNK
  image_list: str | None = None
  preprocessing: str = DEFAULT_PREPROCESSING
  eps: float | None = None
  norm: str = "linf"
  version: str = "standard"
  attacks: Sequence[str] | None = None
  settings: tuple = ()

  @property
  def budget(self) -> float:
    return DEFAULT_EPS[self.norm] if self.eps is None else float(self.eps)

  def attack_names(self) -> tuple:
    return aa.attack_list(self.version, None if self.attacks is None else list(self.attacks))

  def hyperparameters(self) -> dict:
    return aa.settings(self.version, **dict(self.settings))


def check(config: SuiteConfig) -> None:
  """ValueError for a bad norm, budget, version, attack list or setting."""
  check_max_images(config.max_images)
  if config.norm not in NORMS:
    raise ValueError(f"AutoAttack norm must be one of {', '.join(NORMS)}; got {config.norm!r}")
  if not np.isfinite(config.budget) or config.budget <= 0:
    raise ValueError(f"AutoAttack eps must be a positive number (/255); got {config.eps}")
  config.attack_names()
  config.hyperparameters()


def describe(config: SuiteConfig) -> str:
  return (f"autoattack suite: {config.version} ({', '.join(config.attack_names())}) at "
          f"eps {config.budget:g}/255 {config.norm}")


def recorded_settings(config: SuiteConfig) -> dict:
  """The attack settings run.json pins (a resume with others is refused)."""
  return {"eps": config.budget, "norm": config.norm, "version": config.version,
          "attacks": list(config.attack_names()), "hyperparameters": config.hyperparameters()}


def sharded_apply(classifier: Classifier) -> Callable:
  """The model's apply_fn with its batch axis split over the classifier's devices whenever the
  batch divides evenly (inside the attacks' jitted programs too)."""
  mesh = classifier.parallel.mesh
  sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
  devices, apply_fn = classifier.devices, classifier.apply_fn

  def apply(variables, images):
    if devices > 1 and images.shape[0] % devices == 0:
      images = jax.lax.with_sharding_constraint(images, sharding)
    return apply_fn(variables, images)

  return apply


# ----------------------------------------------------------------------------------------------
# One shard: its saved state, the attack, the state saved after every attack.


def _problem(saved: dict, ids: Sequence[str], names: tuple) -> str | None:
  """Why a saved shard state cannot be resumed (None when it can)."""
  done = tuple(str(a) for a in np.asarray(saved.get("done", np.zeros(0, str))))
  if done != names[:len(done)]:
    return f"its attacks done {list(done)} are not a start of {list(names)}"
  return records_problem(saved, ids, id_key="file_names",
                         required=("robust", "broken_by", "distance", "done"),
                         kinds={"robust": "b", "broken_by": "iu", "distance": "f"},
                         ragged=("done",))


def _resume_state(saved: dict, images: np.ndarray, n: int) -> aa.AutoAttackResult:
  """An ``autoattack`` state from saved records, padded to n rows (copies of the last, as the
  images are); the breaking points are not saved, so the adversarials restart as clean."""
  robust = pad_batch(np.asarray(saved["robust"], bool), n)
  broken_by = np.array([OUTCOMES[i] for i in pad_batch(np.asarray(saved["broken_by"]), n)], "<U8")
  done = tuple(str(a) for a in saved["done"])
  return aa.AutoAttackResult(robust, broken_by, np.array(images), float(robust.mean()),
                             {}, done)


def _records(state: aa.AutoAttackResult, distance: np.ndarray, names: Sequence[str]) -> dict:
  rows = len(names)
  return {"file_names": np.array(list(names), dtype=str),
          "robust": np.asarray(state.robust[:rows], bool),
          "broken_by": np.array([OUTCOMES.index(b) for b in state.broken_by[:rows]], np.int8),
          "distance": np.asarray(distance[:rows], np.float32),
          "done": np.array(list(state.done), dtype=str)}


def attack_shard(apply_fn, variables, config: SuiteConfig, examples: Examples, rows: np.ndarray,
                 padded: int, store: Store | None, log) -> dict:
  """AutoAttack on ``examples`` rows ``rows`` (padded to ``padded``), resumed from and saved to
  ``store`` after every attack -> the shard's records."""
  names = [examples.file_names[i] for i in rows]
  task = Task("autoattack", "shard", int(rows[0]) if len(rows) else 0)
  attack_names = config.attack_names()
  saved = store.load(task, lambda s: _problem(s, names, attack_names)) if store else None
  if saved is not None and tuple(saved["done"]) == attack_names:
    log(f"resuming: {task.id} already done")
    return saved
  images = pad_batch(examples.images[rows], padded)
  labels = pad_batch(examples.labels[rows], padded)
  keys = pad_keys(imagenet_cp.example_keys(config.seed, "autoattack", 0, names), padded)
  distance = (pad_batch(np.asarray(saved["distance"], np.float32), padded) if saved is not None
              else np.full(padded, np.nan, np.float32))
  resume = None if saved is None else _resume_state(saved, images, padded)
  if resume is not None:
    log(f"resuming {task.id} after {', '.join(resume.done) or 'nothing'}")

  def on_attack(state: aa.AutoAttackResult) -> None:
    # The norm (/255) of each newly broken example's point, while its adversarial is at hand.
    new = (state.broken_by != "") & np.isnan(distance)
    if new.any():
      size = core.flat_norm(state.adversarial[new] - images[new], config.norm)
      distance[new] = np.asarray(size) * 255.0
    if store is not None:
      store.save(task, _records(state, distance, names))

  result = aa.autoattack(apply_fn, variables, images, labels, norm=config.norm,
                         eps=config.budget, key=keys, version=config.version,
                         attacks=None if config.attacks is None else list(config.attacks),
                         resume=resume, on_attack=on_attack, log=None,
                         **dict(config.settings))
  return _records(result, distance, names)


# ----------------------------------------------------------------------------------------------
# Figures.


def summary(records: dict, config: SuiteConfig) -> dict:
  """results.json["autoattack"] figures from every example's records."""
  broken = np.asarray(records["broken_by"])
  n = len(broken)
  names = config.attack_names()
  counts = {a: int(np.sum(broken == OUTCOMES.index(a))) for a in names}
  clean_wrong = int(np.sum(broken == OUTCOMES.index("clean")))
  after, lost = {"clean": (n - clean_wrong) / n if n else None}, clean_wrong
  for a in names:
    lost += counts[a]
    after[a] = (n - lost) / n if n else None
  distance = np.asarray(records["distance"], np.float64)
  median = {a: float(np.median(distance[broken == OUTCOMES.index(a)])) if counts[a] else None
            for a in names}
  robust = np.asarray(records["robust"], bool)
  return {"eps": config.budget, "norm": config.norm, "version": config.version,
          "attacks": list(names), "hyperparameters": config.hyperparameters(), "images": n,
          "clean_accuracy": after["clean"],
          "robust_accuracy": float(robust.mean()) if n else None,
          "robust_images": int(robust.sum()), "clean_errors": clean_wrong,
          "broken_by": counts, "accuracy_after": after, "median_distance_of_broken": median,
          "example_ids": [str(f) for f in records["file_names"]],
          "example_outcomes": [OUTCOMES[i] or "robust" for i in broken]}


# ----------------------------------------------------------------------------------------------
# The entry point.


def run(config: SuiteConfig, model: Model, output_dir=None, log: Callable[[str], None] = print
        ) -> dict:
  """AutoAttack on the source images: the ``results.json["autoattack"]`` dict."""
  check(config)
  started = time.time()
  pid, pcount = jax.process_index(), jax.process_count()
  listing = source_listing(config.source, config.imagenet_dir, config.max_images,
                           config.image_list, config.preprocessing)
  run_info = dict(listing.identity(), **model_identity(model), seed=config.seed,
                  file_names_sha256=file_digest(listing.ids), **recorded_settings(config))
  store = (Store(pathlib.Path(output_dir) / "autoattack", run_info, log)
           if output_dir is not None and pid == 0 else None)
  with store or contextlib.nullcontext():  # releases the folder's lock
    cache_dir = pathlib.Path(output_dir) / "cache" if output_dir is not None else None
    examples = source_examples(cache_dir=cache_dir, process_index=pid, process_count=pcount,
                               chunk_size=config.chunk_size, listing=listing, log=log)
    classifier = Classifier(model, config.batch_size, uint8=False)
    apply_fn = sharded_apply(classifier)
    parts = []
    for start in range(0, len(examples.file_names), classifier.batch_size):
      rows = np.arange(start, min(start + classifier.batch_size, len(examples.file_names)))
      with compile_with(classifier.parallel.compiler_options):  # the model's XLA options
        parts.append(attack_shard(apply_fn, classifier.variables, config, examples, rows,
                                  classifier.padded_size(len(rows)), store, log))
      log(f"autoattack: {rows[-1] + 1}/{len(examples.file_names)} images of this process done")
    local = {k: np.concatenate([p[k] for p in parts]) if parts else _empty(k)
             for k in ("file_names", "robust", "broken_by", "distance")}
    records = distributed.gather(local, listing.ids)
    results = summary(records, config)
    results["run"] = dict(run_info, processes=pcount, devices=jax.device_count(),
                          weights_file=model.weights_file, source_location=listing.location,
                          seconds=round(time.time() - started, 1))
    return with_results_json(store, results)


def _empty(key: str) -> np.ndarray:
  return {"file_names": np.zeros(0, str), "robust": np.zeros(0, bool),
          "broken_by": np.zeros(0, np.int8), "distance": np.zeros(0, np.float32)}[key]
