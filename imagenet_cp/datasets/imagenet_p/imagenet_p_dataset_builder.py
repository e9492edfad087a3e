"""imagenet_p: ImageNet-P (Hendrycks & Dietterich, ICLR 2019) generated with imagenet_cp in JAX.

Configs, one per sequence: the 10 test sequences, then the 4 validation sequences; the three
noise sequences also come at the original's noise levels ``_2`` and ``_3`` (difficulty 2, 3).
Frames are stored losslessly (PNG) by default; ``<config>_jpeg`` stores them as JPEG q85 instead
(about 8x smaller; not listed in ``BUILDER_CONFIGS``).  The original release stored each
sequence as H.264 video (ffmpeg libx264 -crf 20), a lossy codec: see README.md.
"""
from __future__ import annotations

import dataclasses
import functools

from etils import epath
import tensorflow_datasets as tfds

from imagenet_cp import perturbations
from imagenet_cp.datasets import builder, common
from imagenet_cp.perturbations import sets

FRAME_FORMATS = ("png", "jpeg")  # "png" has no name suffix
NOISE_LEVELS = (1, 2, 3)
STORED_FRAMES = {
    "png": ("lossless PNG of every frame of imagenet_cp.perturb(...): decoded frames equal the "
            "on-the-fly evaluation's input bit for bit"),
    "jpeg": "PIL JPEG quality 85 of every frame of imagenet_cp.perturb(...) (lossy, smaller)",
}


def frame_count(perturbation: str, benchmark: str = "imagenet") -> int:
  """T of a sequence of ``benchmark``'s set (imagenet: 31, translate 41), from its table."""
  return sets.get_set(benchmark).num_frames(perturbation)


@dataclasses.dataclass(kw_only=True)
class ImagenetPConfig(tfds.core.BuilderConfig):
  """One perturbation sequence at one difficulty (noise level), in one frame format."""
  perturbation: str = "gaussian_noise"
  difficulty: int = 1
  frame_format: str = "png"


def config_name(perturbation: str, difficulty: int = 1, frame_format: str = "png") -> str:
  level = "" if difficulty == 1 else f"_{difficulty}"
  suffix = "" if frame_format == "png" else f"_{frame_format}"
  return f"{perturbation}{level}{suffix}"


def sequence_configs() -> list[tuple[str, int]]:
  """(perturbation, difficulty) in release order: each noise sequence followed by its _2, _3."""
  out = []
  for name in perturbations.PERTURBATIONS:
    levels = NOISE_LEVELS if name in perturbations.NOISE_PERTURBATIONS else (1,)
    out += [(name, d) for d in levels]
  return out


def make_config(perturbation: str, difficulty: int = 1, frame_format: str = "png",
                benchmark: str = "imagenet") -> ImagenetPConfig:
  kind = "test" if perturbation in perturbations.TEST_PERTURBATIONS else "validation"
  level = f", noise level {difficulty}" if perturbation in perturbations.NOISE_PERTURBATIONS else ""
  return ImagenetPConfig(
      name=config_name(perturbation, difficulty, frame_format),
      description=f"{perturbation} ({kind} sequence{level}), "
                  f"{frame_count(perturbation, benchmark)} frames; frames: "
                  f"{STORED_FRAMES[frame_format]}.",
      perturbation=perturbation, difficulty=difficulty, frame_format=frame_format)


def parse_config(name: str, benchmark: str = "imagenet") -> ImagenetPConfig | None:
  """The config called ``name`` (with or without ``_jpeg``) of ``benchmark``'s set, or None."""
  return _parse_config(name, benchmark)


@functools.lru_cache(maxsize=None)
def _parse_config(name: str, benchmark: str) -> ImagenetPConfig | None:
  # One cache key per (name, set): TFDS requires the very object its class lists.
  for frame_format in FRAME_FORMATS:
    for perturbation, difficulty in sequence_configs():
      if name == config_name(perturbation, difficulty, frame_format):
        return make_config(perturbation, difficulty, frame_format, benchmark)
  return None


def release_configs(benchmark: str = "imagenet") -> list[ImagenetPConfig]:
  """The listed configs (PNG frames): every sequence, the noise ones with ``_2``, ``_3``."""
  return [parse_config(config_name(p, d), benchmark) for p, d in sequence_configs()]


NOISE_GENERATOR = (
    "noise sequences: frame t's key = fold_in(example key, t); each value i (HWC order) gets the "
    "uint32 word lowbias32(lowbias32(i + k0) ^ k1), (k0, k1) = key_data(frame key) "
    "(imagenet_cp.perturbations.noise.hash_words); normals via the word's uniform and "
    "imagenet_cp's own erfinv, Poisson counts by a guide-table inverse CDF")


class Builder(builder.SourceBuilder):
  """ImageNet-P from the ImageNet validation set (manual download)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "First release: 14 sequences (+ noise levels 2, 3) generated in JAX from "
               "per-example keys (root seed 0); lossless PNG frames, JPEG q85 option.",
      "1.1.0": "Noise sequences (gaussian, shot, speckle) draw each value from a keyed "
               "lowbias32 counter hash of the frame's threefry key (metadata "
               "noise_generator): same distributions, different frames than 1.0.0; the other "
               "sequences' frames are unchanged.",
  }
  BUILDER_CONFIGS = release_configs()
  PIXELS = common.RESIZE_256
  BENCHMARK = "imagenet"  # the sequence set (perturbations.sets): constants, input, frame size
  pkg_dir_path = epath.Path(__file__).parent

  @classmethod
  def parse_config(cls, name: str) -> ImagenetPConfig | None:
    return parse_config(name, cls.BENCHMARK)  # also the ``_jpeg`` variants

  def _starts_from_photo(self) -> bool:
    return sets.get_set(self.BENCHMARK).inputs(self.builder_config.perturbation) == sets.SOURCE

  def _pixels_kind(self) -> str:
    return common.PHOTO if self._starts_from_photo() else self.PIXELS

  def _frame_shape(self) -> tuple:
    seq_set = sets.get_set(self.BENCHMARK)
    if self.builder_config.perturbation == "motion_blur" and seq_set.motion_resize_short_side:
      return (None, None, 3)  # Resize(64) of the blurred photo, uncropped: [64, W'] or [H', 64]
    return (seq_set.size, seq_set.size, 3)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    frames = frame_count(config.perturbation, self.BENCHMARK)
    return self._dataset_info(
        {"frames": tfds.features.Sequence(
            tfds.features.Image(shape=self._frame_shape(), encoding_format=config.frame_format),
            length=frames)},
        perturbation=config.perturbation, difficulty=config.difficulty, frames=frames,
        frame_format=config.frame_format, stored_frames=STORED_FRAMES[config.frame_format],
        input=self._input_doc(), noise_generator=NOISE_GENERATOR)

  def _input_doc(self) -> str:
    """What the config's sequences start from, and how a batch of them is stacked."""
    seq_set = sets.get_set(self.BENCHMARK)
    if self._starts_from_photo():
      return f"the source photo itself, one per call ({seq_set.script})"
    return seq_set.input_doc + ("" if seq_set.fixed_input() else ", padded canvas + true sizes")

  def _check_config(self) -> None:
    # Unimplemented sequences fail here.
    perturbations.get(self.builder_config.perturbation, self.BENCHMARK)

  def _task(self, num_items: int) -> common.PerturbationTask:
    config = self.builder_config
    return common.PerturbationTask(
        config.perturbation, config.difficulty, config.frame_format, benchmark=self.BENCHMARK,
        chunk_size=common.chunk_size_for(num_items, common.P_CHUNK_SIZE))
