"""Transfer attacks (attacks/transfer.py) against torchattacks 3.5.1 on twin models.

The twins are a tiny tanh MLP on 8x8 images, in torch and in JAX with the same float32
weights.  The random parts are compared given the same draws (ours, handed to torch), the
whole attacks on fresh draws by their success and transfer rates.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchattacks

import attack_models as am
from imagenet_cp import attacks
from imagenet_cp.attacks import transfer

SIDE, CLASSES = 8, 10
# Float32: two bilinear weights and a few products per value; the orders of summation differ.
PIXEL_ATOL = 1e-6


def _weights(seed, hidden=32):
  rng = np.random.default_rng(seed)
  dim = SIDE * SIDE * 3
  return {"w1": (rng.standard_normal((dim, hidden)) / np.sqrt(dim) * 4).astype(np.float32),
          "b1": rng.standard_normal(hidden).astype(np.float32) * 0.1,
          "w2": rng.standard_normal((hidden, CLASSES)).astype(np.float32),
          "b2": np.zeros(CLASSES, np.float32)}


class TorchMLP(torch.nn.Module):
  """The torch twin of attack_models.mlp_apply (NCHW in, flattened as NHWC)."""

  def __init__(self, w):
    super().__init__()
    self.w = {k: torch.nn.Parameter(torch.from_numpy(v), requires_grad=False)
              for k, v in w.items()}
    for k, v in self.w.items():
      self.register_parameter(k, v)

  def forward(self, x):
    flat = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
    return torch.tanh(flat @ self.w["w1"] + self.w["b1"]) @ self.w["w2"] + self.w["b2"]


@pytest.fixture(scope="module")
def twins():
  """-> (jax variables, torch model) of the surrogate, the same of the target, images, labels."""
  surrogate = _weights(0)
  # The target: the surrogate's weights plus noise, a related but different model.
  target = {k: (v + 0.5 * np.abs(v).mean() * np.random.default_rng(1).standard_normal(v.shape)
                ).astype(np.float32) for k, v in surrogate.items()}
  rng = np.random.default_rng(2)
  images = rng.uniform(0.05, 0.95, (160, SIDE, SIDE, 3)).astype(np.float32)
  labels = np.asarray(am.mlp_apply(surrogate, images)).argmax(1).astype(np.int32)
  # Examples both models classify alike, the first 96.
  agree = np.flatnonzero(np.asarray(am.mlp_apply(target, images)).argmax(1) == labels)[:96]
  assert len(agree) == 96
  images, labels = images[agree], labels[agree]
  return ({k: jnp.asarray(v) for k, v in surrogate.items()}, TorchMLP(surrogate).eval(),
          {k: jnp.asarray(v) for k, v in target.items()}, TorchMLP(target).eval(), images, labels)


def _nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x), (0, 3, 1, 2))))


def _nhwc(x):
  return np.transpose(x.detach().numpy(), (0, 2, 3, 1))


def test_diversity_transform_equals_torch_resize_and_pad():
  rng = np.random.default_rng(0)
  for side in (8, 17):
    images = rng.uniform(0, 1, (12, side, side, 3)).astype(np.float32)
    keys = jax.random.split(jax.random.key(side), 12)
    draws = {k: np.asarray(v) for k, v in transfer.draw_diversity(keys, side, 0.7, 0.5).items()}
    out = np.asarray(transfer.apply_diversity(jnp.asarray(images), draws))
    for i in range(12):
      size, top, left = int(draws["size"][i]), int(draws["top"][i]), int(draws["left"][i])
      x = _nchw(images[i:i + 1])
      resized = F.interpolate(x, size=[size, size], mode="bilinear", align_corners=False)
      rem = side - size
      expected = F.pad(resized, [left, rem - left, top, rem - top], value=0)
      expected = _nhwc(expected if draws["apply"][i] else x)[0]
      np.testing.assert_allclose(out[i], expected, atol=PIXEL_ATOL, rtol=0)


def test_diversity_draws_follow_torchattacks_ranges():
  keys = jax.random.split(jax.random.key(0), 4000)
  draws = {k: np.asarray(v) for k, v in transfer.draw_diversity(keys, 224, 0.85, 0.7).items()}
  low, high = transfer.diversity_range(224, 0.85)
  assert (low, high) == (190, 224)
  assert draws["size"].min() == low and draws["size"].max() == high - 1
  assert np.all(draws["top"] < 224 - draws["size"]) and np.all(draws["left"] >= 0)
  # 4000 Bernoulli(0.7) draws: std 0.0072, so 0.03 is a 4-sigma band.
  assert abs(draws["apply"].mean() - 0.7) < 0.03


def test_ti_kernel_and_smoothing_equal_torchattacks(twins):
  _, torch_model, *_ = twins
  for length, nsig in ((15, 3), (7, 2.5), (4, 3)):
    ti = torchattacks.TIFGSM(torch_model, len_kernel=length, nsig=nsig)
    kernel = transfer.gaussian_kernel(length, nsig)
    np.testing.assert_array_equal(kernel, ti.stacked_kernel.numpy()[0, 0])
    grad = np.random.default_rng(length).standard_normal((2, SIDE, SIDE, 3)).astype(np.float32)
    expected = F.conv2d(_nchw(grad), ti.stacked_kernel, stride=1, padding="same", groups=3)
    np.testing.assert_allclose(np.asarray(transfer.smooth_gradient(jnp.asarray(grad), kernel)),
                               _nhwc(expected), atol=PIXEL_ATOL, rtol=0)


class _GivenDiversity:
  """torchattacks' input_diversity with our draws of step t (torch's resize + pad ops)."""

  def __init__(self, draws):
    self.draws = iter(draws)

  def __call__(self, x):
    d = next(self.draws)
    if not d["apply"]:
      return x
    side, size = x.shape[-1], d["size"]
    resized = F.interpolate(x, size=[size, size], mode="bilinear", align_corners=False)
    rem = side - size
    return F.pad(resized, [d["left"], rem - d["left"], d["top"], rem - d["top"]], value=0)


class _GivenUniform:
  """Stands in for torch.randn_like in VMIFGSM: ``.uniform_(lo, hi)`` returns our draws."""

  def __init__(self, noise, radius):
    self.noise, self.radius = iter(noise), radius

  def __call__(self, like):
    sample, radius = next(self.noise), self.radius

    class Draw:
      @staticmethod
      def uniform_(lo, hi):
        assert np.isclose(hi, radius) and np.isclose(lo, -radius)
        return torch.from_numpy(sample)
    return Draw()


EPS, STEP, STEPS = 8.0, 2.0, 3


def _one_key(i):
  return jax.random.key(100 + i)


def test_whole_attacks_equal_torchattacks_given_the_same_draws(twins, monkeypatch):
  variables, model, _, _, images, labels = twins
  images, labels = images[:6], labels[:6]
  common = dict(eps=EPS / 255, alpha=STEP / 255, steps=STEPS)
  ours = dict(eps=EPS, step_size=STEP, steps=STEPS)
  f = am.mlp_apply
  x, y = _nchw(images), torch.from_numpy(labels.astype(np.int64))
  cases = {
      "mi": (attacks.mi_fgsm(f, variables, images, labels, **ours),
             torchattacks.MIFGSM(model, decay=1.0, **common)(x, y)),
      "si_ni": (attacks.si_ni_fgsm(f, variables, images, labels, scales=3, **ours),
                torchattacks.SINIFGSM(model, decay=1.0, m=3, **common)(x, y)),
  }
  # VMI: our neighbour draws of each step, handed to torch as its uniform noise.
  keys = jax.random.split(jax.random.key(7), 6)
  radius = 1.5 * EPS / 255
  noise = [np.transpose(np.asarray(n), (0, 3, 1, 2)) for t in range(STEPS) for n in
           transfer.draw_neighbours(transfer.step_keys(keys, t), 4, jnp.full(6, radius),
                                    images.shape[1:])]
  monkeypatch.setattr(torch, "randn_like", _GivenUniform(noise, radius))
  cases["vmi"] = (attacks.vmi_fgsm(f, variables, images, labels, key=keys, samples=4, beta=1.5,
                                   **ours),
                  torchattacks.VMIFGSM(model, decay=1.0, N=4, beta=1.5, **common)(x, y))
  monkeypatch.undo()
  # DI / TI: torch draws one transform per batch, so each example runs alone with its draws.
  for name, cls, fn in (("di", torchattacks.DIFGSM, attacks.di_fgsm),
                        ("ti", torchattacks.TIFGSM, functools.partial(attacks.ti_fgsm,
                                                                      kernel_length=5))):
    result = fn(f, variables, images, labels, key=keys, resize_rate=0.7, diversity_prob=0.5,
                **ours)
    rows = []
    for i in range(6):
      steps = [{k: np.asarray(v)[i].item() for k, v in transfer.draw_diversity(
          transfer.step_keys(keys, t), SIDE, 0.7, 0.5).items()} for t in range(STEPS)]
      extra = {"len_kernel": 5} if name == "ti" else {}
      attack = cls(model, decay=1.0, resize_rate=0.7, diversity_prob=0.5, **extra, **common)
      attack.input_diversity = _GivenDiversity(steps)
      rows.append(attack(x[i:i + 1], y[i:i + 1]))
    cases[name] = (result, torch.cat(rows))
  for name, (result, expected) in cases.items():
    # Exact up to float rounding: every one of the 3 signed steps agrees with torch's.
    np.testing.assert_allclose(np.asarray(result.adversarial), _nhwc(expected),
                               atol=PIXEL_ATOL, rtol=0, err_msg=name)
  assert len({name: None for name in cases}) == 5


def test_success_and_transfer_rates_match_torchattacks(twins):
  variables, model, target_vars, target, images, labels = twins
  f = am.mlp_apply
  key = jax.random.key(3)
  x, y = _nchw(images), torch.from_numpy(labels.astype(np.int64))
  torch.manual_seed(0)
  eps = 12.0
  common = dict(eps=eps / 255, alpha=3 / 255, steps=5, decay=1.0)
  ours = dict(eps=eps, step_size=3.0, steps=5)
  pairs = {
      "di": (attacks.di_fgsm(f, variables, images, labels, key=key, **ours),
             torchattacks.DIFGSM(model, resize_rate=0.85, diversity_prob=0.7, **common)),
      "ti": (attacks.ti_fgsm(f, variables, images, labels, key=key, **ours),
             torchattacks.TIFGSM(model, resize_rate=0.85, diversity_prob=0.7, **common)),
      "si_ni": (attacks.si_ni_fgsm(f, variables, images, labels, **ours),
                torchattacks.SINIFGSM(model, m=5, **common)),
      "vmi": (attacks.vmi_fgsm(f, variables, images, labels, key=key, samples=5, **ours),
              torchattacks.VMIFGSM(model, N=5, beta=1.5, **common)),
  }
  for name, (result, attack) in pairs.items():
    # torchattacks draws one DI transform per batch: one example per batch keeps examples
    # independent (as ours are), so the binomial bound below holds.
    adv = torch.cat([attack(x[i:i + 1], y[i:i + 1]) for i in range(len(y))]) \
        if name in ("di", "ti") else attack(x, y)
    with torch.no_grad():
      theirs = [(m(adv).argmax(1).numpy() != labels).mean() for m in (model, target)]
    mine = [(np.asarray(am.mlp_apply(v, result.adversarial)).argmax(1) != labels).mean()
            for v in (variables, target_vars)]
    # 96 examples, independent draws: a rate's binomial std is <= 0.051, the difference of two
    # independent rates <= 0.072; 0.2 is about 2.8 sigma.  Deterministic parts are exact above.
    np.testing.assert_allclose(mine, theirs, atol=0.2, err_msg=name)
    # Neither rate is trivially 0 or 1.
    assert 0.1 < mine[0] < 1 and 0.05 < mine[1] < 1, (name, mine)


def test_budget_box_success_flags_and_curves(twins):
  variables, _, _, _, images, labels = twins
  # The shapes and static settings of the torch comparison above, so the compiled attacks are
  # reused; per-example budgets from 0 to 12 /255.
  images, labels = images[:6], labels[:6]
  eps = np.linspace(0, 12, 6).astype(np.float32)
  key = jax.random.key(0)
  f = am.mlp_apply
  common = dict(eps=eps, step_size=STEP, steps=STEPS)
  diverse = dict(key=key, resize_rate=0.7, diversity_prob=0.5, **common)
  for result in (attacks.mi_fgsm(f, variables, images, labels, **common),
                 attacks.di_fgsm(f, variables, images, labels, **diverse),
                 attacks.ti_fgsm(f, variables, images, labels, kernel_length=5, **diverse),
                 attacks.si_ni_fgsm(f, variables, images, labels, scales=3, **common),
                 attacks.vmi_fgsm(f, variables, images, labels, key=key, samples=4, **common)):
    adv = np.asarray(result.adversarial)
    assert adv.min() >= 0 and adv.max() <= 1
    # Float32 rounding of x + delta: within 1e-4 /255 of the budget.
    assert np.all(np.abs(adv - images).reshape(6, -1).max(1) * 255 <= eps + 1e-4)
    predicted = np.asarray(f(variables, adv)).argmax(1)
    np.testing.assert_array_equal(np.asarray(result.success), predicted != labels)
    curve = np.asarray(result.curve)
    assert curve.shape == (STEPS + 1, 6) and not curve[0].any()
    assert np.all(np.diff(curve, axis=0) >= 0) and np.all(curve[-1] >= np.asarray(result.success))


def test_bad_inputs_raise_value_errors(twins):
  variables, _, _, _, images, labels = twins
  f, key = am.mlp_apply, jax.random.key(0)
  with pytest.raises(ValueError, match="resize_rate"):
    attacks.di_fgsm(f, variables, images, labels, key=key, resize_rate=1.1)
  with pytest.raises(ValueError, match="diversity_prob"):
    attacks.ti_fgsm(f, variables, images, labels, key=key, diversity_prob=2.0)
  with pytest.raises(ValueError, match="square"):
    attacks.di_fgsm(f, variables, images[:, :6], labels, key=key)
  with pytest.raises(ValueError, match="PRNG key"):
    attacks.vmi_fgsm(f, variables, images, labels, key=None)
  with pytest.raises(ValueError, match="kernel_length"):
    attacks.ti_fgsm(f, variables, images, labels, key=key, kernel_length=0)
  with pytest.raises(ValueError, match="scales"):
    attacks.si_ni_fgsm(f, variables, images, labels, scales=0)
  with pytest.raises(ValueError, match="float32"):
    attacks.mi_fgsm(f, variables, images.astype(np.float64), labels)
