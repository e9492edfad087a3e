"""Reports from ``results.json``: results.csv, report.md (the paper's table layouts) and PNG plots."""
from __future__ import annotations

import csv
import io
import pathlib

import numpy as np

from imagenet_cp.corruptions import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from imagenet_cp.perturbations import TEST_PERTURBATIONS, VALIDATION_PERTURBATIONS
from imagenet_cp.metrics.baselines import ALEXNET

SEVERITIES = ("1", "2", "3", "4", "5")


def _fmt(value, digits: int = 0) -> str:
  return "–" if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
  return "–" if value is None else f"{100 * value:.1f}"


def _ci(results: dict, key: str, scale: float = 1.0, digits: int = 0) -> str:
  ci = results.get("confidence_intervals", {}).get(key)
  if not ci:
    return ""
  return f" [{ci['low'] * scale:.{digits}f}, {ci['high'] * scale:.{digits}f}]"


def csv_rows(results: dict) -> list[dict]:
  """One row per figure: kind, name, level, metric, value, n (images or videos behind it)."""
  rows = []
  if "clean" in results:
    rows.append(dict(kind="clean", name="clean", level="", metric="error",
                     value=results["clean"]["error"], n=results["clean"]["examples"]))
  for name, c in results.get("corruptions", {}).items():
    for s, cell in c["severities"].items():
      rows.append(dict(kind="corruption", name=name, level=s, metric="error", value=cell["error"],
                       n=cell["examples"]))
    for metric in ("ce", "relative_ce", "unnormalized_ce"):
      if c.get(metric) is not None:
        rows.append(dict(kind="corruption", name=name, level="", metric=metric, value=c[metric],
                         n=c["examples"]))
  for name, levels in results.get("perturbations", {}).items():
    for d, p in levels.items():
      for metric in ("flip_probability", "fr", "ut5d", "t5d"):
        if p.get(metric) is not None:
          rows.append(dict(kind="perturbation", name=name, level=d, metric=metric,
                           value=p[metric], n=p["videos"]))
  for metric in ("mce", "relative_mce", "extra_mce"):
    if results.get(metric) is not None:
      rows.append(dict(kind="summary", name=metric, level="", metric=metric,
                       value=results[metric], n=results.get("clean", {}).get("examples", "")))
  for metric in ("mfr", "mt5d"):
    for d, value in (results.get(metric) or {}).items():
      if value is not None:
        rows.append(dict(kind="summary", name=metric, level=d, metric=metric, value=value, n=""))
  for name, a in ((results.get("adversarial") or {}).get("attacks") or {}).items():
    for metric, value in (("success_rate", a["distortion"]["success_rate"]), ("auc", a.get("auc")),
                          ("auc_iterations", a.get("auc_iterations")),
                          ("auc_queries", a.get("auc_queries"))):
      if value is not None:
        rows.append(dict(kind="adversarial", name=name, level=a["norm"], metric=metric,
                         value=value, n=a["examples"]))
  for name, d in ((results.get("ood") or {}).get("datasets") or {}).items():
    rows.append(dict(kind="ood", name=name, level=d["label_space"], metric="accuracy",
                     value=d["accuracy"], n=d.get("real_images", d["images"])))
    if "original" in d:
      rows.append(dict(kind="ood", name=name, level="original labels", metric="accuracy",
                       value=d["original"]["accuracy"], n=d["images"]))
  return rows


def write_csv(results: dict, path: pathlib.Path) -> None:
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=["kind", "name", "level", "metric", "value", "n"])
  writer.writeheader()
  writer.writerows(csv_rows(results))
  path.write_text(buf.getvalue())


def _title(name: str) -> str:
  return name.replace("_", " ").title().replace("Jpeg", "JPEG")


def _corruption_table(results: dict, key: str, names) -> list[str]:
  corr = results.get("corruptions", {})
  present = [n for n in names if n in corr]
  if not present:
    return []
  header = "| | " + " | ".join(_title(n) for n in present) + " |"
  row = "| " + key + " | " + " | ".join(_fmt(corr[n].get(key)) for n in present) + " |"
  return [header, "|" + "---|" * (len(present) + 1), row]


