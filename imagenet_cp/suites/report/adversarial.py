"""The adversarial suite's report: accuracy vs budget / iterations / queries with their areas,
distortion statistics and the transfer matrix (tables, results.csv rows, plots)."""
from __future__ import annotations

import pathlib

import numpy as np

from imagenet_cp.suites.report.common import num, pct, pyplot, save


def csv_rows(results: dict) -> list[dict]:
  """Per attack: success rate and the areas under its curves."""
  rows = []
  for name, a in ((results.get("adversarial") or {}).get("attacks") or {}).items():
    for metric, value in (("success_rate", a["distortion"]["success_rate"]), ("auc", a.get("auc")),
                          ("auc_iterations", a.get("auc_iterations")),
                          ("auc_queries", a.get("auc_queries"))):
      if value is not None:
        rows.append(dict(kind="adversarial", name=name, level=a["norm"], metric=metric,
                         value=value, n=a["examples"]))
  return rows


def section(results: dict) -> list[str]:
  """The "Adversarial robustness" section of report.md (nothing when the suite did not run)."""
  return markdown(results.get("adversarial"))


def markdown(adv: dict | None) -> list[str]:
  """The "Adversarial robustness" section: curves, areas, distortions, transfer matrix."""
  if not adv:
    return []
  lines = ["## Adversarial robustness", "",
           f"Clean accuracy {pct(adv['clean_accuracy'])}%; attacked: the "
           f"{adv['attacked_examples']} examples the model classifies correctly when clean "
           "(ids in results.json `adversarial.example_ids`).  Accuracies below are over those "
           "examples; budgets and distortions in /255 (0..255 pixel units).", "",
           "### Accuracy vs budget (%) and its area (ARES)", "",
           "| attack | norm | " + "budget: accuracy | " + "AUC | success rate |", "|---|---|---|---|---|"]
  budgeted = {n: a for n, a in adv["attacks"].items() if a.get("accuracy_vs_budget") is not None}
  if not budgeted:
    lines = lines[:-4]
  for name, a in budgeted.items():
    curve = ", ".join(f"{b:g}: {pct(acc)}" for b, acc in zip(a["budgets"], a["accuracy_vs_budget"]))
    lines.append(f"| {name} | {a['norm']} | {curve} | {pct(a['auc'])} | "
                 f"{pct(a['distortion']['success_rate'])} |")
  lines += _iterations_table(adv) + _queries_table(adv) + _decision_table(adv)
  lines += ["", "### Distortion of successful adversarials (Adversarial_Survey; mean ± std)", "",
            "| attack | success rate (%) | L0 | L1 | L2 | Linf |", "|---|---|---|---|---|---|"]
  for name, a in adv["attacks"].items():
    d = a["distortion"]
    cells = [f"{num(d[f'{k}_mean'], 1)} ± {num(d[f'{k}_std'], 1)}"
             for k in ("l0", "l1", "l2", "linf")]
    lines.append(f"| {name} | {pct(d['success_rate'])} | " + " | ".join(cells) + " |")
  t = adv.get("transfer")
  if t:
    lines += ["", f"### Transfer matrix (%): {t['attack']} at eps {t['eps']:g}/255, {t['target']} "
                  f"({t['criterion']}), on the {t['examples']} examples every model classifies "
                  "correctly; row = source, column = target", "",
              "| source \\ target | " + " | ".join(t["models"]) + " |",
              "|" + "---|" * (len(t["models"]) + 1)]
    for name, row in zip(t["models"], t["matrix"]):
      lines.append(f"| {name} | " + " | ".join(pct(v) for v in row) + " |")
    lines += _more_transfer_rows(t)
  return lines + [""]


