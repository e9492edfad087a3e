"""The TFDS builder bases of imagenet_c and imagenet_p (and their ``_demo`` twins), and the part
the CIFAR builders (``cifar_builder.py``) share with them.

A dataset's ``Builder`` says what its configs are (``parse_config``), what one config stores
(``_info``), computes (``_task``) and starts from (``PIXELS``), and what must hold before any
image is decoded (``_check_config``).  ``GenerationBuilder`` resolves the configs
``BUILDER_CONFIGS`` does not list and runs a task in the builder's own loop or on Beam;
``SourceBuilder`` adds the ImageNet sources: it finds the images (the manual ImageNet download,
or the packaged demo photos where ``SOURCE`` is ``common.SOURCE_DEMO``) and caches their crops;
its hooks (``_source_items``, ``_label_feature``, ``_source_metadata``, ``_pixels_kind``) let the
other sizes (``sized_builder.py``) change the source, classes and input.
"""
from __future__ import annotations

import tensorflow_datasets as tfds

from imagenet_cp import sources
from imagenet_cp.datasets import common

HOMEPAGE = "https://github.com/hendrycks/robustness"


class GenerationBuilder(common.CleanFailedBuild, tfds.core.GeneratorBasedBuilder,
                        skip_registration=True):
  """Config resolution and generation (own loop or Beam); not a dataset itself."""

  @staticmethod
  def parse_config(name: str) -> tfds.core.BuilderConfig | None:
    """The config called ``name``, listed or not (with a format suffix), or None."""
    raise NotImplementedError

  @classmethod
  def get_builder_config(cls, name, version=None):
    """Also resolves the format variants that BUILDER_CONFIGS does not list."""
    return super().get_builder_config(name, version) or cls.parse_config(name)

  def _download_and_prepare(self, dl_manager, download_config):
    # Beam workers get the same chunks; TFDS only tells _download_and_prepare about Beam.
    self._use_beam = common.uses_beam(download_config)
    return super()._download_and_prepare(dl_manager, download_config)

  def _generate_examples(self, task, items, pixels):
    return common.generate(task, items, pixels, getattr(self, "_use_beam", False))


class SourceBuilder(GenerationBuilder, skip_registration=True):
  """What imagenet_c and imagenet_p share; not a dataset itself (never registered)."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = sources.MANUAL_DOWNLOAD_INSTRUCTIONS
  SOURCE = common.SOURCE_IMAGENET
  PIXELS: str  # the generation's input: a kind of common.PIXEL_KINDS (CROP_224, RESIZE_256 ...)

  def _label_feature(self) -> tfds.features.ClassLabel:
    """The label's classes: the 1,000 ImageNet classes, as TFDS ``imagenet2012``."""
    return tfds.features.ClassLabel(names_file=common.labels_file())

  def _source_metadata(self) -> dict:
    """Metadata of the source and its preprocessing (over ``common.provenance``'s defaults)."""
    return {}

  def _pixels_kind(self) -> str:
    """The config's input kind (``common.PIXEL_KINDS``)."""
    return self.PIXELS

  def _dataset_info(self, pixels: dict, supervised_keys=None, **metadata) -> tfds.core.DatasetInfo:
    """``pixels`` features plus every example's label and file name; the build's provenance
    (``common.provenance``) and ``metadata`` as the dataset's metadata."""
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            **pixels,
            "label": self._label_feature(),
            "file_name": tfds.features.Text(),
        }),
        supervised_keys=supervised_keys,
        homepage=HOMEPAGE,
        metadata=tfds.core.MetadataDict(common.provenance(
            self.SOURCE, dataset=self.name, **{**self._source_metadata(), **metadata})),
    )

  def _source_items(self, dl_manager) -> list[common.Item]:
    if self.SOURCE == common.SOURCE_DEMO:  # The demo photos come with the installed packages.
      return common.list_items(self.SOURCE)
    return common.list_items(self.SOURCE, common.manual_dir(dl_manager))

  def _check_config(self) -> None:
    """Fails for a config that cannot be built, before any image is decoded."""

  def _task(self, num_items: int):
    """The config's generation task (``common.CorruptionTask`` / ``PerturbationTask``)."""
    raise NotImplementedError

  def _split_generators(self, dl_manager):
    self._check_config()
    items = self._source_items(dl_manager)
    pixels = common.pixel_source(items, self._pixels_kind(), self.SOURCE, self._data_dir_root)
    return {"validation": self._generate_examples(self._task(len(items)), items, pixels)}
