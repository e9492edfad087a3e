"""RobustBench's CIFAR-10/100 corruption-leaderboard models that the zoo ports (plain data).

Copied by hand from RobustBench 1.1.1 (``robustbench/model_zoo/cifar10.py`` and ``cifar100.py``,
``common_corruptions``: Google Drive ids; ``model_info/<dataset>/corruptions/<name>.json``:
architecture label, clean and corruption accuracy in %); ``tests/test_models_cifar.py`` checks
the ids and architectures against the installed ``robustbench`` package's source.

Zoo names are ``<dataset>/<RobustBench name>`` (``cifar10/Standard``,
``cifar100/Hendrycks2020AugMix_WRN``); the bare RobustBench name is an alias of the CIFAR-10 model
(RobustBench's own default dataset).  RobustBench keeps each file as
``<model_dir>/<dataset>/corruptions/<name>.pt`` and publishes no digest for it.
"""
from __future__ import annotations

import dataclasses

ROBUSTBENCH_VERSION = "1.1.1"
# gdown's form of a Google Drive file id, which is how RobustBench downloads (``gdown.download(id=)``).
GDRIVE_URL = "https://drive.google.com/uc?id={}"
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # Kireev2021EffectivenessNet's mu / sigma
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # the AugMix wrappers' mu / sigma


@dataclasses.dataclass(frozen=True)
class RobustBenchWeight:
  dataset: str            # "cifar10" | "cifar100"
  model: str              # RobustBench's name
  gdrive_id: str
  architecture: str       # "wrn-28-10", "wrn-40-2", "wrn-34-10", "resnext-29-4x32d",
                          # "resnet-18", "preact-resnet-18"
  norm: object            # in-model normalisation: None, (mean, std) or "checkpoint" (mu/sigma)
  clean_acc: float        # model_info's clean accuracy, %
  corruptions_acc: float  # model_info's CIFAR-10/100-C accuracy, %
  label: str = ""         # model_info's architecture label where it differs from the code
  ignore: tuple[str, ...] = ()     # keys of the file that the forward pass never reads
  wrapper: str | None = None       # the file's top-level key holding the state dict

  @property
  def name(self) -> str:
    return f"{self.dataset}/{self.model}"

  @property
  def num_classes(self) -> int:
    return {"cifar10": 10, "cifar100": 100}[self.dataset]

  @property
  def url(self) -> str:
    return GDRIVE_URL.format(self.gdrive_id)


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
