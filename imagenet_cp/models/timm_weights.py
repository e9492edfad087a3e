"""timm architectures of ARES-Bench and RobustBench that the zoo ports (plain data + builders).

Copied by hand from timm 1.0.31's ``pretrained_cfg`` of each model's default weights (mean/std,
``crop_pct``, interpolation, input size, Hugging Face hub id, original URL);
``tests/test_models_timm.py`` checks every field against the installed timm.  Zoo names are
``timm/<timm model name>``; ``models.load(name, checkpoint=path)`` reads a local ``.safetensors``
(the hub's ``model.safetensors``) or ``.pth`` holding timm's state-dict keys.  The zoo downloads
none of them (the hub publishes no digest to pin): fetching the hub file is not run here.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

from imagenet_cp.models import timm_convnext, timm_swin, timm_vit, timm_xcit

TIMM_VERSION = "1.0.31"
HF_FILE_URL = "https://huggingface.co/{}/resolve/main/model.safetensors"
IMAGENET_DEFAULT = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # timm's IMAGENET_INCEPTION_MEAN / _STD


@dataclasses.dataclass(frozen=True)
class TimmWeight:
  model: str               # timm's model name
  hf_hub_id: str           # pretrained_cfg.hf_hub_id: "timm/<model>.<tag>"
  build: Callable          # the Flax module's constructor
  crop_pct: float
  norm: tuple = IMAGENET_DEFAULT  # (mean, std) in [0, 1] units
  url: str = ""            # pretrained_cfg.url: the original release, where timm names one
  interpolation: str = "bicubic"
  input_size: int = 224

  @property
  def name(self) -> str:
    return f"timm/{self.model}"

  @property
  def hf_url(self) -> str:
    """The hub's ``model.safetensors``; "" for a name timm lacks (``NOT_IN_TIMM``: no weights)."""
    return HF_FILE_URL.format(self.hf_hub_id) if self.hf_hub_id else ""

  @property
  def resize(self) -> int:
    """timm's eval resize: floor(input_size / crop_pct) (``transforms_factory``)."""
    return math.floor(self.input_size / self.crop_pct)


_DEIT = "https://dl.fbaipublicfiles.com/deit/"
_CONVNEXT = "https://dl.fbaipublicfiles.com/convnext/"
_AUGREG = "https://storage.googleapis.com/vit_models/augreg/"
_SWIN = "https://github.com/SwinTransformer/storage/releases/download/"
_XCIT = "https://dl.fbaipublicfiles.com/xcit/"


def _swin(size: str, build: Callable, release: str) -> TimmWeight:
  """timm's ``swin_<size>_patch4_window7_224`` with its ImageNet-22k -> 1k fine-tune."""
  model = f"swin_{size}_patch4_window7_224"
  return TimmWeight(model, f"timm/{model}.ms_in22k_ft_in1k", build, 0.9, url=_SWIN + release)


def _xcit(model: str, build: Callable) -> TimmWeight:
  """timm's ``xcit_<size>_<depth>_p16_224`` with FB's ImageNet-1k weights (``fb_in1k``); the
  ``NOT_IN_TIMM`` names have xcit's bare ``_cfg()``: no hub file, no url."""
  if model in NOT_IN_TIMM:
    return TimmWeight(model, "", build, 1.0)
  return TimmWeight(model, f"timm/{model}.fb_in1k", build, 1.0, url=f"{_XCIT}{model}.pth")


# ARES-Bench's and RobustBench's own registrations of timm's ``Xcit`` class (Debenedetti et
# al.'s robust XCiT-M12/L12; timm 1.0.31 has no such name): name -> (the timm model of the same
# class, the hyper-parameters that differ), for the tests' timm oracle.
NOT_IN_TIMM = {
    "xcit_medium_12_p16_224": ("xcit_small_12_p16_224", {"embed_dim": 512}),
    "xcit_large_12_p16_224": ("xcit_small_12_p16_224", {"embed_dim": 768, "num_heads": 16}),
}



def timm_class_args(model: str) -> tuple[str, dict]:
  """(timm model name, hyper-parameter overrides) that build ``model`` with timm (oracles)."""
  return NOT_IN_TIMM.get(model, (model, {}))

WEIGHTS = {w.name: w for w in [
    TimmWeight("vit_small_patch16_224", "timm/vit_small_patch16_224.augreg_in21k_ft_in1k",
               timm_vit.ViT_S_16, 0.9, INCEPTION,
               _AUGREG + "S_16-i21k-300ep-lr_0.001-aug_light1-wd_0.03-do_0.0-sd_0.0--"
               "imagenet2012-steps_20k-lr_0.03-res_224.npz"),
    TimmWeight("vit_base_patch16_224", "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
               timm_vit.ViT_B_16, 0.9, INCEPTION),
    TimmWeight("vit_large_patch16_224", "timm/vit_large_patch16_224.augreg_in21k_ft_in1k",
               timm_vit.ViT_L_16, 0.9, INCEPTION,
               _AUGREG + "L_16-i21k-300ep-lr_0.001-aug_medium1-wd_0.1-do_0.1-sd_0.1--"
               "imagenet2012-steps_20k-lr_0.01-res_224.npz"),
    TimmWeight("deit_small_patch16_224", "timm/deit_small_patch16_224.fb_in1k",
               timm_vit.ViT_S_16, 0.9, url=_DEIT + "deit_small_patch16_224-cd65a155.pth"),
    TimmWeight("deit_base_patch16_224", "timm/deit_base_patch16_224.fb_in1k",
               timm_vit.ViT_B_16, 0.9, url=_DEIT + "deit_base_patch16_224-b5f2ef4d.pth"),
    TimmWeight("convnext_small", "timm/convnext_small.in12k_ft_in1k",
               timm_convnext.ConvNeXtSmall, 0.95),
    TimmWeight("convnext_base", "timm/convnext_base.fb_in22k_ft_in1k",
               timm_convnext.ConvNeXtBase, 0.875, url=_CONVNEXT + "convnext_base_22k_1k_224.pth"),
    TimmWeight("convnext_large", "timm/convnext_large.fb_in22k_ft_in1k",
               timm_convnext.ConvNeXtLarge, 0.875,
               url=_CONVNEXT + "convnext_large_22k_1k_224.pth"),
    _swin("small", timm_swin.Swin_S, "v1.0.8/swin_small_patch4_window7_224_22kto1k_finetune.pth"),
    _swin("base", timm_swin.Swin_B, "v1.0.0/swin_base_patch4_window7_224_22kto1k.pth"),
    _swin("large", timm_swin.Swin_L, "v1.0.0/swin_large_patch4_window7_224_22kto1k.pth"),
    _xcit("xcit_small_12_p16_224", timm_xcit.XCiT_S12),
    _xcit("xcit_medium_12_p16_224", timm_xcit.XCiT_M12),
    _xcit("xcit_large_12_p16_224", timm_xcit.XCiT_L12),
    _xcit("xcit_small_24_p16_224", timm_xcit.XCiT_S24),
    _xcit("xcit_medium_24_p16_224", timm_xcit.XCiT_M24),
    _xcit("xcit_large_24_p16_224", timm_xcit.XCiT_L24),
]}
# ARES-Bench / RobustBench timm architectures without a Flax port here -> why.
NOT_PORTED = {
    "t2t_vit_*": "T2T-ViT: not in timm 1.0 (ARES ships its own code); not ported",
}