def _more_transfer_rows(t: dict) -> list[str]:
  """The matrix rows of the other transfer attacks (surrogate x attack)."""
  others = {a: m for a, m in (t.get("by_attack") or {}).items() if a != t["attack"]}
  if not others:
    return []
  lines = ["", f"Transfer attacks (%), eps {t['eps']:g}/255, same examples; row = surrogate x "
               "attack, column = target", "",
           "| surrogate | attack | " + " | ".join(t["models"]) + " |",
           "|" + "---|" * (len(t["models"]) + 2)]
  for attack, m in others.items():
    for name, row in zip(t["models"], m["matrix"]):
      lines.append(f"| {name} | {attack} | " + " | ".join(pct(v) for v in row) + " |")
  return lines


def _decision_table(adv: dict) -> list[str]:
  """Decision-based attacks (labels only): median L2 distortion vs queries."""
  rows = {n: a for n, a in adv["attacks"].items() if a.get("median_l2_vs_queries")}
  if not rows:
    return []
  lines = ["", "### Decision-based attacks: median L2 distortion (/255) vs queries", "",
           "| attack | query budget | queries: median L2 |", "|---|---|---|"]
  for n, a in rows.items():
    shown = _shown_points(a["queries"])
    curve = ", ".join(f"{a['queries'][i]}: {num(a['median_l2_vs_queries'][i], 1)}"
                      for i in shown)
    lines.append(f"| {n} | {a['query_budget']} | {curve} |")
  lines += ["", "Accuracy above (queries table) is at the L2 budget shown there: an example "
            "counts as robust after q queries while its best adversarial found with at most q "
            "is farther than the budget (infinitely far before any is found)."]
  return lines


def _strength_budget(adv: dict, a: dict):
  """The fixed budget a strength curve was run at (/255)."""
  return a.get("eps", dict(adv["run"]["config"]["iterations_eps"]).get(a["norm"]))


def _shown_points(x: list, marks=None, most: int = 11) -> list[int]:
  """Indices of a long curve to print: the marks (APGD's checkpoints) if given, else about
  ``most`` evenly spaced points, always the first and the last."""
  if marks is not None:
    return [x.index(m) for m in marks if m in x]
  if len(x) <= most:
    return list(range(len(x)))
  return sorted(set(np.linspace(0, len(x) - 1, most).round().astype(int).tolist()))


def _iterations_table(adv: dict) -> list[str]:
  """Accuracy vs iterations at a fixed budget (PGD/BIM/MIM/FGSM, APGD at its checkpoints)."""
  rows = {n: a for n, a in adv["attacks"].items() if a.get("accuracy_vs_iterations")}
  if not rows:
    return []
  lines = ["", "### Accuracy vs iterations (%) at a fixed budget, and its area", "",
           "| attack | budget | iterations: accuracy | AUC |", "|---|---|---|---|"]
  for n, a in rows.items():
    x = a.get("iterations") or list(range(len(a["accuracy_vs_iterations"])))
    shown = _shown_points(x, a.get("checkpoints"))
    curve = ", ".join(f"{x[i]}: {pct(a['accuracy_vs_iterations'][i])}" for i in shown)
    lines.append(f"| {n} | {_strength_budget(adv, a)} | {curve} | {pct(a.get('auc_iterations'))} |")
  if any(a.get("checkpoints") for a in rows.values()):
    lines += ["", "APGD rows: accuracy at APGD's checkpoints; APGD-T counts the iterations of its "
              "target-class runs one after another."]
  return lines


def _queries_table(adv: dict) -> list[str]:
  """Accuracy vs queries (NES, SPSA) at a fixed budget (ARES's black-box strength curve)."""
  rows = {n: a for n, a in adv["attacks"].items() if a.get("accuracy_vs_queries")}
  if not rows:
    return []
  lines = ["", "### Accuracy vs queries (%) at a fixed budget (score-based black-box)", "",
           "| attack | budget | queries: accuracy | AUC | success rate | median queries of "
           "successes |", "|---|---|---|---|---|---|"]
  for n, a in rows.items():
    shown = _shown_points(a["queries"])
    curve = ", ".join(f"{a['queries'][i]}: {pct(a['accuracy_vs_queries'][i])}" for i in shown)
    lines.append(f"| {n} | {_strength_budget(adv, a)} | {curve} | {pct(a.get('auc_queries'))} | "
                 f"{pct(a['distortion']['success_rate'])} | "
                 f"{num(a['queries_of_successes']['median'], 0)} |")
  rules = [rule for prefixes, rule in _QUERY_RULES if any(n.startswith(prefixes) for n in rows)]
  lines += ["", f"Queries per example: {'; '.join(rules)}; an example stops when fooled, so each "
            "example's fooling query is exact."]
  return lines


