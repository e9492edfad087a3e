"""Budget and box properties, targeted success, APGD's schedule, black-box query counts, jit."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attack_models as am
from imagenet_cp import attacks

# Float32 rounding of x + delta: a budget is kept to within this many /255 units.
ULP = 1e-4


@pytest.fixture(scope="module")
def mlp():
  return am.mlp_problem(n=8, classes=5)


def _linf(adv, x):
  return np.abs(np.asarray(adv, np.float64) - x).reshape(len(x), -1).max(1) * 255


def _l2(adv, x):
  return np.linalg.norm((np.asarray(adv, np.float64) - x).reshape(len(x), -1), axis=1) * 255


def _in_box(adv):
  adv = np.asarray(adv)
  return adv.min() >= 0.0 and adv.max() <= 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_attacks_never_leave_budget_or_box(mlp, seed):
  variables, _, _ = mlp
  rng = np.random.default_rng(seed)
  # Random images with many pixels at the box faces, random per-example budgets and labels.
  x = np.clip(rng.uniform(-0.3, 1.3, (8, 4, 4, 3)), 0, 1).astype(np.float32)
  labels = rng.integers(0, 5, 8).astype(np.int32)
  eps = rng.uniform(0, 64, 8).astype(np.float32)
  key = jax.random.key(seed)
  f = am.mlp_apply
  for norm, measure in (("linf", _linf), ("l2", _l2)):
    # A large step so that projection is what keeps the budget.
    for result in (attacks.pgd(f, variables, x, labels, eps=eps, key=key, steps=4, norm=norm,
                               step_size=3 * eps),
                   attacks.bim(f, variables, x, labels, eps=eps, steps=4, norm=norm),
                   attacks.mim(f, variables, x, labels, eps=eps, steps=4, norm=norm),
                   attacks.apgd(f, variables, x, labels, eps=eps, key=key, n_iter=10,
                                norm=norm)):
      assert _in_box(result.adversarial)
      assert np.all(measure(result.adversarial, x) <= eps + ULP)
  result = attacks.nes(f, variables, x, labels, eps=eps, key=key, steps=3, samples=4)
  assert _in_box(result.adversarial) and np.all(_linf(result.adversarial, x) <= eps + ULP)
  result = attacks.spsa(f, variables, x, labels, eps=eps, key=key, steps=3, samples=4,
                        learning_rate=30.0)
  assert _in_box(result.adversarial) and np.all(_linf(result.adversarial, x) <= eps + ULP)
  for result in (attacks.cw_l2(f, variables, x, labels, steps=10, binary_search_steps=2),
                 attacks.ead(f, variables, x, labels, steps=10, binary_search_steps=2),
                 attacks.deepfool(f, variables, x, labels, steps=5, candidates=3)):
    assert _in_box(result.adversarial)


def test_success_flags_and_curves_describe_the_returned_images(mlp):
  variables, x, labels = mlp
  f = am.mlp_apply
  results = {
      "pgd": attacks.pgd(f, variables, x, labels, eps=16, key=jax.random.key(0), steps=4),
      "mim": attacks.mim(f, variables, x, labels, eps=16, steps=4),
      "apgd": attacks.apgd(f, variables, x, labels, eps=16, key=jax.random.key(0), n_iter=10),
      "deepfool": attacks.deepfool(f, variables, x, labels, candidates=5),
      "nes": attacks.nes(f, variables, x, labels, eps=16, key=jax.random.key(0), steps=10,
                         samples=5),
  }
  for name, result in results.items():
    predicted = np.asarray(f(variables, result.adversarial)).argmax(1)
    np.testing.assert_array_equal(np.asarray(result.success), predicted != labels, err_msg=name)
    curve = np.asarray(result.curve)
    assert not curve[0].any(), name  # the clean images are classified correctly
    np.testing.assert_array_equal(curve[-1], np.asarray(result.success), err_msg=name)
    accuracy = attacks.accuracy_vs_iterations(curve)
    assert np.all(np.diff(accuracy) <= 0), name


@pytest.mark.parametrize("mode", ["random", "least_likely", "second_most_likely"])
def test_targeted_attacks_hit_their_targets(mlp, mode):
  variables, x, labels = mlp
  f = am.mlp_apply
  targets = attacks.select_targets(mode, f(variables, x), labels, key=jax.random.key(3))
  targets = np.asarray(targets)
  assert np.all(targets != labels)
  key = jax.random.key(0)
  for name, result in {
      "pgd": attacks.pgd(f, variables, x, labels, eps=255, key=key, steps=40, targets=targets),
      "apgd": attacks.apgd(f, variables, x, labels, eps=255, key=key, n_iter=40,
                           loss="dlr_targeted", targets=targets),
      "cw": attacks.cw_l2(f, variables, x, labels, steps=100, learning_rate=0.05,
                          binary_search_steps=5, initial_const=1.0, targets=targets),
      "deepfool": attacks.deepfool(f, variables, x, labels, targets=targets, steps=50),
  }.items():
    predicted = np.asarray(f(variables, result.adversarial)).argmax(1)
    np.testing.assert_array_equal(predicted, targets, err_msg=name)
    assert np.all(np.asarray(result.success)), name


def test_apgd_checkpoints_are_the_published_ones():
  # Croce & Hein (2020), section 3.2: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1}
  # - 0.03, 0.06); for N_iter = 100 the checks fall at these iterations.
  assert attacks.apgd_checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
  p = [0.0, 0.22]
  while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1.0:
    p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
  assert attacks.apgd_checkpoints(1000) == [round(1000 * q) for q in p]


def test_apgd_step_size_halves_at_each_checkpoint_when_the_loss_is_flat():
  # Constant logits: the loss never increases, so condition (1) holds at every checkpoint
  # and eta goes 2 eps, eps, eps / 2, ... switching exactly after iterations w_1, w_2, ...
  n_iter, eps = 100, 8.0
  variables = {"b": jnp.asarray([2.0, 0.0, -1.0, 0.5])}
  x = np.full((2, 2, 2, 3), 0.5, np.float32)
  result, etas = attacks.apgd(am.constant_apply, variables, x, np.zeros(2, np.int32), eps=eps,
                              key=jax.random.key(0), n_iter=n_iter, return_step_sizes=True)
  points = attacks.apgd_checkpoints(n_iter)
  expected = np.empty(n_iter)
  for j, (start, stop) in enumerate(zip(points, points[1:] + [n_iter])):
    expected[start:stop] = 2 * eps / 2**j
  np.testing.assert_allclose(np.asarray(etas), np.repeat(expected[:, None], 2, 1), rtol=1e-6)
  assert not np.any(np.asarray(result.success))


def test_apgd_t_is_an_untargeted_attack(mlp):
  variables, x, labels = mlp
  result = attacks.apgd_t(am.mlp_apply, variables, x, labels, eps=32, key=jax.random.key(0),
                          n_iter=20, n_target_classes=3)
  predicted = np.asarray(am.mlp_apply(variables, result.adversarial)).argmax(1)
  np.testing.assert_array_equal(np.asarray(result.success), predicted != labels)
  assert np.asarray(result.success).mean() > 0.5
  curve = np.asarray(result.curve)
  assert curve.shape == (3 * 20 + 1, 8)
  # Cumulative over the runs: monotone, ending at the returned success.
  assert np.all(np.diff(curve.astype(int), axis=0) >= 0)
  np.testing.assert_array_equal(curve[-1], np.asarray(result.success))




@pytest.mark.parametrize("name", ["nes", "spsa"])
def test_black_box_query_counts_are_exact(name, mlp):
  attack = getattr(attacks, name)
  steps, samples = 1, 2
  # Nothing is ever fooled: every example pays for every iteration, and the model scored
  # exactly that many images per example (counted at the model, the loops run in Python).
  variables = {"b": jnp.asarray([2.0, 0.0, -1.0, 0.5])}
  x = np.full((2, 2, 2, 3), 0.5, np.float32)
  counting = am.CountingApply(am.constant_apply)
  with jax.disable_jit():
    result = attack(counting, variables, x, np.zeros(2, np.int32), eps=8, key=jax.random.key(0),
                    steps=steps, samples=samples)
  per_example = attacks.queries_at(steps, samples)
  assert per_example == 1 + steps * (2 * samples + 1)
  np.testing.assert_array_equal(np.asarray(result.queries), per_example)
  assert counting.rows == 2 * per_example
  # Examples fooled at iteration t stop there and are charged queries_at(t).
  mvars, mx, mlabels = mlp
  result = attack(am.mlp_apply, mvars, mx, mlabels, eps=64, key=jax.random.key(1), steps=8,
                  samples=samples)
  curve = np.asarray(result.curve)
  first = np.where(curve.any(0), curve.argmax(0), 8)
  assert np.asarray(result.success).any()
  np.testing.assert_array_equal(np.asarray(result.queries), attacks.queries_at(first, samples))
  queries, accuracy = attacks.accuracy_vs_queries(result, samples)
  assert queries[0] == 1 and np.all(np.diff(queries) == 2 * samples + 1)
  assert np.all(np.diff(accuracy) <= 0) and accuracy[-1] == 1 - np.asarray(result.success).mean()


def test_attacks_jit_inside_user_code_with_static_hyperparameters(mlp):
  variables, x, labels = mlp

  @jax.jit
  def robust_accuracy(variables, x, labels, key):
    result = attacks.pgd(am.mlp_apply, variables, x, labels, eps=8, key=key, steps=4)
    return 1.0 - jnp.mean(result.success)

  value = float(robust_accuracy(variables, jnp.asarray(x), jnp.asarray(labels),
                                jax.random.key(0)))
  direct = attacks.pgd(am.mlp_apply, variables, x, labels, eps=8, key=jax.random.key(0), steps=4)
  assert value == pytest.approx(1.0 - float(np.mean(direct.success)))
  # The search is one jitted program over all rounds.
  attack = functools.partial(attacks.pgd, am.mlp_apply, key=jax.random.key(0), steps=4)
  found = attacks.search_budget(attack, variables, x, labels, doubling_steps=6, bisection_steps=4)
  curve = attacks.accuracy_vs_budget(found.minimal, np.arange(0, 64, 0.5))
  assert np.all(np.diff(curve) <= 0) and curve[0] == 1.0


def test_per_example_keys_make_results_independent_of_the_batch(mlp):
  variables, x, labels = mlp
  keys = jax.random.split(jax.random.key(7), len(labels))
  order = np.random.default_rng(0).permutation(len(labels))
  f = am.mlp_apply
  for run in (lambda x, y, k: attacks.pgd(f, variables, x, y, eps=16, key=k, steps=4),
              lambda x, y, k: attacks.nes(f, variables, x, y, eps=16, key=k, steps=3, samples=4)):
    whole = run(x, labels, keys)
    shuffled = run(x[order], labels[order], keys[order])
    np.testing.assert_allclose(np.asarray(shuffled.adversarial),
                               np.asarray(whole.adversarial)[order], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(shuffled.success), np.asarray(whole.success)[order])


def test_mim_without_momentum_is_bim(mlp):
  variables, x, labels = mlp
  bim = attacks.bim(am.mlp_apply, variables, x, labels, eps=16, steps=4)
  mim0 = attacks.mim(am.mlp_apply, variables, x, labels, eps=16, steps=4, decay=0.0)
  np.testing.assert_array_equal(np.asarray(mim0.adversarial), np.asarray(bim.adversarial))


def test_compile_with_passes_xla_options_to_top_level_attacks_only():
  from imagenet_cp import models
  variables, _ = am.twin_mlp()
  x, y = am.twin_inputs(variables, n=8)[:2]
  common = dict(eps=3.0, key=jax.random.key(0), n_iter=3)
  # An option XLA does not know reaches the compile, so it fails: the options are used.
  with attacks.compile_with({"xla_no_such_option_here": "1"}), pytest.raises(
      RuntimeError, match="xla_no_such_option_here"):
    attacks.apgd(am.mlp_apply, variables, x, y, **common)
  plain = attacks.apgd_t(am.mlp_apply, variables, x, y, n_target_classes=2, **common)
  # The zoo's options: APGD-T traces APGD inside its own jit, which must not take them again.
  with attacks.compile_with(models.compiler_options()):
    tuned = attacks.apgd_t(am.mlp_apply, variables, x, y, n_target_classes=2, **common)
  np.testing.assert_array_equal(tuned.success, plain.success)
  np.testing.assert_allclose(tuned.adversarial, plain.adversarial, atol=1e-6)
