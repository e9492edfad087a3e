"""RobustBench's CIFAR-10/100 and ImageNet leaderboard models that the zoo knows (plain data).

Copied by hand from RobustBench 1.1.1 (``robustbench/model_zoo/cifar10.py`` and ``cifar100.py``,
``common_corruptions``: Google Drive ids; ``model_info/<dataset>/corruptions/<name>.json``:
architecture label, clean and corruption accuracy in %); ``tests/test_models_cifar.py`` checks
the ids and architectures against the installed ``robustbench`` package's source.

Zoo names are ``<dataset>/<RobustBench name>`` (``cifar10/Standard``,
``cifar100/Hendrycks2020AugMix_WRN``); the bare RobustBench name is an alias of the CIFAR-10 model
(RobustBench's own default dataset).  RobustBench keeps each file as
``<model_dir>/<dataset>/<threat model>/<name>.pt`` and publishes no digest for it.

ImageNet (``IMAGENET``, also in ``WEIGHTS`` as ``imagenet/<name>``): every entry of RobustBench's
ImageNet ``linf`` and ``common_corruptions`` zoos (``model_zoo/imagenet.py`` at GitHub master
78fcc9e, a superset of 1.1.1's; clean / AutoAttack / corruption accuracy from ``model_info/
imagenet``).  ``architecture`` is a zoo name: an entry loads once the zoo registers that name
(torchvision's ``resnet50`` ...; ``timm/<timm model name>``, e.g.
``timm/swin_base_patch4_window7_224``, as the timm ports register them); ``custom:`` names an
architecture that no zoo file ports.
"""
from __future__ import annotations

import dataclasses

ROBUSTBENCH_VERSION = "1.1.1"
# gdown's form of a Google Drive file id, how RobustBench downloads (``gdown.download(id=)``).
GDRIVE_URL = "https://drive.google.com/uc?id={}"
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # Kireev2021EffectivenessNet's mu / sigma
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # the AugMix wrappers' mu / sigma
IMAGENET_NORM = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # normalize_model's mu / sigma
RELEASES = "https://github.com/RobustBench/robustbench/releases/download/"
# RobustBench's preprocessing name -> (resize, crop, interpolation) of its ImageNet evaluation;
# Crop288 crops the un-resized photo, recorded as resize = crop.
PREPROCESSING = {"Res256Crop224": (256, 224, "bilinear"), "Crop288": (288, 288, "bilinear"),
                 "BicubicRes256Crop224": (256, 224, "bicubic"), "Res224": (224, 224, "bilinear")}


@dataclasses.dataclass(frozen=True)
class RobustBenchWeight:
  dataset: str            # "cifar10" | "cifar100" | "imagenet"
  model: str              # RobustBench's name
  gdrive_id: str
  architecture: str       # "wrn-28-10", "wrn-40-2", "wrn-34-10", "resnext-29-4x32d",
                          # "resnet-18", "preact-resnet-18"
  norm: object            # in-model normalisation: None, (mean, std) or "checkpoint" (mu/sigma)
  clean_acc: float        # model_info's clean accuracy, %
  corruptions_acc: float | None  # model_info's CIFAR-10/100-C (ImageNet-C) accuracy, %
  label: str = ""         # model_info's architecture label where it differs from the code
  ignore: tuple[str, ...] = ()     # keys of the file that the forward pass never reads
  wrapper: str | None = None       # the file's top-level key holding the state dict
  threat_models: tuple[str, ...] = ("corruptions",)  # RobustBench's leaderboards holding it
  preprocessing: str = ""          # RobustBench's ImageNet preprocessing (``PREPROCESSING``)
  autoattack_acc: float | None = None  # model_info's Linf 4/255 AutoAttack accuracy, %
  source_url: str = ""             # the file's URL where it is no Google Drive id
  same_as: str = ""                # the zoo's name of the very same weights (torchvision's)

  @property
  def name(self) -> str:
    return f"{self.dataset}/{self.model}"

  @property
  def num_classes(self) -> int:
    return {"cifar10": 10, "cifar100": 100, "imagenet": 1000}[self.dataset]

  @property
  def threat_model(self) -> str:
    """The folder RobustBench keeps the file in (its first leaderboard)."""
    return self.threat_models[0]

  @property
  def url(self) -> str:
    return self.source_url or GDRIVE_URL.format(self.gdrive_id)


def _w(dataset, model, gdrive_id, architecture, norm, clean, corr, **kw) -> RobustBenchWeight:
  return RobustBenchWeight(dataset, model, gdrive_id, architecture, norm, clean, corr, **kw)


_KIREEV = dict(architecture="preact-resnet-18", norm=(CIFAR10_MEAN, CIFAR10_STD), wrapper="last")
_ADDEPALLI_WRN34 = dict(architecture="wrn-34-10", norm=None, ignore=("sub_block1.",))

