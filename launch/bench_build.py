r"""Build throughput of the imagenet_c builder against the original script, on this machine.

  python -m launch.bench_build --images=160 --configs=gaussian_noise_3,glass_blur_3,fog_3

Builds a stand-in ``ILSVRC2012_img_val.tar`` of ``--images`` real photos (scikit-image's, saved
as JPEG under the official file names), then for every config: one warm-up build on a single
chunk (compiles), and the timed build of all images through ``download_and_prepare`` (read the
cached crop, corrupt in JAX, encode JPEG q85, write array_record).  The decode + Resize +
CenterCrop pass that fills the crop cache is timed separately, once, as in a real build.

Costs are CPU seconds of this process (user + system, all threads): core-seconds, which is
what a core-hour estimate needs, and robust to other processes sharing the machine.  The
original script's cost per image is timed on the same crops with ``imagenet_cp.oracles.corruptions``
(Hendrycks's code; needs the test extra), one image at a time, as the original ran.

The estimate for a full build = crop pass x 50,000 + sum over configs of (per-image cost x
50,000), with severity 3 standing for all five severities of a corruption.
"""
from __future__ import annotations

import io
import os
import pathlib
import resource
import shutil
import tarfile
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program, so that
  importing it beside another entry point (imagenet_cp.run, a test) defines no flag twice."""
  flags.DEFINE_integer("images", 160, "Images in the stand-in tar.")
  flags.DEFINE_list("configs", None, "imagenet_c configs (default: the 15 benchmark corruptions at "
                    "severity 3).")
  flags.DEFINE_integer("original_images", 2,
                       "Images the original code corrupts per config (0: skip).")
  flags.DEFINE_string("work_dir", None, "Scratch folder (default: a temporary one, deleted).")


FULL_IMAGES = 50_000
SEVERITIES = 5


def cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def write_standin_tar(directory: pathlib.Path, n: int) -> pathlib.Path:
  """A flat tar of n JPEGs (q90) of real photos at their original sizes, official names."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  photos = [np.asarray(getattr(skimage.data, p)())[..., :3]
            for p in ("chelsea", "coffee", "astronaut", "rocket")]
  directory.mkdir(parents=True, exist_ok=True)
  path = directory / "ILSVRC2012_img_val.tar"
  with tarfile.open(path, "w") as tar:
    for i in range(n):
      buf = io.BytesIO()
      Image.fromarray(photos[i % len(photos)]).save(buf, format="JPEG", quality=90)
      info = tarfile.TarInfo(f"ILSVRC2012_val_{i + 1:08d}.JPEG")
      info.size = len(buf.getvalue())
      tar.addfile(info, io.BytesIO(buf.getvalue()))
  return path


def build(config: str, data_dir: pathlib.Path, manual_dir: pathlib.Path, max_examples=None):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(f"imagenet_c/{config}", data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual_dir), max_examples_per_split=max_examples))
  return builder


def crop_pass_seconds(manual_dir: pathlib.Path, data_dir: pathlib.Path) -> float:
  """CPU seconds of decoding + Resize(256) + CenterCrop(224) every stand-in image once."""
  from imagenet_cp.datasets import common  # pylint: disable=g-import-not-at-top
  items = common.list_items(common.SOURCE_IMAGENET, manual_dir)
  start = cpu_seconds()
  common.pixel_source(items, common.CROP_224, common.SOURCE_IMAGENET, data_dir, log=None)
  return cpu_seconds() - start


def encode_seconds(n: int = 16) -> float:
  """CPU seconds per image of the release's JPEG q85 save (the original saved every image so)."""
  from imagenet_cp import bench  # pylint: disable=g-import-not-at-top
  from imagenet_cp.datasets import common  # pylint: disable=g-import-not-at-top
  images = bench.photos_224(n)
  start = cpu_seconds()
  for image in images:
    common.encode_jpeg(image)
  return (cpu_seconds() - start) / n


