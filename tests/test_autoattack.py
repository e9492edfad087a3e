"""AutoAttack: against torchattacks 3.5.1's AutoAttack on a twin network; the worst case."""
import jax
import numpy as np
import pytest
import torchattacks  # the oracle (in the lock, installed by make)

import attack_models as am
from imagenet_cp import attacks

N = 200
# Cheap settings for the properties that do not depend on attack strength.
CHEAP = {"n_iter": 5, "fab_steps": 5, "square_queries": 20, "n_target_classes": 2}


@pytest.fixture(scope="module")
def twin():
  variables, model = am.twin_mlp()
  return (variables, model) + am.twin_inputs(variables, n=N)


def test_standard_robust_accuracy_matches_torchattacks(twin):
  variables, model, x, y, tx, ty = twin
  eps, steps, queries = 3.0, 10, 100
  # torchattacks' AutoAttack runs APGD, APGD-T and FAB-T with its defaults of 10 steps and
  # rescales Square's schedule; set both sides alike (the authors': 100 steps, not rescaled).
  ours = attacks.autoattack(am.mlp_apply, variables, x, y, norm="linf", eps=eps,
                            key=jax.random.key(0), n_iter=steps, fab_steps=steps,
                            square_queries=queries)
  reference = torchattacks.AutoAttack(model, norm="Linf", eps=eps / 255, version="standard",
                                      n_classes=10, seed=0)
  square = reference._autoattack.attacks[3]
  square.n_queries, square.rescale_schedule = queries - 1, False
  adv = reference(tx, ty).detach().permute(0, 2, 3, 1).numpy()
  theirs = np.asarray(am.mlp_apply(variables, adv)).argmax(1) == y
  assert 0.1 < theirs.mean() < 0.9
  # APGD's random start and Square's draws differ: each robust accuracy has a binomial sd of at
  # most 0.5 / sqrt(N) = 0.035, the difference 0.05; 3 sd = 0.15.  (Their deterministic parts,
  # FAB and the projections, agree to rounding: tests/test_attacks_fab.py.)
  assert abs(ours.robust_accuracy - theirs.mean()) <= 0.15
  assert set(ours.broken_by[~ours.robust]) <= {"apgd-ce", "apgd-t", "fab-t", "square"}
  assert ours.done == ("apgd-ce", "apgd-t", "fab-t", "square")
  # Every broken example's point is misclassified and inside the ball.
  adv = ours.adversarial[~ours.robust]
  assert np.all(np.asarray(am.mlp_apply(variables, adv)).argmax(1) != y[~ours.robust])
  assert np.abs(adv - x[~ours.robust]).max() * 255 <= eps * (1 + 1e-5) + 1e-3


def test_an_example_broken_by_any_attack_counts_as_broken(twin):
  variables, _, x, y, _, _ = twin
  x, y = x[:32], y[:32].copy()
  y[:3] = (y[:3] + 1) % 10  # three misclassified clean
  keys = jax.random.split(jax.random.key(1), 32)
  names = ("square", "fab-t", "apgd-ce")  # weakest first, so that each adds examples
  common = dict(norm="linf", eps=2.0, key=keys, version="custom", apgd_restarts=1,
                fab_restarts=1, **CHEAP)
  alone = {a: attacks.autoattack(am.mlp_apply, variables, x, y, attacks=[a], **common)
           for a in names}
  both = attacks.autoattack(am.mlp_apply, variables, x, y, attacks=list(names), **common)
  # Per-example keys and per-example attacks: an attack breaks the same examples whether it runs
  # alone or after others (on fewer examples), so the ensemble breaks exactly the union.
  broken_alone = np.any([~alone[a].robust for a in names], axis=0)
  np.testing.assert_array_equal(~both.robust, broken_alone)
  assert 0 < both.robust.mean() < alone["square"].robust.mean()
  assert both.robust_accuracy == both.robust.mean()
  # Credited to the first attack, in order, that breaks it; 'clean' before any.
  first = np.full(32, "", "<U8")
  for a in reversed(names):
    first[~alone[a].robust] = a
  first[:3] = "clean"
  np.testing.assert_array_equal(both.broken_by, first)
  assert len(set(both.broken_by) - {"", "clean"}) >= 2  # the ensemble is more than one attack
  assert list(both.accuracy_after) == ["clean"] + list(names)
  assert both.accuracy_after["clean"] == pytest.approx(1 - 3 / 32)