WEIGHTS = {w.name: w for w in [
    _w("cifar10", "Standard", "1t98aEuzeTL8P7Kpd5DIrCoCL21BNZUhC", "wrn-28-10", None, 94.78, 73.46),
    _w("cifar10", "Hendrycks2020AugMix_WRN", "1wy7gSRsUZzCzj8QhmTbcnwmES_2kkNph", "wrn-40-2",
       HALF, 95.08, 88.82),
    _w("cifar10", "Hendrycks2020AugMix_ResNeXt", "1uGP3nZbL3LC160kOsxwkkt6tDd4qbZT1",
       "resnext-29-4x32d", HALF, 95.83, 89.09, label="ResNeXt29_32x4d"),
    _w("cifar10", "Modas2021PRIMEResNet18", "13oDyqi16FeXy5j4Vm6IghnjTVqp_XF5U", "resnet-18",
       "checkpoint", 93.06, 89.05),
    _w("cifar10", "Addepalli2021Towards_WRN34", "1-3vgjTNfSq7LSMKuayEQ-jLflAP196dB",
       clean=85.32, corr=76.78, **_ADDEPALLI_WRN34),
    _w("cifar10", "Addepalli2022Efficient_WRN_34_10", "1--dVDtZhAk4D2zMtTDwIGnImuCGxTcBA",
       "wrn-34-10", None, 88.71, 80.12),
    _w("cifar10", "Kireev2021Effectiveness_Gauss50percent", "1zR6lwYLkO3TFSgeqvu_CMYTq_IS-eicQ",
       clean=93.24, corr=85.04, **_KIREEV),
    _w("cifar10", "Kireev2021Effectiveness_AugMixNoJSD", "1p_1v1Oa-FSrjHTAq63QX4WtLYETkcbdH",
       clean=94.97, corr=86.60, **_KIREEV),
    _w("cifar10", "Kireev2021Effectiveness_RLAT", "16bCDA_5Rhr6qMKHRAO5W-4nu9_10kFyF",
       clean=93.10, corr=84.10, **_KIREEV),
    _w("cifar10", "Kireev2021Effectiveness_RLATAugMixNoJSD", "1hgJuvLPSVQMbUczn8qnIphONlJePsWgU",
       clean=94.77, corr=88.53, **_KIREEV),
    _w("cifar10", "Kireev2021Effectiveness_RLATAugMix", "19HNTdqJiuNyqFqIarPejniJEjZ3RQ_nj",
       clean=94.75, corr=89.60, label="ResNet-18", **_KIREEV),
    _w("cifar100", "Hendrycks2020AugMix_WRN", "1XpFFdCdU9LcDtcyNfo6_BV1RZHKKkBVE", "wrn-40-2",
       HALF, 76.28, 64.11),
    _w("cifar100", "Hendrycks2020AugMix_ResNeXt", "1ocnHbvDdOBLvgNr6K7vEYL08hUdkD1Rv",
       "resnext-29-4x32d", HALF, 78.90, 65.14, label="ResNeXt29_32x4d"),
    _w("cifar100", "Modas2021PRIMEResNet18", "1kcohb2tBuJHa5pGSi4nAkvK-hXPSI6Hr", "resnet-18",
       "checkpoint", 77.60, 68.28),
    _w("cifar100", "Addepalli2021Towards_PARN18", "1-FwVya1sDvdFXr0_ZBoXEJW9ukGC7hPK",
       "preact-resnet-18", None, 62.02, 51.77),
    _w("cifar100", "Addepalli2021Towards_WRN34", "1-9GAld_105-jWBLXL73btmfOCwAqvz7Y",
       clean=65.73, corr=54.88, **_ADDEPALLI_WRN34),
    _w("cifar100", "Addepalli2022Efficient_WRN_34_10", "1-3c-iniqNfiwGoGPHC3nSostnG6J9fDt",
       "wrn-34-10", None, 68.75, 56.95),
]}


def _i(model, threats, architecture, preprocessing, clean, gdrive_id="", *, corr=None, aa=None,
       norm=IMAGENET_NORM, **kw) -> RobustBenchWeight:
  return RobustBenchWeight(
      "imagenet", model, gdrive_id, architecture, norm, clean, corr, threat_models=threats,
      preprocessing=preprocessing, autoattack_acc=aa, **kw)


_LINF, _CORR, _BOTH = ("Linf",), ("corruptions",), ("Linf", "corruptions")
_R256, _BIC = "Res256Crop224", "BicubicRes256Crop224"
_SWIN_B = "timm/swin_base_patch4_window7_224"
_SWIN_L = "timm/swin_large_patch4_window7_224"