def _perturbation_table(results: dict, key: str, raw_key: str, names, digits: int) -> list[str]:
  pert = results.get("perturbations", {})
  levels = sorted({d for n in names for d in pert.get(n, {})})
  present = [n for n in names if n in pert]
  if not present:
    return []
  lines = ["| difficulty | " + " | ".join(_title(n) for n in present) + " |",
           "|" + "---|" * (len(present) + 1)]
  for d in levels:
    cells = []
    for n in present:
      p = pert[n].get(d, {})
      raw = p.get(raw_key)
      norm = p.get(key)
      cells.append(f"{_fmt(norm)} ({_fmt(raw, 4 if raw_key == 'flip_probability' else 3)})"
                   if raw is not None else "–")
    lines.append(f"| {d} | " + " | ".join(cells) + " |")
  return lines


def markdown(results: dict, model: str) -> str:
  """report.md: Table 1 (CE), Table 2 (relative CE), Tables 3 and 4 (FR, T5D) layouts."""
  run = results.get("run", {})
  lines = [f"# Robustness report: {model}", ""]
  if run.get("warning"):
    lines += [f"> **{run['warning']}**", ""]
  lines += [f"Source: {run.get('source')} ({run.get('images')} images); seed {run.get('seed')}; "
            f"release JPEG q85 stage: {'on' if run.get('release_jpeg') else 'off'}; "
            f"jax {run.get('jax')}, imagenet_cp {run.get('imagenet_cp')}; "
            f"{run.get('tasks_done')}/{run.get('tasks_planned')} tasks.", ""]
  if "clean" not in results:
    return "\n".join(lines + suite_sections(results))
  baseline = results.get("baseline", {})
  lines += [f"Normalised by {baseline.get('name')} = 100 ({baseline.get('source')}).", ""]
  lines += ["## Headline", "", "| figure | value | 95% CI (bootstrap over images) |", "|---|---|---|"]
  if "clean" in results:
    lines.append(f"| clean error (%) | {_pct(results['clean']['error'])} | "
                 f"{_ci(results, 'clean_error', 100, 1)} |")
  for key, label in (("mce", "mCE (%)"), ("relative_mce", "relative mCE (%)"),
                     ("extra_mce", "mean CE of the 4 extra corruptions (%)")):
    if results.get(key) is not None:
      lines.append(f"| {label} | {_fmt(results[key], 1)} | {_ci(results, key, 1, 1)} |")
  for key, label in (("mfr", "mFR (%)"), ("mt5d", "mT5D (%)")):
    for d, value in (results.get(key) or {}).items():
      if value is not None:
        lines.append(f"| {label}, difficulty {d} | {_fmt(value, 1)} | "
                     f"{_ci(results, f'{key}/{d}', 1, 1)} |")
  lines.append("")
  for title, key, names in (
      ("Table 1: Corruption Error (CE, %)", "ce", BENCHMARK_CORRUPTIONS),
      ("Table 2: Relative Corruption Error (%)", "relative_ce", BENCHMARK_CORRUPTIONS),
      ("Extra corruptions: CE (%), not part of mCE", "ce", EXTRA_CORRUPTIONS)):
    table = _corruption_table(results, key, names)
    if table:
      lines += [f"## {title}", ""] + table + [""]
  for title, key, raw, names in (
      ("Table 3: Flip Rate FR (%) (raw flip probability)", "fr", "flip_probability", TEST_PERTURBATIONS),
      ("Table 4: Top-5 Distance T5D (%) (raw uT5D)", "t5d", "ut5d", TEST_PERTURBATIONS),
      ("Validation sequences: FR (%) (raw flip probability)", "fr", "flip_probability",
       VALIDATION_PERTURBATIONS)):
    table = _perturbation_table(results, key, raw, names, 0)
    if table:
      lines += [f"## {title}", ""] + table + [""]
  if results.get("perturbations"):
    lines += [f"FR and T5D use {ALEXNET.name}'s appendix-E values, measured on the released lossy "
              "H.264 videos (difficulty 1 only); our frames are lossless.", ""]
  lines += ["Errors per corruption and severity are in results.csv; every figure lists the "
            "number of images (or videos) behind it in results.json.", ""]
  return "\n".join(lines + suite_sections(results))


