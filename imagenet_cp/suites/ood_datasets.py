"""The OOD suite's datasets: ImageNet-ReaL, -V2, -A, -R and -Sketch as the TFDS builders write them.

Every TFDS builder labels with the 1000 ImageNet-1k classes (``ClassLabel`` over the imagenet2012
wnids, sorted); ImageNet-A and ImageNet-R hold only 200 of them (``SUBSET_WNIDS``, mapped to
ImageNet-1k indices by ``subset_indices``).  ``built_datasets`` opens the builders (or says how
to build what is missing), ``read_slice`` reads fixed slices of a split and ``decode_preprocess``
turns an encoded image into the 224 crop (PIL ``convert('RGB')``, Resize 256 + CenterCrop 224).
"""
from __future__ import annotations

import dataclasses
import io
from typing import Sequence

import numpy as np
from PIL import Image

import imagenet_cp

OOD_DATASETS = ("imagenet2012_real", "imagenet_v2", "imagenet_a", "imagenet_r", "imagenet_sketch")
IMAGENET_V2_CONFIGS = ("matched-frequency", "threshold-0.7", "topimages")

# The 200 classes of ImageNet-A (its folder names; timm's imagenet_a_synsets.txt) and of
# ImageNet-R (the wnid set of hendrycks/imagenet-r eval.py), sorted.  Their ImageNet-1k
# indices are derived from the imagenet2012 label list (``subset_indices``);
# tests/test_ood.py checks them against the originals' published index lists.
SUBSET_WNIDS = {
  "imagenet_a": tuple("""
n01498041 n01531178 n01534433 n01558993 n01580077 n01614925 n01616318 n01631663 n01641577
n01669191 n01677366 n01687978 n01694178 n01698640 n01735189 n01770081 n01770393 n01774750
n01784675 n01819313 n01820546 n01833805 n01843383 n01847000 n01855672 n01882714 n01910747
n01914609 n01924916 n01944390 n01985128 n01986214 n02007558 n02009912 n02037110 n02051845
n02077923 n02085620 n02099601 n02106550 n02106662 n02110958 n02119022 n02123394 n02127052
n02129165 n02133161 n02137549 n02165456 n02174001 n02177972 n02190166 n02206856 n02219486
n02226429 n02231487 n02233338 n02236044 n02259212 n02268443 n02279972 n02280649 n02281787
n02317335 n02325366 n02346627 n02356798 n02361337 n02410509 n02445715 n02454379 n02486410
n02492035 n02504458 n02655020 n02669723 n02672831 n02676566 n02690373 n02701002 n02730930
n02777292 n02782093 n02787622 n02793495 n02797295 n02802426 n02814860 n02815834 n02837789
n02879718 n02883205 n02895154 n02906734 n02948072 n02951358 n02980441 n02992211 n02999410
n03014705 n03026506 n03124043 n03125729 n03187595 n03196217 n03223299 n03250847 n03255030
n03291819 n03325584 n03355925 n03384352 n03388043 n03417042 n03443371 n03444034 n03445924
n03452741 n03483316 n03584829 n03590841 n03594945 n03617480 n03666591 n03670208 n03717622
n03720891 n03721384 n03724870 n03775071 n03788195 n03804744 n03837869 n03840681 n03854065
n03888257 n03891332 n03935335 n03982430 n04019541 n04033901 n04039381 n04067472 n04086273
n04099969 n04118538 n04131690 n04133789 n04141076 n04146614 n04147183 n04179913 n04208210
n04235860 n04252077 n04252225 n04254120 n04270147 n04275548 n04310018 n04317175 n04344873
n04347754 n04355338 n04366367 n04376876 n04389033 n04399382 n04442312 n04456115 n04482393
n04507155 n04509417 n04532670 n04540053 n04554684 n04562935 n04591713 n04606251 n07583066
n07695742 n07697313 n07697537 n07714990 n07718472 n07720875 n07734744 n07749582 n07753592
n07760859 n07768694 n07831146 n09229709 n09246464 n09472597 n09835506 n11879895 n12057211
n12144580 n12267677
""".split()),
  "imagenet_r": tuple("""
n01443537 n01484850 n01494475 n01498041 n01514859 n01518878 n01531178 n01534433 n01614925
n01616318 n01630670 n01632777 n01644373 n01677366 n01694178 n01748264 n01770393 n01774750
n01784675 n01806143 n01820546 n01833805 n01843383 n01847000 n01855672 n01860187 n01882714
n01910747 n01944390 n01983481 n01986214 n02007558 n02009912 n02051845 n02056570 n02066245
n02071294 n02077923 n02085620 n02086240 n02088094 n02088238 n02088364 n02088466 n02091032
n02091134 n02092339 n02094433 n02096585 n02097298 n02098286 n02099601 n02099712 n02102318
n02106030 n02106166 n02106550 n02106662 n02108089 n02108915 n02109525 n02110185 n02110341
n02110958 n02112018 n02112137 n02113023 n02113624 n02113799 n02114367 n02117135 n02119022
n02123045 n02128385 n02128757 n02129165 n02129604 n02130308 n02134084 n02138441 n02165456
n02190166 n02206856 n02219486 n02226429 n02233338 n02236044 n02268443 n02279972 n02317335
n02325366 n02346627 n02356798 n02363005 n02364673 n02391049 n02395406 n02398521 n02410509
n02423022 n02437616 n02445715 n02447366 n02480495 n02480855 n02481823 n02483362 n02486410
n02510455 n02526121 n02607072 n02655020 n02672831 n02701002 n02749479 n02769748 n02793495
n02797295 n02802426 n02808440 n02814860 n02823750 n02841315 n02843684 n02883205 n02906734
n02909870 n02939185 n02948072 n02950826 n02951358 n02966193 n02980441 n02992529 n03124170
n03272010 n03345487 n03372029 n03424325 n03452741 n03467068 n03481172 n03494278 n03495258
n03498962 n03594945 n03602883 n03630383 n03649909 n03676483 n03710193 n03773504 n03775071
n03888257 n03930630 n03947888 n04086273 n04118538 n04133789 n04141076 n04146614 n04147183
n04192698 n04254680 n04266014 n04275548 n04310018 n04325704 n04347754 n04389033 n04409515
n04465501 n04487394 n04522168 n04536866 n04552348 n04591713 n07614500 n07693725 n07695742
n07697313 n07697537 n07714571 n07714990 n07718472 n07720875 n07734744 n07742313 n07745940
n07749582 n07753275 n07753592 n07768694 n07873807 n07880968 n07920052 n09472597 n09835506
n10565667 n12267677
""".split()),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
  """One OOD dataset: its key in the results, TFDS name (with config), split and scoring.

  ``subset``: a key of ``SUBSET_WNIDS`` when the prediction is restricted to those classes;
  ``real``: ReaL multi-label scoring.  ``prepare`` says how to build it with TFDS.
  """
  name: str
  tfds_name: str
  split: str
  title: str
  prepare: str
  subset: str | None = None
  real: bool = False


_REAL_PREPARE = (
    "it needs the manual ImageNet download: register at https://image-net.org, put "
    "ILSVRC2012_img_val.tar in a folder MANUAL_DIR, then run `tfds build imagenet2012_real "
    "--data_dir={data_dir} --manual_dir=MANUAL_DIR` (the ReaL labels, real.json, are fetched from "
    "github.com/google-research/reassessed-imagenet)")
_SKETCH_PREPARE = (
    "run `tfds build imagenet_sketch --data_dir={data_dir}`; it downloads ImageNet-Sketch.zip "
    "(7.6 GB) from Google Drive, which often refuses: then download ImageNet-Sketch.zip yourself "
    "(github.com/HaohanWang/ImageNet-Sketch), put it in a folder MANUAL_DIR under that name and "
    "add `--manual_dir=MANUAL_DIR`")


def dataset(name: str) -> Dataset:
  """The ``Dataset`` for a name of ``OOD_DATASETS`` or ``imagenet_v2/<config>``
  (``imagenet_v2`` alone is its matched-frequency config)."""
  if name == "imagenet2012_real":
    return Dataset(name, name, "validation", "ImageNet-ReaL", _REAL_PREPARE, real=True)
  if name == "imagenet_a":
    return Dataset(name, name, "test", "ImageNet-A",
                   "run `tfds build imagenet_a --data_dir={data_dir}` (downloads imagenet-a.tar, "
                   "0.7 GB, from people.eecs.berkeley.edu/~hendrycks)", subset=name)
  if name == "imagenet_r":
    return Dataset(name, name, "test", "ImageNet-R",
                   "run `tfds build imagenet_r --data_dir={data_dir}` (downloads imagenet-r.tar, "
                   "2.1 GB, from people.eecs.berkeley.edu/~hendrycks)", subset=name)
  if name == "imagenet_sketch":
    return Dataset(name, name, "test", "ImageNet-Sketch", _SKETCH_PREPARE)
  if name == "imagenet_v2" or name.startswith("imagenet_v2/"):
    config = name.partition("/")[2] or IMAGENET_V2_CONFIGS[0]
    if config in IMAGENET_V2_CONFIGS:
      tfds_name = f"imagenet_v2/{config}"
      return Dataset(name, tfds_name, "test", f"ImageNet-V2 ({config})",
                     f"run `tfds build {tfds_name} --data_dir={{data_dir}}` (downloads from "
                     "huggingface.co/datasets/vaishaal/ImageNetV2)")
  raise ValueError(f"unknown OOD dataset {name!r}; expected some of {', '.join(OOD_DATASETS)} "
                   f"(or imagenet_v2/CONFIG, CONFIG one of {', '.join(IMAGENET_V2_CONFIGS)})")


def imagenet_wnids() -> list[str]:
  """The 1000 ImageNet-1k wnids in label order (the imagenet2012 ``ClassLabel`` names that every
  one of these TFDS builders labels with)."""
  from tensorflow_datasets.datasets.imagenet2012 import imagenet_common  # pylint: disable=g-import-not-at-top
  with open(imagenet_common.label_names_file(), encoding="utf-8") as f:
    return f.read().split()


def subset_indices(subset: str) -> np.ndarray:
  """int32 [200]: the ImageNet-1k indices of ``SUBSET_WNIDS[subset]``, ascending."""
  position = {wnid: i for i, wnid in enumerate(imagenet_wnids())}
  return np.array(sorted(position[w] for w in SUBSET_WNIDS[subset]), np.int32)


# ----------------------------------------------------------------------------------------------
# Reading a built dataset.


def open_builder(ds: Dataset, data_dir):
  """The TFDS builder of ``ds`` over ``data_dir``; ValueError (with how to prepare it) when the
  dataset is not built there."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  where = data_dir if data_dir is not None else "the default TFDS data_dir (~/tensorflow_datasets)"
  try:
    builder = tfds.builder(ds.tfds_name, data_dir=data_dir)
    prepared = builder.is_prepared()
  except Exception as err:  # TFDS raises several types for a missing or damaged build.
    raise ValueError(f"{ds.tfds_name} cannot be opened in {where} ({type(err).__name__}: {err}); "
                     + ds.prepare.format(data_dir=data_dir or "DIR")) from err
  if not prepared:
    raise ValueError(f"{ds.tfds_name} (version {builder.version}) is not built in {where}; to "
                     "prepare it, " + ds.prepare.format(data_dir=data_dir or "DIR"))
  return builder


def built_datasets(datasets: Sequence[str] | str, data_dir) -> tuple[list, dict]:
  """The ``Dataset`` specs of ``datasets`` (a list or a comma-separated string, duplicates
  dropped) and their opened builders; ValueError naming the first that is unknown or not built,
  so a run can check everything before it starts any work."""
  if isinstance(datasets, str):
    datasets = [name for name in datasets.split(",") if name]
  specs = [dataset(name) for name in dict.fromkeys(datasets)]
  if not specs:
    raise ValueError(f"no OOD dataset given; expected some of {', '.join(OOD_DATASETS)}")
  return specs, {ds.name: open_builder(ds, data_dir) for ds in specs}


def read_slice(builder, split: str, start: int, stop: int):
  """Examples ``start:stop`` of ``split`` (TFDS split slicing: a fixed set on every read),
  images left encoded; yields NumPy dicts."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data = builder.as_dataset(split=f"{split}[{start}:{stop}]", shuffle_files=False,
                            decoders={"image": tfds.decode.SkipDecoding()})
  return tfds.as_numpy(data)


def decode_preprocess(encoded: bytes, file_name: str) -> np.ndarray:
  """Encoded image -> uint8 [224, 224, 3]: PIL ``convert('RGB')`` (as torchvision's ImageFolder),
  then Resize(256) + CenterCrop(224)."""
  try:
    image = Image.open(io.BytesIO(encoded))
    image.load()
  except Exception as err:  # PIL raises several types for corrupt data.
    raise ValueError(f"{file_name}: cannot decode the image ({err})") from err
  return imagenet_cp.preprocess(image.convert("RGB"))
