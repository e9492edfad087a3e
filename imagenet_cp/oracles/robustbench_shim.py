"""RobustBench's CIFAR models as a test oracle, without importing ``robustbench`` itself.

``import robustbench`` pulls in timm, autoattack, geotorch, pandas ... (its ``__init__`` and the
model-zoo files import them at module level).  The three architecture files the zoo ports import
only torch, so they are loaded from the installed package by path; the leaderboard entries
(``common_corruptions`` in ``model_zoo/cifar10.py`` / ``cifar100.py``) and the small wrapper
classes they name (``Hendrycks2020AugMixWRNNet`` ...) are read from those files' source with
``ast`` and executed against the architecture classes, so the oracle is RobustBench's own code.
"""
from __future__ import annotations

import ast
import functools
import importlib.util
import pathlib
import re

_ARCHITECTURES = ("wide_resnet", "resnext", "resnet")


def package_dir() -> pathlib.Path:
  """The installed ``robustbench`` package's folder (found without importing it)."""
  spec = importlib.util.find_spec("robustbench")
  if spec is None or not spec.submodule_search_locations:
    raise ModuleNotFoundError("robustbench is not installed (pip install --no-deps robustbench)")
  return pathlib.Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=None)
def architecture(name: str):
  """``robustbench/model_zoo/architectures/<name>.py`` as a private module."""
  path = package_dir() / "model_zoo" / "architectures" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"_robustbench_oracle_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@functools.lru_cache(maxsize=None)
def _zoo_source(dataset: str) -> tuple[str, ast.Module]:
  source = (package_dir() / "model_zoo" / f"{dataset}.py").read_text()
  return source, ast.parse(source)


def corruption_entries(dataset: str) -> dict[str, dict]:
  """RobustBench's ``common_corruptions`` for "cifar10" / "cifar100":
  {name: {"gdrive_id": str or list, "model": the source of its ``'model'`` expression}}."""
  source, tree = _zoo_source(dataset)
  for node in tree.body:
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "common_corruptions":
      out = {}
      for entry in node.value.args[0].elts:
        name, fields = entry.elts
        fields = {k.value: v for k, v in zip(fields.keys, fields.values)}
        out[ast.literal_eval(name)] = {
            "gdrive_id": ast.literal_eval(fields["gdrive_id"]),
            "model": ast.get_source_segment(source, fields["model"])}
      return out
  raise LookupError(f"no common_corruptions in robustbench/model_zoo/{dataset}.py")


def model(dataset: str, name: str):
  """RobustBench's torch model for corruption-leaderboard entry ``name`` (random weights, eval
  mode), built by its own ``'model'`` expression and wrapper class."""
  import torch  # pylint: disable=g-import-not-at-top
  source, tree = _zoo_source(dataset)
  namespace = {"torch": torch, "nn": torch.nn}
  for arch in _ARCHITECTURES:
    namespace.update({k: v for k, v in vars(architecture(arch)).items() if not k.startswith("_")})
  expression = corruption_entries(dataset)[name]["model"]
  classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
  for class_name, node in classes.items():
    if re.search(rf"\b{class_name}\b", expression):
      exec(compile(ast.Module([node], []), f"robustbench/model_zoo/{dataset}.py", "exec"),
           namespace)  # pylint: disable=exec-used
  return eval(expression, namespace)().eval()  # pylint: disable=eval-used
