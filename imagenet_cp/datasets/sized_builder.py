"""The builder bases of the other sizes: tiny_imagenet_c/_p, imagenet64_c/_p and imagenet299_c.

They are imagenet_c's and imagenet_p's builders with another constant set and input; a
dataset's ``Builder`` only names them (``SIZE``/``BENCHMARK``, ``PIXELS``, ``PREPROCESSING``)
and, for Tiny-ImageNet, its source (``TinySource``):

  source photo --PIXELS (common.PIXEL_KINDS, PIL as the scripts)--> S x S input
  --imagenet_cp.corrupt (S's constant set) / perturb(benchmark=BENCHMARK),
    key = example_key(0, name, severity or difficulty, file_name)--> stored

  dataset          source                          input (PIXELS)                 release stage
  tiny_imagenet_c  Tiny ImageNet val (or crops)    Resize((64, 64))               JPEG q85
  imagenet64_c     ImageNet val (manual download)  Resize((64, 64))               JPEG q85
  imagenet299_c    ImageNet val                    0.875 crop + 299x299 bilinear  JPEG q85
  tiny_imagenet_p  Tiny ImageNet val (or crops)    Resize(64) (shorter side)      PNG frames
  imagenet64_p     ImageNet val                    Resize((64, 64))               PNG frames

Configs, names and image formats are imagenet_c's / imagenet_p's (``_png``, ``_raw``; ``_jpeg``);
unlike those there is no default config (``common.RequireConfig``).  The 299 set is a builder of
its own, not configs of imagenet_c: its images have another shape and another input, and a
dataset's examples share one shape and one version.  There is no 299 -P builder: the original
released no 299 -P set (``perturb(..., benchmark="imagenet299")`` computes one on the fly).
"""
from __future__ import annotations

import tensorflow_datasets as tfds

from imagenet_cp.datasets import common, tiny_imagenet
from imagenet_cp.datasets.imagenet_c import imagenet_c_dataset_builder as imagenet_c
from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder as imagenet_p
from imagenet_cp.perturbations import sets

RESIZE_64X64 = ("torchvision Resize((64, 64)): PIL bilinear (antialiased: the filter support "
                "scales with the reduction) to 64x64, aspect ratio not kept, as the original's "
                "64 px scripts (not the box filter of Chrabaszcz et al.'s Downsampled ImageNet)")
CROP_299 = ("make_imagenet_c_inception.py's resized_center_crop: centre crop of 0.875 x (h, w), "
            "then PIL bilinear to 299x299")


class CorruptionBuilder(common.RequireConfig, imagenet_c.Builder, skip_registration=True):
  """imagenet_c at another size: ``SIZE`` picks corrupt()'s constants, ``PIXELS`` the input."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "First release: 19 corruptions x 5 severities generated in JAX from per-example "
               "keys (root seed 0) with this size's constant set; JPEG q85 like the released "
               "files, PNG options.",
  }
  PREPROCESSING: str

  def _source_metadata(self) -> dict:
    return {"preprocessing": self.PREPROCESSING, "image_size": self.SIZE}


class PerturbationBuilder(common.RequireConfig, imagenet_p.Builder, skip_registration=True):
  """imagenet_p with another sequence set (``BENCHMARK``: its constants, input, frame count)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "First release: 14 sequences (+ noise levels 2, 3) generated in JAX from "
               "per-example keys (root seed 0) with this set's constants; lossless PNG frames, "
               "JPEG q85 option.",
  }

  def __init_subclass__(cls, **kwargs):
    if "BENCHMARK" in cls.__dict__:  # a dataset: its configs' frame counts follow from its set
      cls.BUILDER_CONFIGS = imagenet_p.release_configs(cls.BENCHMARK)
    super().__init_subclass__(**kwargs)

  def _source_metadata(self) -> dict:
    seq_set = sets.get_set(self.BENCHMARK)
    return {"preprocessing": f"{seq_set.input_doc} ({seq_set.script}); the sequences in "
                             f"source_sequences start from the photo itself",
            "benchmark": self.BENCHMARK, "source_sequences": list(seq_set.source_sequences)}


class TinySource:
  """Builder mixin: the Tiny ImageNet validation set (or crops) and its 200 classes."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = tiny_imagenet.MANUAL_DOWNLOAD_INSTRUCTIONS
  SOURCE = tiny_imagenet.SOURCE

  def _label_feature(self) -> tfds.features.ClassLabel:
    return tfds.features.ClassLabel(names_file=tiny_imagenet.WNIDS_FILE)

  def _source_metadata(self) -> dict:
    return {**super()._source_metadata(),
            "source_description": "set by the build: " + "; or ".join(
                tiny_imagenet.DESCRIPTIONS.values()),
            "classes": f"the 200 Tiny ImageNet wnids, sorted ({tiny_imagenet.WNIDS_FILE.name})"}

  def _source_items(self, dl_manager) -> list[common.Item]:
    manual = common.manual_dir(dl_manager, tiny_imagenet.EXPECTED,
                               self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    layout, items = tiny_imagenet.list_items(manual)
    # Which source the build read (known only now): metadata.json says it.
    self.info.metadata.update(source_layout=layout,
                              source_description=tiny_imagenet.DESCRIPTIONS[layout])
    return items
