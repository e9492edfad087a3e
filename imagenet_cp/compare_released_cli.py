r"""Evaluates one model on the released ImageNet-C (or CIFAR-10/100-C) and on our regeneration of
the same images, and reports per corruption and severity both errors, their difference and a
paired bootstrap interval (``suites.compare_released``).

  python -m metrics.compare_released --model=resnet50 --released_dir=/data/ImageNet-C \
      --imagenet_dir=/data/imagenet --output_dir=out/compare_rn50 --image_list=robustbench_5k
  python -m metrics.compare_released --benchmark=cifar10 --model=cifar10/Standard \
      --released_dir=/data/CIFAR-10-C --cifar_dir=/data/cifar --output_dir=out/compare_c10
"""
from __future__ import annotations

import pathlib
import sys

from absl import app, flags, logging

import imagenet_cp
from imagenet_cp.suites import compare_released, inputs
from imagenet_cp.suites.inputs import UsageError

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Zoo model name or 'package.module:function'.")
flags.DEFINE_string("checkpoint", None, "Local checkpoint of the model.")
flags.DEFINE_enum("benchmark", "imagenet", ["imagenet", "cifar10", "cifar100"], "What to compare.")
flags.DEFINE_string("released_dir", None, "The released ImageNet-C tree or tars (CIFAR: .npy).")
flags.DEFINE_string("imagenet_dir", None, "The ImageNet validation set (the clean photos).")
flags.DEFINE_string("cifar_dir", None, "The CIFAR python tarball's folder.")
flags.DEFINE_string("output_dir", None, "Where both runs and the comparison go.")
flags.DEFINE_string("corruptions", "benchmark", "benchmark | all | comma-separated names.")
flags.DEFINE_list("severities", ["1", "2", "3", "4", "5"], "Severities 1..5.")
flags.DEFINE_string("image_list", None, "robustbench_5k or a file of <wnid>/<file> lines.")
flags.DEFINE_integer("max_images", None, "Only the first N released images.")
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_integer("seed", 0, "Root seed of the regeneration's per-example keys.")
flags.DEFINE_integer("bootstrap", 1000, "Paired bootstrap resamples (0: no intervals).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_bool("debug", False, "Show the traceback of user errors.")


def _corruptions() -> tuple[str, ...]:
  named = {"benchmark": imagenet_cp.BENCHMARK_CORRUPTIONS, "all": imagenet_cp.CORRUPTIONS}
  if FLAGS.corruptions in named:
    return tuple(named[FLAGS.corruptions])
  return tuple(n.strip() for n in FLAGS.corruptions.split(",") if n.strip())


def main(argv) -> int:
  del argv
  try:
    if not FLAGS.model or not FLAGS.released_dir or not FLAGS.output_dir:
      raise UsageError("--model, --released_dir and --output_dir are required")
    name = inputs.model_name(FLAGS.model)
    inputs.check_model_benchmark(name, FLAGS.benchmark)
    apply_fn, variables = inputs.load_classifier(name, FLAGS.checkpoint)
    cells = compare_released.compare(
        apply_fn, variables, released_dir=FLAGS.released_dir, output_dir=FLAGS.output_dir,
        benchmark=FLAGS.benchmark, imagenet_dir=FLAGS.imagenet_dir, cifar_dir=FLAGS.cifar_dir,
        corruptions=_corruptions(), severities=[int(s) for s in FLAGS.severities],
        image_list=FLAGS.image_list, max_images=FLAGS.max_images, batch_size=FLAGS.batch_size,
        seed=FLAGS.seed, bootstrap=FLAGS.bootstrap, model_name=name, progress=FLAGS.progress)
  except (UsageError, ValueError, OSError) as err:
    if FLAGS.debug:
      raise
    print(f"error: {err}", file=sys.stderr)
    return 2
  print(compare_released.markdown(cells))
  print("wrote", pathlib.Path(FLAGS.output_dir) / "compare_released.json")
  return 0


def run() -> None:
  logging.set_verbosity(logging.WARNING)
  app.run(lambda argv: sys.exit(main(argv)))


if __name__ == "__main__":
  run()
