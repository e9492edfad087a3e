"""AutoAttack (Croce & Hein, ICML 2020): the worst case over an ensemble of attacks.

``robust`` starts as the examples classified correctly when clean; each attack of the version,
in the authors' order, runs only on the examples still robust, and an example counts as broken
(by the first attack that broke it) when that attack returns a point inside the eps-ball that
the model misclassifies.  ``robust_accuracy`` is the mean of the final flags.  Versions
(the authors' ``set_version``):

  standard  APGD-CE (1 restart), APGD-T (9 targets, 1 restart each), FAB-T (9 targets,
            1 restart), Square (5000 queries, p_init 0.8, schedule not rescaled)
  plus      APGD-CE, APGD-DLR (5 restarts each), FAB (5 restarts), Square, APGD-T, FAB-T
  rand      APGD-CE, APGD-DLR, 1 restart each, EOT over ``eot_iter`` = 20 gradients
  custom    ``attacks``: any list of the names above, with the authors' constructor defaults
            (APGD and FAB 5 restarts, APGD-T and Square 1)

All with 100 iterations (APGD, FAB).  A JAX ``apply_fn(variables, images)`` is deterministic,
so EOT's average of ``eot_iter`` gradients equals one gradient and ``rand`` computes it once.
A randomised model is given as ``apply_fn(variables, images, key)`` with ``model_key``: every
forward pass then gets its own key folded from ``model_key`` (the clean pass, each APGD step's
``eot_iter`` draws, each acceptance test), and APGD averages ``eot_iter`` gradients per step, as
the authors' ``rand`` version does; only the APGD attacks take such a model (their ``rand``
runs APGD-CE and APGD-DLR).  Its flags then hold for the draws made, like the authors'.

"Only the still-robust points" is done by compaction on the host: before every run (each
restart and each target class too, as the authors' loops do) the robust examples are gathered
into a batch padded to the next power of two (at most the whole batch), so wasted compute is
under 2x of the robust examples and the attacks compile for at most log2(N) + 1 batch sizes.
Inside a run the batch is masked, as in the authors' code (an APGD or FAB run iterates every
example of its batch to the end; Square stops when its whole batch is fooled).

Reference: Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020; fra31/auto-attack ``autoattack.py``.
"""
from __future__ import annotations

import importlib
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.attacks import core
from imagenet_cp.attacks.jit import jit as attack_jit

# The modules, not the functions of the same names that the package exports.
apgd_lib = importlib.import_module("imagenet_cp.attacks.apgd")
fab_lib = importlib.import_module("imagenet_cp.attacks.fab")
square_lib = importlib.import_module("imagenet_cp.attacks.square")

ATTACK_NAMES = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
VERSIONS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}
L1_ATTACKS = ("fab", "fab-t")  # APGD and Square here are Linf / L2 only
# The authors' constructor defaults, then what each version sets.
DEFAULT_SETTINGS = {"n_iter": 100, "apgd_restarts": 5, "n_target_classes": 9, "fab_steps": 100,
                    "fab_restarts": 5, "square_queries": 5000, "p_init": 0.8, "eot_iter": 1}
VERSION_SETTINGS = {
    "standard": {"apgd_restarts": 1, "fab_restarts": 1},
    "plus": {"apgd_restarts": 5, "fab_restarts": 5},
    "rand": {"apgd_restarts": 1, "eot_iter": 20},
    "custom": {},
}
RANDOMISED_ATTACKS = ("apgd-ce", "apgd-dlr")  # what takes a model_key (the rand version's)
# A point counts as inside the ball up to float32 rounding of x + delta ([0, 1] units).
_NORM_SLACK = 1e-6


class AutoAttackResult(NamedTuple):
  """robust bool [N]; broken_by str [N] ('clean', an attack name, '' while robust);
  adversarial float32 [N, H, W, 3] (the breaking point, the clean image elsewhere);
  robust_accuracy = mean(robust); accuracy_after {'clean' and each attack run: accuracy after
  it}; done: the attacks run so far (a result is a state ``autoattack`` can resume from)."""
  robust: np.ndarray
  broken_by: np.ndarray
  adversarial: np.ndarray
  robust_accuracy: float
  accuracy_after: dict
  done: tuple


def attack_list(version: str = "standard", attacks: Sequence[str] | None = None) -> tuple:
  """The attacks a version runs, in order (``attacks`` with version 'custom')."""
  if version == "custom":
    if not attacks:
      raise ValueError("version 'custom' needs a list of attacks")
    unknown = [a for a in attacks if a not in ATTACK_NAMES]
    if unknown or len(set(attacks)) != len(attacks):
      raise ValueError(f"attacks must be distinct names of {', '.join(ATTACK_NAMES)}; "
                       f"got {list(attacks)}")
    return tuple(attacks)
  if version not in VERSIONS:
    raise ValueError(f"unknown AutoAttack version {version!r}; known: "
                     f"{', '.join(VERSIONS)}, custom")
  if attacks is not None:
    raise ValueError("a list of attacks is only used with version='custom'")
  return VERSIONS[version]


