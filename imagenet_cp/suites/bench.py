r"""End-to-end evaluation throughput: generate (corrupt / perturb) + release JPEG + model.

  python -m metrics.bench --model=resnet50 --images=32 --batch_size=32

Times ``suites.corruption.run_task`` (the code ``metrics.run`` runs) in steady state: every task
is run once to compile, then timed.  The model has random weights (speed does not depend on
them), so nothing needs downloading.  Images are the demo photos repeated under distinct names.
Prints images/s (frames/s for ImageNet-P) per task and the implied time of a full evaluation.
"""
from __future__ import annotations

import dataclasses
import time

from absl import app, flags
import jax
import numpy as np

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program, so that
  importing it beside another entry point (imagenet_cp.run, a test) defines no flag twice."""
  flags.DEFINE_string("model", "resnet50", "zoo model (random weights)")
  flags.DEFINE_integer("images", 32, "images per task")
  flags.DEFINE_integer("batch_size", 32, "global batch")
  flags.DEFINE_list("corruptions", ["gaussian_noise", "glass_blur", "fog", "jpeg_compression"],
                    "corruptions to time (severity 3)")
  flags.DEFINE_list("perturbations", ["rotate", "gaussian_noise"], "sequences to time")


IMAGENET_VAL = 50_000


def random_classifier(name: str):
  """(apply_fn on [0, 1] pixels, random variables) of a zoo model, as ``models.classifier``
  builds it (native resize, normalization) but without weights."""
  from imagenet_cp import models  # pylint: disable=g-import-not-at-top
  module, model_spec = models.build(name), models.spec(name)
  side = model_spec.native_crop
  variables = module.init(jax.random.key(0), np.zeros((1, side, side, 3), np.float32))
  return models.classifier_apply(module, model_spec), variables


def _examples(n: int):
  from imagenet_cp import sources  # pylint: disable=g-import-not-at-top
  demo = sources.demo_examples()
  return [dataclasses.replace(demo[i % len(demo)], file_name=f"bench/{i:06d}.png",
                              id=f"bench/{i:06d}.png") for i in range(n)]


def time_task(task, cache, model, opts) -> float:
  """Seconds for one steady-state run of ``task`` (after a compile run)."""
  from imagenet_cp.suites import corruption as evaluation  # pylint: disable=g-import-not-at-top
  evaluation.run_task(task, cache, model, opts, lambda n: None)
  start = time.perf_counter()
  evaluation.run_task(task, cache, model, opts, lambda n: None)
  return time.perf_counter() - start


def main(argv) -> None:
  del argv
  from imagenet_cp.suites import corruption as evaluation  # pylint: disable=g-import-not-at-top
  from imagenet_cp.suites.common import Classifier, Model  # pylint: disable=g-import-not-at-top
  from imagenet_cp import perturbations  # pylint: disable=g-import-not-at-top
  apply_fn, variables = random_classifier(FLAGS.model)
  cache = evaluation.ImageCache(evaluation.SourceListing.from_examples(_examples(FLAGS.images)))
  model = Classifier(Model(FLAGS.model, apply_fn, variables), FLAGS.batch_size)
  opts = evaluation.Options(batch_size=model.batch_size)
  opts.video_batch = max(opts.video_batch // model.devices, 1) * model.devices
  n = FLAGS.images
  print(f"{FLAGS.model}, {n} images, batch {model.batch_size}, {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s)")
  clean = time_task(evaluation.Task("clean"), cache, model, opts)
  print(f"{'clean (model only)':34s} {n / clean:8.1f} images/s")
  per_c = []
  for name in FLAGS.corruptions:
    seconds = time_task(evaluation.Task("corruption", name, 3), cache, model, opts)
    per_c.append(seconds / n)
    print(f"{'corruption ' + name + ' s3':34s} {n / seconds:8.1f} images/s")
  per_p = []
  for name in FLAGS.perturbations:
    seconds = time_task(evaluation.Task("perturbation", name, 1), cache, model, opts)
    frames = perturbations.num_frames(name)
    per_p.append(seconds / n)
    print(f"{'sequence ' + name:34s} {n * frames / seconds:8.1f} frames/s "
          f"({n / seconds:.2f} videos/s)")
  c_hours = IMAGENET_VAL * (1 + 75) * float(np.mean(per_c)) / 3600 if per_c else 0.0
  p_hours = IMAGENET_VAL * 10 * float(np.mean(per_p)) / 3600 if per_p else 0.0
  print(f"implied full evaluation on this machine: ImageNet-C (clean + 75 configs) {c_hours:.1f} h, "
        f"ImageNet-P (10 test sequences) {p_hours:.1f} h  [mean of the timed tasks]")


if __name__ == "__main__":
  define_flags()
  app.run(main)
