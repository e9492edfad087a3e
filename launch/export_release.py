r"""Writes built CIFAR-10/100-C/-P configs as the original release's .npy files (no TF needed).

  python -m launch.export_release --dataset=cifar10_c --data_dir=~/tensorflow_datasets \
      --out=CIFAR-10-C            # <corruption>.npy [50000, 32, 32, 3] + labels.npy [50000]
  python -m launch.export_release --dataset=cifar10_p --out=CIFAR-10-P --names=gaussian_noise

Without ``--names`` every complete group is written (-C: the corruptions whose five severities
are built).  The layout and its checks: ``imagenet_cp.datasets.cifar_release``.
"""
from __future__ import annotations

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags; only when run as a program (importing must not add global absl flags)."""
  flags.DEFINE_enum("dataset", None, ["cifar10_c", "cifar100_c", "cifar10_p", "cifar100_p"],
                    "The built dataset to export.")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir of the builds (default: TFDS's).")
  flags.DEFINE_string("out", None, "Folder to write the .npy files to.")
  flags.DEFINE_list("names", None, "Release files to write: corruptions (-C) or configs (-P); "
                    "default: every complete one.")
  flags.mark_flags_as_required(["dataset", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments {argv[1:]}")
  from imagenet_cp.datasets import cifar_release  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = FLAGS.data_dir or tfds.core.constants.DATA_DIR
  try:
    cifar_release.export(FLAGS.dataset, data_dir, FLAGS.out, names=FLAGS.names)
  except ValueError as err:
    raise app.UsageError(str(err)) from err


if __name__ == "__main__":
  define_flags()
  app.run(main)
