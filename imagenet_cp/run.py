r"""Evaluates a model on ImageNet-C and ImageNet-P and writes results, tables and plots.

  python -m metrics.run                        # the demo: efficientnet_lite0 on packaged photos
  python -m metrics.run --model=resnext101 --imagenet_dir=/data/imagenet --output_dir=out/rx101
  python -m metrics.run --suite=adversarial --model=resnet50 --imagenet_dir=/data/imagenet \
      --max_images=1000 --attacks=pgd_linf,cw_l2 --transfer_models=resnet50,vgg16

  python -m metrics.run --suite=ood --model=resnet50 --tfds_data_dir=~/tensorflow_datasets

--suite: corruption (ImageNet-C/P), adversarial (suites.adversarial: minimal distortions,
accuracy-vs-budget / -iterations / -queries curves, distortion statistics, transfer matrix),
ood (suites.ood: ImageNet-ReaL/-V2/-A/-R/-Sketch built with TFDS) or all; the default (auto)
is corruption + adversarial on the demo photos, corruption on ImageNet.  Every suite runs
with --distributed (examples split over the processes, process 0 writes).

Writes OUTPUT_DIR/results.json, results.csv, report.md and PNG plots; per-task records in
OUTPUT_DIR/tasks/ make a rerun with the same OUTPUT_DIR resume where it stopped.
"""
from __future__ import annotations

import json
import pathlib
import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "efficientnet_lite0",
                    "Zoo model name (models.names(); alias resnext101), or 'package.module:function' "
                    "returning (apply_fn, variables) for your own model.")
flags.DEFINE_string("checkpoint", None, "Local torchvision .pth for the model (offline weights).")
flags.DEFINE_enum("source", "auto", ["auto", "demo", "imagenet"],
                  "auto: ImageNet if --imagenet_dir is given, else the demo photos.")
flags.DEFINE_string("imagenet_dir", None,
                    "Folder with ILSVRC2012_img_val.tar or the extracted validation JPEGs.")
flags.DEFINE_string("tfds_data_dir", None,
                    "Read corrupted images and frames from datasets built by the TFDS builders in "
                    "this data_dir (imagenet_c/imagenet_p, or the _demo twins) instead of "
                    "generating them on the fly.")
flags.DEFINE_enum("tfds_image_format", "jpeg", ["jpeg", "png", "raw"],
                  "Stored ImageNet-C variant to read with --tfds_data_dir.")
flags.DEFINE_string("output_dir", None, "Results folder (default: out/<model>[_demo]).")
flags.DEFINE_string("corruptions", "all", "all | benchmark | none | comma-separated names.")
flags.DEFINE_list("severities", ["1", "2", "3", "4", "5"], "Severities 1..5.")
flags.DEFINE_string("perturbations", "all", "all | test | none | comma-separated names.")
flags.DEFINE_integer("difficulty", 1, "ImageNet-P difficulty 1..3.")
flags.DEFINE_integer("batch_size", 32, "Global batch size (split over all local devices).")
flags.DEFINE_integer("seed", 0, "Root seed of the per-example keys (the builders' default is 0).")
flags.DEFINE_bool("release_jpeg", True, "Apply the released ImageNet-C's JPEG q85 stage.")
flags.DEFINE_string("baseline", "alexnet",
                    "alexnet (the paper's published values) or a results.json of your own AlexNet run.")
flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples for 95% intervals (0: none).")
flags.DEFINE_integer("max_images", None, "Evaluate only the first N source images.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_enum("suite", "auto", ["auto", "corruption", "adversarial", "ood", "all"],
                  "What to evaluate: corruption (ImageNet-C/P), adversarial (attacks, curves, "
                  "transfer matrix), ood (TFDS ImageNet-ReaL/-V2/-A/-R/-Sketch) or all; auto = "
                  "corruption + adversarial on the demo photos (with a short attack config), "
                  "corruption on ImageNet.")
flags.DEFINE_list("ood_datasets", None, "Datasets of the ood suite (suites.ood.OOD_DATASETS, or "
                  "imagenet_v2/<config>); default: all five.")
