"""The TFDS builder bases of cifar10_c, cifar100_c, cifar10_p and cifar100_p.

A dataset's ``Builder`` only names its CIFAR set (``CIFAR = cifar.CIFAR10`` ...); everything else
is shared here and with the ImageNet builders (``builder.GenerationBuilder``, ``common``):

  cifar-10-python.tar.gz (manual dir, else downloaded and checksum-checked by TFDS)
  --restricted unpickler--> test set, uint8 [N, 32, 32, 3] in file order, file names test/00000...
  or a TFDS build of TFDS's cifar10 / cifar100 (the manual dir is a TFDS data_dir holding
  cifar10/<version>/, or that version folder) --test split, reordered by its id--> the same
  --imagenet_cp.corrupt (the 32x32 constant set) / perturb(benchmark="cifar"),
    key = example_key(0, name, severity or difficulty, file_name)--> stored losslessly

The CIFAR release has no JPEG stage (``make_cifar_c.py`` truncates to uint8 and saves .npy), so
-C images are stored as PNG of ``corrupt()`` and -P sequences as the uint8 [T, 32, 32, 3] array
itself (a zlib-compressed ``Tensor``), exactly the frames ``perturb`` returns.  Examples are kept in
test-set order on disk (``disable_shuffling``, keyed by the row index), so example i of every
config is test image i, as in the released ``.npy`` files (``cifar_release`` writes those).
There is no default config (``common.RequireConfig``).

Which source a build read is in its metadata.json: ``source_format`` ("python tarball" / "tfds"),
for TFDS ``source_tfds_build`` (e.g. ``cifar10/3.0.2``), and for both ``source_images_sha256``
(``cifar.TestSet.sha256``: equal exactly when the two sources hold the same test set).  A manual
dir holding both a tarball and a TFDS build is refused (``cifar.find_source``).
"""
from __future__ import annotations

import dataclasses
import functools
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from imagenet_cp import assets
from imagenet_cp import cifar
from imagenet_cp import corruptions
from imagenet_cp import perturbations
from imagenet_cp.datasets import builder, common
from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder as imagenet_p

SPLIT = "test"
C_CHUNK_SIZE = 256  # 32x32 images: large chunks keep the per-call overhead small
P_CHUNK_SIZE = 32   # x 31 frames
BENCHMARK = "cifar"  # the perturbation set (imagenet_cp.perturbations.sets)


def manual_download_instructions(cifar_set: cifar.CifarSet) -> str:
  return (
      f"Put {cifar_set.archive} (the python version of {cifar_set.dataset}, {cifar_set.url}, "
      f"{cifar_set.size:,} bytes, md5 {cifar_set.md5}) in the manual directory (--manual_dir, "
      "default <data_dir>/downloads/manual/). Without it the builder downloads that URL and "
      "checks the file against checksums.tsv. Or pass as --manual_dir a TFDS data_dir holding "
      f"a build of TFDS's {cifar_set.name} ({cifar_set.name}/<version>/, e.g. "
      "~/tensorflow_datasets), or that version folder: its test split is read instead.")


@dataclasses.dataclass(kw_only=True)
class CifarCConfig(tfds.core.BuilderConfig):
  """One corruption at one severity."""
  corruption: str = "gaussian_noise"
  severity: int = 1


@dataclasses.dataclass(kw_only=True)
class CifarPConfig(tfds.core.BuilderConfig):
  """One perturbation sequence at one difficulty (noise level)."""
  perturbation: str = "gaussian_noise"
  difficulty: int = 1


def frame_count(perturbation: str) -> int:
  """T of a CIFAR-P sequence: 31; motion_blur 21, translate 16 (``make_cifar_p.py``)."""
  return perturbations.num_frames(perturbation, BENCHMARK)


@functools.lru_cache(maxsize=None)
def c_configs() -> tuple[CifarCConfig, ...]:
  """``<corruption>_<severity>``: the 15 benchmark corruptions x 5 first, then the 4 extra."""
  out = []
  for corruption in corruptions.CORRUPTIONS:
    kind = ("benchmark" if corruption in corruptions.BENCHMARK_CORRUPTIONS
            else "extra (validation)")
    out += [CifarCConfig(name=f"{corruption}_{s}", corruption=corruption, severity=s,
                         description=f"{corruption} ({kind} corruption) at severity {s}.")
            for s in corruptions.SEVERITIES]
  return tuple(out)


