"""Attacks against models whose answer is known in closed form (attacks/, docs/attacks.md).

For an affine classifier the minimal distance to misclassification is min_k |f_k| / ||w_k -
w_y||_dual (tests/attack_models.py); the points sit far from the box faces so the box does not
bind.  Tolerances: C&W within 1% of the exact L2; DeepFool exactly (1 + overshoot) times the
distance plus its 1e-4 logit offset; the budget searches bracket the exact budget within
their bisection resolution.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attack_models as am
from imagenet_cp import attacks
from imagenet_cp.attacks import losses, norms, targets as targets_lib


@pytest.fixture(scope="module")
def binary():
  return am.linear_problem(n=6, classes=2, seed=0)


@pytest.fixture(scope="module")
def multiclass():
  return am.linear_problem(n=8, classes=5, seed=3)


def test_problem_distances_are_exact(binary):
  # Moving exactly the closed-form L2 / Linf distance towards the runner-up reaches the tie.
  p = binary
  w = np.asarray(p.variables["w"], np.float64)
  u = (w[:, 1 - p.labels] - w[:, p.labels]).T  # [N, D] towards the other class
  x = p.images.reshape(len(p.labels), -1).astype(np.float64)
  b = np.asarray(p.variables["b"], np.float64)
  for step in (u / np.linalg.norm(u, axis=1, keepdims=True) * p.l2[:, None] / 255,
               np.sign(u) * p.linf[:, None] / 255):
    logits = (x + step) @ w + b
    np.testing.assert_allclose(logits[:, 0], logits[:, 1], rtol=0, atol=1e-3)


def test_cw_l2_finds_the_minimal_l2_distance(binary):
  p = binary
  result = attacks.cw_l2(am.linear_apply, p.variables, p.images, p.labels, steps=200,
                         learning_rate=0.005, binary_search_steps=9)
  found = np.asarray(attacks.optimised_distortion(result, p.images, "l2"))
  assert np.all(np.asarray(result.success))
  # Never below the exact minimum (that would be a wrong success), at most 1% above it.
  assert np.all(found >= p.l2 * (1 - 1e-4))
  np.testing.assert_allclose(found, p.l2, rtol=1e-2)
  assert np.all(np.asarray(result.adversarial) >= 0) and np.all(np.asarray(result.adversarial) <= 1)
  np.testing.assert_array_equal(np.diff(np.asarray(result.curve, int), axis=0) >= 0, True)


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("problem", ["binary", "multiclass"])
def test_deepfool_lands_on_the_nearest_boundary(problem, norm, request):
  p = request.getfixturevalue(problem)
  exact, slope = (p.l2, p.l2_slope) if norm == "l2" else (p.linf, p.linf_slope)
  result = attacks.deepfool(am.linear_apply, p.variables, p.images, p.labels, norm=norm,
                            overshoot=0.02)
  found = np.asarray(attacks.optimised_distortion(result, p.images, norm))
  assert np.all(np.asarray(result.success))
  # One step to the linearised (= true) boundary plus the original code's 1e-4 logit offset,
  # times 1 + overshoot.
  expected = 1.02 * (exact + 1e-4 / slope * 255)
  np.testing.assert_allclose(found, expected, rtol=1e-4)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_bim_budget_search_brackets_the_exact_budget(binary, norm):
  p = binary
  exact = p.linf if norm == "linf" else p.l2
  attack = functools.partial(attacks.bim, am.linear_apply, steps=5, norm=norm)
  found = attacks.search_budget(attack, p.variables, p.images, p.labels, initial_eps=1.0,
                                doubling_steps=8, bisection_steps=12)
  minimal, lower = np.asarray(found.minimal), np.asarray(found.lower)
  assert np.all(np.asarray(found.success))
  # Doubling brackets it in [2^k, 2^(k+1)] (here 2..32), 12 bisections shrink that 4096-fold.
  resolution = 32.0 / 4096
  assert np.all(minimal - lower <= resolution)
  assert np.all(minimal >= exact - 1e-3) and np.all(lower <= exact + 1e-3)
  np.testing.assert_allclose(minimal, exact, atol=resolution + 1e-3)
  # The adversarials found are within their budget and succeed.
  dist = np.asarray(norms.distortion(found.adversarial, p.images, norm))
  assert np.all(dist <= minimal + 1e-3)
  logits = np.asarray(am.linear_apply(p.variables, found.adversarial))
  assert np.all(logits.argmax(1) != p.labels)


def test_accuracy_vs_budget_curve_is_monotone_and_matches_the_exact_distances(binary):
  p = binary
  attack = functools.partial(attacks.bim, am.linear_apply, steps=5)
  found = attacks.search_budget(attack, p.variables, p.images, p.labels, doubling_steps=8,
                                bisection_steps=12)
  budgets = np.linspace(0, 6, 61)
  curve = attacks.accuracy_vs_budget(found.minimal, budgets)
  assert curve[0] == 1.0 and curve[-1] == 0.0
  assert np.all(np.diff(curve) <= 0)
  # Away from the exact distances (by more than the search resolution) it is exact.
  exact_curve = (p.linf[None, :] > budgets[:, None]).mean(1)
  far = np.min(np.abs(budgets[:, None] - p.linf[None, :]), axis=1) > 0.01
  np.testing.assert_array_equal(curve[far], exact_curve[far])
  area = attacks.area_under_curve(budgets, curve)
  assert 0 < area < 1


def test_search_gives_zero_for_misclassified_and_inf_for_unbreakable(binary):
  p = binary
  labels = p.labels.copy()
  labels[0] = 1 - labels[0]  # now misclassified: budget 0 suffices
  attack = functools.partial(attacks.bim, am.linear_apply, steps=3)
  found = attacks.search_budget(attack, p.variables, p.images, labels, initial_eps=0.01,
                                doubling_steps=3, bisection_steps=2)
  minimal = np.asarray(found.minimal)
  assert minimal[0] == 0
  # 0.01 * 2^2 = 0.04 /255 is far below every distance: never fooled.
  assert np.all(np.isinf(minimal[1:])) and not np.any(np.asarray(found.success)[1:])


def test_ead_l1_between_the_exact_minimum_and_cw(binary):
  p = binary
  result = attacks.ead(am.linear_apply, p.variables, p.images, p.labels, steps=200, beta=1e-2)
  assert np.all(np.asarray(result.success))
  l1 = np.asarray(attacks.optimised_distortion(result, p.images, "l1"))
  assert np.all(l1 >= p.l1 * (1 - 1e-4))
  # Elastic net is much sparser than the L2 optimum (whose L1 is ||u||_1 / ||u||_2 * l2).
  cw = attacks.cw_l2(am.linear_apply, p.variables, p.images, p.labels, steps=200,
                     learning_rate=0.005)
  cw_l1 = np.asarray(attacks.optimised_distortion(cw, p.images, "l1"))
  assert np.all(l1 < 0.6 * cw_l1)
  np.testing.assert_allclose(l1, p.l1, rtol=0.1)


def test_fgsm_is_one_signed_gradient_step(binary):
  p = binary
  eps = 3.0
  grad = jax.grad(lambda x: jnp.sum(losses.cross_entropy(am.linear_apply(p.variables, x),
                                                         jnp.asarray(p.labels))))(p.images)
  expected = np.clip(p.images + eps / 255 * np.sign(np.asarray(grad)), 0, 1)
  result = attacks.fgsm(am.linear_apply, p.variables, p.images, p.labels, eps=eps)
  np.testing.assert_allclose(np.asarray(result.adversarial), expected, rtol=0, atol=1e-7)
  # Linear model: the signed step fools exactly the examples closer than eps in Linf.
  np.testing.assert_array_equal(np.asarray(result.success), p.linf < eps)
  # L2: a step of eps along grad / ||grad||.
  g = np.asarray(grad).reshape(len(p.labels), -1)
  step = (g / np.linalg.norm(g, axis=1, keepdims=True)).reshape(p.images.shape)
  result = attacks.fgsm(am.linear_apply, p.variables, p.images, p.labels, eps=20.0, norm="l2")
  np.testing.assert_allclose(np.asarray(result.adversarial), p.images + 20.0 / 255 * step,
                             rtol=0, atol=1e-6)


def test_apgd_on_the_linear_model_succeeds_exactly_above_the_minimal_budget(binary):
  p = binary
  eps = float(np.median(p.linf))
  result = attacks.apgd(am.linear_apply, p.variables, p.images, p.labels, eps=eps,
                        key=jax.random.key(0), n_iter=20)
  np.testing.assert_array_equal(np.asarray(result.success), p.linf < eps)


def test_perturbation_norms_by_hand():
  x = np.full((1, 2, 2, 3), 0.5, np.float32)
  adv = x.copy()
  adv[0, 0, 0, 0] += 3 / 255
  adv[0, 1, 1, 2] -= 4 / 255
  out = {k: float(v[0]) for k, v in attacks.perturbation_norms(adv, x).items()}
  assert out["l0"] == 2
  np.testing.assert_allclose([out["l1"], out["l2"], out["linf"]], [7, 5, 4], rtol=1e-4)
  summary = attacks.distortion_summary({"l2": np.array([3.0, 5.0, 100.0])},
                                       np.array([True, True, False]))
  assert summary["success_rate"] == pytest.approx(2 / 3)
  assert summary["l2_mean"] == 4.0 and summary["l2_std"] == 1.0


def test_target_modes_follow_the_seed_definitions():
  logits = jnp.asarray([[5.0, 1.0, -2.0, 3.0], [0.0, 2.0, 1.0, -1.0]])
  labels = jnp.asarray([0, 1])
  np.testing.assert_array_equal(attacks.select_targets("least_likely", logits, labels), [2, 3])
  np.testing.assert_array_equal(attacks.select_targets("second_most_likely", logits, labels),
                                [3, 2])
  assert attacks.select_targets("untargeted", logits, labels) is None
  many = jnp.zeros((2000, 10))
  lab = jnp.arange(2000) % 10
  drawn = np.asarray(attacks.select_targets("random", many, lab, key=jax.random.key(1)))
  assert np.all(drawn != np.asarray(lab)) and set(drawn.tolist()) == set(range(10))


def test_bad_inputs_raise_clear_value_errors(binary):
  p = binary
  f, v = am.linear_apply, p.variables
  run = functools.partial(attacks.bim, f, v, steps=2)
  with pytest.raises(ValueError, match="float32"):
    run(p.images.astype(np.float64), p.labels, eps=1)
  with pytest.raises(ValueError, match="float32"):
    run((p.images * 255).astype(np.uint8), p.labels, eps=1)
  with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
    run(p.images[..., 0], p.labels, eps=1)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    run(p.images * 255, p.labels, eps=1)
  with pytest.raises(ValueError, match="non-negative"):
    run(p.images, p.labels, eps=-1)
  with pytest.raises(ValueError, match="labels"):
    run(p.images, p.labels[:2], eps=1)
  with pytest.raises(ValueError, match="norm"):
    run(p.images, p.labels, eps=1, norm="l3")
  with pytest.raises(ValueError, match="target mode"):
    targets_lib.select_targets("most_likely", jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32))
  with pytest.raises(ValueError, match="steps"):
    attacks.cw_l2(f, v, p.images, p.labels, steps=0)
  with pytest.raises(ValueError, match="key"):
    attacks.pgd(f, v, p.images, p.labels, eps=1, key=None)
  with pytest.raises(ValueError, match="budgets"):
    attacks.accuracy_vs_budget(np.ones(3), [-1.0])
