"""Square Attack against the authors' algorithm (torchattacks 3.5.1's port), query budget."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import attack_models as am
from imagenet_cp import attacks
from imagenet_cp.attacks.square import eta_pattern, p_selection, window_side

import torchattacks  # noqa: E402  (the oracle; in the lock, installed by make)

N = 200
ULP = 1e-4  # float32 rounding of x + delta, in /255 units


@pytest.fixture(scope="module")
def twin():
  variables, model = am.twin_mlp()
  return (variables, model) + am.twin_inputs(variables, n=N)


def test_p_schedule_and_window_side_are_the_authors():
  # p_init halves after each breakpoint (strictly past it), on a 10 000-query scale.
  assert [p_selection(i, 0.8, 5000, False) for i in (0, 10, 11, 50, 51, 201, 8001)] == [
      0.8, 0.8, 0.4, 0.4, 0.2, 0.1, 0.8 / 512]
  # Rescaled to a 1000-query budget, iteration 2 is the 10 000-scale's 20.
  assert p_selection(2, 0.8, 1000, True) == 0.4 and p_selection(2, 0.8, 1000, False) == 0.8
  # sqrt(p h w) rounded: 224 x 224 at p = 0.8 -> 200; L2 odd and >= 3.
  assert window_side(0.8, 224, 224, "linf") == 200
  assert window_side(0.8 / 512, 224, 224, "linf") == 9  # sqrt(78.4) = 8.85
  assert window_side(0.8 / 256, 224, 224, "l2") == 13  # 12.5 -> 12 (to even), made odd
  assert window_side(1e-6, 224, 224, "l2") == 3 and window_side(1e-6, 224, 224, "linf") == 1


def test_eta_pattern_is_the_authors():
  square = torchattacks.Square(torch.nn.Identity(), norm="L2")
  square.device = torch.device("cpu")
  for s in (1, 3, 5, 8):
    # The authors' eta(s) without its random transpose.
    want = torch.zeros(s, s)
    want[:s // 2] = square.eta_rectangles(s // 2, s)
    want[s // 2:] = -square.eta_rectangles(s - s // 2, s)
    want /= want.pow(2).sum().sqrt()
    np.testing.assert_allclose(eta_pattern(s), want.numpy(), rtol=0, atol=1e-6)


# The port's L2 step builds its pattern in Python every iteration: a smaller budget keeps it short.
@pytest.mark.parametrize("norm,tnorm,eps,queries", [("linf", "Linf", 6.0, 150),
                                                    ("l2", "L2", 75.0, 60)])
def test_success_rate_and_queries_match_the_authors_port(twin, norm, tnorm, eps, queries):
  variables, model, x, y, tx, ty = twin
  result = attacks.square(am.mlp_apply, variables, x, y, eps=eps, norm=norm,
                          key=jax.random.key(0), queries=queries, rescale_schedule=False)
  torch.manual_seed(0)
  atk = torchattacks.Square(model, norm=tnorm, eps=eps / 255, n_queries=queries - 1,
                            resc_schedule=False, seed=0)
  atk.init_hyperparam(tx)
  with torch.no_grad():
    # The port runs n_queries iterations after its start: queries - 1 is our budget.
    spent, adv = atk.attack_single_run(tx, ty)
  adv = adv.permute(0, 2, 3, 1).numpy()
  theirs = np.asarray(am.mlp_apply(variables, adv)).argmax(1) != y
  ours = np.asarray(result.success)
  assert 0.15 < theirs.mean() < 0.85  # neither trivial nor hopeless
  # Independent random searches: the success rate of each has a binomial sd of at most
  # 0.5 / sqrt(N) = 0.035, their difference 0.05; 3 sd = 0.15.
  assert abs(ours.mean() - theirs.mean()) <= 0.15
  # Accuracy after q queries, averaged over q = 1 .. budget (the area under the accuracy-vs-
  # queries curve): the same 3 sd.
  grid = np.arange(1, queries + 1)
  ours_curve = 1 - np.mean(ours[None] & (np.asarray(result.queries)[None] <= grid[:, None]), 1)
  spent = spent.numpy()
  their_curve = 1 - np.mean(theirs[None] & (spent[None] <= grid[:, None]), 1)
  assert abs(ours_curve.mean() - their_curve.mean()) <= 0.15
  np.testing.assert_allclose(1 - np.asarray(result.curve).mean(1), ours_curve, atol=1e-12)
  # Inside the ball and the box.
  delta = (np.asarray(result.adversarial, np.float64) - x).reshape(N, -1) * 255
  size = np.abs(delta).max(1) if norm == "linf" else np.linalg.norm(delta, axis=1)
  assert np.all(size <= eps + ULP)
  assert np.asarray(result.adversarial).min() >= 0 and np.asarray(result.adversarial).max() <= 1




def test_never_more_queries_than_the_budget(twin):
  # A model that is never fooled: every example spends exactly the budget, and the model scored
  # exactly that many images per example.
  variables = {"b": jnp.asarray([2.0, 0.0, -1.0, 0.5])}
  x = np.full((3, 6, 6, 3), 0.5, np.float32)
  for norm in ("linf",):
    counting = am.CountingApply(am.constant_apply)
    with jax.disable_jit():
      result = attacks.square(counting, variables, x, np.zeros(3, np.int32), eps=8, norm=norm,
                              key=jax.random.key(0), queries=7)
    np.testing.assert_array_equal(np.asarray(result.queries), 7)
    assert counting.rows == 3 * 7 and not np.asarray(result.success).any()
  # On the MLP: a success is a misclassified point inside the ball, reached within the budget;
  # an example stops at the query that fooled it.
  variables, _, x, y, _, _ = twin
  for budget in (40,):
    result = attacks.square(am.mlp_apply, variables, x[:64], y[:64], eps=8, norm="linf",
                            key=jax.random.key(2), queries=budget)
    success, spent = np.asarray(result.success), np.asarray(result.queries)
    assert spent.max() <= budget and spent.min() >= 1
    np.testing.assert_array_equal(spent[~success], budget)
    adv = np.asarray(result.adversarial)
    predicted = np.asarray(am.mlp_apply(variables, adv)).argmax(1)
    np.testing.assert_array_equal(success, predicted != y[:64])
    assert np.abs(adv - x[:64]).max() * 255 <= 8 + ULP and adv.min() >= 0 and adv.max() <= 1
    curve = np.asarray(result.curve)
    assert curve.shape == (budget, 64)
    np.testing.assert_array_equal(curve[-1], success)
  assert success.any() and (spent[success] > 1).any()


def test_targeted_square_hits_the_target(twin):
  variables, _, x, y, _, _ = twin
  targets = np.asarray(attacks.select_targets("second_most_likely",
                                              am.mlp_apply(variables, x[:32]), y[:32]))
  result = attacks.square(am.mlp_apply, variables, x[:32], y[:32], eps=16, norm="linf",
                          key=jax.random.key(0), queries=200, targets=targets)
  predicted = np.asarray(am.mlp_apply(variables, result.adversarial)).argmax(1)
  np.testing.assert_array_equal(np.asarray(result.success), predicted == targets)
  assert np.asarray(result.success).mean() > 0.5


def test_per_example_keys_make_results_independent_of_the_batch(twin):
  variables, _, x, y, _, _ = twin
  keys = jax.random.split(jax.random.key(5), 16)
  whole = attacks.square(am.mlp_apply, variables, x[:16], y[:16], eps=4, norm="linf", key=keys,
                         queries=40)
  part = attacks.square(am.mlp_apply, variables, x[:8], y[:8], eps=4, norm="linf", key=keys[:8],
                        queries=40)
  np.testing.assert_array_equal(np.asarray(whole.queries)[:8], np.asarray(part.queries))
  np.testing.assert_allclose(np.asarray(whole.adversarial)[:8], np.asarray(part.adversarial),
                             rtol=0, atol=1e-6)


def test_bad_inputs_raise_value_errors(twin):
  variables, _, x, y, _, _ = twin
  key = jax.random.key(0)
  for kwargs, message in [({"norm": "l1"}, "unknown norm"), ({"eps": -1.0}, "non-negative"),
                          ({"queries": 0}, "positive integer"), ({"p_init": 0.0}, "p_init"),
                          ({"loss": "dlr"}, "unknown Square loss")]:
    args = dict({"eps": 4.0, "norm": "linf"}, **kwargs)
    with pytest.raises(ValueError, match=message):
      attacks.square(am.mlp_apply, variables, x[:4], y[:4], key=key, **args)
  with pytest.raises(ValueError, match="side >= 5"):
    attacks.square(am.mlp_apply, variables, np.zeros((2, 4, 4, 3), np.float32),
                   np.zeros(2, np.int32), eps=4, norm="l2", key=key)
  with pytest.raises(ValueError, match="labels"):
    attacks.square(am.mlp_apply, variables, x[:4], y[:3], eps=4, key=key)
