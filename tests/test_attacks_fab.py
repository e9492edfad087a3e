"""FAB against the authors' algorithm (torchattacks 3.5.1's port) and closed forms."""
import importlib

import jax
import numpy as np
import pytest
import torch

import attack_models as am
from imagenet_cp import attacks
fab_lib = importlib.import_module("imagenet_cp.attacks.fab")

import torchattacks  # noqa: E402  (the oracle; in the lock, installed by make)
from torchattacks.attacks import fab as reference  # noqa: E402  (the authors' projections)

N = 150


@pytest.fixture(scope="module")
def twin():
  variables, model = am.twin_mlp()
  return (variables, model) + am.twin_inputs(variables, n=N)


def _norms(adv, x, norm):
  d = (np.asarray(adv, np.float64) - x).reshape(len(x), -1) * 255
  return {"linf": np.abs(d).max(1), "l2": np.sqrt((d ** 2).sum(1)), "l1": np.abs(d).sum(1)}[norm]


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_projections_equal_the_authors(norm):
  rng = np.random.default_rng(0)
  # 20 000: many breakpoints for the Linf / L2 water level's search (L1 has none).
  for dim in (5, 300) + ((20_000,) if norm != "l1" else ()):
    t = rng.uniform(0, 1, (100, dim)).astype(np.float32)
    w = rng.standard_normal((100, dim)).astype(np.float32)
    w[::7, :3] = 0.0  # zero weights: coordinates the step must not move
    # Hyperplanes near and far: inside the box, at its corners and out of reach.
    b = (np.sum(w * t, 1) + rng.standard_normal(100) * rng.choice([0.1, 1, 30], 100))
    b = b.astype(np.float32)
    want = getattr(reference, f"projection_{norm}")(torch.tensor(t), torch.tensor(w),
                                                    torch.tensor(b)).numpy()
    got = np.asarray(fab_lib.PROJECT[norm](t, w, b))
    # Float32 sums over up to 20 000 coordinates in another order: a few ulps of 1.
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def _fab_on_a_line(distance, steps, eta=1.05, beta=0.9, alpha_max=0.1):
  """The best norm FAB finds when the boundary is a hyperplane at ``distance`` from x_0 and the
  box is not in the way: every step is along the same direction, so FAB is a scalar recursion
  on the distance a of the iterate from x_0 (the projections of x and x_0 are D - a and D)."""
  a, best = 0.0, np.inf
  for _ in range(steps):
    a1, a0 = max(abs(distance - a), 1e-8), max(distance, 1e-8)
    alpha = min(a1 / (a1 + a0), alpha_max)
    a = (a + eta * (distance - a)) * (1 - alpha) + eta * distance * alpha
    if a > distance:
      best, a = min(best, a), beta * a
  return best


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_minimal_norm_on_a_linear_classifier_is_margin_over_dual_norm(norm):
  p = am.linear_problem(n=6, classes=3, seed=2)
  result, found = attacks.fab(am.linear_apply, p.variables, p.images, p.labels, norm=norm,
                              key=jax.random.key(0), steps=100, return_norms=True)
  assert np.all(np.asarray(result.success))
  exact = p.linf if norm == "linf" else p.l2  # margin / ||w_k - w_y||_dual, nearest k
  found = np.asarray(found, np.float64)
  # FAB's overshoot (eta) and pull-back (beta) settle into a cycle whose adversarial end stays
  # about 0.5% past the boundary: the recursion gives the exact value; float32 rounding only.
  want = np.array([_fab_on_a_line(d / 255, 100) * 255 for d in exact])
  assert np.all(want >= exact) and np.all(want <= exact * 1.01)
  np.testing.assert_allclose(found, want, rtol=1e-4)
  np.testing.assert_allclose(_norms(result.adversarial, p.images, norm), found, rtol=1e-4)


# L2 is pinned by the projections and the closed form; these two cover the other dual norms.
@pytest.mark.parametrize("norm,tnorm", [("linf", "Linf"), ("l1", "L1")])
def test_untargeted_fab_matches_the_authors_port(twin, norm, tnorm):
  variables, model, x, y, tx, ty = twin
  steps = 10
  result, found = attacks.fab(am.mlp_apply, variables, x, y, norm=norm, key=jax.random.key(0),
                              steps=steps, return_norms=True)
  atk = torchattacks.FAB(model, norm=tnorm, eps=1e9, steps=steps, n_restarts=1)
  with torch.no_grad():
    # The port's perturb() cannot score L1, so its single run (no restart, no budget) is used.
    adv = atk.attack_single_run(tx, ty).permute(0, 2, 3, 1).numpy()
  ok = np.asarray(am.mlp_apply(variables, adv)).argmax(1) != y
  size = _norms(adv, x, norm)
  success = np.asarray(result.success)
  found = np.asarray(found)
  # FAB without restarts is deterministic: the two differ only by float32 rounding, which can
  # flip an argmin between two nearly equidistant classes for an example or two of N.
  assert abs(int(success.sum()) - int(ok.sum())) <= 2
  both = success & ok
  assert both.mean() > 0.95
  np.testing.assert_allclose(found[both].mean(), size[both].mean(), rtol=2e-3)
  assert np.mean(np.abs(found[both] - size[both]) <= 1e-3 * size[both]) > 0.97


