"""Decision-based attacks (attacks/decision.py): labels only, exact query budgets, and on an
affine model (tests/attack_models.linear_problem: the minimal L2 distance is in closed form)
distortions that only decrease and end near the optimum; Boundary against foolbox 3.3.4.
"""
import eagerpy  # noqa: F401  (foolbox's tensor layer; imported here so a missing one says so)
import foolbox
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import attack_models as am
from imagenet_cp import attacks


@pytest.fixture(scope="module")
def problem():
  return am.linear_problem(n=8, side=4, classes=2, seed=2)


def _run(fn, problem, **kwargs):
  extra = {"reduced": 4} if fn is attacks.evolutionary else {}
  return fn(am.linear_apply, problem.variables, problem.images, problem.labels,
            key=jax.random.key(0), **extra, **kwargs)


@pytest.fixture(scope="module")
def results(problem):
  return {fn.__name__: _run(fn, problem, max_queries=1500)
          for fn in (attacks.boundary, attacks.evolutionary)}


def test_distortion_decreases_to_near_the_closed_form_optimum(problem, results):
  # Factors measured over seeds with margin: Boundary's random walk on the sphere is slower
  # than the evolution strategy's adapted covariance in 48 dimensions with 1500 queries.
  for name, factor in (("boundary", 3.0), ("evolutionary", 1.1)):
    r = results[name]
    d = np.asarray(r.distances, np.float64)
    assert np.all(np.asarray(r.success)), name
    assert np.all(np.diff(d, axis=0) <= 0), name
    final = d[-1]
    # Every adversarial of an affine classifier is at least the hyperplane distance away
    # (float32 rounding of the 0..255 distances: 1e-3).
    assert np.all(final >= problem.l2 - 1e-3), (name, final, problem.l2)
    assert np.all(final <= factor * problem.l2), (name, final / problem.l2)
    assert np.all(final < 0.5 * d[0]), name    # real progress from the blended start
    adv = np.asarray(r.adversarial)
    assert np.all(np.asarray(am.linear_apply(problem.variables, adv)).argmax(1) != problem.labels)
    np.testing.assert_allclose(np.linalg.norm((adv - problem.images).reshape(8, -1), axis=1) * 255,
                               final, rtol=1e-5)


def test_queries_never_exceed_the_budget_and_are_counted_per_step(results):
  for name, r in results.items():
    q = np.asarray(r.queries)
    assert q.max() <= 1500 and np.all(np.diff(q, axis=0) >= 0), name
    # An example runs until its next step would not fit, so it ends within one step's cost.
    assert np.all(q[-1] >= 1500 - (2 if name == "boundary" else 1)), name
    steps = np.arange(1, q.shape[0])
    costs = np.diff(q, axis=0)
    if name == "boundary":
      # 1 query per step, plus the spherical candidate's on every 10th step.
      expected = 1 + (steps % 10 == 0)
      assert np.all((costs == expected[:, None]) | (costs == 0))
    else:
      assert set(np.unique(costs)) <= {0, 1}
    # Once an example stops it never queries again.
    stopped = np.cumsum(costs == 0, axis=0) > 0
    assert not np.any(costs[stopped] > 0)


def test_only_the_predicted_label_is_used(problem, results):
  rng = np.random.default_rng(0)
  scales = jnp.asarray(rng.uniform(0.5, 3.0, 2), jnp.float32)

  def label_only(variables, images):
    # Scores reduced to a one-hot of the top-1 times arbitrary positive scales.
    logits = am.linear_apply(variables, images)
    return jax.nn.one_hot(jnp.argmax(logits, -1), 2) * scales

  for fn in (attacks.boundary, attacks.evolutionary):
    extra = {"reduced": 4} if fn is attacks.evolutionary else {}
    seen = fn(label_only, problem.variables, problem.images, problem.labels,
              key=jax.random.key(0), max_queries=1500, **extra)
    np.testing.assert_array_equal(np.asarray(seen.queries),
                                  np.asarray(results[fn.__name__].queries))
    np.testing.assert_allclose(np.asarray(seen.distances),
                               np.asarray(results[fn.__name__].distances), rtol=1e-6)


def test_distortion_and_accuracy_at_a_query_budget():
  distances = np.array([[np.inf, 9.0], [5.0, 4.0], [3.0, 4.0]])
  queries = np.array([[3, 2], [4, 3], [6, 5]])
  got = attacks.distortion_after_queries(distances, queries, [0, 2, 4, 5, 10])
  np.testing.assert_array_equal(got, [[np.inf, np.inf], [np.inf, 9.0], [5.0, 4.0], [5.0, 4.0],
                                      [3.0, 4.0]])
  np.testing.assert_array_equal(attacks.accuracy_at_distortion(got, 4.5), [1, 1, 0.5, 0.5, 0])
  with pytest.raises(ValueError, match="non-negative"):
    attacks.distortion_after_queries(distances, queries, [-1])


def test_boundary_matches_foolbox_in_median_distortion(problem):
  n, dim = 8, 48
  w, b = np.asarray(problem.variables["w"]), np.asarray(problem.variables["b"])

  class Linear(torch.nn.Module):
    def forward(self, x):
      flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
      return flat @ torch.from_numpy(w) + torch.from_numpy(b)

  fmodel = foolbox.PyTorchModel(Linear().eval(), bounds=(0, 1))
  x = torch.from_numpy(np.transpose(problem.images, (0, 3, 1, 2)).copy())
  y = torch.from_numpy(problem.labels.astype(np.int64))
  torch.manual_seed(0)
  steps = 600
  adv = foolbox.attacks.BoundaryAttack(steps=steps).run(fmodel, x, y)
  theirs = np.linalg.norm((adv.numpy() - x.numpy()).reshape(n, -1), axis=1) * 255
  ours = _run(attacks.boundary, problem, steps=steps, max_queries=10 * steps)
  mine = np.asarray(ours.distances)[-1]
  assert dim == problem.images[0].size
  # Same algorithm and step-size rules, independent random draws and starts: the medians of 8
  # examples agree within 25% (measured spread over seeds: about 10%).
  ratio = np.median(mine / problem.l2) / np.median(theirs / problem.l2)
  assert 0.75 < ratio < 1.25, (ratio, mine, theirs)


def test_bad_inputs_raise_value_errors(problem):
  f, v, x, y = am.linear_apply, problem.variables, problem.images, problem.labels
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="max_queries"):
    attacks.boundary(f, v, x, y, key=key, max_queries=0)
  with pytest.raises(ValueError, match="PRNG key"):
    attacks.evolutionary(f, v, x, y, key=None)
  with pytest.raises(ValueError, match="spherical_step"):
    attacks.boundary(f, v, x, y, key=key, spherical_step=-1.0)
  with pytest.raises(ValueError, match="decay"):
    attacks.evolutionary(f, v, x, y, key=key, decay=1.0)
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    attacks.boundary(f, v, x * 9, y, key=key)