flags.DEFINE_string("ood_data_dir", None, "TFDS data_dir holding the built OOD datasets (default: "
                    "--tfds_data_dir, else TFDS's default ~/tensorflow_datasets).")
flags.DEFINE_list("attacks", None, "Attacks of the adversarial suite (suites.adversarial.ATTACKS; "
                  "default suites.adversarial.DEFAULT_ATTACKS: pgd_linf, cw_l2, deepfool_l2, "
                  "apgd_ce_linf, apgd_t_linf, nes_linf, spsa_linf; the demo: DEMO_ATTACKS).")
flags.DEFINE_list("budgets_linf", None, "Linf budgets (/255) of the accuracy-vs-budget curves.")
flags.DEFINE_list("budgets_l2", None, "L2 budgets (/255) of the accuracy-vs-budget curves.")
flags.DEFINE_list("budgets_l1", None, "L1 budgets (/255) of the accuracy-vs-budget curves.")
flags.DEFINE_integer("attack_steps", None, "Iterations of PGD/BIM/MIM (default 20; demo 3).")
flags.DEFINE_integer("optimiser_steps", None, "C&W / EAD iterations per search step (default 100).")
flags.DEFINE_integer("search_steps", None,
                     "Doubling steps of the minimal-budget search (default 10; demo 6); "
                     "bisections: --bisection_steps.")
flags.DEFINE_integer("bisection_steps", None, "Bisections of the minimal-budget search.")
flags.DEFINE_integer("apgd_iterations", None,
                     "APGD-CE iterations, and APGD-T's per target class (default 100; demo 5).")
flags.DEFINE_integer("blackbox_steps", None, "NES / SPSA iterations (default 100; demo 3).")
flags.DEFINE_list("query_grid", None,
                  "Query counts of the accuracy-vs-queries curves (default: after each iteration).")
flags.DEFINE_list("transfer_models", None,
                  "Models of the transfer matrix (zoo names or module:function); default: the "
                  "evaluated model alone.")
flags.DEFINE_float("transfer_eps", None, "Budget (/255) of the transfer attack (default 4).")
flags.DEFINE_enum("transfer_target", "untargeted", ["untargeted", "random", "least_likely",
                                                    "second_most_likely"],
                  "Transfer attack goal (targeted: success = target in the top-5).")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")

DEMO_MODEL = "efficientnet_lite0"


class UsageError(Exception):
  """What the user must provide; printed without a traceback, exit status 2."""


def _names(value: str, every, subsets: dict) -> list[str]:
  if value in subsets:
    return list(subsets[value])
  names = [v.strip() for v in value.split(",") if v.strip()]
  unknown = [n for n in names if n not in every]
  if unknown:
    raise UsageError(f"unknown name(s) {unknown}; expected some of {', '.join(every)} "
                     f"or one of {', '.join(subsets)}")
  return names


def resolve_source(model: str, source: str, imagenet_dir) -> str:
  if source == "auto":
    source = "imagenet" if imagenet_dir else "demo"
  if (source == "demo" and model != DEMO_MODEL and not is_user_model(model)
      and not FLAGS["source"].present):
    raise UsageError(missing_data_message(model))
  if source == "imagenet":
    from imagenet_cp import sources  # pylint: disable=g-import-not-at-top
    try:
      sources.locate_imagenet_val(imagenet_dir)
    except sources.SourceError as err:
      raise UsageError(f"{err}\n\n{missing_data_message(model)}") from None
  return source


def missing_data_message(model: str) -> str:
  from imagenet_cp.sources import MANUAL_DOWNLOAD_INSTRUCTIONS  # pylint: disable=g-import-not-at-top
  from imagenet_cp import models  # pylint: disable=g-import-not-at-top
  name = models.resolve(model)
  weights = models.spec(name).weights
  return (
      f"--model={model} ({name}) is evaluated on ImageNet; only the demo model "
      f"{DEMO_MODEL} runs offline on the packaged photos. Provide:\n"
      f"1. ImageNet validation images: --imagenet_dir=DIR.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}"
      f"2. The weights: {weights}\n   are downloaded on first use into the cache "
      f"($IMAGENET_CP_CACHE or ~/.cache/imagenet_cp); offline, download that file yourself and "
      f"pass --checkpoint=PATH.\n"
      f"To see the pipeline on the demo photos with this model anyway: --source=demo.")


