r"""Generates ``imagenet_cp/models/torchvision_weights.py`` from torchvision's weight enums.

  python -m imagenet_cp.oracles.torchvision_registry            # rewrites the data module
  python -m imagenet_cp.oracles.torchvision_registry --check    # exit 1 if it is out of date

The zoo reads the generated module (plain data) and never imports torchvision; this script and
the test that compares the committed data with ``records()`` do.  Naming: a model's V1 weights
(the paper's era), or its only/DEFAULT weights where it has no V1, take the bare torchvision name
(``resnet50``, ``vit_h_14``); every other weight appends its tag (``resnet50.v2``,
``vit_b_16.swag_e2e``, ``vit_b_16.swag_linear``, ``vgg16.features``).
"""
from __future__ import annotations

import functools
import math
import pathlib
import re
import sys

from imagenet_cp.oracles.torchvision_shim import import_torchvision

BASE_URL = "https://download.pytorch.org/models/"
OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "models" / "torchvision_weights.py"
# torchvision enum member -> the suffix of its zoo name ("" = the bare model name).
TAGS = {"IMAGENET1K_V1": "v1", "IMAGENET1K_V2": "v2", "IMAGENET1K_SWAG_E2E_V1": "swag_e2e",
        "IMAGENET1K_SWAG_LINEAR_V1": "swag_linear", "IMAGENET1K_FEATURES": "features"}
# ImageClassification's defaults (torchvision/transforms/_presets.py).
_DEFAULTS = {"resize_size": 256, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225),
             "interpolation": "bilinear"}


def records() -> list[dict]:
  """One dict per (model, weight) of ``torchvision.models.list_models(module=torchvision.models)``,
  in list order, each with its zoo name."""
  tv = import_torchvision()
  out = []
  for model in tv.models.list_models(module=tv.models):
    enum = tv.models.get_model_weights(model)
    members = list(enum)
    bare = next((w for w in members if w.name == "IMAGENET1K_V1"), enum.DEFAULT)
    for w in members:
      if w.name not in TAGS:
        raise ValueError(f"{model}: unknown weight {w.name}; add its tag to TAGS")
      preset = w.transforms
      if not (isinstance(preset, functools.partial)
              and preset.func.__name__ == "ImageClassification"):
        raise ValueError(f"{model}.{w.name}: transforms is not an ImageClassification preset")
      kw = dict(_DEFAULTS, **preset.keywords)
      interpolation = getattr(kw["interpolation"], "value", kw["interpolation"])
      metrics = w.meta["_metrics"]["ImageNet-1K"]
      acc1, acc5 = metrics["acc@1"], metrics["acc@5"]
      if not w.url.startswith(BASE_URL):
        raise ValueError(f"{model}.{w.name}: {w.url} is not under {BASE_URL}")
      file = w.url[len(BASE_URL):]
      out.append({
          "name": model if w is bare else f"{model}.{TAGS[w.name]}",
          "model": model,
          "enum": f"{enum.__name__}.{w.name}",
          "file": file,
          "sha256": file.rsplit("-", 1)[1].split(".")[0],
          "resize": int(kw["resize_size"]),
          "crop": int(kw["crop_size"]),
          "interpolation": str(interpolation),
          "mean": tuple(float(v) for v in kw["mean"]),
          "std": tuple(float(v) for v in kw["std"]),
          "acc1": None if math.isnan(acc1) else float(acc1),
          "acc5": None if math.isnan(acc5) else float(acc5),
          "num_params": int(w.meta["num_params"]),
          "min_size": tuple(int(v) for v in w.meta["min_size"]),
          "default": w is enum.DEFAULT,
      })
  return out


WEIGHTS_START = "WEIGHTS: dict[str, TorchvisionWeight] = {w.name: w for w in ("


def _header(version: str) -> str:
  """The generated file's hand-kept head (docstring, ``TorchvisionWeight``), up to WEIGHTS, with
  the torchvision version it is generated from."""
  head = OUTPUT.read_text().split(WEIGHTS_START)[0]
  return re.sub(r'(torchvision |TORCHVISION_VERSION = ")[0-9][^\s"\']*', rf"\g<1>{version}", head,
                count=2)


def _literal(value) -> str:
  if value == _DEFAULTS["mean"]:
    return "_IN_MEAN"
  if value == _DEFAULTS["std"]:
    return "_IN_STD"
  if isinstance(value, str):
    return f'"{value}"'
  return repr(value)


def render() -> str:
  tv = import_torchvision()
  rows = records()
  lines = [_header(tv.__version__.split("+")[0]) + WEIGHTS_START]
  for r in rows:
    groups = [("name", "model", "enum"),
              ("file", "sha256", "resize", "crop", "interpolation", "mean", "std"),
              ("acc1", "acc5", "num_params", "min_size", "default")]
    fields = [", ".join(_literal(r[k]) for k in group) for group in groups]
    lines.append(f"    _W({fields[0]},\n       {fields[1]},\n       {fields[2]}),")
  lines.append(")}")
  models = sorted({r["model"] for r in rows})
  lines.append("# ``torchvision.models.list_models(module=torchvision.models)``")
  lines.append("MODELS = (")
  for i in range(0, len(models), 4):
    lines.append("    " + " ".join(f'"{m}",' for m in models[i:i + 4]))
  lines.append(")")
  return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
  text = render()
  if "--check" in argv:
    if OUTPUT.read_text() != text:
      print(f"{OUTPUT} is out of date; regenerate it", file=sys.stderr)
      return 1
    return 0
  OUTPUT.write_text(text)
  print(f"wrote {OUTPUT}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