def test_resume_gives_identical_flags(twin):
  variables, _, x, y, _, _ = twin
  x, y = x[32:64], y[32:64]
  common = dict(norm="linf", eps=2.0, key=jax.random.key(3), **CHEAP)
  states = []
  whole = attacks.autoattack(am.mlp_apply, variables, x, y, on_attack=states.append, **common)
  assert [s.done for s in states] == [whole.done[:k] for k in range(1, 5)]
  resumed = attacks.autoattack(am.mlp_apply, variables, x, y, resume=states[1], **common)
  np.testing.assert_array_equal(resumed.robust, whole.robust)
  np.testing.assert_array_equal(resumed.broken_by, whole.broken_by)
  np.testing.assert_array_equal(resumed.adversarial, whole.adversarial)
  assert resumed.accuracy_after == whole.accuracy_after
  with pytest.raises(ValueError, match="cannot resume"):
    attacks.autoattack(am.mlp_apply, variables, x, y, resume=states[1], version="rand", **common)


def test_versions_and_bad_inputs():
  assert attacks.autoattack.__module__.endswith("autoattack")
  from imagenet_cp.attacks.autoattack import attack_list, settings
  assert attack_list("standard") == ("apgd-ce", "apgd-t", "fab-t", "square")
  assert attack_list("plus") == ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
  assert attack_list("rand") == ("apgd-ce", "apgd-dlr")
  assert settings("standard")["apgd_restarts"] == 1 and settings("plus")["fab_restarts"] == 5
  assert settings("rand")["eot_iter"] == 20 and settings("standard")["square_queries"] == 5000
  variables, x = {"b": np.zeros(10, np.float32)}, np.full((2, 8, 8, 3), 0.5, np.float32)
  y, key = np.zeros(2, np.int32), jax.random.key(0)
  for kwargs, message in [({"version": "strong"}, "unknown AutoAttack version"),
                          ({"version": "custom"}, "needs a list"),
                          ({"attacks": ["apgd-ce"]}, "only used with version='custom'"),
                          ({"version": "custom", "attacks": ["pgd"]}, "distinct names"),
                          ({"norm": "l1"}, "L1 AutoAttack"), ({"norm": "l3"}, "unknown norm"),
                          ({"eps": -1.0}, "non-negative"), ({"n_steps": 3}, "unknown AutoAttack")]:
    with pytest.raises(ValueError, match=message):
      attacks.autoattack(am.constant_apply, variables, x, y, key=key, **kwargs)
  with pytest.raises(ValueError, match="target classes"):
    attacks.autoattack(am.constant_apply, {"b": np.zeros(5, np.float32)}, x, y, key=key)


SIGMA = 0.1  # the randomised twin's input noise


def noisy_apply(variables, images, key):
  """The twin MLP behind Gaussian input noise: a randomised model, one draw per key."""
  return am.mlp_apply(variables, images + SIGMA * jax.random.normal(key, images.shape))


def expected_accuracy(variables, images, labels, draws=16):
  """Accuracy of the randomised twin averaged over ``draws`` fresh draws."""
  keys = jax.random.split(jax.random.key(99), draws)
  return float(np.mean([np.asarray(noisy_apply(variables, images, k)).argmax(1) == labels
                        for k in keys]))