def reference_seconds(corruption: str, severity: int, n: int) -> float | None:
  """CPU seconds per image of the original code (None if the oracle is not installed)."""
  if n <= 0:
    return None
  try:
    from imagenet_cp import bench  # pylint: disable=g-import-not-at-top
    images = bench.photos_224(n)
    bench.time_reference(corruption, severity, images[:1])  # warm-up: imports, caches
    start = cpu_seconds()
    bench.time_reference(corruption, severity, images)
    return (cpu_seconds() - start) / n
  except Exception as err:  # pylint: disable=broad-except
    print(f"  (original {corruption}: not timed: {type(err).__name__}: {err})")
    return None


def main(argv):
  del argv
  import imagenet_cp.datasets  # pylint: disable=g-import-not-at-top,unused-import
  from imagenet_cp import corruptions  # pylint: disable=g-import-not-at-top
  from imagenet_cp.datasets import common  # pylint: disable=g-import-not-at-top
  configs = FLAGS.configs or [f"{c}_3" for c in corruptions.BENCHMARK_CORRUPTIONS]
  work = pathlib.Path(FLAGS.work_dir or tempfile.mkdtemp(prefix="bench_build_"))
  try:
    manual = work / "manual"
    write_standin_tar(manual, FLAGS.images)
    # One crop cache for the warm-up and the timed builds (a real build shares it the same way).
    os.environ[common.CACHE_ENV] = str(work / "crops")
    crop_s = crop_pass_seconds(manual, work / "data") / FLAGS.images
    encode_s = encode_seconds()
    print(f"crop pass (decode + Resize + CenterCrop, once per source): {crop_s * 1e3:.2f} ms/image")
    print(f"JPEG q85 save: {encode_s * 1e3:.2f} ms/image.  The original script decodes, crops, "
          "corrupts and saves every image once per config: its per-image cost below is its "
          "corruption + these two.")
    print(f"{'config':24s} {'ours ms/img':>11s} {'img/s/core':>10s} {'compile s':>9s} "
          f"{'original ms/img':>15s} {'speed-up':>8s}")
    total_ours = total_ref = 0.0
    for config in configs:
      cfg = imagenet_cp.datasets.ImagenetC.get_builder_config(config)
      start = cpu_seconds()
      build(config, work / "warm", manual, max_examples=1)  # compile + first chunk
      compile_s = cpu_seconds() - start
      start, wall = cpu_seconds(), time.time()
      build(config, work / "data", manual)
      ours = (cpu_seconds() - start) / FLAGS.images
      ref = reference_seconds(cfg.corruption, cfg.severity, FLAGS.original_images)
      ref = ref and ref + crop_s + encode_s
      total_ours += ours
      total_ref += ref or 0.0
      ref_txt = f"{ref * 1e3:15.1f} {ref / ours:7.1f}x" if ref else f"{'-':>15s} {'-':>8s}"
      print(f"{config:24s} {ours * 1e3:11.2f} {1 / ours:10.1f} {compile_s:9.1f} {ref_txt}"
            f"   (wall {FLAGS.images / (time.time() - wall):.1f} img/s)")
      shutil.rmtree(work / "warm", ignore_errors=True)
    per_corruption = total_ours / len(configs)
    full = (crop_s + per_corruption * SEVERITIES * 15) * FULL_IMAGES / 3600
    print(f"\nmean over {len(configs)} configs: {per_corruption * 1e3:.2f} ms/image/config "
          f"(CPU), {1 / per_corruption:.1f} images/s per core")
    print(f"full 75-config ImageNet-C build, estimated: {full:.1f} core-hours "
          f"(crop pass {crop_s * FULL_IMAGES / 3600:.2f} core-hours included)")
    if total_ref:
      ref_mean = total_ref / len(configs)
      print(f"original script (corruption + decode/crop + save) on the same configs: "
            f"{ref_mean * 1e3:.1f} ms/image/config -> "
            f"{ref_mean * 75 * FULL_IMAGES / 3600:.1f} core-hours for 75 configs")
  finally:
    if not FLAGS.work_dir:
      shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  app.run(main)
