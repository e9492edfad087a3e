"""imagenet_c: ImageNet-C (Hendrycks & Dietterich, ICLR 2019) generated with imagenet_cp in JAX.

Configs ``<corruption>_<severity>``: the 15 benchmark corruptions x 5 severities first (the
paper's order), then the 4 extra ones (speckle_noise, gaussian_blur, spatter, saturate).  Each
config also exists with another image format, named by a suffix (not listed in
``BUILDER_CONFIGS``, so ``tfds build imagenet_c`` builds the 95 release-like configs only):

  ``gaussian_noise_3``      PIL JPEG q85 of the corrupted pixels, as the released files (default)
  ``gaussian_noise_3_png``  lossless PNG of ``release_jpeg(corrupted)`` computed in JAX: exactly
                            the pixels the on-the-fly evaluation feeds the model
  ``gaussian_noise_3_raw``  lossless PNG of the corrupted pixels, without the release's JPEG stage
"""
from __future__ import annotations

import dataclasses
import functools

from etils import epath
import tensorflow_datasets as tfds

from imagenet_cp import assets
from imagenet_cp import corruptions
from imagenet_cp.datasets import builder, common
from imagenet_cp.preprocess import CROP

IMAGE_FORMATS = ("jpeg", "png", "raw")  # "jpeg" has no name suffix
STORED_PIXELS = {
    "jpeg": ("PIL JPEG quality 85 (optimize=True) of the corrupted uint8 pixels, as the released "
             "ImageNet-C files were saved; decoded, they are the release's JPEG stage "
             "(imagenet_cp.release_jpeg) up to the decoder"),
    "png": ("lossless PNG of imagenet_cp.release_jpeg(imagenet_cp.corrupt(...)) computed in JAX: "
            "decoded pixels equal the on-the-fly evaluation's input bit for bit"),
    "raw": ("lossless PNG of imagenet_cp.corrupt(...) before the release's JPEG q85 stage "
            "(the on-the-fly input with release_jpeg turned off)"),
}


@dataclasses.dataclass(kw_only=True)
class ImagenetCConfig(tfds.core.BuilderConfig):
  """One corruption at one severity, stored in one image format."""
  corruption: str = "gaussian_noise"
  severity: int = 1
  image_format: str = "jpeg"


def config_name(corruption: str, severity: int, image_format: str = "jpeg") -> str:
  suffix = "" if image_format == "jpeg" else f"_{image_format}"
  return f"{corruption}_{severity}{suffix}"


def make_config(corruption: str, severity: int, image_format: str = "jpeg") -> ImagenetCConfig:
  kind = "benchmark" if corruption in corruptions.BENCHMARK_CORRUPTIONS else "extra (validation)"
  return ImagenetCConfig(
      name=config_name(corruption, severity, image_format),
      description=f"{corruption} ({kind} corruption) at severity {severity}; image: "
                  f"{STORED_PIXELS[image_format]}.",
      corruption=corruption, severity=severity, image_format=image_format)


@functools.lru_cache(maxsize=None)
def parse_config(name: str) -> ImagenetCConfig | None:
  """The config called ``name`` (with or without a format suffix), or None."""
  for image_format in IMAGE_FORMATS:
    for corruption in corruptions.CORRUPTIONS:
      for severity in corruptions.SEVERITIES:
        if name == config_name(corruption, severity, image_format):
          return make_config(corruption, severity, image_format)
  return None


class Builder(builder.SourceBuilder):
  """ImageNet-C from the ImageNet validation set (manual download)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {
      "1.0.0": "First release: 19 corruptions x 5 severities generated in JAX from per-example "
               "keys (root seed 0); JPEG q85 like the released files, PNG options.",
  }
  BUILDER_CONFIGS = [parse_config(config_name(c, s))
                     for c in corruptions.CORRUPTIONS for s in corruptions.SEVERITIES]
  PIXELS = common.CROP_224
  SIZE = CROP  # the image side: selects corrupt()'s constant set (sized_builder: 64, 299)
  CHUNK_SIZE = common.CHUNK_SIZE  # examples per corrupt() call
  pkg_dir_path = epath.Path(__file__).parent
  parse_config = staticmethod(parse_config)  # also the ``_png`` / ``_raw`` variants

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return self._dataset_info(
        {"image": tfds.features.Image(
            shape=(self.SIZE, self.SIZE, 3),
            encoding_format="jpeg" if config.image_format == "jpeg" else "png")},
        supervised_keys=("image", "label"),
        corruption=config.corruption, severity=config.severity,
        image_format=config.image_format, stored_pixels=STORED_PIXELS[config.image_format],
        benchmark=config.corruption in corruptions.BENCHMARK_CORRUPTIONS)

  def _check_config(self) -> None:
    corruptions.get(self.builder_config.corruption)  # unimplemented corruptions fail here
    if self.builder_config.corruption == "frost":
      # The six textures listed in checksums.tsv, found and sha256-checked by imagenet_cp.assets
      # (user cache or the copy packaged with imagenet_cp: no network needed); a missing or bad
      # copy fails here, naming the file, before any image is decoded.
      assets.frost_textures()

  def _task(self, num_items: int) -> common.CorruptionTask:
    config = self.builder_config
    return common.CorruptionTask(config.corruption, config.severity, config.image_format,
                                 size=self.SIZE,
                                 chunk_size=common.chunk_size_for(num_items, self.CHUNK_SIZE))
