r"""Writes built configs in the original release's layout (no TF needed).

CIFAR-10/100-C/-P as the release's .npy files, Tiny-ImageNet-C/-P as its folder trees::

  python -m launch.export_release --dataset=cifar10_c --data_dir=~/tensorflow_datasets \
      --out=CIFAR-10-C            # <corruption>.npy [50000, 32, 32, 3] + labels.npy [50000]
  python -m launch.export_release --dataset=cifar10_p --out=CIFAR-10-P --names=gaussian_noise
  python -m launch.export_release --dataset=tiny_imagenet_c --out=Tiny-ImageNet-C \
      --names=fog_3,fog_5         # <corruption>/<severity>/<wnid>/<file> (the stored JPEGs)
  python -m launch.export_release --dataset=tiny_imagenet_p --out=Tiny-ImageNet-P
                                  # <config>/<wnid>/<stem>/img<t>.png (the frames; no MP4)

Without ``--names`` every complete group is written (CIFAR-C: the corruptions whose five
severities are built; Tiny: every built config).  The layouts and their checks:
``imagenet_cp.datasets.cifar_release`` and ``imagenet_cp.datasets.tiny_release``.
"""
from __future__ import annotations

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags; only when run as a program (importing must not add global absl flags)."""
  flags.DEFINE_enum("dataset", None, ["cifar10_c", "cifar100_c", "cifar10_p", "cifar100_p",
                                      "tiny_imagenet_c", "tiny_imagenet_p"],
                    "The built dataset to export.")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir of the builds (default: TFDS's).")
  flags.DEFINE_string("out", None, "Folder to write the release files to.")
  flags.DEFINE_list("names", None, "What to write: CIFAR: corruptions (-C) or configs (-P); "
                    "Tiny: configs; default: every complete one.")
  flags.mark_flags_as_required(["dataset", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  # pylint: disable-next=g-import-not-at-top
  from imagenet_cp.datasets import cifar_release, tiny_release
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = FLAGS.data_dir or tfds.core.constants.DATA_DIR
  release = tiny_release if FLAGS.dataset in tiny_release.DATASETS else cifar_release
  try:
    release.export(FLAGS.dataset, data_dir, FLAGS.out, names=FLAGS.names)
  except ValueError as err:
    raise app.UsageError(str(err)) from err


if __name__ == "__main__":
  define_flags()
  app.run(main)
