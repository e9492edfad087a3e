"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), Linf and L2.

A score-based black-box attack: random search over square-shaped updates, accepted when they
lower the loss.  As in the authors' code (fra31/auto-attack ``square.py``):

* start: Linf, vertical stripes x + eps * s with one sign s per column and channel; L2, a grid of
  (h // 5)-sided squares of the eta pattern with random signs per channel, scaled to norm eps;
* iteration i: the fraction of changed pixels p follows ``p_selection`` (p_init halved at
  iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a 10 000-query scale, the
  iteration rescaled to it when ``rescale_schedule``), the window side is
  max(round(sqrt(p h w)), 1) (L2: >= 3 and odd);
  Linf: one window moved to x +- eps (a sign per channel); L2: the mass of a second window moved
  into the first, as the eta pattern, keeping ||delta||_2 = eps;
* the margin loss z_y - max_{j != y} z_j (or CE); a candidate replaces the best point when its
  loss is lower or it is misclassified; an example stops as soon as its margin is <= 0.

Queries, per example: 1 for the start, 1 per iteration while not fooled; ``queries`` is the
total, so at most ``queries - 1`` iterations run (the authors run ``n_queries`` iterations after
the start, one query more).  Draws are per example from its own key (the authors' PyTorch port
shares the window position across the batch; their original numpy code drew per image), so an
example's attack does not depend on its batch.  The batch is scored as a whole until every
example is fooled or the budget is spent (``lax.while_loop``): fooled examples are masked, not
removed, so wall time is that of the slowest example.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.attacks import core, losses
from imagenet_cp.attacks.jit import jit as attack_jit

P_BREAKPOINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # on a 10 000-query scale


def p_selection(iteration: int, p_init: float, queries: int, rescale: bool) -> float:
  """The fraction of pixels changed at ``iteration`` (0 first): p_init / 2^k after the k-th
  breakpoint passed (strictly), the iteration first rescaled to 10 000 queries if asked."""
  it = int(iteration / queries * 10000) if rescale else iteration
  return p_init / 2 ** sum(it > point for point in P_BREAKPOINTS)


def window_side(p: float, height: int, width: int, norm: str) -> int:
  """The square's side for fraction p of the h x w pixels (<= the image's shorter side)."""
  s = int(round(math.sqrt(p * height * width)))
  if norm == "linf":
    s = max(s, 1)
  else:
    s = max(s, 3)
    s += 1 - s % 2  # odd, so the eta pattern has a centre
  return min(s, height, width)


def schedule(n_iter: int, p_init: float, queries: int, rescale: bool, height: int, width: int,
             norm: str) -> list[tuple[int, int, int]]:
  """[(first iteration, end iteration, window side)]: runs of iterations with one side."""
  runs = []
  for i in range(n_iter):
    s = window_side(p_selection(i, p_init, queries, rescale), height, width, norm)
    if runs and runs[-1][2] == s:
      runs[-1] = (runs[-1][0], i + 1, s)
    else:
      runs.append((i, i + 1, s))
  return runs


def _rectangles(rows: int, cols: int) -> np.ndarray:
  """Concentric rectangles with weight 1 / (k + 1)^2 at ring k, unit L2 norm, [rows, cols]."""
  delta = np.zeros((rows, cols))
  r0, c0 = rows // 2, cols // 2
  for k in range(max(rows // 2 + 1, cols // 2 + 1)):
    delta[max(r0 - k, 0):min(r0 - k + 2 * k + 1, rows),
          max(c0 - k, 0):min(c0 - k + 2 * k + 1, cols)] += 1.0 / (k + 1) ** 2
  size = np.sqrt(np.sum(delta ** 2))
  return delta / size if size > 0 else delta


def eta_pattern(s: int) -> np.ndarray:
  """The L2 update of side s: +rectangles on the top half, -rectangles below, unit norm."""
  delta = np.concatenate([_rectangles(s // 2, s), -_rectangles(s - s // 2, s)], axis=0)
  return (delta / np.sqrt(np.sum(delta ** 2))).astype(np.float32)


def _signs(key, shape):
  return jax.random.rademacher(key, shape, dtype=jnp.float32)


def _position(key, limit: int):
  """The authors' random_int(0, limit): uniform in [0, limit), 0 when limit is 0."""
  return jax.random.randint(key, (), 0, jnp.maximum(limit, 1))


def _window(images, top, left, s: int):
  """bool [N, H, W, 1]: the s x s window at (top [N], left [N])."""
  rows = jnp.arange(images.shape[1])[None, :, None, None]
  cols = jnp.arange(images.shape[2])[None, None, :, None]
  top = core.per_example(top, images)
  left = core.per_example(left, images)
  return (rows >= top) & (rows < top + s) & (cols >= left) & (cols < left + s)


def _pattern(keys, s: int):
  """The eta pattern of side s per example, transposed with probability 1/2, [N, s, s]."""
  base = jnp.asarray(eta_pattern(s))
  flip = jax.vmap(lambda k: jax.random.uniform(k) > 0.5)(keys)
  return jnp.where(flip[:, None, None], base.T[None], base[None])


def _l2_delta(delta, s: int, keys, eps):
  """The L2 candidate delta (before the final rescale to eps) [N, H, W, C]."""
  n, h, w, c = delta.shape
  k = jax.vmap(lambda key: jax.random.split(key, 6))(keys)
  top, left = (jax.vmap(lambda key: _position(key, h - s))(k[:, 0]),
               jax.vmap(lambda key: _position(key, w - s))(k[:, 1]))
  top2, left2 = (jax.vmap(lambda key: _position(key, h - s))(k[:, 2]),
                 jax.vmap(lambda key: _position(key, w - s))(k[:, 3]))
  first, second = _window(delta, top, left, s), _window(delta, top2, left2, s)
  total = core.flat_norm(delta, "l2")
  in_windows = core.flat_norm(jnp.where(first | second, delta, 0.0), "l2")
  take = jax.vmap(lambda d, t, l: jax.lax.dynamic_slice(d, (t, l, 0), (s, s, c)))
  old = take(delta, top, left)                                     # [N, s, s, C]
  old = old / (1e-12 + jnp.sqrt(jnp.sum(old ** 2, axis=(1, 2), keepdims=True)))
  signs = jax.vmap(lambda key: _signs(key, (c,)))(k[:, 4])
  new = _pattern(k[:, 5], s)[..., None] * signs[:, None, None, :] + old
  # Per channel: the budget left over plus the mass taken out of both windows.
  room = jnp.maximum(eps ** 2 - total ** 2, 0.0) / c + in_windows ** 2
  new = new / (1e-12 + jnp.sqrt(jnp.sum(new ** 2, axis=(1, 2), keepdims=True)))
  new = new * jnp.sqrt(room)[:, None, None, None]
  cleared = jnp.where(second, 0.0, delta)
  put = jax.vmap(lambda d, v, t, l: jax.lax.dynamic_update_slice(d, v, (t, l, 0)))
  return put(cleared, new, top, left)


def _unit_l2(delta):
  return delta / (core.per_example(core.flat_norm(delta, "l2"), delta) + 1e-12)


def _candidate(x_best, images, eps, keys, s: int, norm: str):
  """One random square update of every example's best point, [N, H, W, C]."""
  e = core.per_example(eps, images)
  if norm == "l2":
    delta = _l2_delta(x_best - images, s, keys, eps)
    return jnp.clip(images + _unit_l2(delta) * e, 0.0, 1.0)
  n, h, w, c = images.shape
  k = jax.vmap(lambda key: jax.random.split(key, 3))(keys)
  top = jax.vmap(lambda key: _position(key, h - s))(k[:, 0])
  left = jax.vmap(lambda key: _position(key, w - s))(k[:, 1])
  signs = jax.vmap(lambda key: _signs(key, (c,)))(k[:, 2])[:, None, None, :]
  moved = x_best + jnp.where(_window(images, top, left, s), 2.0 * e * signs, 0.0)
  return jnp.clip(jnp.clip(moved, images - e, images + e), 0.0, 1.0)


def _start(images, eps, keys, norm: str):
  """The authors' initial point: Linf vertical stripes, L2 the grid of eta squares."""
  n, h, w, c = images.shape
  e = core.per_example(eps, images)
  if norm == "linf":
    stripes = jax.vmap(lambda key: _signs(key, (1, w, c)))(keys)
    return jnp.clip(images + e * stripes, 0.0, 1.0)
  s = h // 5
  offset = (h - 5 * s) // 2
  delta = jnp.zeros_like(images)
  cell = 0
  for top in range(offset, offset + s * (h // s), s):
    for left in range(offset, offset + s * (w // s), s):
      cell_keys = core.fold_keys(keys, cell)
      k = jax.vmap(lambda key: jax.random.split(key, 2))(cell_keys)
      signs = jax.vmap(lambda key: _signs(key, (c,)))(k[:, 0])
      square = _pattern(k[:, 1], s)[..., None] * signs[:, None, None, :]
      # A square that runs past the image is cut there (the authors' slicing).
      rows, cols = min(s, h - top), min(s, w - left)
      if rows > 0 and cols > 0:
        delta = delta.at[:, top:top + rows, left:left + cols].add(square[:, :rows, :cols])
      cell += 1
  return jnp.clip(images + _unit_l2(delta) * e, 0.0, 1.0)


def _margin_and_loss(apply_fn, variables, x, labels, targets, loss):
  """(margin [N]: > 0 while the attack has not succeeded, loss [N] to minimise)."""
  logits = apply_fn(variables, x)
  if targets is None:
    margin = -losses.margin(logits, labels)
    return margin, (margin if loss == "margin" else -losses.cross_entropy(logits, labels))
  margin = losses.margin(logits, targets)
  return margin, (margin if loss == "margin" else losses.cross_entropy(logits, targets))


@attack_jit(static_argnames=("apply_fn", "queries", "norm", "p_init", "loss",
                                             "rescale_schedule"))
def _square(apply_fn, variables, images, labels, targets, eps, keys, *, queries, norm, p_init,
            loss, rescale_schedule):
  n, h, w, _ = images.shape
  score = functools.partial(_margin_and_loss, apply_fn, variables, labels=labels,
                            targets=targets, loss=loss)
  x_best = _start(images, eps, core.fold_keys(keys, 0), norm)
  margin_min, loss_min = score(x_best)
  used = jnp.ones((n,), jnp.int32)

  def run_for(side, end):
    def cond(carry):
      i, _, margin_min, _, _ = carry
      return (i < end) & jnp.any(margin_min > 0)

    def body(carry):
      i, x_best, margin_min, loss_min, used = carry
      active = margin_min > 0
      x_new = _candidate(x_best, images, eps, core.fold_keys(keys, i + 1), side(i), norm)
      margin, value = score(x_new)
      improved = active & (value < loss_min)
      loss_min = jnp.where(improved, value, loss_min)
      accept = improved | (active & (margin <= 0))
      margin_min = jnp.where(accept, margin, margin_min)
      x_best = jnp.where(core.per_example(accept, x_best), x_new, x_best)
      return i + 1, x_best, margin_min, loss_min, used + active.astype(jnp.int32)
    return body, cond

  carry = (jnp.asarray(0), x_best, margin_min, loss_min, used)
  runs = schedule(queries - 1, p_init, queries, rescale_schedule, h, w, norm)
  if norm == "linf":
    # Linf windows are masks, so the side can be traced: one loop for the whole schedule.
    sides = jnp.asarray([s for begin, end, s in runs for _ in range(begin, end)] or [1])
    runs = [(0, queries - 1, lambda i: sides[i])]
  else:
    # L2 cuts the window out with a slice of static size: one loop per side.
    runs = [(begin, end, lambda i, s=s: s) for begin, end, s in runs]
  for _, end, side in runs:
    body, cond = run_for(side, end)
    carry = jax.lax.while_loop(cond, body, carry)
  _, x_best, margin_min, _, used = carry
  success = margin_min <= 0
  # Success after q queries: an example stops at the query that fooled it.
  curve = success[None] & (used[None] <= jnp.arange(1, queries + 1)[:, None])
  return core.AttackResult(x_best, success, curve, used)


def square(apply_fn, variables, images, labels, *, eps, norm="linf", key, queries=5000,
           p_init=0.8, loss="margin", targets=None, rescale_schedule=True):
  """Square Attack within eps (/255, scalar or [N]) in ``norm`` ('linf', 'l2').

  key: one PRNG key or [N] keys (one per example).  queries: the budget per example, the start
  included (never exceeded).  p_init: the initial fraction of pixels changed (0.8, the authors'
  and AutoAttack's).  loss: 'margin' (default) or 'ce'.  rescale_schedule: rescale the p
  schedule's breakpoints from 10 000 to ``queries`` (the authors' SquareAttack default;
  AutoAttack passes False).  targets: int [N] for the targeted attack.

  Returns an ``AttackResult``: ``adversarial`` the best point found (inside the budget and the
  box), ``success`` its margin <= 0, ``queries`` int32 [N] the model evaluations spent on the
  example (1 + iterations it took part in), ``curve`` [queries, N] success after q = 1 ..
  ``queries`` queries.  An example misclassified clean is attacked like any other (usually
  fooled by its start: 1 query); run it on correctly classified examples, as AutoAttack does.
  """
  images, labels, targets, eps01 = core.check_inputs(images, labels, targets, eps)
  core.check_norm(norm, ("linf", "l2"))
  queries = core.check_positive_int(queries, "queries")
  if not 0.0 < p_init <= 1.0:
    raise ValueError(f"p_init must be in (0, 1], got {p_init}")
  if loss not in ("margin", "ce"):
    raise ValueError(f"unknown Square loss {loss!r}; known: margin, ce")
  if norm == "l2" and min(images.shape[1:3]) < 5:
    raise ValueError(f"Square L2's start needs images of side >= 5, got {images.shape[1:3]}")
  keys = core.per_example_keys(key, images.shape[0])
  return _square(apply_fn, variables, images, labels, targets, eps01, keys, queries=queries,
                 norm=norm, p_init=float(p_init), loss=loss,
                 rescale_schedule=bool(rescale_schedule))
