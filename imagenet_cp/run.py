r"""Evaluates a model on ImageNet-C and ImageNet-P and writes results, tables and plots.

  python -m metrics.run                        # the demo: EfficientNet-Lite0/1/2 on packaged photos
  python -m metrics.run --models=resnet50,vgg16 --imagenet_dir=/data/imagenet --output_dir=out/two
  python -m metrics.run --model=resnext101 --imagenet_dir=/data/imagenet --output_dir=out/rx101
  python -m metrics.run --suite=adversarial --model=resnet50 --imagenet_dir=/data/imagenet \
      --max_images=1000 --attacks=pgd_linf,cw_l2 --transfer_models=resnet50,vgg16

  python -m metrics.run --suite=ood --model=resnet50 --tfds_data_dir=~/tensorflow_datasets
  python -m metrics.run --benchmark=cifar10 --cifar_dir=/data/cifar --model=cifar10/Standard
  python -m metrics.run --benchmark=cifar10 --cifar_dir=~/tensorflow_datasets \
      --model=cifar10/Standard   # the test set from a TFDS cifar10 build
  python -m metrics.run --benchmark=cifar10 --tfds_data_dir=/data/tfds --model=cifar10/Standard
  python -m metrics.run --source=released --released_dir=/data/ImageNet-C --model=resnet50 \
      --imagenet_dir=/data/imagenet --image_list=robustbench_5k --perturbations=none

--benchmark=cifar10 / cifar100: CIFAR-10/100-C and -P on the fly from the test set in
--cifar_dir (the corruption suite only; a CIFAR model of the zoo, ``models.names(dataset=...)``,
or your own), reported unnormalised (mean error / accuracy, raw flip probabilities).
--benchmark=tiny_imagenet (--tiny_imagenet_dir) / imagenet64 / imagenet299 (--imagenet_dir): the
same at 64 / 64 / 299 px (``suites.sized``; your own model, or inception_v3 at 299).  With
--tfds_data_dir their -C/-P are read from the builds (<benchmark>_c, <benchmark>_p; the clean
folder then optional); --models works with them as on ImageNet.

--suite: corruption (ImageNet-C/P), adversarial (suites.adversarial: minimal distortions,
accuracy-vs-budget / -iterations / -queries curves, distortion statistics, transfer matrix),
ood (suites.ood: ImageNet-ReaL/-V2/-A/-R/-Sketch built with TFDS) or all; the default (auto)
is corruption + adversarial on the demo photos, corruption on ImageNet.  Every suite runs
with --distributed (examples split over the processes, process 0 writes).

Writes OUTPUT_DIR/results.json, results.csv, report.md and PNG plots; per-task records in
OUTPUT_DIR/tasks/ make a rerun with the same OUTPUT_DIR resume where it stopped.  With --models
(and in the demo, whose default is the three EfficientNet-Lites) each model gets those files in
OUTPUT_DIR/<model>/ and OUTPUT_DIR/report.md compares them (``suites.compare``).

This module only turns flags into one ``SuiteConfig`` per suite (``suites.NAMES``) and runs them
with ``suites.run_suites``; a suite's own flags are read by its entry in ``SUITE_SETTINGS``.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import pathlib
import sys

from absl import app, flags, logging
import jax

import imagenet_cp
from imagenet_cp import sources, suites
from imagenet_cp.models import weights
from imagenet_cp.suites import adversarial, autoattack, compare, inputs, ood, report
from imagenet_cp.suites.common import Model
from imagenet_cp.suites.inputs import UsageError

FLAGS = flags.FLAGS

# What to evaluate, and the settings every suite shares.
flags.DEFINE_string("model", "efficientnet_lite0",
                    "Zoo model name (models.names(); alias resnext101), or 'package.module:function' "
                    "returning (apply_fn, variables) for your own model.")
flags.DEFINE_list("models", None,
                  "Several models (as --model), each evaluated into OUTPUT_DIR/<model>/ with the "
                  "same settings, and OUTPUT_DIR/report.md comparing them.  The demo's default "
                  "(neither --model nor --models, on the demo photos): "
                  + ",".join(compare.DEMO_MODELS) + ".")
flags.DEFINE_bool("gallery", True, "Several models on the demo photos: also write gallery.png and "
                  "the 14 ImageNet-P GIFs of the first photo into OUTPUT_DIR.")
flags.DEFINE_string("checkpoint", None, "Local torchvision .pth for the model (offline weights).")
flags.DEFINE_enum("source", "auto", ["auto", "demo", "imagenet", "released"],
                  "auto: ImageNet if --imagenet_dir is given, else the demo photos; released: "
                  "the released ImageNet-C/P (or CIFAR-C/P) files in --released_dir.")
flags.DEFINE_string("released_dir", None, "With --source=released: the released ImageNet-C "
                    "tree or tars and ImageNet-P MP4 tree (or CIFAR-10/100-C/P .npy files); the "
                    "clean images from --imagenet_dir / --cifar_dir when given.")
flags.DEFINE_string("image_list", None, "ImageNet images to evaluate, in order: robustbench_5k "
                    "(RobustBench's 5,000) or a file of <wnid>/<file> lines.")
flags.DEFINE_enum("preprocessing", "Res256Crop224",
                  ["Res256Crop224", "BicubicRes256Crop224", "Crop288"],
                  "How the clean crops are made (RobustBench's named preprocessings).")
flags.DEFINE_enum("benchmark", "imagenet", ["imagenet", "cifar10", "cifar100", "tiny_imagenet",
                                             "imagenet64", "imagenet299"],
                  "What the corruption suite evaluates: ImageNet-C/P, or CIFAR-10/100-C and -P "
                  "from the test set in --cifar_dir (unnormalised figures, no JPEG stage), "
                  "Tiny-ImageNet-C/-P from --tiny_imagenet_dir, ImageNet 64x64-C/-P or the 299 px "
                  "ImageNet-C from --imagenet_dir (unnormalised figures, JPEG q85 stage).")
flags.DEFINE_string("cifar_dir", None, "Folder with cifar-10-python.tar.gz / "
                    "cifar-100-python.tar.gz (with --benchmark=cifar10 / cifar100), or a TFDS "
                    "data_dir holding a build of TFDS's cifar10 / cifar100 (<name>/<version>/; "
                    "its test split, in id order; recorded in run.json as cifar_tfds).")
flags.DEFINE_string("tiny_imagenet_dir", None, "Folder with tiny-imagenet-200.zip, its extracted "
                    "folder or <wnid>/<file> crops (with --benchmark=tiny_imagenet).")
flags.DEFINE_string("imagenet_dir", None,
                    "Folder with ILSVRC2012_img_val.tar or the extracted validation JPEGs.")
flags.DEFINE_string("output_dir", None, "Results folder (default: out/<model>[_demo]; with "
                    "--models out/<model>+<model>...[_demo]; the demo: out/demo).")
flags.DEFINE_enum("suite", "auto", ["auto", *suites.NAMES, "all"],
                  "What to evaluate: corruption (ImageNet-C/P), adversarial (attacks, curves, "
                  "transfer matrix), ood (TFDS ImageNet-ReaL/-V2/-A/-R/-Sketch) or all; auto = "
                  "corruption + adversarial on the demo photos (with a short attack config), "
                  "corruption on ImageNet.")
flags.DEFINE_integer("batch_size", 32, "Global batch size (split over all local devices).")
flags.DEFINE_integer("seed", 0, "Root seed of the per-example keys (the builders' default is 0).")
flags.DEFINE_integer("max_images", None, "Evaluate only the first N source images.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")

# The corruption suite (ImageNet-C/P).
flags.DEFINE_string("tfds_data_dir", None,
                    "Read corrupted images and frames from datasets built by the TFDS builders in "
                    "this data_dir (imagenet_c/imagenet_p, the _demo twins, or <benchmark>_c / "
                    "<benchmark>_p with another --benchmark) instead of generating them on the "
                    "fly.")
flags.DEFINE_enum("tfds_image_format", "jpeg", ["jpeg", "png", "raw"],
                  "Stored -C variant to read with --tfds_data_dir (the CIFAR builds store one: "
                  "leave it unset there).")
flags.DEFINE_string("corruptions", "all", "all | benchmark | none | comma-separated names.")
flags.DEFINE_list("severities", ["1", "2", "3", "4", "5"], "Severities 1..5.")
flags.DEFINE_string("perturbations", "all", "all | test | none | comma-separated names.")
flags.DEFINE_integer("difficulty", 1, "ImageNet-P difficulty 1..3.")
flags.DEFINE_bool("release_jpeg", True, "Apply the released ImageNet-C's JPEG q85 stage "
                  "(ImageNet only: CIFAR-C has none, and --release_jpeg with a CIFAR benchmark "
                  "is refused).")
flags.DEFINE_string("baseline", "alexnet",
                    "alexnet (the paper's published values) or a results.json of your own AlexNet run.")
flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples for 95% intervals (0: none).")

# The adversarial suite.
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
flags.DEFINE_list("transfer_attacks", None, "More transfer-matrix rows per surrogate, e.g. "
                  "di_fgsm_linf,ti_fgsm_linf,si_ni_fgsm_linf,vmi_fgsm_linf.")
flags.DEFINE_integer("nattack_population", None,
                     "NAttack's samples per iteration (default 100, ARES's; demo 4).")
flags.DEFINE_integer("decision_queries", None,
                     "Query budget of boundary_l2 / evolutionary_l2 (default 1000).")
flags.DEFINE_enum("transfer_target", "untargeted", ["untargeted", "random", "least_likely",
                                                    "second_most_likely"],
                  "Transfer attack goal (targeted: success = target in the top-5).")

# The AutoAttack suite.
flags.DEFINE_float("eps", None, "AutoAttack budget, /255 (default 4 for linf; 127.5 = 0.5 in "
                   "[0, 1] units for l2, AutoAttack's standard budgets).")
flags.DEFINE_string("norm", "linf", "AutoAttack norm: linf or l2.")
flags.DEFINE_string("autoattack_version", "standard", "AutoAttack version: standard, plus or rand "
                    "(custom with --autoattack_attacks).")
flags.DEFINE_list("autoattack_attacks", None, "A custom AutoAttack list, in order, of apgd-ce, "
                  "apgd-dlr, apgd-t, fab, fab-t, square (the authors' defaults for each).")

# The OOD suite.
flags.DEFINE_list("ood_datasets", None, "Datasets of the ood suite (suites.ood.OOD_DATASETS, or "
                  "imagenet_v2/<config>); default: all five.")
flags.DEFINE_string("ood_data_dir", None, "TFDS data_dir holding the built OOD datasets (default: "
                    "--tfds_data_dir, else TFDS's default ~/tensorflow_datasets).")

# Several processes.
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")
flags.DEFINE_bool("debug", False, "Show the traceback of errors the user can act on (a bad flag, "
                  "a missing or corrupt file, a refused output folder) instead of one "
                  "'error: ...' line and exit status 2.")

# Errors that say what the user must change (bad flags and files, refused folders, I/O): one
# line and exit status 2; anything else is a bug and keeps its traceback.
USER_ERRORS = (UsageError, ValueError, OSError)


def user_error(err: BaseException) -> int:
  """Prints ``error: <message>`` and returns exit status 2 (with --debug: re-raises)."""
  if FLAGS.debug:
    raise err
  print(f"error: {err}", file=sys.stderr)
  return 2


def checkpoint_identity(checkpoint) -> dict:
  """The Model fields that record a --checkpoint: its sha256 (compared on resume) and path."""
  if checkpoint is None:
    return {}
  return {"weights": {"checkpoint_sha256": weights.sha256_file(checkpoint)},
          "weights_file": str(pathlib.Path(checkpoint).resolve())}


def _names(value: str, every, subsets: dict) -> list[str]:
  if value in subsets:
    return list(subsets[value])
  names = [v.strip() for v in value.split(",") if v.strip()]
  unknown = [n for n in names if n not in every]
  if unknown:
    raise UsageError(f"unknown name(s) {unknown}; expected some of {', '.join(every)} "
                     f"or one of {', '.join(subsets)}")
  return names


def _numbers(values, name: str, kind=float, what: str = "not numbers") -> tuple:
  try:
    return tuple(kind(v) for v in values)
  except ValueError:
    raise UsageError(f"--{name}: {what}: {values}") from None


# ----------------------------------------------------------------------------------------------
# Flags -> one SuiteConfig per suite.


def shared_settings(source: str) -> dict:
  """The flags every suite may take (each takes those its SuiteConfig has a field for)."""
  return {"source": source, "imagenet_dir": FLAGS.imagenet_dir, "max_images": FLAGS.max_images,
          "batch_size": FLAGS.batch_size, "seed": FLAGS.seed, "progress": FLAGS.progress,
          "image_list": FLAGS.image_list, "preprocessing": FLAGS.preprocessing}


def corruption_settings(source: str) -> dict:
  del source
  return dict(
      corruptions=_names(FLAGS.corruptions, imagenet_cp.CORRUPTIONS, {
          "all": imagenet_cp.CORRUPTIONS, "benchmark": imagenet_cp.BENCHMARK_CORRUPTIONS,
          "none": ()}),
      perturbations=_names(FLAGS.perturbations, imagenet_cp.PERTURBATIONS, {
          "all": imagenet_cp.PERTURBATIONS, "test": imagenet_cp.TEST_PERTURBATIONS, "none": ()}),
      severities=list(_numbers(FLAGS.severities, "severities", int, "not whole numbers")),
      difficulty=FLAGS.difficulty,
      # Unset: the benchmark's own (on for ImageNet, off for CIFAR).
      release_jpeg=FLAGS.release_jpeg if FLAGS["release_jpeg"].present else None,
      benchmark=FLAGS.benchmark, cifar_dir=FLAGS.cifar_dir,
      tiny_imagenet_dir=FLAGS.tiny_imagenet_dir,
      baseline=inputs.load_baseline(FLAGS.baseline), bootstrap=FLAGS.bootstrap,
      tfds_data_dir=FLAGS.tfds_data_dir, tfds_image_format=FLAGS.tfds_image_format,
      released_dir=FLAGS.released_dir)


def adversarial_settings(source: str) -> dict:
  """The attacks, budgets and attack settings (the demo's short ones on the demo photos); the
  transfer models are loaded after the checks (``transfer_models``)."""
  demo = source == "demo"
  config = adversarial.DEMO_CONFIG if demo else adversarial.Config()
  changes = {k: v for k, v in (("steps", FLAGS.attack_steps),
                               ("optimiser_steps", FLAGS.optimiser_steps),
                               ("doubling_steps", FLAGS.search_steps),
                               ("bisection_steps", FLAGS.bisection_steps),
                               ("apgd_iterations", FLAGS.apgd_iterations),
                               ("blackbox_steps", FLAGS.blackbox_steps),
                               ("nattack_population", FLAGS.nattack_population),
                               ("decision_queries", FLAGS.decision_queries),
                               ("transfer_eps", FLAGS.transfer_eps)) if v is not None}
  if FLAGS.transfer_attacks:
    changes["transfer_attacks"] = tuple(FLAGS.transfer_attacks)
  if FLAGS.query_grid is not None:
    changes["query_grid"] = _numbers(FLAGS.query_grid, "query_grid", int,
                                     "not whole numbers of queries")
  budgets = dict(adversarial.DEMO_BUDGETS if demo else adversarial.DEFAULT_BUDGETS)
  for norm in ("linf", "l2", "l1"):
    if FLAGS[f"budgets_{norm}"].value is not None:
      budgets[norm] = _numbers(FLAGS[f"budgets_{norm}"].value, f"budgets_{norm}")
  return dict(attack_names=tuple(FLAGS.attacks or (adversarial.DEMO_ATTACKS if demo else
                                                   adversarial.DEFAULT_ATTACKS)),
              budgets=budgets,
              attack_config=dataclasses.replace(config, transfer_target=FLAGS.transfer_target,
                                                **changes))


def ood_settings(source: str) -> dict:
  del source
  return dict(datasets=tuple(FLAGS.ood_datasets or ood.OOD_DATASETS),
              data_dir=FLAGS.ood_data_dir or FLAGS.tfds_data_dir)


def autoattack_settings(source: str) -> dict:
  """eps, norm, version and attack list, checked here so that a bad value is a usage error."""
  del source
  version = "custom" if FLAGS.autoattack_attacks else FLAGS.autoattack_version
  if FLAGS.autoattack_attacks and FLAGS["autoattack_version"].present:
    raise UsageError("--autoattack_attacks is a custom list: leave out --autoattack_version")
  config = autoattack.SuiteConfig(eps=FLAGS.eps, norm=FLAGS.norm, version=version,
                                  attacks=FLAGS.autoattack_attacks and
                                  tuple(FLAGS.autoattack_attacks))
  try:
    autoattack.check(config)
  except ValueError as err:
    raise UsageError(f"--suite=autoattack: {err}") from None
  return dict(eps=config.eps, norm=config.norm, version=config.version, attacks=config.attacks)


# A suite's own flags: suite name -> settings(source) -> SuiteConfig fields.
SUITE_SETTINGS = {"corruption": corruption_settings, "adversarial": adversarial_settings,
                  "ood": ood_settings, "autoattack": autoattack_settings}


def suite_config(name: str, source: str):
  """The ``SuiteConfig`` of suite ``name`` from the shared flags and its own."""
  config_class = suites.get(name).SuiteConfig
  fields = {f.name for f in dataclasses.fields(config_class)}
  # A suite that cannot select or crop the images must not run on others silently.
  for flag in ("image_list", "preprocessing"):
    if FLAGS[flag].present and flag not in fields:
      raise UsageError(f"--{flag} is not supported by the {name} suite yet: pass --suite with "
                       "the suites that take it (corruption, adversarial)")
  settings = {k: v for k, v in shared_settings(source).items() if k in fields}
  settings.update(SUITE_SETTINGS.get(name, lambda source: {})(source))
  return config_class(**settings)


def transfer_models(model: Model) -> tuple:
  """The --transfer_models as (name, apply_fn, variables), the evaluated model's own reused."""
  out = []
  for spec in FLAGS.transfer_models or ():
    name = inputs.model_name(spec)
    loaded = ((model.apply_fn, model.variables) if name == model.name
              else inputs.load_classifier(name, None))
    out.append((name,) + tuple(loaded))
  return tuple(out)


def selected_suites(suite: str, source: str) -> tuple[str, ...]:
  """The suites a --suite value runs: auto is corruption + adversarial on the demo photos (there
  is no demo OOD data), corruption alone on ImageNet; all is every suite."""
  if suite == "auto":
    return suites.auto(source)
  if suite == "all":
    return suites.NAMES
  return (suite,)


# ----------------------------------------------------------------------------------------------
# The run.


def _init_distributed() -> None:
  kwargs = {k: v for k, v in (("coordinator_address", FLAGS.coordinator_address),
                              ("num_processes", FLAGS.num_processes),
                              ("process_id", FLAGS.process_id)) if v is not None}
  # CPU processes need gloo for their collectives; GPU/TPU backends ignore this setting.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**kwargs)


def _prepare():
  """(model, source, configs): everything checked before the model's weights load and before any
  suite starts, so a missing dataset or a bad flag costs nothing."""
  if FLAGS.distributed:
    _init_distributed()
  name = inputs.model_name(FLAGS.model)
  inputs.check_model_benchmark(name, FLAGS.benchmark)
  if FLAGS.benchmark != "imagenet":
    source = _cifar_source()
  # The OOD suite alone reads only the TFDS datasets: no demo photos, no ImageNet.
  elif FLAGS.source == "released":
    source = "released"
  else:
    source = "tfds" if FLAGS.suite == "ood" else inputs.resolve_source(
        name, FLAGS.source, FLAGS.imagenet_dir, explicit=FLAGS["source"].present)
  configs = {suite: suite_config(suite, source) for suite in selected_suites(FLAGS.suite, source)}
  for suite, config in configs.items():
    suites.get(suite).check(config)
  model = Model(name, *inputs.load_classifier(name, FLAGS.checkpoint),
                **checkpoint_identity(FLAGS.checkpoint))
  if "adversarial" in configs:
    configs["adversarial"] = dataclasses.replace(configs["adversarial"],
                                                 transfer_models=transfer_models(model))
  return model, source, configs


def _cifar_source() -> str:
  """The source of a benchmark of another size (its clean set; its -C/-P on the fly, from
  --tfds_data_dir's builds or, with --source=released, the release); UsageError for flags that
  do not apply."""
  if FLAGS.suite not in ("auto", "corruption"):
    raise UsageError(f"--benchmark={FLAGS.benchmark} runs the corruption suite (-C/-P) only; "
                     f"--suite={FLAGS.suite} is evaluated on ImageNet")
  if FLAGS["source"].present and FLAGS.source not in ("auto", "released"):
    raise UsageError(f"--source={FLAGS.source} with --benchmark={FLAGS.benchmark}: the images are "
                     "the benchmark's own clean set (or the release: --source=released; the "
                     "TFDS builds: --tfds_data_dir)")
  return "released" if FLAGS.source == "released" else FLAGS.benchmark


# ----------------------------------------------------------------------------------------------
# Several models: --models, and the demo.


def several_models() -> list[str] | None:
  """The models of a several-model run: --models (any --benchmark), or the demo's three
  EfficientNet-Lites when neither --model nor --models (nor --checkpoint) is given on the demo
  photos; None for a one-model run."""
  if FLAGS.models is not None:
    if FLAGS["model"].present:
      raise UsageError("--model and --models: give one of them")
    if FLAGS.checkpoint:
      raise UsageError("--checkpoint holds one model's weights: use it with --model")
    return compare.check_names([inputs.model_name(m) for m in FLAGS.models])
  if FLAGS.benchmark != "imagenet":  # no demo at the other sizes
    return None
  on_demo = FLAGS.source == "demo" or (FLAGS.source == "auto" and not FLAGS.imagenet_dir)
  if FLAGS["model"].present or FLAGS.checkpoint or FLAGS.suite == "ood" or not on_demo:
    return None
  return list(compare.DEMO_MODELS)


def _prepare_several(names: list[str]):
  """(models, source, configs_for, notes) of a several-model run, everything checked first."""
  if FLAGS.distributed:
    _init_distributed()
  explicit = FLAGS["source"].present
  if FLAGS.benchmark != "imagenet":
    source = _cifar_source()
    for n in names:
      inputs.check_model_benchmark(n, FLAGS.benchmark)
  elif FLAGS.suite == "ood":
    source = "tfds"
  else:
    for n in names:
      inputs.check_model_benchmark(n, "imagenet")
    source = {inputs.resolve_source(n, FLAGS.source, FLAGS.imagenet_dir, explicit=explicit)
              for n in names}.pop()
  configs = {suite: suite_config(suite, source) for suite in selected_suites(FLAGS.suite, source)}
  notes = []
  if source == "demo":
    photos = len(sources.DEMO_PHOTOS)
    photos = photos if FLAGS.max_images is None else min(photos, FLAGS.max_images)
    given = {name for name in FLAGS if FLAGS[name].present}
    configs, notes = compare.demo_configs(configs, given, photos)
  if FLAGS.benchmark != "imagenet":
    notes.append(f"--benchmark={FLAGS.benchmark} is reported unnormalised (no published "
                 "normaliser): the summary has each model's mean error, mean accuracy and mean "
                 "flip probability; the AlexNet-relative figures (mCE, CE, mFR, FR) stay empty.")
  for suite, config in configs.items():
    suites.get(suite).check(config)
  models = [Model(n, *inputs.load_classifier(n, None)) for n in names]
  first = models[0]
  if "adversarial" in configs and source == "demo":
    notes.append(compare.demo_attack_note(first.name))

  def configs_for(model: Model) -> dict:
    out = dict(configs)
    if "adversarial" not in out:
      return out
    if model is not first and source == "demo":
      del out["adversarial"]
    elif model is first and FLAGS.transfer_models is None:
      out["adversarial"] = dataclasses.replace(
          out["adversarial"], transfer_models=tuple((m.name, m.apply_fn, m.variables)
                                                    for m in models))
    else:
      out["adversarial"] = dataclasses.replace(out["adversarial"],
                                               transfer_models=transfer_models(model))
    return out

  return models, source, configs_for, notes


def main_several(names: list[str]) -> int:
  """Each model into OUTPUT_DIR/<model>/, then OUTPUT_DIR/report.md comparing them (and, on the
  demo photos, the gallery)."""
  try:
    models, source, configs_for, notes = _prepare_several(names)
  except USER_ERRORS as err:
    return user_error(err)
  demo = source == "demo"
  default_dir = ("out/demo" if FLAGS.models is None else
                 "out/" + "+".join(compare.model_dir(".", n).name for n in names)
                 + ("_demo" if demo else ""))
  output_dir = pathlib.Path(FLAGS.output_dir or default_dir)
  if demo:
    print(f"DEMO: {', '.join(names)} on the packaged photos (not ImageNet; not comparable with "
          "the paper).")
  # The gallery is mostly compiles on one core: drawn beside the evaluation, not after it.
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    gallery = (pool.submit(compare.write_gallery, output_dir)
               if demo and FLAGS.gallery and jax.process_index() == 0 else None)
    try:
      results = compare.run_models(models, configs_for, output_dir)
    except USER_ERRORS as err:
      return user_error(err)
    pictures = gallery.result() if gallery else []
  if jax.process_index() != 0:
    return 0
  written = compare.write(output_dir, results, notes=notes, pictures=pictures)
  print(compare.summary(written[0].read_text()))
  print("wrote", *[str(p) for p in written], *[str(compare.model_dir(output_dir, n)) + "/"
                                                for n in results])
  return 0


def main(argv) -> int:
  del argv
  try:
    several = several_models()
  except USER_ERRORS as err:
    return user_error(err)
  if several is not None:
    return main_several(several)
  try:
    model, source, configs = _prepare()
  except USER_ERRORS as err:
    return user_error(err)
  default_dir = f"out/{model.name.replace(':', '_')}{'_demo' if source == 'demo' else ''}"
  output_dir = pathlib.Path(FLAGS.output_dir or default_dir)
  if source == "demo":
    print(f"DEMO: {model.name} on the packaged photos (not ImageNet; not comparable with the "
          "paper).")
  try:
    results = suites.run_suites(model, configs, output_dir)
  except USER_ERRORS as err:
    return user_error(err)
  if jax.process_index() == 0:
    written = report.write_all(results, output_dir, model.name)
    print(report.markdown(results, model.name).split("## Table")[0])
    print("wrote", output_dir / "results.json", *[str(p) for p in written])
  return 0


def guarded_main(argv) -> int:
  """``main``, with a user error that escapes it (e.g. writing the report) as one line."""
  try:
    return main(argv)
  except USER_ERRORS as err:
    return user_error(err)


def run() -> None:
  logging.set_verbosity(logging.WARNING)
  app.run(lambda argv: sys.exit(guarded_main(argv)))


if __name__ == "__main__":
  run()