@pytest.mark.parametrize("norm,tnorm,eps", [("linf", "Linf", 3.0)])
def test_fab_t_robust_accuracy_matches_the_authors_port(twin, norm, tnorm, eps):
  variables, model, x, y, tx, ty = twin
  steps, targets = 10, 3
  result, found = attacks.fab_t(am.mlp_apply, variables, x, y, norm=norm,
                                key=jax.random.key(0), steps=steps, n_target_classes=targets,
                                return_norms=True)
  # The port's FAB-T runs n_classes - 1 targets; with n_classes = targets + 1 it runs ours.
  atk = torchattacks.FAB(model, norm=tnorm, eps=eps / 255, steps=steps, n_restarts=1,
                         multi_targeted=True, n_classes=targets + 1)
  adv = atk(tx, ty).permute(0, 2, 3, 1).numpy()
  broken = (np.asarray(am.mlp_apply(variables, adv)).argmax(1) != y) & (
      _norms(adv, x, norm) <= eps * (1 + 1e-5))
  ours = np.asarray(result.success) & (np.asarray(found) <= eps)
  # Deterministic as above; eps sits inside the distribution of distances, where a rounding
  # difference can move an example across it: allow 2 of N.
  assert 0.2 < broken.mean() < 0.9
  assert abs(int(ours.sum()) - int(broken.sum())) <= 2


def test_success_and_norms_describe_the_returned_points(twin):
  variables, _, x, y, _, _ = twin
  x, y = x[:16], y[:16]
  y = y.copy()
  y[0] = (y[0] + 1) % 10  # misclassified clean: its own adversarial at distance 0
  result, found = attacks.fab(am.mlp_apply, variables, x, y, norm="linf", key=jax.random.key(1),
                              steps=10, restarts=2, eps=8, return_norms=True)
  success, found = np.asarray(result.success), np.asarray(found)
  predicted = np.asarray(am.mlp_apply(variables, result.adversarial)).argmax(1)
  np.testing.assert_array_equal(success, predicted != y)
  assert found[0] == 0 and np.array_equal(np.asarray(result.adversarial)[0], x[0])
  np.testing.assert_allclose(_norms(result.adversarial, x, "linf")[success], found[success],
                             rtol=1e-4, atol=1e-4)
  assert np.all(np.isinf(found[~success]))
  curve = np.asarray(result.curve)
  assert curve.shape == (2 * 10 + 1, 16) and np.all(np.diff(curve.astype(int), axis=0) >= 0)
  np.testing.assert_array_equal(curve[-1], success)


def test_targeted_fab_hits_the_target(twin):
  variables, _, x, y, _, _ = twin
  x, y = x[:16], y[:16]
  targets = np.asarray(attacks.select_targets("second_most_likely",
                                              am.mlp_apply(variables, x), y))
  result = attacks.fab(am.mlp_apply, variables, x, y, norm="linf", key=jax.random.key(0),
                       targets=targets, steps=10)
  predicted = np.asarray(am.mlp_apply(variables, result.adversarial)).argmax(1)
  np.testing.assert_array_equal(np.asarray(result.success), predicted == targets)
  assert np.asarray(result.success).mean() > 0.9


def test_bad_inputs_raise_value_errors(twin):
  variables, _, x, y, _, _ = twin
  key = jax.random.key(0)
  for kwargs, message in [({"norm": "l0"}, "unknown norm"),
                          ({"norm": "linf", "restarts": 2}, "give eps"),
                          ({"norm": "linf", "eps": -1.0}, "non-negative"),
                          ({"norm": "linf", "steps": 0}, "positive integer"),
                          ({"norm": "linf", "beta": 0.0}, "beta")]:
    with pytest.raises(ValueError, match=message):
      attacks.fab(am.mlp_apply, variables, x[:4], y[:4], key=key, **kwargs)
  with pytest.raises(ValueError, match="shape"):
    attacks.fab(am.mlp_apply, variables, x[:4, :, :, :2], y[:4], norm="linf", key=key)
  with pytest.raises(ValueError, match="n_target_classes"):
    attacks.fab_t(am.mlp_apply, variables, x[:4], y[:4], norm="linf", key=key,
                  n_target_classes=10)