def suite_sections(results: dict) -> list[str]:
  """report.md's sections of the adversarial and OOD suites (those that ran)."""
  lines = adversarial_markdown(results.get("adversarial"))
  if results.get("ood"):
    from imagenet_cp.suites import ood  # pylint: disable=g-import-not-at-top
    corruption = results if "clean" in results else None
    lines += ["", ood.markdown(results["ood"], corruption)]
  return lines


def _num(value, digits: int = 2) -> str:
  return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def adversarial_markdown(adv: dict | None) -> list[str]:
  """The "Adversarial robustness" section: curves, areas, distortions, transfer matrix."""
  if not adv:
    return []
  lines = ["## Adversarial robustness", "",
           f"Clean accuracy {_pct(adv['clean_accuracy'])}%; attacked: the "
           f"{adv['attacked_examples']} examples the model classifies correctly when clean "
           "(ids in results.json `adversarial.example_ids`).  Accuracies below are over those "
           "examples; budgets and distortions in /255 (0..255 pixel units).", "",
           "### Accuracy vs budget (%) and its area (ARES)", "",
           "| attack | norm | " + "budget: accuracy | " + "AUC | success rate |", "|---|---|---|---|---|"]
  budgeted = {n: a for n, a in adv["attacks"].items() if a.get("accuracy_vs_budget") is not None}
  if not budgeted:
    lines = lines[:-4]
  for name, a in budgeted.items():
    curve = ", ".join(f"{b:g}: {_pct(acc)}" for b, acc in zip(a["budgets"], a["accuracy_vs_budget"]))
    lines.append(f"| {name} | {a['norm']} | {curve} | {_pct(a['auc'])} | "
                 f"{_pct(a['distortion']['success_rate'])} |")
  lines += _iterations_table(adv) + _queries_table(adv)
  lines += ["", "### Distortion of successful adversarials (Adversarial_Survey; mean ± std)", "",
            "| attack | success rate (%) | L0 | L1 | L2 | Linf |", "|---|---|---|---|---|---|"]
  for name, a in adv["attacks"].items():
    d = a["distortion"]
    cells = [f"{_num(d[f'{k}_mean'], 1)} ± {_num(d[f'{k}_std'], 1)}" for k in ("l0", "l1", "l2", "linf")]
    lines.append(f"| {name} | {_pct(d['success_rate'])} | " + " | ".join(cells) + " |")
  t = adv.get("transfer")
  if t:
    lines += ["", f"### Transfer matrix (%): {t['attack']} at eps {t['eps']:g}/255, {t['target']} "
                  f"({t['criterion']}), on the {t['examples']} examples every model classifies "
                  "correctly; row = source, column = target", "",
              "| source \\ target | " + " | ".join(t["models"]) + " |",
              "|" + "---|" * (len(t["models"]) + 1)]
    for name, row in zip(t["models"], t["matrix"]):
      lines.append(f"| {name} | " + " | ".join(_pct(v) for v in row) + " |")
  return lines + [""]


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
    curve = ", ".join(f"{x[i]}: {_pct(a['accuracy_vs_iterations'][i])}" for i in shown)
    lines.append(f"| {n} | {_strength_budget(adv, a)} | {curve} | {_pct(a.get('auc_iterations'))} |")
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
    curve = ", ".join(f"{a['queries'][i]}: {_pct(a['accuracy_vs_queries'][i])}" for i in shown)
    lines.append(f"| {n} | {_strength_budget(adv, a)} | {curve} | {_pct(a.get('auc_queries'))} | "
                 f"{_pct(a['distortion']['success_rate'])} | "
                 f"{_num(a['queries_of_successes']['median'], 0)} |")
  lines += ["", "Queries per example: 1 for the clean image, then 2 x samples + 1 per iteration; "
            "an example stops when fooled, so each example's fooling query is exact."]
  return lines


