"""Adversarial attacks in JAX for any differentiable ``apply_fn(variables, images) -> logits``.

images: float32 [N, H, W, 3] pixels in [0, 1] (``models.classifier`` gives such an apply_fn for
every zoo model); labels int [N]; budgets, step sizes and distortions in /255 pixel units.
Every attack is batched and jitted (hyper-parameters static, iterations in ``lax`` loops),
keeps the [0, 1] box and its budget, runs untargeted (``targets=None``) or targeted
(``targets`` int [N], see ``select_targets``), and returns an ``AttackResult``
(adversarial, success, curve, queries).  See docs/attacks.md.

  result = attacks.pgd(apply_fn, variables, images, labels, eps=4, key=key)
  found = attacks.search_budget(functools.partial(attacks.bim, apply_fn, steps=50),
                                variables, images, labels)
  attacks.accuracy_vs_budget(found.minimal, budgets=[0, 1, 2, 4, 8])
  with attacks.compile_with(models.compiler_options("resnet50")):  # the zoo's XLA:CPU options
    result = attacks.apgd(apply_fn, variables, images, labels, eps=4, key=key)
"""
from imagenet_cp.attacks.apgd import apgd, apgd_t, checkpoints as apgd_checkpoints
from imagenet_cp.attacks.autoattack import AutoAttackResult, autoattack
from imagenet_cp.attacks.blackbox import nes, queries_at, spsa
from imagenet_cp.attacks.core import AttackResult, is_success
from imagenet_cp.attacks.cw import cw_l2
from imagenet_cp.attacks.decision import (DecisionResult, accuracy_at_distortion, boundary,
                                          distortion_after_queries, evolutionary)
from imagenet_cp.attacks.deepfool import deepfool
from imagenet_cp.attacks.nattack import nattack, queries_at as nattack_queries_at
from imagenet_cp.attacks.ead import ead
from imagenet_cp.attacks.fab import fab, fab_t
from imagenet_cp.attacks.jit import compile_with
from imagenet_cp.attacks.gradient import bim, fgsm, mim, pgd
from imagenet_cp.attacks.losses import cross_entropy, dlr, dlr_targeted, margin
from imagenet_cp.attacks.norms import distortion, perturbation_norms
from imagenet_cp.attacks.square import square
from imagenet_cp.attacks.search import (BudgetSearch, accuracy_after_queries, accuracy_vs_budget,
                            accuracy_vs_iterations, accuracy_vs_queries, area_under_curve,
                            distortion_summary, optimised_distortion, search_budget)
from imagenet_cp.attacks.targets import TARGET_MODES, select_targets
from imagenet_cp.attacks.transfer import di_fgsm, mi_fgsm, si_ni_fgsm, ti_fgsm, vmi_fgsm

ifgsm = bim  # Adversarial_Survey's name for the basic iterative method

__all__ = [
    "AttackResult", "BudgetSearch", "TARGET_MODES", "accuracy_after_queries", "accuracy_vs_budget",
    "accuracy_vs_iterations", "accuracy_vs_queries", "apgd", "apgd_checkpoints", "apgd_t",
    "area_under_curve", "bim", "cross_entropy", "cw_l2", "deepfool", "distortion",
    "distortion_summary", "dlr", "dlr_targeted", "ead", "fgsm", "ifgsm", "is_success", "margin",
    "mim", "nes", "optimised_distortion", "perturbation_norms", "pgd", "queries_at",
    "search_budget", "select_targets", "spsa",
    "di_fgsm", "mi_fgsm", "si_ni_fgsm", "ti_fgsm", "vmi_fgsm",
    "DecisionResult", "accuracy_at_distortion", "boundary", "distortion_after_queries",
    "evolutionary",
    "AutoAttackResult", "autoattack", "fab", "fab_t", "square",
    "nattack", "nattack_queries_at",
    "compile_with",
]
