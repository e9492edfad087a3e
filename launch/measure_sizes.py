r"""Stored bytes per example of every image format, measured on real photos, scaled to 50,000.

  python -m launch.measure_sizes --severities=1,3,5 --sequences=gaussian_noise,rotate

Encodes exactly what the builders store (``imagenet_cp.datasets.common``'s encoders) for the
demo photos and scikit-image's astronaut, without TFDS: a few bytes of record overhead per
example are not counted.  Also reports how far the default JPEG, decoded with PIL, is from the
JAX ``release_jpeg`` pixels that the ``_png`` configs store.
"""
from __future__ import annotations

import io
import os

from absl import app
from absl import flags
import numpy as np
from PIL import Image

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the command-line flags; called only when this module runs as a program, so that
  importing it beside another entry point (imagenet_cp.run, a test) defines no flag twice."""
  flags.DEFINE_list("corruptions", None, "Default: the 15 benchmark corruptions.")
  flags.DEFINE_list("severities", ["1", "3", "5"], "Severities to measure.")
  flags.DEFINE_list("sequences", ["gaussian_noise", "brightness", "rotate", "translate"],
                    "ImageNet-P sequences to measure ('' for none).")


FULL = 50_000


def photos() -> dict[str, np.ndarray]:
  """Original-size real photos: the 4 demo photos and scikit-image's astronaut."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  from imagenet_cp import sources  # pylint: disable=g-import-not-at-top
  out = {p.name: sources.demo_photo(p.name) for p in sources.DEMO_PHOTOS}
  out["astronaut"] = np.asarray(skimage.data.astronaut())[..., :3]
  return out


def corruption_sizes(names, severities, images):
  import imagenet_cp  # pylint: disable=g-import-not-at-top
  from imagenet_cp.datasets import common  # pylint: disable=g-import-not-at-top
  crops = np.stack([imagenet_cp.preprocess(im) for im in images.values()])
  files = [f"size/{n}" for n in images]
  rows, diffs = [], []
  for name in names:
    for severity in severities:
      out = np.asarray(imagenet_cp.corrupt(crops, name, severity,
                                           imagenet_cp.example_keys(0, name, severity, files)))
      released = np.asarray(imagenet_cp.release_jpeg(out))
      jpeg = [common.encode_jpeg(x) for x in out]
      png = [common.encode_png(x) for x in released]
      for data, ref in zip(jpeg, released):
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
        diffs.append(np.abs(decoded - ref))
      rows.append((name, severity, np.mean([len(b) for b in jpeg]), np.mean([len(b) for b in png])))
  return rows, np.stack(diffs)


def sequence_sizes(names, images):
  import imagenet_cp  # pylint: disable=g-import-not-at-top
  from imagenet_cp import perturbations  # pylint: disable=g-import-not-at-top
  from imagenet_cp.datasets import common  # pylint: disable=g-import-not-at-top
  resized = [imagenet_cp.resize_short_side(im) for im in images.values()]
  canvas, sizes = perturbations.pad_to_canvas(resized)
  files = [f"size/{n}" for n in images]
  rows = []
  for name in names:
    frames = np.asarray(perturbations.perturb_batch(
        canvas, sizes, name, imagenet_cp.example_keys(0, name, 1, files)))
    png = np.mean([sum(len(common.encode_png(f)) for f in seq) for seq in frames])
    jpeg = np.mean([sum(len(common.encode_jpeg(f)) for f in seq) for seq in frames])
    rows.append((name, frames.shape[1], png, jpeg))
  return rows


def print_table(header: str, rows, unit: float, digits: int) -> tuple[float, float]:
  """``rows`` (name, count, bytes, bytes) as a markdown table of the byte columns in ``unit``;
  returns the two byte columns' means."""
  print(header)
  for name, n, a, b in rows:
    print(f"| {name} | {n} | {a / unit:.{digits}f} | {b / unit:.{digits}f} |")
  return np.mean([r[2] for r in rows]), np.mean([r[3] for r in rows])


def main(argv):
  del argv
  import imagenet_cp  # pylint: disable=g-import-not-at-top
  images = photos()
  names = FLAGS.corruptions or list(imagenet_cp.BENCHMARK_CORRUPTIONS)
  rows, diffs = corruption_sizes(names, [int(s) for s in FLAGS.severities], images)
  jpeg_mean, png_mean = print_table(
      "| corruption | severity | JPEG q85 KB | PNG (`_png`) KB |\n|---|---|---|---|", rows, 1e3, 1)
  print(f"\nmean per image: JPEG {jpeg_mean / 1e3:.1f} KB -> {jpeg_mean * FULL / 1e9:.2f} GB "
        f"per config, {jpeg_mean * FULL * 75 / 1e9:.0f} GB for 75 configs, "
        f"{jpeg_mean * FULL * 95 / 1e9:.0f} GB for 95; "
        f"PNG {png_mean / 1e3:.1f} KB -> {png_mean * FULL / 1e9:.2f} GB per config, "
        f"{png_mean * FULL * 75 / 1e9:.0f} GB for 75")
  print(f"PIL-decoded default JPEG vs release_jpeg (the _png pixels): mean |diff| "
        f"{diffs.mean():.3f}, max {diffs.max()}, pixels differing {np.mean(diffs > 0) * 100:.1f}%")
  sequences = [s for s in FLAGS.sequences if s]
  if sequences:
    seq_rows = sequence_sizes(sequences, images)
    png_mean, jpeg_mean = print_table(
        "\n| sequence | frames | PNG MB/sequence | JPEG q85 MB/sequence |\n|---|---|---|---|",
        seq_rows, 1e6, 2)
    print(f"\nmean per sequence: PNG {png_mean / 1e6:.2f} MB -> {png_mean * FULL / 1e9:.0f} GB per "
          f"config, {png_mean * FULL * 20 / 1e12:.1f} TB for 20 configs; "
          f"JPEG {jpeg_mean / 1e6:.2f} MB -> {jpeg_mean * FULL / 1e9:.0f} GB per config, "
          f"{jpeg_mean * FULL * 20 / 1e12:.2f} TB for 20")


if __name__ == "__main__":
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  app.run(main)