def plots(results: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  """PNG plots: CE per corruption vs AlexNet, error vs severity, flip probability per sequence."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  written = []
  corr = results.get("corruptions", {})
  names = [n for n in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS if corr.get(n, {}).get("ce") is not None]
  if names:
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(np.arange(len(names)), [corr[n]["ce"] for n in names], color="tab:blue", label="model")
    ax.axhline(100, color="k", ls="--", lw=1, label="AlexNet = 100")
    ax.set_xticks(np.arange(len(names)), [_title(n) for n in names], rotation=60, ha="right")
    ax.set_ylabel("Corruption Error (%)")
    ax.legend()
    written.append(_save(fig, directory / "ce_per_corruption.png"))
  if corr:
    fig, ax = plt.subplots(figsize=(7, 5))
    for n, c in corr.items():
      sev = sorted(c["severities"], key=int)
      ax.plot([int(s) for s in sev], [100 * c["severities"][s]["error"] for s in sev], marker="o",
              label=_title(n), ls="-" if c.get("benchmark") else ":")
    if "clean" in results:
      ax.axhline(100 * results["clean"]["error"], color="k", lw=1, label="clean")
    ax.set_xticks([1, 2, 3, 4, 5])
    ax.set_xlabel("severity")
    ax.set_ylabel("top-1 error (%)")
    ax.legend(fontsize=6, ncol=2)
    written.append(_save(fig, directory / "error_vs_severity.png"))
  pert = results.get("perturbations", {})
  if pert:
    fig, ax = plt.subplots(figsize=(9, 4))
    labels, values = [], []
    for n in TEST_PERTURBATIONS + VALIDATION_PERTURBATIONS:
      for d, p in sorted(pert.get(n, {}).items()):
        labels.append(f"{_title(n)} (d{d})")
        values.append(100 * p["flip_probability"])
    ax.bar(np.arange(len(values)), values, color="tab:orange")
    ax.set_xticks(np.arange(len(values)), labels, rotation=60, ha="right")
    ax.set_ylabel("flip probability (%)")
    written.append(_save(fig, directory / "flip_probability.png"))
  if results.get("adversarial"):
    written += adversarial_plots(results["adversarial"], directory)
  if results.get("ood"):
    from imagenet_cp.suites import ood  # pylint: disable=g-import-not-at-top
    written += ood.plot(results["ood"], directory)
  return written


def adversarial_plots(adv: dict, directory: pathlib.Path) -> list[pathlib.Path]:
  """accuracy_vs_budget.png (one panel per norm), accuracy_vs_iterations.png,
  accuracy_vs_queries.png, transfer_matrix.png."""
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
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
                  label=f"{name} (AUC {_pct(a['auc'])})")
      ax.set_xlabel(f"{norm} budget (/255)")
      ax.set_ylabel("accuracy (%)")
      ax.set_ylim(-2, 102)
      ax.legend(fontsize=7)
    written.append(_save(fig, directory / "accuracy_vs_budget.png"))
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
    written.append(_save(fig, directory / f"{key}.png"))
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
    written.append(_save(fig, directory / "transfer_matrix.png"))
  return written


def _save(fig, path: pathlib.Path) -> pathlib.Path:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  plt.close(fig)
  return path


def write_all(results: dict, directory, model: str) -> list[pathlib.Path]:
  """results.csv, report.md and the plots into ``directory`` (results.json is the caller's)."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  write_csv(results, directory / "results.csv")
  (directory / "report.md").write_text(markdown(results, model))
  return [directory / "results.csv", directory / "report.md"] + plots(results, directory)