@functools.lru_cache(maxsize=None)
def p_configs() -> tuple[CifarPConfig, ...]:
  """One per sequence, named as imagenet_p's: the noise sequences with ``_2`` / ``_3``."""
  out = []
  for name, difficulty in imagenet_p.sequence_configs():
    kind = "test" if name in perturbations.TEST_PERTURBATIONS else "validation"
    level = (f", noise level {difficulty}" if name in perturbations.NOISE_PERTURBATIONS else "")
    out.append(CifarPConfig(
        name=imagenet_p.config_name(name, difficulty), perturbation=name, difficulty=difficulty,
        description=f"{name} ({kind} sequence{level}), {frame_count(name)} frames."))
  return tuple(out)


@functools.lru_cache(maxsize=2)
def _test_set(source: str, cifar_set: str) -> cifar.TestSet:
  return cifar.read_source(source, cifar.get_set(cifar_set))


@dataclasses.dataclass(frozen=True)
class SourcePixels:
  """Gives test image ``item.index`` of the source (tarball or TFDS build); each process (the
  builder's, every Beam worker's) reads the source once.  Only the path travels with the Beam
  transform, not the 30 MB of pixels (Dataflow limits the size of a job's graph): on a cluster
  the source must be where the workers can read it, as the ImageNet tar (a gs:// data_dir's
  downloads/, or a gs:// manual dir)."""
  source: str
  cifar_set: str

  def get(self, item: common.Item) -> np.ndarray:
    return _test_set(self.source, self.cifar_set).images[item.index]


class CifarBuilder(common.RequireConfig, builder.GenerationBuilder, skip_registration=True):
  """What the four CIFAR builders share: the source, labels, metadata and split."""

  CIFAR: cifar.CifarSet

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    if "CIFAR" in cls.__dict__:  # a dataset: its manual-download text follows from its set
      cls.MANUAL_DOWNLOAD_INSTRUCTIONS = manual_download_instructions(cls.CIFAR)

  @classmethod
  def parse_config(cls, name: str):
    return {c.name: c for c in cls.BUILDER_CONFIGS}.get(name)

  def _dataset_info(self, pixels: dict, supervised_keys=None, **metadata) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            **pixels,
            "label": tfds.features.ClassLabel(names=self.CIFAR.classes),
            "file_name": tfds.features.Text(),
        }),
        supervised_keys=supervised_keys,
        homepage=builder.HOMEPAGE,
        disable_shuffling=True,  # test-set order, as the released .npy files
        metadata=tfds.core.MetadataDict(common.provenance(
            self.CIFAR.name, dataset=self.name,
            source_description=(f"{self.CIFAR.dataset} test set from {self.CIFAR.archive} "
                                f"({self.CIFAR.url}); labels: "
                                f"{self.CIFAR.labels_key.decode()}"),
            preprocessing="none: the 32x32 test image itself",
            file_names="test/00000 ... : the zero-based row of the test batch (also the key's "
                       "file_name); examples are stored in that order",
            source_published_md5=self.CIFAR.md5, source_published_sha256=self.CIFAR.sha256,
            **metadata)),
    )

  def _check_config(self) -> None:
    """Fails for a config that cannot be built, before the source is read."""

  def _task(self, num_items: int):
    raise NotImplementedError

  def _archive(self, dl_manager):
    """The manual dir's archive (any content: stand-ins too) or TFDS build
    (``cifar.find_source``), else TFDS's checked download of the archive."""
    try:
      manual = dl_manager.manual_dir
    except (AssertionError, ValueError):  # No manual dir, or an empty one.
      manual = None
    found = cifar.find_source(manual, self.CIFAR)
    if found is not None:
      return found
    return dl_manager.download(self.CIFAR.url)

  def _record_source(self, source, test: cifar.TestSet) -> None:
    """Which source the build read (metadata.json): its format, its pixels' digest, and for the
    archive its checksums and whether it is the published one."""
    identity = cifar.source_identity(source, self.CIFAR)
    self.info.metadata.update(source_format=identity["format"],
                              source_images_sha256=test.sha256(), source_images=len(test.labels))
    if identity["format"] == "tfds":
      self.info.metadata.update(
          source_tfds_build=identity["tfds_build"],
          source_tfds_file_format=identity["tfds_file_format"],
          source_description=(f"{self.CIFAR.dataset} test set from the TFDS build "
                              f"{identity['tfds_build']} (test split in id order: test_00000 "
                              "is row 0); labels: its label feature"))
      return
    sums = cifar.checksums(source)
    official = sums["md5"] == self.CIFAR.md5 and sums["sha256"] == self.CIFAR.sha256
    if not official:
      logging.warning("%s is not the published %s (md5 %s, expected %s): the build is not "
                      "%s-C/-P", source, self.CIFAR.archive, sums["md5"], self.CIFAR.md5,
                      self.CIFAR.dataset)
    self.info.metadata.update(source_md5=sums["md5"], source_sha256=sums["sha256"],
                              source_is_published_archive=official)

  def _split_generators(self, dl_manager):
    self._check_config()
    source = os.fspath(self._archive(dl_manager))
    test = _test_set(source, self.CIFAR.name)
    self._record_source(source, test)
    items = [common.Item(i, name, int(label), ("cifar", source, i))
             for i, (name, label) in enumerate(zip(test.file_names, test.labels))]
    return {SPLIT: self._generate_examples(self._task(len(items)), items,
                                           SourcePixels(source, self.CIFAR.name))}