def test_rand_version_with_eot_matches_torchattacks_on_a_randomised_model(twin):
  import torch
  variables, model, x, y, tx, ty = twin

  class Noisy(torch.nn.Module):
    def forward(self, images):
      return model(images + SIGMA * torch.randn_like(images))

  eps, steps = 4.0, 10  # torchattacks' rand: APGD-CE, APGD-DLR, 10 steps, EOT 20, 1 restart
  ours = attacks.autoattack(noisy_apply, variables, x, y, norm="linf", eps=eps,
                            key=jax.random.key(0), version="rand", n_iter=steps,
                            model_key=jax.random.key(1))
  torch.manual_seed(0)
  reference = torchattacks.AutoAttack(Noisy(), norm="Linf", eps=eps / 255, version="rand",
                                      n_classes=10, seed=0)
  theirs = reference(tx, ty).detach().permute(0, 2, 3, 1).numpy()
  # Both sets of points scored alike, under 16 fresh draws of the noise.
  ours_acc = expected_accuracy(variables, ours.adversarial, y)
  theirs_acc = expected_accuracy(variables, theirs, y)
  clean_acc = expected_accuracy(variables, x, y)
  assert clean_acc - theirs_acc > 0.2  # the attack does something at this budget
  # Starts, noise draws and the one-draw acceptance tests differ: binomial sd of each side's
  # flags at most 0.5 / sqrt(N) = 0.035 (less after averaging draws), difference 0.05; 3 sd.
  assert abs(ours_acc - theirs_acc) <= 0.15
  assert ours.done == ("apgd-ce", "apgd-dlr")
  assert np.abs(ours.adversarial - x).max() * 255 <= eps * (1 + 1e-5) + 1e-3


def test_eot_of_a_model_that_ignores_its_key_is_the_plain_gradient(twin):
  variables, _, x, y, _, _ = twin
  x, y = x[:16], y[:16]
  common = dict(eps=3.0, key=jax.random.key(4), n_iter=5)
  plain = attacks.apgd(am.mlp_apply, variables, x, y, **common)
  # A mean of 4 equal float32 gradients is exact, so the runs agree bit for bit.
  eot = attacks.apgd(lambda v, images, key: am.mlp_apply(v, images), variables, x, y,
                     model_key=jax.random.key(5), eot_iter=4, **common)
  np.testing.assert_array_equal(eot.adversarial, plain.adversarial)
  np.testing.assert_array_equal(eot.success, plain.success)


def test_eot_gradient_is_the_mean_over_draws(twin):
  from imagenet_cp.attacks.apgd import eot_objective_and_grad
  from imagenet_cp.attacks.gradient import objective_and_grad
  variables, _, x, y, _, _ = twin
  x, y, key = x[:4], y[:4], jax.random.key(6)
  logits, grad = eot_objective_and_grad(noisy_apply, variables, x, y, None, "ce", key, 3)
  draws = [objective_and_grad(lambda v, im, k=k: noisy_apply(v, im, k), variables, x, y, None,
                              "ce") for k in jax.random.split(key, 3)]
  np.testing.assert_allclose(grad, np.mean([g for _, g in draws], axis=0), rtol=1e-5, atol=1e-7)
  # Inside a scan XLA may order the float32 sums differently: 1e-5 relative.
  np.testing.assert_allclose(logits, draws[-1][0], rtol=1e-5, atol=1e-6)
  assert np.abs(np.asarray(draws[0][1]) - np.asarray(draws[1][1])).max() > 1e-4  # draws differ


def test_a_randomised_model_is_refused_by_the_other_attacks(twin):
  variables, _, x, y, _, _ = twin
  with pytest.raises(ValueError, match="randomised model"):
    attacks.autoattack(noisy_apply, variables, x[:2], y[:2], key=jax.random.key(0),
                       model_key=jax.random.key(1))  # standard: APGD-T, FAB-T, Square too
  with pytest.raises(ValueError, match="one PRNG key"):
    attacks.apgd(noisy_apply, variables, x[:2], y[:2], eps=3.0, key=jax.random.key(0),
                 model_key=jax.random.split(jax.random.key(1), 2))
