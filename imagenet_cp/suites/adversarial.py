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

The attacks and their settings are in ``suites.adversarial_attacks``, the figures in
``suites.adversarial_summary``.  Accuracies are over the attacked (clean-correct) examples.  The
model runs data-parallel over the local devices (``suites.common.Classifier``); with an
``output_dir`` each finished attack (and each transfer source model) is saved at once as
``adversarial/tasks/*.npz`` by ``suites.common.Store``, so a rerun resumes: the folder is locked
while in use, ``adversarial/run.json`` pins the images (their listing digest, or a digest of
given arrays), the model and its weights' digest and the seed, and a saved attack is reused only
when it holds this run's attacked examples in order with the same attack settings (else it is
recomputed, saying why).  Random starts and black-box draws use
``imagenet_cp.example_key(seed, attack, 0, id)`` with the example's unique id (the source
image's path relative to the source, or the given ``file_names``), so an example's result does
not depend on its batch.

With several processes (``jax.distributed``) each process loads and attacks its own share of
the examples (source chunks or array rows round-robin); per-example records are all-gathered
(``suites.distributed``) so the figures equal one process's, and process 0 writes the files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import imagenet_cp
from imagenet_cp import attacks
from imagenet_cp.preprocess import CROP, DEFAULT_PREPROCESSING
from imagenet_cp.suites import distributed
from imagenet_cp.suites.adversarial_attacks import (  # noqa: F401  (the suite's public names)
    ATTACKS, DEFAULT_ATTACKS, DEFAULT_BUDGETS, DEMO_ATTACKS, DEMO_BUDGETS, DEMO_CONFIG,
    TRANSFER_TARGETS, BudgetedAttack, Config, attack_batch, check_attacks, check_budgets)
from imagenet_cp.suites.adversarial_summary import (  # noqa: F401
    apgd_points, attack_summary, transfer_summary)
from imagenet_cp.suites.common import (Classifier, Model, Store, Task, file_digest, model_identity,
                                       pad_batch, pad_keys, records_problem, variables_digest,
                                       with_results_json)
from imagenet_cp.suites.images import CHUNK, ImageCache, check_max_images, source_listing

SECTION = "adversarial"    # results.json key
AUTO_SOURCES = ("demo",)   # --suite=auto runs it on the demo photos (with DEMO_CONFIG)


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
  """What to attack and how (the arguments of ``evaluate_adversarial``, see there);
  ``attack_config`` is its ``config``."""
  source: str = "demo"
  imagenet_dir: str | None = None
  max_images: int | None = None
  attack_names: Sequence[str] = DEFAULT_ATTACKS
  budgets: dict | None = None
  attack_config: Config = Config()
  transfer_models: Sequence[tuple] = ()
  batch_size: int = 32
  seed: int = 0
  chunk_size: int = CHUNK
  # RobustBench's images and pixels: an image_lists name or file (ImageNet only), and how the
  # clean crops are made (preprocess.PREPROCESSINGS); both recorded with the images' identity.
  image_list: str | None = None
  preprocessing: str = DEFAULT_PREPROCESSING


def check(config: SuiteConfig) -> dict:
  """The budgets of every norm; ValueError for unknown attacks or bad settings."""
  config.attack_config.check()
  check_max_images(config.max_images)
  check_attacks(list(config.attack_names))
  return check_budgets(config.budgets)


def describe(config: SuiteConfig) -> str:
  return (f"adversarial suite: {', '.join(config.attack_names)} "
          f"({'demo config' if config.source == 'demo' else 'full config'})")


def _pad(array, n: int):
  return pad_batch(np.asarray(array), n)


def _padded_keys(seed: int, name: str, file_names: Sequence[str], n: int):
  return pad_keys(imagenet_cp.example_keys(seed, name, 0, list(file_names)), n)


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
                    chunk_size: int = CHUNK, listing=None, log=print) -> Examples:
  """The clean crops of the source images (those the corruption benchmark uses), ids as
  ``file_names``; with several processes, this process's share (cache chunks round-robin, as
  the corruption suite splits).  ``listing``: the source's, when already made."""
  if listing is None:
    listing = source_listing(source, imagenet_dir, max_images)
  cache = ImageCache(listing, cache_dir, process_index, process_count, chunk_size, log)
  names, labels, crops = [], [], []
  for chunk in cache:
    names += list(chunk.ids)
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


def clean_correct(model: Classifier, examples: Examples) -> np.ndarray:
  """bool [N]: top-1 of the clean image equals the label."""
  if not examples.file_names:
    return np.zeros(0, bool)
  logits = model.numpy_logits(examples.images, examples.file_names)
  return np.argmax(logits, axis=-1) == examples.labels


def _share(n: int) -> np.ndarray:
  """This process's rows of n examples every process holds (round-robin)."""
  return np.arange(jax.process_index(), n, jax.process_count())


def _correct_everywhere(models: Sequence[Classifier], examples: Examples, names: Sequence[str]):
  """-> (bool [len(names)]: every model right on the clean example, this process's rows of
  ``examples`` that are)."""
  local = np.all([clean_correct(m, examples) for m in models], axis=0).astype(bool)
  gathered = distributed.gather({"file_names": np.array(examples.file_names, dtype=str),
                                 "correct": local}, names)
  return np.asarray(gathered["correct"], bool), np.flatnonzero(local)


# ----------------------------------------------------------------------------------------------
# Records: one attack over the attacked examples, streamed in batches.

# Records whose examples are on axis 1 (decision attacks' per-step traces too).
CURVE_AXES = {"curve": 1, "distances": 1, "query_trace": 1}
TRANSFER_AXES = {"fooled": 1}


def attack_records(name: str, model: Classifier, examples: Examples, index: np.ndarray,
                   config: Config, seed: int) -> dict:
  """Per-example records of attack ``name`` on ``examples`` rows ``index``."""
  b = model.padded_size(len(index))
  parts = []
  for start in range(0, len(index), b):
    rows = index[start:start + b]
    names = [examples.file_names[i] for i in rows]
    out = attack_batch(name, model, _pad(examples.images[rows], b),
                       _pad(examples.labels[rows], b), _padded_keys(seed, name, names, b), config)
    parts.append({k: (v[:, :len(rows)] if k in CURVE_AXES else v[:len(rows)])
                  for k, v in out.items()})
  if not parts:
    parts = [_empty_records(name, model, examples, config, seed)]
  records = {k: np.concatenate([p[k] for p in parts], axis=1 if k in CURVE_AXES else 0)
             for k in parts[0]}
  records["file_names"] = np.array([examples.file_names[i] for i in index], dtype=str)
  return records


def _empty_records(name: str, model: Classifier, examples: Examples, config: Config, seed: int):
  """Records of no example with the shapes and dtypes of real ones (from one batch of a blank
  image), so that a process with nothing to attack gathers the same keys as the others."""
  b = model.padded_size(1)
  blank = np.zeros((b,) + examples.images.shape[1:], np.float32)
  out = attack_batch(name, model, blank, np.zeros(b, np.int32),
                     _padded_keys(seed, name, ["blank"], b), config)
  return {k: (v[:, :0] if k in CURVE_AXES else v[:0]) for k, v in out.items()}


def _targets(mode: str, model: Classifier, examples: Examples, index, seed: int):
  if mode == "untargeted":
    return None
  if len(index) == 0:
    return np.zeros(0, np.int32)
  names = [examples.file_names[i] for i in index]
  logits = jnp.asarray(model.numpy_logits(examples.images[index], names))
  labels = jnp.asarray(examples.labels[index])
  keys = imagenet_cp.example_keys(seed, "transfer_target", 0, names)
  if mode == "random":
    # One draw per example from its own key, so targets do not depend on the batch.
    classes = logits.shape[-1]
    offset = jax.vmap(lambda k: jax.random.randint(k, (), 1, classes))(keys)
    return np.asarray((labels + offset) % classes, np.int32)
  return np.asarray(attacks.select_targets(mode, logits, labels), np.int32)


def transfer_records(source: Classifier, targets: Sequence[Classifier], examples: Examples,
                     index: np.ndarray, config: Config, seed: int, attack_name=None) -> dict:
  """Adversarials crafted on ``source`` by ``attack_name`` (default ``config.transfer_attack``)
  at ``config.transfer_eps``, scored on every target model: fooled bool [M, n] (top-1 != label
  untargeted; target in top-5 targeted) and whitebox [n]."""
  attack_name = attack_name or config.transfer_attack
  method, norm, _ = ATTACKS[attack_name]
  attack = BudgetedAttack(method, source.apply_fn, norm, config.steps)
  goal = _targets(config.transfer_target, source, examples, index, seed)
  b = source.padded_size(len(index))
  fooled, whitebox = [], []
  for start in range(0, len(index), b):
    rows = index[start:start + b]
    names = [examples.file_names[i] for i in rows]
    labels = _pad(examples.labels[rows], b)
    tgt = None if goal is None else source.shard(_pad(goal[start:start + b], b))
    keys = source.shard(_padded_keys(seed, attack_name, names, b))
    result = attack((source.variables, keys), source.shard(_pad(examples.images[rows], b)),
                    source.shard(labels), eps=jnp.full((b,), config.transfer_eps, jnp.float32),
                    targets=tgt)
    adversarial = np.asarray(result.adversarial)[:len(rows)]
    whitebox.append(np.asarray(result.success)[:len(rows)])
    fooled.append(np.stack([_fooled(m.numpy_logits(adversarial, names), labels[:len(rows)],
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
# The entry points.


def run(config: SuiteConfig, model: Model, output_dir=None, log: Callable[[str], None] = print, *,
        images=None, labels=None, file_names=None) -> dict:
  """``evaluate_adversarial`` with its settings in ``config``: the ``results.json["adversarial"]``
  dict."""
  budgets = check(config)
  attack_config, seed = config.attack_config, config.seed
  started = time.time()
  pid, pcount = jax.process_index(), jax.process_count()
  listing = None
  if images is not None:
    if config.image_list is not None or config.preprocessing != DEFAULT_PREPROCESSING:
      raise ValueError("image_list= and preprocessing= select and crop the source's photos; "
                       "your own images are used as given")
    every = _check_examples(images, labels, file_names)
    names, source = every.file_names, "arrays"
    identity = {"source": source, "images": len(names), "source_sha256": _arrays_digest(every)}
  else:
    listing = source_listing(config.source, config.imagenet_dir, config.max_images,
                             config.image_list, config.preprocessing)
    names, source, identity = listing.ids, config.source, listing.identity()
  run_info = dict(identity, **model_identity(model), seed=seed,
                  file_names_sha256=file_digest(names))
  store = (Store(pathlib.Path(output_dir) / "adversarial", run_info, log)
           if output_dir is not None and pid == 0 else None)
  with store or contextlib.nullcontext(), contextlib.ExitStack() as stack:  # releases the lock
    if images is not None:
      examples = every.rows(_share(len(every.file_names)))
    else:
      cache_dir = pathlib.Path(output_dir) / "cache" if output_dir is not None else None
      examples = source_examples(cache_dir=cache_dir, process_index=pid, process_count=pcount,
                                 chunk_size=config.chunk_size, listing=listing, log=log)
    classifier = Classifier(model, config.batch_size, uint8=False)
    stack.enter_context(attacks.compile_with(classifier.parallel.compiler_options))
    correct, index = _correct_everywhere([classifier], examples, names)
    attacked = [n for n, c in zip(names, correct) if c]
    results = {"run": dict(run_info, config=dataclasses.asdict(attack_config), processes=pcount,
                           devices=jax.device_count(), weights_file=model.weights_file,
                           source_location=None if listing is None else listing.location),
               "clean_accuracy": float(correct.mean()),
               "attacked_examples": len(attacked), "example_ids": attacked, "attacks": {}}
    for name in config.attack_names:
      records = _cached(store, Task("adversarial", name), _config_id(name, attack_config), attacked,
                        CURVE_AXES, log,
                        lambda n=name: distributed.gather(
                            attack_records(n, classifier, examples, index, attack_config, seed),
                            attacked, CURVE_AXES))
      if records is not None:
        results["attacks"][name] = attack_summary(name, records, budgets[ATTACKS[name][1]],
                                                  attack_config)
    models = [classifier if n == model.name else Classifier(Model(n, f, v), config.batch_size,
                                                            uint8=False)
              for n, f, v in config.transfer_models] or [classifier]
    results["transfer"] = transfer_matrix(models, examples, names=names, config=attack_config,
                                          seed=seed, store=store, log=log)
    results["run"]["seconds"] = round(time.time() - started, 1)
    return with_results_json(store, results)


def _arrays_digest(examples: Examples) -> str:
  """sha256 of given examples: ids, labels and pixels."""
  h = hashlib.sha256()
  h.update("\n".join(examples.file_names).encode())
  h.update(np.ascontiguousarray(examples.labels, np.int32).tobytes())
  h.update(np.ascontiguousarray(examples.images, np.float32).tobytes())
  return h.hexdigest()


def evaluate_adversarial(apply_fn: Callable, variables: Any, *,
                         images: np.ndarray | jax.Array | None = None,
                         labels: np.ndarray | jax.Array | Sequence[int] | None = None,
                         file_names: Sequence[str] | None = None,
                         source: str = "demo", imagenet_dir: str | os.PathLike | None = None,
                         max_images: int | None = None,
                         attack_names: Sequence[str] = DEFAULT_ATTACKS,
                         budgets: dict | None = None,
                         config: Config = Config(),
                         transfer_models: Sequence[tuple] = (),
                         batch_size: int = 32, seed: int = 0,
                         output_dir: str | os.PathLike | None = None,
                         model_name: str = "user model", chunk_size: int = CHUNK,
                         image_list: str | None = None,
                         preprocessing: str = DEFAULT_PREPROCESSING,
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
    image_list: ImageNet images to attack, in order: 'robustbench_5k' or a file of
      ``<wnid>/<file>`` lines (``image_lists``); preprocessing: how their clean crops are made
      ('Res256Crop224', RobustBench's 'BicubicRes256Crop224' or 'Crop288').  Both are recorded;
      a resume with others is refused.

  With several processes (``jax.distributed``) each attacks its share of the examples and
  process 0 holds the complete results (and writes them); the others' lack the attacks that
  process 0 resumed from its output directory.
  """
  suite_config = SuiteConfig(
      source=source, imagenet_dir=imagenet_dir, max_images=max_images,
      attack_names=list(attack_names), budgets=budgets, attack_config=config,
      transfer_models=transfer_models, batch_size=batch_size, seed=seed, chunk_size=chunk_size,
      image_list=None if image_list is None else str(image_list), preprocessing=preprocessing)
  return run(suite_config, Model(model_name, apply_fn, variables), output_dir, log,
             images=images, labels=labels, file_names=file_names)


def transfer_matrix(models: Sequence[Classifier], examples: Examples, *, names=None,
                    config: Config = Config(), seed: int = 0, store: Store | None = None,
                    log=print) -> dict | None:
  """Transfer matrix over ``models`` (``Classifier`` objects, float inputs) on the examples all of
  them classify correctly when clean.  names: every process's example ids in order (default:
  those of ``examples``, one process).  None on a process other than 0 when process 0 resumed a
  part."""
  model_names = [m.name for m in models]
  if len(set(model_names)) != len(model_names):
    raise ValueError(f"transfer model names must be unique, got {model_names}")
  names = list(examples.file_names) if names is None else list(names)
  correct, index = _correct_everywhere(models, examples, names)
  common = [n for n, c in zip(names, correct) if c]
  weights = [variables_digest(m.model.variables) for m in models]
  by_attack = {}
  for attack in config.matrix_attacks():
    # The targets' weights too: a transfer record scores adversarials on every target model.
    config_id = json.dumps({"targets": model_names, "attack": attack, "eps": config.transfer_eps,
                            "steps": config.steps, "target": config.transfer_target,
                            "weights": weights}, sort_keys=True)
    records = {}
    for m in models:
      records[m.name] = _cached(
          store, Task("transfer", _transfer_task_name(m.name, attack, config)), config_id, common,
          TRANSFER_AXES, log,
          lambda m=m, a=attack: distributed.gather(
              transfer_records(m, models, examples, index, config, seed, a), common,
              TRANSFER_AXES))
    if any(r is None for r in records.values()):
      return None
    by_attack[attack] = records
  return transfer_summary(model_names, by_attack, config)


def _transfer_task_name(model_name: str, attack: str, config: Config) -> str:
  """The saved record of one (surrogate, attack) row; the first attack's keeps the name it
  always had (so older output folders resume)."""
  name = model_name.replace("/", "_").replace(":", "_")
  return name if attack == config.transfer_attack else f"{name}__{attack}"


def _config_id(name: str, config: Config) -> str:
  fields = {
      "search": ("steps", "initial_eps", "doubling_steps", "bisection_steps", "iterations_eps"),
      "optimised": ("optimiser_steps", "optimiser_search_steps", "deepfool_steps",
                    "deepfool_candidates"),
      "iterations": ("apgd_iterations", "apgd_target_classes", "iterations_eps"),
      "queries": ("blackbox_steps", "nes_samples", "spsa_samples", "iterations_eps"),
      "decision": ("decision_queries",),
  }[ATTACKS[name][2]]
  if ATTACKS[name][0] == "nattack":  # only its own records depend on it (others still resume)
    fields += ("nattack_population",)
  return json.dumps({f: getattr(config, f) for f in fields}, sort_keys=True)


def _cached(store: Store | None, task: Task, config_id: str, ids: Sequence[str], axes: dict, log,
            compute) -> dict | None:
  """A saved record with the same settings and examples (``ids``, in order), or a fresh one
  (saved atomically at once).  Only process 0 reads and writes the store; it decides for all,
  and a resumed task is None on the other processes."""

  def problem(saved: dict) -> str | None:
    if str(saved.get("config_id")) != config_id:
      return "made with other attack settings"
    return records_problem(saved, ids, id_key="file_names", axes=axes)

  saved = store.load(task, problem) if store is not None else None
  done = distributed.broadcast_from_first(saved is not None)
  if done:
    log(f"resuming: {task.id} already done")
    return saved
  records = compute()
  if store is not None:
    store.save(task, dict(records, config_id=np.array(config_id)))
  return records