def load_baseline(value: str):
  from imagenet_cp import metrics  # pylint: disable=g-import-not-at-top
  if value == "alexnet":
    return metrics.ALEXNET
  path = pathlib.Path(value)
  try:
    results = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError) as err:
    raise UsageError(f"--baseline={value}: not a readable results.json ({err})") from None
  return baseline_from_results(results, source=str(path))


def baseline_from_results(results: dict, source: str):
  """A ``metrics.Baseline`` from the results.json of the user's own AlexNet run."""
  from imagenet_cp import metrics  # pylint: disable=g-import-not-at-top
  errors = {(name, int(s)): cell["error"] for name, c in results.get("corruptions", {}).items()
            for s, cell in c["severities"].items()}
  fp = {(name, int(d)): p["flip_probability"]
        for name, levels in results.get("perturbations", {}).items() for d, p in levels.items()}
  ut5d = {(name, int(d)): p["ut5d"] for name, levels in results.get("perturbations", {}).items()
          for d, p in levels.items() if p.get("ut5d") is not None}
  run = results.get("run", {})
  return metrics.Baseline(
      name=f"{run.get('model', 'baseline')} (measured)", errors=errors,
      clean_error=results.get("clean", {}).get("error"), flip_probability=fp, top5_distance=ut5d,
      source=source, note=f"measured on {run.get('source')} ({run.get('images')} images)")


def is_user_model(model: str) -> bool:
  return ":" in model


def load_user_model(spec: str):
  """``package.module:function`` -> function() -> (apply_fn, variables)."""
  import importlib  # pylint: disable=g-import-not-at-top
  module_name, _, attr = spec.partition(":")
  try:
    factory = getattr(importlib.import_module(module_name), attr)
  except (ImportError, AttributeError) as err:
    raise UsageError(f"--model={spec}: cannot import {attr!r} from {module_name!r} ({err})") from None
  return factory()


def load_classifier(model: str, checkpoint):
  from imagenet_cp import models  # pylint: disable=g-import-not-at-top
  if is_user_model(model):
    return load_user_model(model)
  try:
    return models.classifier(model, checkpoint)
  except (OSError, models.CheckpointError) as err:
    raise UsageError(f"cannot load weights for {model}: {err}\n\n{missing_data_message(model)}") from None


def _init_distributed() -> None:
  import jax  # pylint: disable=g-import-not-at-top
  kwargs = {k: v for k, v in (("coordinator_address", FLAGS.coordinator_address),
                              ("num_processes", FLAGS.num_processes),
                              ("process_id", FLAGS.process_id)) if v is not None}
  # CPU processes need gloo for their collectives; GPU/TPU backends ignore this setting.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)


def main(argv) -> int:
  del argv
  import imagenet_cp  # pylint: disable=g-import-not-at-top
  from imagenet_cp import models  # pylint: disable=g-import-not-at-top
  from imagenet_cp.suites import report  # pylint: disable=g-import-not-at-top
  try:
    if FLAGS.distributed:
      _init_distributed()
    model = FLAGS.model if is_user_model(FLAGS.model) else models.resolve(FLAGS.model)
    # The OOD suite alone reads only the TFDS datasets: no demo photos, no ImageNet.
    source = "tfds" if FLAGS.suite == "ood" else resolve_source(model, FLAGS.source,
                                                                 FLAGS.imagenet_dir)
    corruptions = _names(FLAGS.corruptions, imagenet_cp.CORRUPTIONS, {
        "all": imagenet_cp.CORRUPTIONS, "benchmark": imagenet_cp.BENCHMARK_CORRUPTIONS, "none": ()})
    perturbations = _names(FLAGS.perturbations, imagenet_cp.PERTURBATIONS, {
        "all": imagenet_cp.PERTURBATIONS, "test": imagenet_cp.TEST_PERTURBATIONS, "none": ()})
    baseline = load_baseline(FLAGS.baseline)
    suites = selected_suites(FLAGS.suite, source)
    if "ood" in suites:
      check_ood_built()
    apply_fn, variables = load_classifier(model, FLAGS.checkpoint)
  except (UsageError, ValueError) as err:
    print(f"error: {err}", file=sys.stderr)
    return 2
  default_dir = f"out/{model.replace(':', '_')}{'_demo' if source == 'demo' else ''}"
  output_dir = pathlib.Path(FLAGS.output_dir or default_dir)
  if source == "demo":
    print(f"DEMO: {model} on the packaged photos (not ImageNet; not comparable with the paper).")
  results = {}
  if "corruption" in suites:
    results = corruption_suite(apply_fn, variables, model, source, baseline, corruptions,
                               perturbations, output_dir)
  import jax  # pylint: disable=g-import-not-at-top
  for key, runner in EXTRA_SUITES.items():
    if key not in suites:
      continue
    try:
      results[key] = runner(apply_fn, variables, model, source, output_dir)
    except (UsageError, ValueError) as err:
      print(f"error: {err}", file=sys.stderr)
      return 2
    if jax.process_index() == 0:
      add_section(results, key, source, output_dir)
  if jax.process_index() == 0:
    written = report.write_all(results, output_dir, model)
    print(report.markdown(results, model).split("## Table")[0])
    print("wrote", output_dir / "results.json", *[str(p) for p in written])
  return 0


