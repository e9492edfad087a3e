"""ARES-Bench's 55 ImageNet models (plain data): zoo names ``ares/<ARES name>``.

Copied by hand from ARES 2.0 (thu-ml/ares at 306e35f, 2023-09-26): ``ares/model/
imagenet_model_zoo.py`` (model function, mean/std, ``act_gelu``, checkpoint file) and
``ares/model/imagenet_cls.py`` (how a model is built and loaded).  What ARES does, and so what
the zoo reproduces:

- Its own files (``ARES_*.pth`` at ``BASE_URL``) are bare state dicts, loaded with a strict
  ``load_state_dict`` into the bare model: no wrapper, no key prefix.  ARES publishes no
  digest: the sha256 is recorded at the first download (``weights.ares_file``).
- Input: ``NormalizeByChannelMeanStd(mean, std)`` on [0, 1] pixels inside the model (``norm``),
  after ``classification/run_attack.py``'s Resize(floor(224 / 0.875) = 256, bilinear) and
  CenterCrop(224), for every model.
- Models: timm 0.9.7's (ARES's pin; their state-dict keys equal timm 1.0.31's for every
  architecture here) through ``create_model``; ``act_gelu`` passes ``act_layer=nn.GELU`` to
  timm's ResNet (every ReLU, stem and blocks); ``*_rl`` are ARES's own ResNet copy
  (``ares/model/resnet.py``: torchvision's layout and math); ``vit_base_patch16`` /
  ``vit_large_patch16`` are MAE's ``VisionTransformer`` (``ares/model/vit_mae.py``: mean of the
  patch tokens -> ``fc_norm``; under timm >= 0.6 its ``forward_head`` applies ``fc_norm`` once
  more, and ARES's logits are those: ``mae``).
- ``pretrained: True`` entries take timm's hub weights of ``create_model(pretrained=True)``
  under timm 0.9.7 (``hub_id``, its default tag).  Where that is torchvision's IMAGENET1K_V1
  file (``tv_in1k``), ``same_as`` names the zoo's torchvision weight and that pinned file is
  downloaded; the others follow the ``timm/`` names' rule (local ``checkpoint=`` only: the hub
  publishes no digest).

``architecture`` is a zoo name (an entry loads once the zoo registers it: ``models.
ARES_UNPORTED`` says why not); ``custom:`` names an architecture that no zoo file ports.
"""
from __future__ import annotations

import dataclasses

from imagenet_cp.models import layers, timm_weights

ARES_COMMIT = "306e35fe4309d791f9252bb6aab51198d2b9b511"
TIMM_VERSION = "0.9.7"  # ARES's requirements.txt
# ``imagenet_model_zoo.get_url``; read at download time (a mirror or a test server may replace it).
BASE_URL = "https://ml.cs.tsinghua.edu.cn/~xiaoyang/aresbench/ckpt-imagenet/"
DEFAULT = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # timm's IMAGENET_DEFAULT_MEAN / _STD
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))           # IMAGENET_INCEPTION_MEAN / _STD
ZERO_ONE = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))            # MEAN_ZERO / STA_ONE: [0, 1] pixels in
# run_attack.py's defaults: --input_size 224 --crop_pct 0.875 --interpolation bilinear.
RESIZE, CROP, INTERPOLATION = 256, 224, "bilinear"
# Architectures no zoo file ports -> why.
NOT_PORTED = {
    "custom:resnet152_fd": "feature-denoising ResNet-152 (ares/model/resnet_denoise.py: "
                           "non-local denoising blocks after each stage, TF-style 'SAME' "
                           "padding, stride on the 1x1 conv): not ported",
    "custom:t2t_vit": "T2T-ViT (ares/model/t2t/: tokens-to-token soft split with Performer "
                      "attention): ARES's own code, not in timm; not ported",
}


@dataclasses.dataclass(frozen=True)
class AresWeight:
  key: str                # ARES-Bench's name (``imagenet_model_zoo`` key): "resnet50_at"
  model: str              # its ``model``: the timm (0.9.7) or ARES model function
  architecture: str       # the zoo's architecture name, or "custom:..." (``NOT_PORTED``)
  norm: tuple = DEFAULT   # ARES's (mean, std) on [0, 1] pixels
  file: str = ""          # ARES's checkpoint (``pt``); "" for timm's pretrained weights
  hub_id: str = ""        # timm 0.9.7's pretrained weights (``pretrained: True``)
  same_as: str = ""       # the zoo's name of the very same weights (torchvision's file)
  act_gelu: bool = False  # ARES's ``act_gelu``: GELU for every ReLU of timm's ResNet
  mae: bool = False       # MAE's VisionTransformer: average pool, ``fc_norm`` twice
  note: str = ""

  @property
  def name(self) -> str:
    return f"ares/{self.key}"

  @property
  def url(self) -> str:
    """ARES's file, else the hub file of ``hub_id`` (torchvision's for ``same_as``: the zoo's)."""
    if self.file:
      return BASE_URL + self.file
    return timm_weights.HF_FILE_URL.format(self.hub_id) if self.hub_id else ""

  @property
  def local_only(self) -> bool:
    """timm's hub weights that the zoo does not download (no digest to pin)."""
    return not self.file and not self.same_as

  @property
  def options(self) -> dict:
    """The architecture's options that ARES's model needs (``functools.partial`` of its build)."""
    if self.act_gelu:
      return {"activation": layers.gelu}
    if self.mae:
      return {"global_pool": "avg", "fc_norm": True, "fc_norm_twice": True}
    return {}