def settings(version: str = "standard", **overrides) -> dict:
  """The hyper-parameters of a version (the authors'), with ``overrides``."""
  unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS))
  if unknown:
    raise ValueError(f"unknown AutoAttack settings {unknown}; known: {sorted(DEFAULT_SETTINGS)}")
  if version not in VERSION_SETTINGS:
    raise ValueError(f"unknown AutoAttack version {version!r}")
  return {**DEFAULT_SETTINGS, **VERSION_SETTINGS[version],
          **{k: v for k, v in overrides.items() if v is not None}}


def _bucket(index: np.ndarray, n: int) -> np.ndarray:
  """index padded (with its first entry) to the next power of two, at most n."""
  size = min(1 << max(len(index) - 1, 0).bit_length(), n)
  return np.concatenate([index, np.full(size - len(index), index[0], index.dtype)])


def _runs(name: str, cfg: dict) -> list[tuple[int, int | None]]:
  """(sub-run id, target rank or None): the restarts or target classes an attack loops over."""
  if name in ("apgd-t", "fab-t"):
    return [(rank, rank) for rank in range(1, cfg["n_target_classes"] + 1)]
  if name in ("apgd-ce", "apgd-dlr"):
    return [(r, None) for r in range(cfg["apgd_restarts"])]
  return [(0, None)]  # FAB's restarts and Square run in one call


@attack_jit(static_argnames=("apply_fn",))
def _scores(apply_fn, variables, images, model_key):
  """Logits of the model: deterministic, or one draw of a randomised one (``model_key``);
  jitted, as a user's ``apply_fn`` may be a plain (op-by-op) function."""
  if model_key is None:
    return apply_fn(variables, images)
  return apply_fn(variables, images, model_key)


def _attack(name, rank, apply_fn, variables, x, y, ranked, eps, keys, norm, cfg, model_key):
  """One run of attack ``name`` on a batch -> its adversarials [M, H, W, 3]."""
  targets = None if rank is None else ranked[:, rank]
  if name.startswith("apgd"):
    loss = {"apgd-ce": "ce", "apgd-dlr": "dlr", "apgd-t": "dlr_targeted"}[name]
    eot_iter = 1 if model_key is None else cfg["eot_iter"]
    result, _ = apgd_lib._apgd(apply_fn, variables, x, y, targets, eps, keys, n_iter=cfg["n_iter"],
                               norm=norm, loss=loss, start=True, untargeted_goal=True,
                               model_key=model_key, eot_iter=eot_iter)
    return result.adversarial
  if name.startswith("fab"):
    restarts = 1 if name == "fab-t" else cfg["fab_restarts"]
    result, _ = fab_lib._fab(apply_fn, variables, x, y, targets, eps, keys,
                             steps=cfg["fab_steps"], restarts=restarts, norm=norm, alpha_max=0.1,
                             eta=1.05, beta=0.9, untargeted_goal=True)
    return result.adversarial
  result = square_lib._square(apply_fn, variables, x, y, None, eps, keys,
                              queries=cfg["square_queries"], norm=norm, p_init=cfg["p_init"],
                              loss="margin", rescale_schedule=False)
  return result.adversarial


def _broken(apply_fn, variables, adversarial, x, y, eps, norm, model_key) -> np.ndarray:
  """bool [M]: misclassified and inside the eps-ball (the authors' acceptance test, plus the
  ball, which their FAB checks itself)."""
  scores = _scores(apply_fn, variables, adversarial, model_key)
  wrong = np.asarray(jnp.argmax(scores, axis=-1)) != np.asarray(y)
  size = np.asarray(core.flat_norm(adversarial - x, norm))
  return wrong & (size <= np.asarray(eps) * (1 + _NORM_SLACK) + _NORM_SLACK)


def _draw(model_key, *path):
  """The key of one use of a randomised model: ``model_key`` folded with ``path``; None for a
  deterministic model."""
  if model_key is None:
    return None
  for i in path:
    model_key = jax.random.fold_in(model_key, i)
  return model_key


def _split(model_key):
  """(the attack's draws, the acceptance test's draw); (None, None) for a deterministic model."""
  return (None, None) if model_key is None else tuple(jax.random.split(model_key))