def selected_suites(suite: str, source: str) -> tuple[str, ...]:
  """The suites a --suite value runs: auto is corruption + adversarial on the demo photos (there
  is no demo OOD data), corruption alone on ImageNet; all is every suite."""
  if suite == "auto":
    return ("corruption", "adversarial") if source == "demo" else ("corruption",)
  if suite == "all":
    return ("corruption",) + tuple(EXTRA_SUITES)
  return (suite,)


def add_section(results: dict, key: str, source: str, output_dir: pathlib.Path) -> None:
  """results.json gains a suite's section (the corruption runner, if it ran, wrote the file
  first; without it the section's own run info becomes the file's)."""
  from imagenet_cp.suites import corruption as evaluation  # pylint: disable=g-import-not-at-top
  results.setdefault("run", {k: v for k, v in results[key].get("run", {}).items()
                             if k != "config"})
  results["run"].setdefault("warning", None if source != "demo" else
                            "DEMO on the packaged photos: not ImageNet")
  evaluation._atomic_write_text(  # pylint: disable=protected-access
      output_dir / "results.json", json.dumps(results, indent=2, sort_keys=True,
                                              default=evaluation._json_default))  # pylint: disable=protected-access


def corruption_suite(apply_fn, variables, model, source, baseline, corruptions, perturbations,
                     output_dir) -> dict:
  from imagenet_cp.suites import corruption as evaluation  # pylint: disable=g-import-not-at-top
  return evaluation.evaluate(
      apply_fn, variables, source=source, imagenet_dir=FLAGS.imagenet_dir,
      corruptions=corruptions, severities=[int(s) for s in FLAGS.severities],
      perturbations=perturbations, difficulty=FLAGS.difficulty, batch_size=FLAGS.batch_size,
      seed=FLAGS.seed, release_jpeg=FLAGS.release_jpeg, output_dir=output_dir,
      baseline=baseline, bootstrap=FLAGS.bootstrap, max_images=FLAGS.max_images,
      model_name=model, progress=FLAGS.progress, tfds_data_dir=FLAGS.tfds_data_dir,
      tfds_image_format=FLAGS.tfds_image_format)


def _floats(values, name: str) -> tuple:
  try:
    return tuple(float(v) for v in values)
  except ValueError:
    raise UsageError(f"--{name}: not numbers: {values}") from None


def _query_grid(values) -> tuple:
  try:
    return tuple(int(v) for v in values)
  except ValueError:
    raise UsageError(f"--query_grid: not whole numbers of queries: {values}") from None