def _a(key, model, architecture, norm=DEFAULT, file="", **kw) -> AresWeight:
  return AresWeight(key, model, architecture, norm, file, **kw)


def _tv(key, model, zoo_name, hub_id, **kw) -> AresWeight:
  """A ``pretrained`` entry whose timm weights are torchvision's IMAGENET1K_V1 file."""
  return AresWeight(key, model, zoo_name, hub_id=hub_id, same_as=zoo_name, **kw)


def _hub(key, model, architecture, hub_id, norm=DEFAULT) -> AresWeight:
  """A ``pretrained`` entry with timm's own weights (local checkpoint only)."""
  return AresWeight(key, model, architecture, norm, hub_id=hub_id)


_RL = "ARES's own ResNet copy: torchvision's layout"
_MAE = "MAE's head: mean of the patch tokens, fc_norm applied twice (as ARES runs it)"
_VGG = "timm's layout of torchvision's file (vgg.from_timm reads it)"
_SWIN_S, _SWIN_B = "timm/swin_small_patch4_window7_224", "timm/swin_base_patch4_window7_224"
_SWIN_L = "timm/swin_large_patch4_window7_224"
_VIT_S, _VIT_B = "timm/vit_small_patch16_224", "timm/vit_base_patch16_224"
_VIT_L = "timm/vit_large_patch16_224"
_T2T = "custom:t2t_vit"