def _check(images, labels, eps, norm, names, resume, model_key):
  images, labels, _, eps01 = core.check_inputs(images, labels, None, eps)
  core.check_norm(norm)
  if model_key is not None and any(a not in RANDOMISED_ATTACKS for a in names):
    raise ValueError(f"a randomised model (model_key) is attacked here only by "
                     f"{', '.join(RANDOMISED_ATTACKS)} with EOT (version='rand'); got {list(names)}")
  if norm == "l1" and any(a not in L1_ATTACKS for a in names):
    raise ValueError(f"L1 AutoAttack here runs only {', '.join(L1_ATTACKS)} (APGD and Square "
                     f"are Linf / L2); got {list(names)}")
  if resume is not None:
    done = tuple(resume.done)
    if done != names[:len(done)]:
      raise ValueError(f"cannot resume: attacks done {list(done)} are not a start of "
                       f"{list(names)}")
    if np.shape(resume.robust) != (images.shape[0],):
      raise ValueError("cannot resume: the saved state is for another batch")
  return images, labels, eps01


def autoattack(apply_fn, variables, images, labels, *, norm="linf", eps=4.0, key,
               version="standard", attacks=None, resume: AutoAttackResult | None = None,
               on_attack: Callable[[AutoAttackResult], None] | None = None,
               log: Callable[[str], None] | None = None, model_key=None,
               **overrides) -> AutoAttackResult:
  """AutoAttack's robust accuracy of ``apply_fn`` at ``eps`` (/255) in ``norm``.

  key: one PRNG key or [N] keys (one per example: an example's result then does not depend on
  its batch).  version: 'standard' (default), 'plus', 'rand', or 'custom' with ``attacks`` a
  list of ``ATTACK_NAMES``.  overrides: ``n_iter``, ``apgd_restarts``, ``n_target_classes``,
  ``fab_steps``, ``fab_restarts``, ``square_queries``, ``p_init`` (see ``settings``).
  resume: a result from an earlier call on the same batch whose ``done`` attacks are a start
  of this run's list: only the rest run.  on_attack(result): called after every attack.
  model_key: ``apply_fn(variables, images, key)`` is a randomised model (see the module
  docstring); its draws come from this key.
  """
  names = attack_list(version, attacks)
  cfg = settings(version, **overrides)
  images, labels, eps01 = _check(images, labels, eps, norm, names, resume, model_key)
  apgd_lib.check_eot(model_key, cfg["eot_iter"])
  n = images.shape[0]
  keys = core.per_example_keys(key, n)
  clean = _scores(apply_fn, variables, images, _draw(model_key, 0))
  ranked = jnp.argsort(-clean, axis=1)
  if any(a in ("apgd-t", "fab-t") for a in names) and clean.shape[-1] <= cfg["n_target_classes"]:
    raise ValueError(f"{cfg['n_target_classes']} target classes need more than "
                     f"{clean.shape[-1]} classes")
  if resume is None:
    robust = np.array(jnp.argmax(clean, axis=-1) == labels)
    broken_by = np.where(robust, "", "clean").astype("<U8")
    adversarial = np.array(images)
    accuracy = {"clean": float(robust.mean())}
    done = ()
  else:
    robust, broken_by = np.array(resume.robust, bool), np.array(resume.broken_by, "<U8")
    adversarial, accuracy = np.array(resume.adversarial), dict(resume.accuracy_after)
    done = tuple(resume.done)
  for name in names[len(done):]:
    attack_keys = core.fold_keys(keys, ATTACK_NAMES.index(name))
    for run, rank in _runs(name, cfg):
      attack_draws, check_draws = _split(_draw(model_key, 1 + ATTACK_NAMES.index(name), run))
      index = np.flatnonzero(robust)
      if not index.size:
        break
      rows = _bucket(index, n)
      x, y, e = images[rows], labels[rows], eps01[rows]
      adv = _attack(name, rank, apply_fn, variables, x, y, ranked[rows], e,
                    core.fold_keys(attack_keys[rows], run), norm, cfg, attack_draws)
      hit = _broken(apply_fn, variables, adv, x, y, e, norm, check_draws)[:len(index)]
      robust[index[hit]] = False
      broken_by[index[hit]] = name
      adversarial[index[hit]] = np.asarray(adv)[:len(index)][hit]
    accuracy[name] = float(robust.mean())
    done += (name,)
    if log is not None:
      log(f"autoattack: robust accuracy after {name}: {accuracy[name]:.2%}")
    state = AutoAttackResult(robust.copy(), broken_by.copy(), adversarial, float(robust.mean()),
                             dict(accuracy), done)
    if on_attack is not None:
      on_attack(state)
  return AutoAttackResult(robust, broken_by, adversarial, float(robust.mean()), accuracy, done)