def adversarial_suite(apply_fn, variables, model, source, output_dir) -> dict:
  """The adversarial suite with the flags' settings (the demo's short config on the demo)."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from imagenet_cp.suites import adversarial  # pylint: disable=g-import-not-at-top
  demo = source == "demo"
  config = adversarial.DEMO_CONFIG if demo else adversarial.Config()
  changes = {k: v for k, v in (("steps", FLAGS.attack_steps),
                               ("optimiser_steps", FLAGS.optimiser_steps),
                               ("doubling_steps", FLAGS.search_steps),
                               ("bisection_steps", FLAGS.bisection_steps),
                               ("apgd_iterations", FLAGS.apgd_iterations),
                               ("blackbox_steps", FLAGS.blackbox_steps),
                               ("transfer_eps", FLAGS.transfer_eps)) if v is not None}
  if FLAGS.query_grid is not None:
    changes["query_grid"] = _query_grid(FLAGS.query_grid)
  config = dataclasses.replace(config, transfer_target=FLAGS.transfer_target, **changes)
  budgets = dict(adversarial.DEMO_BUDGETS if demo else adversarial.DEFAULT_BUDGETS)
  for norm in ("linf", "l2", "l1"):
    if FLAGS[f"budgets_{norm}"].value is not None:
      budgets[norm] = _floats(FLAGS[f"budgets_{norm}"].value, f"budgets_{norm}")
  transfer = []
  for name in FLAGS.transfer_models or ():
    resolved = name if is_user_model(name) else _resolve(name)
    transfer.append((resolved,) + tuple(apply_fn_variables(resolved, model, apply_fn, variables)))
  names = FLAGS.attacks or (adversarial.DEMO_ATTACKS if demo else adversarial.DEFAULT_ATTACKS)
  print(f"adversarial suite: {', '.join(names)} ({'demo config' if demo else 'full config'})")
  return adversarial.evaluate_adversarial(
      apply_fn, variables, source=source, imagenet_dir=FLAGS.imagenet_dir,
      max_images=FLAGS.max_images, attack_names=names,
      budgets=budgets, config=config, transfer_models=transfer, batch_size=FLAGS.batch_size,
      seed=FLAGS.seed, output_dir=output_dir, model_name=model)


def _resolve(name: str) -> str:
  from imagenet_cp import models  # pylint: disable=g-import-not-at-top
  return models.resolve(name)


def apply_fn_variables(name: str, model: str, apply_fn, variables):
  """The evaluated model's own (apply_fn, variables), or another one loaded."""
  if name == model:
    return apply_fn, variables
  return load_classifier(name, None)


def ood_names() -> tuple[str, ...]:
  from imagenet_cp.suites import ood  # pylint: disable=g-import-not-at-top
  return tuple(FLAGS.ood_datasets or ood.OOD_DATASETS)


def ood_data_dir():
  return FLAGS.ood_data_dir or FLAGS.tfds_data_dir


def check_ood_built() -> None:
  """ValueError unless every OOD dataset is built, before hours go into the other suites; with
  several processes, a dataset missing on any host stops them all (none waits in a collective)."""
  import jax  # pylint: disable=g-import-not-at-top
  from imagenet_cp.suites import distributed, ood  # pylint: disable=g-import-not-at-top
  try:
    ood.built_datasets(ood_names(), ood_data_dir())
    message = None
  except ValueError as err:
    message = str(err)
  if jax.process_count() > 1:
    distributed.raise_together(message)
  elif message:
    raise ValueError(message)


def ood_suite(apply_fn, variables, model, source, output_dir) -> dict:
  """The natural-robustness suite on the TFDS OOD datasets (independent of --source)."""
  del source
  from imagenet_cp.suites import ood  # pylint: disable=g-import-not-at-top
  print(f"ood suite: {', '.join(ood_names())}")
  return ood.evaluate_ood(
      apply_fn, variables, datasets=ood_names(), data_dir=ood_data_dir(),
      batch_size=FLAGS.batch_size, output_dir=output_dir, max_images=FLAGS.max_images,
      model_name=model, progress=FLAGS.progress)


# Suites besides the corruption one: results.json key -> runner(apply_fn, variables, model,
# source, output_dir) -> that section (--suite=KEY runs it alone, --suite=all after the
# corruption suite).
EXTRA_SUITES = {"adversarial": adversarial_suite, "ood": ood_suite}


def run() -> None:
  logging.set_verbosity(logging.WARNING)
  app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
  run()