IMAGENET = [
    _i("Standard_R50", _BOTH, "resnet50", _R256, 76.52, corr=39.48, aa=0.0, same_as="resnet50",
       source_url="https://download.pytorch.org/models/resnet50-0676ba61.pth"),
    _i("Wong2020Fast", _LINF, "resnet50", "Crop288", 55.62, "1deM2ZNS5tf3S_-eRURJi-IlvUL8WJQ_w",
       aa=26.24),
    _i("Engstrom2019Robustness", _LINF, "resnet50", _R256, 62.56,
       "1T2Fvi1eCJTeAOEzrH_4TAIwO8HTOYVyn", aa=29.22),
    _i("Salman2020Do_R50", _LINF, "resnet50", _R256, 64.02, "1TmT5oGa1UvVjM3d-XeSj_XmKqBNRUg8r",
       aa=34.96),
    _i("Salman2020Do_R18", _LINF, "resnet18", _R256, 52.92, "1OThCOQCOxY6lAgxZxgiK3YuZDD7PPfPx",
       aa=25.32),
    _i("Salman2020Do_50_2", _LINF, "wide_resnet50_2", _R256, 68.46,
       "1OT7xaQYljrTr3vGbM37xK9SPoPJvbSKB", aa=38.14),
    # resnet50(width_per_group=128) is wide_resnet50_2; RobustBench adds no normalize_model.
    _i("Chen2024Data_WRN_50_2", _LINF, "wide_resnet50_2", _R256, 68.76,
       "1-PBlZVILAKFQ7mF8srKjdkTKJZAr61Uf", aa=40.60, norm=None),
    _i("Salman2020Do_50_2_Linf", _CORR, "wide_resnet50_2", _R256, 68.64,
       "1OT7xaQYljrTr3vGbM37xK9SPoPJvbSKB", corr=36.09),
    _i("Erichson2022NoisyMix", _CORR, "resnet50", _R256, 76.98,
       "1wFsiB5h4Fgv6HqOkI_1jR1SZOB_eNK9r", corr=52.47),
    _i("Erichson2022NoisyMix_new", _CORR, "resnet50", _R256, 76.9,
       "1Na79fzPZ0Azg01h6kGn1Xu5NoWOElSuG", corr=53.28),
    _i("Geirhos2018_SIN", _CORR, "resnet50", _R256, 60.08, "1hLgeY_rQIaOT4R-t_KyOqPNkczfaedgs",
       corr=39.92),
    _i("Geirhos2018_SIN_IN", _CORR, "resnet50", _R256, 74.98,
       "139pWopDnNERObZeLsXUysRcLg6N1iZHK", corr=45.76),
    _i("Geirhos2018_SIN_IN_IN", _CORR, "resnet50", _R256, 77.56,
       "1xOvyuxpOZ8I5CZOi0EGYG_R6tu3ZaJdO", corr=42.0),
    _i("Hendrycks2020Many", _CORR, "resnet50", _R256, 76.86, "1kylueoLtYtxkpVzoOA1B6tqdbRl2xt9X",
       corr=52.9),
    _i("Hendrycks2020AugMix", _CORR, "resnet50", _R256, 77.34,
       "1xRMj1GlO93tLoCMm0e5wEvZwqhIjxhoJ", corr=49.33),
    _i("AlexNet", _CORR, "alexnet", _R256, 56.24, corr=21.12, same_as="alexnet",
       source_url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    # timm architectures (the timm ports' names) and custom ones, listed for completeness.
    _i("Tian2022Deeper_DeiT-S", _CORR, "timm/deit_small_patch16_224", _R256, 79.76, corr=62.91,
       source_url=RELEASES + "v1.1.1-test/tian2022deeper-deit-s.pth"),
    _i("Tian2022Deeper_DeiT-B", _CORR, "timm/deit_base_patch16_224", _R256, 81.38, corr=67.55,
       source_url=RELEASES + "v1.1.1-test/tian2022deeper-deit-b.pth"),
    _i("Debenedetti2022Light_XCiT-S12", _LINF, "timm/xcit_small_12_p16_224", _R256, 72.34,
       aa=41.78,
       source_url=RELEASES + "v1.1/debenedetti2022light-xcit-s-imagenet-linf.pth.tar"),
    _i("Debenedetti2022Light_XCiT-M12", _LINF, "timm/xcit_medium_12_p16_224", _R256, 74.04,
       aa=45.24,
       source_url=RELEASES + "v1.1/debenedetti2022light-xcit-m-imagenet-linf.pth.tar"),
    _i("Debenedetti2022Light_XCiT-L12", _LINF, "timm/xcit_large_12_p16_224", _R256, 73.76,
       aa=47.60,
       source_url=RELEASES + "v1.1/debenedetti2022light-xcit-l-imagenet-linf.pth.tar"),
    _i("Liu2023Comprehensive_ConvNeXt-B", _LINF, "timm/convnext_base", _BIC, 76.02,
       "10-nSm-qUftvfKXHeOAakBQl8rxm-jCbk", aa=55.82),
    _i("Liu2023Comprehensive_ConvNeXt-L", _LINF, "timm/convnext_large", _BIC, 78.02,
       "1dIPLNfdQtAnqZrKPyuy3_zDI-FVgJ2FH", aa=58.48),
    _i("Liu2023Comprehensive_Swin-B", _LINF, _SWIN_B, _BIC, 76.16,
       "1-4mtxQCkThJUVdS3wvQ6NnmMZuySqR3c", aa=56.16),
    _i("Liu2023Comprehensive_Swin-L", _LINF, _SWIN_L, _BIC, 78.92,
       "1-57sQfcrsDsslfDR18nRD7FnpQmsSBk7", aa=59.56),
    _i("Mo2022When_Swin-B", _LINF, _SWIN_B, "Res224", 74.66, "1-SXi4Z2X6Zo_j8EO4slJcBMXNej8fKUd",
       aa=38.30),
    _i("Mo2022When_ViT-B", _LINF, "timm/vit_base_patch16_224", "Res224", 68.38,
       "1-dUFdvDBflqMsMLjZv3wlPJTm-Jm7net", aa=34.40),
    _i("RodriguezMunoz2024Characterizing_Swin-B", _LINF, _SWIN_B, _BIC, 77.76,
       "1-BSUjoFXx3PP-TfeE5fjbofO2lLyUf56", aa=51.56),
    _i("RodriguezMunoz2024Characterizing_Swin-L", _LINF, _SWIN_L, _BIC, 79.36,
       "1-Dc9WhPU2wv4OMskLo1U57n5O8VbpNXv", aa=53.82),
    _i("Singh2023Revisiting_ViT-S-ConvStem", _LINF, "custom:vit_s_cvst", _BIC, 72.56,
       "1-1sUYXnj6bDXacIKI3KKqn4rlkmL-ZI2", aa=48.08, norm=None),
    _i("Singh2023Revisiting_ViT-B-ConvStem", _LINF, "custom:vit_b_cvst", _BIC, 76.30,
       "1-JBbfi_eH3tKMXObvPPHprrZae0RiQGT", aa=54.66, norm=None),
    _i("Singh2023Revisiting_ConvNeXt-T-ConvStem", _LINF, "custom:convnext_t_cvst", _BIC, 72.72,
       "1-FjtOF6LJ3-bf4VezsmWwncCxYSx-USP", aa=49.46, norm=None),
    _i("Singh2023Revisiting_ConvNeXt-S-ConvStem", _LINF, "custom:convnext_s_cvst", _BIC, 74.10,
       "1-ZrMYajCCnrtV4oT0wa3qJJoQy1nUSnL", aa=52.42, norm=None),
    _i("Singh2023Revisiting_ConvNeXt-B-ConvStem", _LINF, "custom:convnext_b_cvst", _BIC, 75.90,
       "1-lE-waaVvfL7lgBrydmZIM9UJimmHnVe", aa=56.14, norm=None),
    _i("Singh2023Revisiting_ConvNeXt-L-ConvStem", _LINF, "custom:convnext_l_cvst", _BIC, 77.00,
       "10-YOVdM2EQjHemSi9x2H44qKRSOXVQmh", aa=57.70, norm=None),
    _i("Peng2023Robust", _LINF, "custom:ra_wrn101_2", _R256, 73.44,
       "1-GpZ9Du83mBTN61Ytx9z_ZQSyIc1kYop", aa=48.94, norm=None),
    _i("Bai2024MixedNUTS", _LINF, "custom:ensemble ConvNeXtV2-L + Swin-L", _BIC, 81.48,
       "1-2CwsRuMZXr99PeU2Z7-iFjl_86uIR-Y", aa=58.62),
    _i("Amini2024MeanSparse_ConvNeXt-L", _LINF, "custom:MeanSparse convnext_large", _BIC, 77.92,
       "1-LUMPqauSx68bPmZFIuklFoJ6NmBhu7A", aa=59.64),
    _i("Amini2024MeanSparse_Swin-L", _LINF, "custom:MeanSparse swin-l", _BIC, 78.80,
       "1-KmvrDXd_kcJS-TcNmtHP5NInQ5I4lgS", aa=62.12),
    _i("Xu2024MIMIR_Swin-B", _LINF, "custom:MIMIR build_swin_base", _BIC, 76.62,
       "1CkuhAOvqB8Ma1WYsJJ4qDiyVld28pqpx", aa=55.90, norm=None),
    _i("Xu2024MIMIR_Swin-L", _LINF, "custom:MIMIR build_swin_large", _BIC, 78.62,
       "1-1VIAy1Qn4KX6whAIeKZqWL4wkSEdba4", aa=59.68, norm=None),
]
WEIGHTS.update({w.name: w for w in IMAGENET})
