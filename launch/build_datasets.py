r"""Builds the imagenet_cp TFDS configs (launch.build_datasets.DATASETS) without TensorFlow.

The ``tfds`` command line imports TensorFlow, Beam and mlcroissant at start-up; this one needs
only tensorflow-datasets (array_record output) and registers the builders itself::

  python -m launch.build_datasets --datasets=imagenet_c --configs=benchmark \
      --data_dir=~/tensorflow_datasets --manual_dir=/data/imagenet
  python -m launch.build_datasets --datasets=imagenet_c_demo,imagenet_p_demo --configs=all
  python -m launch.build_datasets --datasets=imagenet_c --configs=frost_3,fog_5_png \
      --beam_pipeline_options=runner=DirectRunner,direct_num_workers=2
  python -m launch.build_datasets --datasets=cifar10_c,cifar10_p --configs=benchmark \
      --manual_dir=/data/cifar   # holding cifar-10-python.tar.gz (else it is downloaded)
  python -m launch.build_datasets --datasets=tiny_imagenet_c,tiny_imagenet_p --configs=benchmark \
      --manual_dir=/data/tiny    # holding tiny-imagenet-200.zip (or <wnid>/<file> crops)

``--configs`` takes config names (``gaussian_noise_3``, ``gaussian_noise_3_png``, ``rotate``,
``rotate_jpeg``) or the shortcuts ``benchmark`` (-C: the 75 benchmark configs; -P: the 10 test
sequences and their noise levels) and ``all`` (every listed config).
Configs already built are skipped, so rerunning after an interruption completes the build:
TFDS writes each config into an ``incomplete.*`` directory and renames it only when complete.
"""
from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program.

  Importing the module must not add global absl flags: TFDS's own command line turns every
  defined absl flag into an option, and ours (--datasets, ...) would clash with its options.
  """
  flags.DEFINE_list("datasets", ["imagenet_c_demo"], ", ".join(DATASETS) + ".")
  flags.DEFINE_list("configs", ["benchmark"], "Config names, or the shortcuts benchmark / all.")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's, ~/tensorflow_datasets).")
  flags.DEFINE_string("manual_dir", None,
                      "Folder holding ILSVRC2012_img_val.tar or the extracted validation images, "
                      "or cifar-10-python.tar.gz / cifar-100-python.tar.gz (or a TFDS data_dir "
                      "holding a build of TFDS's cifar10 / cifar100), or "
                      "tiny-imagenet-200.zip (or <wnid>/<file> crops) "
                      "(default: <data_dir>/downloads/manual).")
  flags.DEFINE_enum("file_format", "array_record", ["array_record", "tfrecord"],
                    "array_record: read with tfds.data_source (no TF); tfrecord: read with "
                    "tfds.load (needs TensorFlow to write and read).")
  flags.DEFINE_integer("max_examples_per_split", None, "Smoke builds: stop after N examples.")
  flags.DEFINE_string("beam_pipeline_options", None,
                      "Generate through Apache Beam: comma-separated k=v pipeline options, e.g. "
                      "runner=DataflowRunner,project=P,region=R,temp_location=gs://B/tmp.")
  flags.DEFINE_bool("list_configs", False, "Only print which configs would be built.")


DATASETS = ("imagenet_c", "imagenet_p", "imagenet_c_demo", "imagenet_p_demo", "cifar10_c",
            "cifar100_c", "cifar10_p", "cifar100_p", "tiny_imagenet_c", "tiny_imagenet_p",
            "imagenet64_c", "imagenet64_p", "imagenet299_c")


def builder_class(name: str):
  """The registered builder class of one of our datasets."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import imagenet_cp.datasets  # pylint: disable=g-import-not-at-top,unused-import  (registers)
  if name not in DATASETS:
    raise app.UsageError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
  return tfds.builder_cls(name)


def benchmark_configs(cls) -> list[str]:
  """The paper's benchmark part: -C's 15 corruptions, -P's 10 test sequences."""
  from imagenet_cp import corruptions, perturbations  # pylint: disable=g-import-not-at-top
  keep = (corruptions.BENCHMARK_CORRUPTIONS if hasattr(cls.BUILDER_CONFIGS[0], "corruption")
          else perturbations.TEST_PERTURBATIONS)
  return [c.name for c in cls.BUILDER_CONFIGS
          if getattr(c, "corruption", getattr(c, "perturbation", None)) in keep]


def select_configs(cls, requested: list[str]) -> list[str]:
  """Expands shortcuts and checks every name, so a typo fails before any work starts."""
  names = []
  for request in requested:
    if request == "all":
      names += [c.name for c in cls.BUILDER_CONFIGS]
    elif request == "benchmark":
      names += benchmark_configs(cls)
    elif cls.get_builder_config(request) is None:
      raise app.UsageError(f"{cls.name} has no config {request!r} (e.g. "
                           f"{cls.BUILDER_CONFIGS[0].name}; see docs/datasets.md)")
    else:
      names.append(request)
  return list(dict.fromkeys(names))


def download_config(manual_dir, beam_pipeline_options, max_examples_per_split):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  beam_options = None
  if beam_pipeline_options:
    beam = tfds.core.lazy_imports.apache_beam
    beam_options = beam.options.pipeline_options.PipelineOptions(
        flags=[f"--{opt}" for opt in beam_pipeline_options.split(",")])
  return tfds.download.DownloadConfig(
      manual_dir=manual_dir and os.path.expanduser(manual_dir), beam_options=beam_options,
      max_examples_per_split=max_examples_per_split)


def build(dataset: str, config: str, *, data_dir=None, manual_dir=None,
          file_format="array_record", beam_pipeline_options=None,
          max_examples_per_split=None) -> tuple[str, bool]:
  """Builds one config unless it is already built; returns (dataset path, whether it built)."""
  cls = builder_class(dataset)
  builder = cls(config=config, data_dir=data_dir and os.path.expanduser(data_dir),
                file_format=file_format)
  if builder.is_prepared():
    return os.fspath(builder.data_path), False
  builder.download_and_prepare(download_config=download_config(
      manual_dir, beam_pipeline_options, max_examples_per_split))
  return os.fspath(builder.data_path), True


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  plan = [(d, c) for d in FLAGS.datasets for c in select_configs(builder_class(d), FLAGS.configs)]
  for dataset, config in plan:
    if FLAGS.list_configs:
      print(f"{dataset}/{config}")
      continue
    start = time.time()
    path, built = build(dataset, config, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir,
                        file_format=FLAGS.file_format,
                        beam_pipeline_options=FLAGS.beam_pipeline_options,
                        max_examples_per_split=FLAGS.max_examples_per_split)
    verb = f"built in {time.time() - start:.1f} s" if built else "already built, skipped"
    print(f"{dataset}/{config}: {verb} -> {path}", file=sys.stderr)


if __name__ == "__main__":
  define_flags()
  app.run(main)