WEIGHTS = {w.name: w for w in [
    _tv("resnet50_normal", "tv_resnet50", "resnet50", "timm/resnet50.tv_in1k"),
    _a("resnet50_moco", "tv_resnet50", "resnet50", file="ARES_ResNet50_MOCO.pth"),
    _a("resnet50_at", "resnet50", "resnet50", file="ARES_ResNet50_AT.pth"),
    _a("resnet50_sota1", "resnet50_rl", "resnet50", file="ARES_ResNet50_RB1.pth", note=_RL),
    _a("resnet50_sota2", "resnet50_rl", "resnet50", file="ARES_ResNet50_RB2.pth", note=_RL),
    _tv("resnet101_normal", "tv_resnet101", "resnet101", "timm/resnet101.tv_in1k"),
    _a("resnet101_at", "resnet101", "resnet101", file="ARES_ResNet101_AT.pth"),
    _tv("resnet152_normal", "tv_resnet152", "resnet152", "timm/resnet152.tv_in1k"),
    _a("resnet152_at", "resnet152", "resnet152", file="ARES_ResNet152_AT.pth", act_gelu=True),
    _a("resnet152_fd", "resnet152_fd", "custom:resnet152_fd", ZERO_ONE, "ARES_ResNet152_FD.pth"),
    _hub("wresnet50_normal", "wide_resnet50_2", "wide_resnet50_2",
         "timm/wide_resnet50_2.racm_in1k"),
    _a("wresnet50_at", "wide_resnet50_2", "wide_resnet50_2", file="ARES_Wide_ResNet50_2_AT.pth",
       act_gelu=True),
    _a("wresnet50_sota", "wide_resnet50_2_rl", "wide_resnet50_2",
       file="ARES_Wide_ResNet50_2_RB.pth", note=_RL),
    _tv("vgg13_normal", "vgg13", "vgg13", "timm/vgg13.tv_in1k", note=_VGG),
    _tv("vgg16_normal", "vgg16", "vgg16", "timm/vgg16.tv_in1k", note=_VGG),
    _tv("vgg19_normal", "vgg19", "vgg19", "timm/vgg19.tv_in1k", note=_VGG),
    # timm 0.9.7 has no ``tv_densenet121`` (ARES's entry fails there); older timm's was
    # torchvision's file, as ``densenet121.tv_in1k`` is.
    _tv("densenet121_normal", "tv_densenet121", "densenet121", "timm/densenet121.tv_in1k",
        note="timm 0.9.7 lacks tv_densenet121: ARES's own entry fails to build there"),
    _tv("densenet161_normal", "densenet161", "densenet161", "timm/densenet161.tv_in1k"),
    _tv("densenet201_normal", "densenet201", "densenet201", "timm/densenet201.tv_in1k"),
    _hub("convs_normal", "convnext_small", "timm/convnext_small",
         "timm/convnext_small.in12k_ft_in1k"),
    _hub("convs_21k", "convnext_small_in22ft1k", "timm/convnext_small",
         "timm/convnext_small.fb_in22k_ft_in1k"),
    _hub("convb_normal", "convnext_base", "timm/convnext_base",
         "timm/convnext_base.fb_in22k_ft_in1k"),
    _hub("convb_21k", "convnext_base_in22ft1k", "timm/convnext_base",
         "timm/convnext_base.fb_in22k_ft_in1k"),
    _hub("convl_normal", "convnext_large", "timm/convnext_large",
         "timm/convnext_large.fb_in22k_ft_in1k"),
    _hub("convl_21k", "convnext_large_in22ft1k", "timm/convnext_large",
         "timm/convnext_large.fb_in22k_ft_in1k"),
    _hub("swins_normal", _SWIN_S[5:], _SWIN_S, f"{_SWIN_S}.ms_in22k_ft_in1k"),
    _a("swins_21k", _SWIN_S[5:], _SWIN_S, file="ARES_Swin_small_patch4_window7_224_21K.pth"),
    _a("swins_at", _SWIN_S[5:], _SWIN_S, file="ARES_Swin_small_patch4_window7_224_AT.pth"),
    _a("swinb_normal", _SWIN_B[5:], _SWIN_B, file="ARES_Swin_base_patch4_window7_224_Normal.pth"),
    _hub("swinb_21k", _SWIN_B[5:], _SWIN_B, f"{_SWIN_B}.ms_in22k_ft_in1k"),
    _a("swinb_at", _SWIN_B[5:], _SWIN_B, file="ARES_Swin_base_patch4_window7_224_AT.pth"),
    _hub("swinl_21k", _SWIN_L[5:], _SWIN_L, f"{_SWIN_L}.ms_in22k_ft_in1k"),
    _a("swinl_at", _SWIN_L[5:], _SWIN_L, file="ARES_Swin_large_patch4_window7_224_AT.pth"),
    _a("vits_normal", _VIT_S[5:], _VIT_S, INCEPTION, "ARES_ViT_small_patch16_224_Normal.pth"),
    _hub("vits_21k", _VIT_S[5:], _VIT_S, f"{_VIT_S}.augreg_in21k_ft_in1k", INCEPTION),
    _a("vits_at", _VIT_S[5:], _VIT_S, file="ARES_ViT_small_patch16_224_AT.pth"),
    _a("vitb_normal", _VIT_B[5:], _VIT_B, INCEPTION, "ARES_ViT_base_patch16_224_Normal.pth"),
    _hub("vitb_21k", _VIT_B[5:], _VIT_B, f"{_VIT_B}.augreg2_in21k_ft_in1k", INCEPTION),
    _a("vitb_at", _VIT_B[5:], _VIT_B, file="ARES_ViT_base_patch16_224_AT.pth"),
    _a("vitb_mae", "vit_base_patch16", _VIT_B, file="ARES_ViT_base_patch16_224_MAE.pth",
       mae=True, note=_MAE),
    _a("vitl_normal", _VIT_L[5:], _VIT_L, INCEPTION, "ARES_ViT_large_patch16_224_Normal.pth"),
    _hub("vitl_21k", _VIT_L[5:], _VIT_L, f"{_VIT_L}.augreg_in21k_ft_in1k", INCEPTION),
    _a("vitl_mae", "vit_large_patch16", _VIT_L, file="ARES_ViT_large_patch16_224_MAE.pth",
       mae=True, note=_MAE),
    _a("t2t14_normal", "t2t_vit_t_14", _T2T, file="ARES_T2T_ViT_14_Normal.pth"),
    _a("t2t19_normal", "t2t_vit_t_19", _T2T, file="ARES_T2T_ViT_19_Normal.pth"),
    _a("t2t24_normal", "t2t_vit_t_24", _T2T, file="ARES_T2T_ViT_24_Normal.pth"),
    _hub("xcits_normal", "xcit_small_24_p16_224", "timm/xcit_small_24_p16_224",
         "timm/xcit_small_24_p16_224.fb_in1k"),
    _a("xcits_sota", "xcit_small_12_p16_224", "timm/xcit_small_12_p16_224", ZERO_ONE,
       "ARES_XciT_small_12_p16_224_RB.pth"),
    _hub("xcitm_normal", "xcit_medium_24_p16_224", "timm/xcit_medium_24_p16_224",
         "timm/xcit_medium_24_p16_224.fb_in1k"),
    _a("xcitm_sota", "xcit_medium_12_p16_224", "timm/xcit_medium_12_p16_224", ZERO_ONE,
       "ARES_XciT_medium_12_p16_224_RB.pth"),
    _hub("xcitl_normal", "xcit_large_24_p16_224", "timm/xcit_large_24_p16_224",
         "timm/xcit_large_24_p16_224.fb_in1k"),
    _a("xcitl_sota", "xcit_large_12_p16_224", "timm/xcit_large_12_p16_224", ZERO_ONE,
       "ARES_XciT_large_12_p16_224_RB.pth"),
    _a("convnexts_at", "convnext_small", "timm/convnext_small", file="ARES_ConvNext_Small_AT.pth"),
    _a("convnextb_at", "convnext_base", "timm/convnext_base", file="ARES_ConvNext_Base_AT.pth"),
    _a("convnextl_at", "convnext_large", "timm/convnext_large", file="ARES_ConvNext_Large_AT.pth"),
]}