class CifarCBuilder(CifarBuilder, skip_registration=True):
  """CIFAR-10-C / CIFAR-100-C: configs ``<corruption>_<severity>``."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "First release: 19 corruptions x 5 severities of the test set, generated in JAX "
               "from per-example keys (root seed 0), stored as lossless PNG.",
  }
  BUILDER_CONFIGS = list(c_configs())

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return self._dataset_info(
        {"image": tfds.features.Image(shape=(cifar.SIZE, cifar.SIZE, 3), encoding_format="png")},
        supervised_keys=("image", "label"),
        corruption=config.corruption, severity=config.severity,
        stored_pixels="lossless PNG of imagenet_cp.corrupt(...) (the CIFAR release has no "
                      "JPEG stage)",
        benchmark=config.corruption in corruptions.BENCHMARK_CORRUPTIONS)

  def _check_config(self) -> None:
    corruptions.get(self.builder_config.corruption)
    if self.builder_config.corruption == "frost":
      assets.frost_textures()  # found and sha256-checked, as for imagenet_c

  def _task(self, num_items: int) -> common.CorruptionTask:
    config = self.builder_config
    return common.CorruptionTask(
        config.corruption, config.severity, "raw", size=cifar.SIZE, index_keys=True,
        chunk_size=common.chunk_size_for(num_items, C_CHUNK_SIZE))


class CifarPBuilder(CifarBuilder, skip_registration=True):
  """CIFAR-10-P / CIFAR-100-P: one config per sequence (noise levels ``_2``, ``_3``)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "First release: 14 sequences (+ noise levels 2, 3) of the test set, generated in "
               "JAX from per-example keys (root seed 0); frames stored as uint8 arrays.",
  }
  BUILDER_CONFIGS = list(p_configs())

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    frames = frame_count(config.perturbation)
    return self._dataset_info(
        {"frames": tfds.features.Tensor(shape=(frames, cifar.SIZE, cifar.SIZE, 3),
                                        dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB)},
        perturbation=config.perturbation, difficulty=config.difficulty, frames=frames,
        stored_frames="uint8 [T, 32, 32, 3] array of imagenet_cp.perturb(..., "
                      "benchmark='cifar'), zlib-compressed (lossless), as the release's .npy rows",
        noise_generator=imagenet_p.NOISE_GENERATOR)

  def _check_config(self) -> None:
    perturbations.get(self.builder_config.perturbation, BENCHMARK)

  def _task(self, num_items: int) -> common.PerturbationTask:
    config = self.builder_config
    return common.PerturbationTask(
        config.perturbation, config.difficulty, "array", benchmark=BENCHMARK, index_keys=True,
        chunk_size=common.chunk_size_for(num_items, P_CHUNK_SIZE))
