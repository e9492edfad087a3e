"""Natural robustness (out of distribution): ImageNet-ReaL, -V2, -A, -R and -Sketch from TFDS.

ARES-Bench evaluates natural robustness next to ImageNet-C on ImageNet-val with the ReaL
labels, ImageNet-V2, ImageNet-A, ImageNet-R and ImageNet-Sketch.  This module reads those
datasets as the TFDS builders write them (``tfds build <name> --data_dir=DIR``) and scores any
``apply_fn(variables, images in [0, 1]) -> logits [N, 1000]``:

* every TFDS builder labels with the 1000 ImageNet-1k classes (``ClassLabel`` over the
  imagenet2012 wnids, sorted), so the label of an example is its ImageNet-1k index;
* ImageNet-A and ImageNet-R hold only 200 of those classes; as their authors and timm do, the
  prediction is the argmax over those 200 classes' logits (``SUBSET_WNIDS``, mapped to
  ImageNet-1k indices through the imagenet2012 label list); the 1000-way accuracy is reported
  beside it;
* ImageNet-ReaL (Beyer et al. 2020): an image is correct when its top-1 prediction is in its
  set of real labels; images whose set is empty are excluded.  The accuracy on the original
  labels (all images) is reported beside it.

Images are decoded with PIL (``convert('RGB')``, as torchvision's ImageFolder does) and
preprocessed with ``imagenet_cp.preprocess`` (Resize 256 + CenterCrop 224, bit-exact to
torchvision), as for ImageNet-C.  The model runs data-parallel over the local devices
(``models.parallel.DataParallel``).  Each dataset is read in fixed slices of ``chunk_size``
examples (TFDS split slicing, ``test[a:b]``); each finished slice's per-example records (ids,
labels, predictions) are saved atomically with ``suites.corruption.Store`` under
``output_dir/ood/tasks/``, so an interrupted run resumes where it stopped and gives identical
results.

With several processes (``jax.distributed``) each process reads and scores its own slices (the
slices not yet saved, dealt round-robin), on its local devices; each round's records are
all-gathered (``suites.distributed.gather_parts``), so every process ends with the records of
one process's run, in the same order, and identical results.  Process 0 alone reads and writes
``output_dir``; saved slices are numbered by dataset and position, not by process, so a rerun
with any number of processes reuses them.  Every process reads the TFDS data_dir itself.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import os
import pathlib
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import imagenet_cp
from imagenet_cp.suites.corruption import Store, Task, batched, file_digest

OOD_DATASETS = ("imagenet2012_real", "imagenet_v2", "imagenet_a", "imagenet_r", "imagenet_sketch")
IMAGENET_V2_CONFIGS = ("matched-frequency", "threshold-0.7", "topimages")
CHUNK = 1024   # examples per saved slice (the unit of resumption)
DECODE_THREADS = min(8, os.cpu_count() or 1)   # PIL decodes and resizes outside the GIL

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


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------------------------
# The model over all local devices.


@jax.jit
def _top1(logits, subset):
  """logits [N, 1000] -> (argmax over ``subset`` as an ImageNet-1k index, 1000-way argmax,
  whether a row holds NaN), int32 / int32 / bool [N]; without a subset the first two agree.
  Ties go to the lowest index either way, since ``subset`` is ascending."""
  full = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  nan = jnp.any(jnp.isnan(logits), axis=-1)
  if subset is None:
    return full, full, nan
  return subset[jnp.argmax(logits[:, subset], axis=-1)], full, nan


class Model:
  """``apply_fn(variables, images in [0, 1])`` data-parallel on a padded global batch."""

  def __init__(self, apply_fn: Callable, variables, batch_size: int,
               devices: Sequence[jax.Device] | None = None, model_name: str | None = None):
    from imagenet_cp.models.parallel import DataParallel  # pylint: disable=g-import-not-at-top
    self._parallel = DataParallel(lambda v, pixels: apply_fn(v, pixels / 255.0), variables,
                                  batch_size, devices, model_name)
    self.batch_size = self._parallel.batch_size
    self.devices = len(self._parallel.mesh.devices.ravel())

  def top1(self, pixels: np.ndarray, subset: np.ndarray | None, file_names: Sequence[str]):
    """uint8 [n, 224, 224, 3], n <= batch_size -> (subset top-1, 1000-way top-1), int32 [n]."""
    logits, _ = self._parallel.apply_padded(pixels)
    if logits.shape[-1] != 1000:
      raise ValueError(f"the model returned {logits.shape[-1]} logits per image; these datasets "
                       "are labelled with the 1000 ImageNet-1k classes")
    sub, full, nan = _top1(logits, None if subset is None else jnp.asarray(subset))
    n = len(file_names)
    nan = np.asarray(nan)[:n]
    if nan.any():
      raise ValueError(f"the model returned NaN logits for {int(nan.sum())} images (first: "
                       f"{file_names[int(np.argmax(nan))]}); results would be meaningless")
    return np.asarray(sub)[:n], np.asarray(full)[:n]


# ----------------------------------------------------------------------------------------------
# Per-example records of one slice.


_PARTS = ("file_names", "labels", "top1", "top1_subset", "real_sizes", "real_labels")


def slice_records(ds: Dataset, examples, model: Model, subset: np.ndarray | None, tick) -> dict:
  """Per-example records of a slice: ``file_names``, ``labels`` (ImageNet-1k, the original
  label for ReaL), ``top1`` (1000-way), ``top1_subset`` (subset datasets) and, for ReaL,
  ``real_sizes`` [n] and ``real_labels`` (every image's set, concatenated)."""
  parts = {k: [] for k in _PARTS}
  with concurrent.futures.ThreadPoolExecutor(DECODE_THREADS) as pool:
    for batch in batched(examples, model.batch_size):
      names = [_text(e["file_name"]) for e in batch]
      pixels = np.stack(list(pool.map(decode_preprocess, [e["image"] for e in batch], names)))
      _add_batch(ds, parts, batch, names, model.top1(pixels, subset, names))
      tick(len(batch))
  return _finish_records(ds, parts)


def _add_batch(ds: Dataset, parts: dict, batch, names, predictions) -> None:
  sub, full = predictions
  parts["file_names"] += names
  parts["top1"].append(full)
  parts["top1_subset"].append(sub)
  if ds.real:
    parts["labels"].append(np.array([e["original_label"] for e in batch], np.int32))
    sets = [np.asarray(e["real_label"], np.int32).reshape(-1) for e in batch]
    parts["real_sizes"].append(np.array([len(s) for s in sets], np.int32))
    parts["real_labels"] += sets
  else:
    parts["labels"].append(np.array([e["label"] for e in batch], np.int32))


def _finish_records(ds: Dataset, parts: dict) -> dict:
  cat = lambda arrays: np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
  records = {"file_names": np.array(parts["file_names"], dtype=str), "labels": cat(parts["labels"]),
             "top1": cat(parts["top1"])}
  if ds.subset:
    records["top1_subset"] = cat(parts["top1_subset"])
  if ds.real:
    records["real_sizes"] = cat(parts["real_sizes"])
    records["real_labels"] = cat(parts["real_labels"]).astype(np.int32)
  return records


def concat_records(parts: Sequence[dict]) -> dict:
  """Slices' records joined in order (``real_labels`` stays aligned through ``real_sizes``)."""
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def real_hits(top1: np.ndarray, sizes: np.ndarray, flat: np.ndarray) -> np.ndarray:
  """bool [n]: top-1 prediction in the image's set of real labels (False for an empty set)."""
  owner = np.repeat(np.arange(top1.shape[0]), sizes)
  hits = np.zeros(top1.shape[0], bool)
  hits[owner[flat == top1[owner]]] = True
  return hits


# ----------------------------------------------------------------------------------------------
# Records -> figures.


def _accuracy(correct: int, n: int) -> dict:
  accuracy = correct / n if n else None
  return {"correct": int(correct), "accuracy": accuracy,
          "error": None if accuracy is None else 1.0 - accuracy}


def dataset_summary(ds: Dataset, records: dict, version: str, split_size: int) -> dict:
  """One dataset's figures (fractions in [0, 1]) from its per-example records."""
  n = int(records["labels"].shape[0])
  out = {"title": ds.title, "tfds": ds.tfds_name, "version": version, "split": ds.split,
         "split_examples": split_size, "images": n,
         "example_ids_sha256": file_digest(list(records["file_names"]))}
  original = int((records["top1"] == records["labels"]).sum())
  if ds.subset:
    indices = subset_indices(ds.subset)
    out["label_space"] = f"{len(indices)}-class subset (argmax over its logits)"
    out["subset_indices"] = indices.tolist()
    out.update(_accuracy(int((records["top1_subset"] == records["labels"]).sum()), n))
    out["accuracy_1000"] = _accuracy(original, n)["accuracy"]
  elif ds.real:
    hits = real_hits(records["top1"], records["real_sizes"], records["real_labels"])
    labelled = int((records["real_sizes"] > 0).sum())
    out["label_space"] = "1000 classes, ReaL label sets (images with an empty set excluded)"
    out["real_images"], out["excluded_empty"] = labelled, n - labelled
    out.update(_accuracy(int(hits.sum()), labelled))
    out["original"] = _accuracy(original, n)
  else:
    out["label_space"] = "1000 classes"
    out.update(_accuracy(original, n))
  return out


def _check_labels(ds: Dataset, records: dict) -> None:
  if not ds.subset:
    return
  outside = ~np.isin(records["labels"], subset_indices(ds.subset))
  if outside.any():
    first = int(np.argmax(outside))
    raise ValueError(f"{ds.tfds_name}: {records['file_names'][first]} is labelled "
                     f"{int(records['labels'][first])}, outside the dataset's 200 classes")


# ----------------------------------------------------------------------------------------------
# The entry point.


def evaluate_ood(apply_fn: Callable, variables, *,
                 datasets: Sequence[str] = OOD_DATASETS,
                 data_dir=None,
                 batch_size: int = 32,
                 output_dir=None,
                 max_images: int | None = None,
                 model_name: str = "user model",
                 progress: bool = False,
                 chunk_size: int = CHUNK,
                 devices: Sequence[jax.Device] | None = None,
                 log: Callable[[str], None] = print) -> dict:
  """Evaluates a classifier on built TFDS OOD datasets; returns a JSON-able dict.

  Args:
    apply_fn: ``apply_fn(variables, images) -> logits [N, 1000]``, images float32
      [N, 224, 224, 3] pixels in [0, 1] (``models.classifier`` gives one for every zoo model).
    variables: the model's variables.
    datasets: names of ``OOD_DATASETS`` (``imagenet_v2`` = matched-frequency) or
      ``imagenet_v2/<config>``, a list or a comma-separated string; all are checked to be
      built before any work starts.
    data_dir: the TFDS data_dir they were built in (None: TFDS's default).
    batch_size: each process's batch per step (rounded up to a multiple of its device count).
    output_dir: per-slice records in ``output_dir/ood/tasks`` (resumable), the figures in
      ``output_dir/ood/results.json`` and the evaluated ids in ``output_dir/ood/example_ids/``;
      None keeps everything in memory.
    max_images: only the first N examples of each dataset (in TFDS's stored order).
    chunk_size: examples per saved slice (the unit of resumption).
    devices: this process's devices to shard over (default: all its local devices).

  With several processes (``jax.distributed``) every process calls this with the same
  arguments; the slices are split over the processes, every process returns the complete,
  identical results (``run.processes``; ``run.devices`` counts all processes' devices) and
  process 0 writes the files.  A ValueError on one process is raised on all.

  Returns:
    ``{"datasets": {name: {...}}, "run": {...}}``; per dataset: ``images``, ``accuracy``,
    ``error``, ``correct``, ``split``, ``label_space``, ``example_ids_sha256`` and
    ``subset_indices`` + ``accuracy_1000`` (ImageNet-A/-R) or ``real_images``,
    ``excluded_empty`` + ``original`` (ReaL; ``accuracy`` is then the ReaL accuracy).
  """
  if max_images is not None and max_images < 1:
    raise ValueError(f"max_images must be >= 1, got {max_images}")
  if chunk_size < 1:
    raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
  specs, builders = _on_every_process(lambda: built_datasets(datasets, data_dir))
  started = time.time()
  model = Model(apply_fn, variables, batch_size, devices, model_name)
  run_info = {"model": model_name, "max_images": max_images, "chunk_size": chunk_size,
              "preprocess": "PIL RGB, Resize(256) + CenterCrop(224)"}
  first = jax.process_index() == 0
  root = pathlib.Path(output_dir) / "ood" if output_dir is not None else None
  store = _on_every_process(lambda: Store(root, run_info) if root is not None and first else None)
  sizes = {ds.name: _dataset_size(ds, builders[ds.name], max_images) for ds in specs}
  bar = _progress(sum(sizes.values()), progress and first)
  devices_used = _devices_everywhere(model)
  results = {"datasets": {}, "run": {}}
  for ds in specs:
    builder = builders[ds.name]
    bar.set_description(ds.name)
    records = dataset_records(ds, builder, sizes[ds.name], model, store, chunk_size, bar.update,
                              log)
    _check_labels(ds, records)
    summary = dataset_summary(ds, records, str(builder.version),
                              builder.info.splits[ds.split].num_examples)
    if root is not None:
      summary["example_ids_file"] = str(_ids_path(root, ds))
    if store:
      _write_ids(_ids_path(root, ds), records["file_names"])
    results["datasets"][ds.name] = summary
    results["run"] = _run_summary(run_info, data_dir, model, devices_used, started)
    if store:
      store.write_json("results.json", results)
  bar.close()
  return results


def _devices_everywhere(model: Model) -> int:
  """The devices evaluating, over all processes."""
  if jax.process_count() == 1:
    return model.devices
  from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
  return distributed.total(model.devices)


def _dataset_size(ds: Dataset, builder, max_images: int | None) -> int:
  total = builder.info.splits[ds.split].num_examples
  return total if max_images is None else min(total, max_images)


def dataset_records(ds: Dataset, builder, n: int, model: Model, store: Store | None,
                    chunk_size: int, tick, log) -> dict:
  """Records of the first ``n`` examples, slice by slice; saved slices are loaded, not redone.

  With several processes only process 0 holds the store: it says which slices are saved and
  shares them; the slices left are dealt round-robin over the processes, one per process a
  round, and each round's records are gathered, so process 0 saves them at once and every
  process ends with every record, in slice order."""
  if n == 0:
    raise ValueError(f"{ds.tfds_name} has no examples in its {ds.split} split")
  bounds = [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]
  parts = _shared(ds, _on_every_process(lambda: saved_slices(ds, builder, bounds, store)))
  if parts:
    log(f"{ds.name}: resumed {len(parts)} saved slice(s)")
    tick(sum(p["labels"].shape[0] for p in parts.values()))
  todo = [index for index in range(len(bounds)) if index not in parts]
  mine = todo[jax.process_index()::jax.process_count()]
  subset = subset_indices(ds.subset) if ds.subset else None
  for turn in range(-(-len(todo) // jax.process_count())):
    index = mine[turn] if turn < len(mine) else None
    local = _on_every_process(
        lambda: {} if index is None else
        {index: computed_slice(ds, builder, bounds[index], model, subset, tick)})
    done = _shared(ds, local)
    tick(sum(p["labels"].shape[0] for i, p in done.items() if i not in local))
    for i, records in sorted(done.items()):
      if store:
        store.save(Task("ood", ds.name, i), dict(records, version=np.array(str(builder.version))))
      parts[i] = records
  return concat_records([parts[i] for i in range(len(bounds))])


def saved_slices(ds: Dataset, builder, bounds, store: Store | None) -> dict:
  """{slice index: records} of the slices saved in ``store`` (none without one); ValueError for
  a saved slice whose size or dataset version differs."""
  parts = {}
  for index, (start, stop) in enumerate(bounds):
    task = Task("ood", ds.name, index)
    saved = store.load(task) if store else None
    if saved is None:
      continue
    if not _slice_matches(saved, stop - start, builder.version):
      raise ValueError(f"{store.task_path(task)} holds {saved['labels'].shape[0]} examples of "
                       f"version {saved.get('version')}, expected {stop - start} of "
                       f"{builder.version}: the dataset changed; delete that file")
    parts[index] = {k: v for k, v in saved.items() if k != "version"}
  return parts


def computed_slice(ds: Dataset, builder, bound, model: Model, subset, tick) -> dict:
  """Records of examples ``bound = (start, stop)``, read and scored now."""
  start, stop = bound
  records = slice_records(ds, read_slice(builder, ds.split, start, stop), model, subset, tick)
  if records["labels"].shape[0] != stop - start:
    raise ValueError(f"{ds.tfds_name}[{start}:{stop}] gave {records['labels'].shape[0]} "
                     "examples: the build is incomplete")
  return records


def _on_every_process(compute: Callable):
  """``compute()``; with several processes a ValueError on any one is raised on every one, so
  no process is left waiting in the next collective."""
  if jax.process_count() == 1:
    return compute()
  from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
  value, message = {}, None
  try:
    value = compute()
  except ValueError as err:
    message = str(err)
  distributed.raise_together(message)
  return value


def _shared(ds: Dataset, parts: dict) -> dict:
  """Every process's {slice index: records} on every process (one process: ``parts``)."""
  if jax.process_count() == 1:
    return parts
  from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
  return distributed.gather_parts(parts, _finish_records(ds, {k: [] for k in _PARTS}))


def _slice_matches(saved: dict, n: int, version) -> bool:
  return saved["labels"].shape[0] == n and str(saved.get("version")) == str(version)


def _ids_path(root: pathlib.Path, ds: Dataset) -> pathlib.Path:
  return root / "example_ids" / (ds.name.replace("/", "__") + ".txt")


def _write_ids(path: pathlib.Path, file_names) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".tmp")
  tmp.write_text("".join(f"{name}\n" for name in file_names), encoding="utf-8")
  tmp.replace(path)


def _run_summary(run_info: dict, data_dir, model: Model, devices: int, started: float) -> dict:
  return dict(run_info, data_dir=None if data_dir is None else str(data_dir),
              jax=jax.__version__, imagenet_cp=imagenet_cp.__version__,
              processes=jax.process_count(), devices=devices,
              batch_size=model.batch_size, seconds=round(time.time() - started, 1))


def _progress(total: int, enabled: bool):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm(total=total, unit="img", disable=not enabled, dynamic_ncols=True)


# ----------------------------------------------------------------------------------------------
# Report section and plot.


def _pct(value) -> str:
  return "–" if value is None else f"{100 * value:.2f}"


def _corruption_rows(corruption: dict) -> list[str]:
  """ImageNet val (clean) and ImageNet-C rows from a ``metrics.evaluate`` results dict."""
  rows = []
  clean = corruption.get("clean")
  if clean:
    rows.append(f"| ImageNet val (clean) | validation | 1000 classes | {clean['examples']} | "
                f"{_pct(1 - clean['error'])} | {_pct(clean['error'])} | |")
  cells = [c["unnormalized_ce"] for c in corruption.get("corruptions", {}).values()
           if c.get("benchmark") and c.get("unnormalized_ce") is not None]
  if cells or corruption.get("mce") is not None:
    error = float(np.mean(cells)) if cells else None
    mce = corruption.get("mce")
    images = clean["examples"] if clean else "–"
    rows.append(f"| ImageNet-C ({len(cells)} corruptions x 5 severities) | validation | "
                f"1000 classes | {images} | {_pct(None if error is None else 1 - error)} | "
                f"{_pct(error)} | {'–' if mce is None else f'{mce:.1f}'} |")
  return rows


def markdown(results: dict, corruption: dict | None = None) -> str:
  """A report section: per dataset the images, top-1 accuracy and error (%); with the
  corruption suite's results (``metrics.evaluate``) also the clean ImageNet and ImageNet-C rows
  and mCE (AlexNet = 100) beside them."""
  extra = corruption is not None
  lines = ["## Natural robustness (out of distribution)", "",
           "| dataset | split | label space | images | top-1 accuracy (%) | top-1 error (%) |"
           + (" mCE (%) |" if extra else ""),
           "|---|---|---|---|---|---|" + ("---|" if extra else "")]
  if extra:
    lines += _corruption_rows(corruption)
  notes = []
  for name, d in results.get("datasets", {}).items():
    space = "200 classes" if "subset_indices" in d else "1000 classes"
    label = d["title"] + (" (ReaL labels)" if "real_images" in d else "")
    lines.append(f"| {label} | {d['split']} | {space} | {d.get('real_images', d['images'])} | "
                 f"{_pct(d['accuracy'])} | {_pct(d['error'])} |" + (" |" if extra else ""))
    if "original" in d:
      lines.append(f"| {d['title']} (original labels) | {d['split']} | 1000 classes | "
                   f"{d['images']} | {_pct(d['original']['accuracy'])} | "
                   f"{_pct(d['original']['error'])} |" + (" |" if extra else ""))
      notes.append(f"{d['title']}: {d['excluded_empty']} of {d['images']} images have an empty "
                   "ReaL label set and are excluded from the ReaL accuracy (Beyer et al. 2020).")
    if "accuracy_1000" in d:
      notes.append(f"{d['title']}: argmax over its 200 classes' logits only, as its authors and "
                   f"timm score it; the 1000-way accuracy is {_pct(d['accuracy_1000'])}%.")
    if d["images"] < d["split_examples"]:
      notes.append(f"{d['title']}: the first {d['images']} of {d['split_examples']} examples only.")
  if notes:
    lines += [""] + [f"- {n}" for n in notes]
  return "\n".join(lines) + "\n"


def plot(results: dict, output_dir) -> list[pathlib.Path]:
  """``ood_accuracy.png``: top-1 accuracy per dataset (ReaL: the ReaL accuracy)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  data = {d["title"]: d["accuracy"] for d in results.get("datasets", {}).values()
          if d.get("accuracy") is not None}
  if not data:
    return []
  directory = pathlib.Path(output_dir)
  directory.mkdir(parents=True, exist_ok=True)
  fig, ax = plt.subplots(figsize=(1.4 * len(data) + 2, 4))
  bars = ax.bar(np.arange(len(data)), [100 * v for v in data.values()], color="tab:green")
  ax.bar_label(bars, fmt="%.1f")
  ax.set_xticks(np.arange(len(data)), list(data), rotation=30, ha="right")
  ax.set_ylabel("top-1 accuracy (%)")
  ax.set_ylim(0, 105)
  ax.set_title(results.get("run", {}).get("model", ""))
  fig.tight_layout()
  path = directory / "ood_accuracy.png"
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return [path]