# How each query-counted family spends its queries (the footnote names those in the table).
_QUERY_RULES = (
    (("nes_", "spsa_"), "NES / SPSA 1 for the clean image, then 2 x samples + 1 per iteration"),
    (("nattack_",), "NAttack 1 for the clean image, then population + 1 per iteration"),
    (("boundary_", "evolutionary_"), "Boundary / Evolutionary every query from their start "
     "(blended noise) on, 1 per step (Boundary: 2 on its statistics steps)"),
)


def plots(results: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  """The adversarial plots of results.json (none when the suite did not run)."""
  if not results.get("adversarial"):
    return []
  return adversarial_plots(results["adversarial"], directory)


def adversarial_plots(adv: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  """accuracy_vs_budget.png (one panel per norm), accuracy_vs_iterations.png,
  accuracy_vs_queries.png, transfer_matrix.png."""
  plt = pyplot()
  written = []
  # Curves over no attacked example are all None: nothing to draw.
  adv = dict(adv, attacks={n: a for n, a in adv["attacks"].items() if a.get("examples")})
  norms = sorted({a["norm"] for a in adv["attacks"].values() if a.get("accuracy_vs_budget")})
  if norms:
    fig, axes = plt.subplots(1, len(norms), figsize=(5 * len(norms), 4), squeeze=False)
    for ax, norm in zip(axes[0], norms):
      for name, a in adv["attacks"].items():
        if a["norm"] == norm and a.get("accuracy_vs_budget"):
          ax.plot(a["budgets"], [100 * v for v in a["accuracy_vs_budget"]], marker="o",
                  label=f"{name} (AUC {pct(a['auc'])})")
      ax.set_xlabel(f"{norm} budget (/255)")
      ax.set_ylabel("accuracy (%)")
      ax.set_ylim(-2, 102)
      ax.legend(fontsize=7)
    written.append(save(fig, directory / "accuracy_vs_budget.png"))
  for key, x_key, label, log_x in (("accuracy_vs_iterations", "iterations", "iterations", False),
                                   ("accuracy_vs_queries", "queries", "queries", True)):
    curves = {n: a for n, a in adv["attacks"].items() if a.get(key)}
    if not curves:
      continue
    fig, ax = plt.subplots(figsize=(6, 4))
    for n, a in curves.items():
      x = a.get(x_key) or list(range(len(a[key])))
      ax.plot(x, [100 * v for v in a[key]], marker="." if len(x) < 60 else None,
              label=f"{n} at {_strength_budget(adv, a)}/255")
    if log_x:
      ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel(label)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=7)
    written.append(save(fig, directory / f"{key}.png"))
  t = adv.get("transfer")
  if t and t["matrix"]:
    matrix = np.array([[np.nan if v is None else 100 * v for v in row] for row in t["matrix"]])
    size = 2 + 0.8 * len(t["models"])
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, vmin=0, vmax=100, cmap="viridis")
    for (i, j), v in np.ndenumerate(matrix):
      ax.text(j, i, "–" if np.isnan(v) else f"{v:.0f}", ha="center", va="center", color="w")
    ax.set_xticks(np.arange(len(t["models"])), t["models"], rotation=45, ha="right")
    ax.set_yticks(np.arange(len(t["models"])), t["models"])
    ax.set_xlabel("target model")
    ax.set_ylabel("source model")
    fig.colorbar(image, ax=ax, label="success (%)")
    written.append(save(fig, directory / "transfer_matrix.png"))
  return written
