"""The constant sets of the ImageNet-P family: one table per released set, rows by difficulty
or frame.

hendrycks/robustness generates each -P set with its own copy of the sequence code
(``ImageNet-P/create_p/``); the copies differ in their constants and in what each sequence
starts from, all of which are data here:

  benchmark       dataset                    script                        frames of
  imagenet        ImageNet-P                 make_imagenet_p.py            224 x 224
  imagenet299     ImageNet-P 299 (Inception) make_imagenet_p_inception.py  299 x 299
  tiny_imagenet   Tiny-ImageNet-P            make_tinyimagenet_p.py        64 x 64
  imagenet64      ImageNet 64x64-P           make_imagenet_64_p.py         64 x 64
  cifar           CIFAR-10-P / CIFAR-100-P   make_cifar_p.py               32 x 32

What each sequence starts from (``SequenceSet.inputs``; ``perturbation_input`` makes it):

- imagenet: the Resize(256) image; noise, blur, snow, brightness and spatter use its
  CenterCrop(224), the geometric sequences (and zoom_blur's frames) warp the whole image first.
- imagenet299: the script's ``resized_center_crop`` (0.875 centre crop, then a 299x299 bilinear
  resize) of the source photo, except translate, rotate, tilt and shear, which warp the SOURCE
  photo and take its ``resized_center_crop`` afterwards (zoom_blur and scale warp the 299 image).
- tiny_imagenet: Resize(64) (shorter side 64) with CenterCrop(64) as ImageNet-P's Resize(256) /
  CenterCrop(224); motion_blur blurs the SOURCE photo and Resize(64)s each frame, uncropped.
- imagenet64: Resize((64, 64)) (aspect ratio not kept); its script is the Tiny script with
  another input, so motion_blur again blurs the SOURCE photo and Resize(64)s it (shorter side 64,
  aspect ratio kept, uncropped).
- cifar: the 32x32 image itself; no crop anywhere (CenterCrop(32) of a 32x32 image).

Frame tables are written as the scripts compute them (``(i - 30) * 4``, ``0.25 + 0.035 * i``);
noise levels are rows for difficulty 1..3 (the scripts' ``<name>``, ``_2``, ``_3`` blocks).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

BENCHMARKS = ("imagenet", "imagenet299", "tiny_imagenet", "imagenet64", "cifar")

# What a sequence of a set starts from (``SequenceSet.inputs``).
SET_INPUT = "set"  # the set's own input (``SequenceSet.input_doc``)
SOURCE = "source"  # the source photo, any size


@dataclasses.dataclass(frozen=True)
class SequenceSet:
  """One script's constants.  Noise rows: difficulty 1..3; frame tables: frame 0..T-1 (the
  noise sequences' frame 0 is the clean image, ``zoom_scales`` are frames 1..30)."""
  benchmark: str
  dataset: str
  script: str
  size: int       # frames are size x size (tiny_imagenet / imagenet64 motion_blur: see ``inputs``)
  input_doc: str  # the set's input, as the error messages and docs describe it

  gaussian_sigma: tuple   # torch.randn_like std
  shot_lambda: tuple      # photons
  speckle_sigma: tuple    # np.random.normal scale

  motion_radius: float
  motion_sigma: float
  motion_angles: tuple    # degrees per frame; its length is the sequence's T

  zoom_scales: tuple      # affine scale of frames 1..30 (running average with frame 0)

  snow_loc: float
  snow_scale: float
  snow_zoom: float
  snow_threshold: float
  snow_radius: float
  snow_sigma: float
  snow_angles: tuple

  brightness_offsets: tuple  # added to HSV value
  translate_shifts: tuple    # horizontal pixels per frame; its length is T
  rotate_angles: tuple
  tilt_degrees: tuple        # phi = theta
  scale_factors: tuple
  shear_angles: tuple

  blur_sigmas: tuple
  blur_truncate: float

  spatter_loc: float
  spatter_scale: float
  spatter_sigma: float
  spatter_threshold: float
  spatter_drift: tuple    # np.convolve(column, drift, mode='same') after every frame
  spatter_intensity: float

  source_sequences: tuple = ()  # sequences that start from the source photo (``SOURCE``)
  # tiny_imagenet / imagenet64 motion_blur: Resize(side) (shorter side) of each blurred source
  # frame, uncropped; 0: the frames are not resized.
  motion_resize_short_side: int = 0

  def num_frames(self, name: str) -> int:
    """T of sequence ``name`` in this set."""
    return {"motion_blur": len(self.motion_angles),
            "translate": len(self.translate_shifts)}.get(name, NUM_FRAMES)

  def inputs(self, name: str) -> str:
    """``SOURCE`` or ``SET_INPUT``: what sequence ``name`` of this set starts from."""
    return SOURCE if name in self.source_sequences else SET_INPUT

  def fixed_input(self) -> bool:
    """Whether the set input is exactly the frame size (no crop; static sizes under jit)."""
    return self.benchmark in ("imagenet299", "imagenet64", "cifar")


NUM_FRAMES = 31
_I = range(NUM_FRAMES)
_ZOOM = tuple(1 + 0.004 * i for i in range(1, NUM_FRAMES))
_PM15 = tuple(float(i - 15) for i in _I)
_SNOW_ANGLES = tuple(float(i * 4 - 150) for i in _I)
_BRIGHTNESS_2 = tuple((i - 15) * 2 / 100. for i in _I)
_SCALE_40_115 = tuple((i * 2.5 + 40) / 100. for i in _I)

IMAGENET = SequenceSet(
    benchmark="imagenet", dataset="ImageNet-P", script="make_imagenet_p.py", size=224,
    input_doc="the Resize(256) image (shorter side 256)",
    gaussian_sigma=(0.03, 0.05, 0.08), shot_lambda=(300., 120., 60.),
    speckle_sigma=(0.05, 0.10, 0.15),
    motion_radius=10, motion_sigma=3, motion_angles=tuple(float((i - 30) * 4) for i in _I),
    zoom_scales=_ZOOM,
    snow_loc=0.05, snow_scale=0.3, snow_zoom=3.0, snow_threshold=0.5, snow_radius=14,
    snow_sigma=4, snow_angles=_SNOW_ANGLES,
    brightness_offsets=_BRIGHTNESS_2,
    translate_shifts=tuple(i - 20 for i in range(41)),
    rotate_angles=_PM15, tilt_degrees=_PM15, scale_factors=_SCALE_40_115, shear_angles=_PM15,
    blur_sigmas=tuple(0.25 + 0.035 * i for i in _I), blur_truncate=6.0,
    spatter_loc=0.65, spatter_scale=0.27, spatter_sigma=3.7, spatter_threshold=0.69,
    spatter_drift=(0.05, 0.1, 0.15, 0.7), spatter_intensity=0.6,
)

IMAGENET299 = SequenceSet(
    benchmark="imagenet299", dataset="ImageNet-P 299 (Inception)",
    script="make_imagenet_p_inception.py", size=299,
    input_doc="the 299x299 resized_center_crop of the photo (0.875 centre crop, bilinear 299x299)",
    gaussian_sigma=(0.035, 0.055, 0.085), shot_lambda=(250., 100., 50.),
    speckle_sigma=(0.06, 0.11, 0.16),
    motion_radius=13, motion_sigma=3, motion_angles=tuple(float((i - 30) * 4) for i in _I),
    zoom_scales=_ZOOM,
    snow_loc=0.05, snow_scale=0.3, snow_zoom=3.0, snow_threshold=0.5, snow_radius=14,
    snow_sigma=4, snow_angles=_SNOW_ANGLES,
    brightness_offsets=_BRIGHTNESS_2,
    translate_shifts=tuple(i - 20 for i in range(41)),
    rotate_angles=_PM15, tilt_degrees=_PM15, scale_factors=_SCALE_40_115, shear_angles=_PM15,
    blur_sigmas=tuple(0.35 + 0.035 * i for i in _I), blur_truncate=6.0,
    spatter_loc=0.65, spatter_scale=0.3, spatter_sigma=4, spatter_threshold=0.69,
    spatter_drift=(0.05, 0.1, 0.15, 0.7), spatter_intensity=0.6,
    source_sequences=("translate", "rotate", "tilt", "shear"),
)

_TINY = dict(
    size=64,
    gaussian_sigma=(0.025, 0.05, 0.075), shot_lambda=(500., 250., 125.),
    speckle_sigma=(0.05, 0.1, 0.15),
    motion_radius=14, motion_sigma=3, motion_angles=tuple(float((i - 30) * 5) for i in _I),
    zoom_scales=_ZOOM,
    snow_loc=0.05, snow_scale=0.28, snow_zoom=2.0, snow_threshold=0.5, snow_radius=10,
    snow_sigma=2.5, snow_angles=_SNOW_ANGLES,
    brightness_offsets=_BRIGHTNESS_2,
    translate_shifts=tuple(i - 15 for i in _I),
    rotate_angles=_PM15, tilt_degrees=_PM15, scale_factors=_SCALE_40_115, shear_angles=_PM15,
    blur_sigmas=tuple(0.35 + 0.014 * i for i in _I), blur_truncate=7.0,
    spatter_loc=0.6, spatter_scale=0.25, spatter_sigma=1.75, spatter_threshold=0.7,
    spatter_drift=(0.2, 0.8), spatter_intensity=0.6,
    source_sequences=("motion_blur",), motion_resize_short_side=64,
)

TINY_IMAGENET = SequenceSet(
    benchmark="tiny_imagenet", dataset="Tiny-ImageNet-P", script="make_tinyimagenet_p.py",
    input_doc="the Resize(64) image (shorter side 64)", **_TINY)

IMAGENET64 = SequenceSet(
    benchmark="imagenet64", dataset="ImageNet 64x64-P", script="make_imagenet_64_p.py",
    input_doc="the Resize((64, 64)) image (64x64, aspect ratio not kept)", **_TINY)

CIFAR = SequenceSet(
    benchmark="cifar", dataset="CIFAR-10-P / CIFAR-100-P", script="make_cifar_p.py", size=32,
    input_doc="the 32x32 CIFAR image",
    gaussian_sigma=(0.02, 0.04, 0.06), shot_lambda=(700., 400., 200.),
    speckle_sigma=(0.05, 0.07, 0.1),
    motion_radius=6, motion_sigma=1.8, motion_angles=tuple(float((i - 20) * 9) for i in range(21)),
    zoom_scales=_ZOOM,
    snow_loc=0.05, snow_scale=0.3, snow_zoom=2.0, snow_threshold=0.5, snow_radius=10,
    snow_sigma=2, snow_angles=_SNOW_ANGLES,
    brightness_offsets=tuple((i - 15) * 1.5 / 100. for i in _I),
    translate_shifts=tuple(i - 7 for i in range(16)),
    rotate_angles=_PM15, tilt_degrees=tuple(0.75 * (i - 15) for i in _I),
    scale_factors=tuple((i * 2 + 70) / 100. for i in _I), shear_angles=_PM15,
    blur_sigmas=tuple(0.3 + 0.015 * i for i in _I), blur_truncate=7.0,
    spatter_loc=0.6, spatter_scale=0.265, spatter_sigma=1.75, spatter_threshold=0.7,
    spatter_drift=(0.2, 0.8), spatter_intensity=0.6,
)

SETS = {s.benchmark: s for s in (IMAGENET, IMAGENET299, TINY_IMAGENET, IMAGENET64, CIFAR)}
assert tuple(SETS) == BENCHMARKS


def get_set(benchmark) -> SequenceSet:
  """The constant set of ``benchmark``; a clear error for anything else."""
  if not isinstance(benchmark, str) or benchmark not in SETS:
    raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
  return SETS[benchmark]


def _hint_for(shape, seq_set: SequenceSet, name: str) -> str:
  """What the wrong input looks like it is, for the error message."""
  h, w = shape[:2]
  guesses = []
  if min(h, w) == 256:
    guesses.append("ImageNet-P's Resize(256) image")
  if (h, w) == (224, 224):
    guesses.append("an ImageNet(-C) 224 crop")
  if (h, w) == (299, 299):
    guesses.append("the imagenet299 input")
  if min(h, w) == 64 and seq_set.benchmark != "tiny_imagenet":
    guesses.append("a 64-pixel input")
  if (h, w) == (32, 32):
    guesses.append("a CIFAR image")
  fix = (f"imagenet_cp.perturbation_input(photo, {seq_set.benchmark!r}, {name!r}) makes it "
         f"from the source photo" if seq_set.benchmark != "cifar" else
         "CIFAR-P takes the CIFAR test image itself")
  looks = f" (it looks like {' or '.join(guesses)})" if guesses else ""
  return f"{looks}; {fix}"


def check_input_shape(shape, benchmark: str, name: str) -> None:
  """ValueError unless ``shape`` [H, W, 3] is what sequence ``name`` of ``benchmark`` takes.

  Set inputs: 256 shorter side (imagenet), 299x299, 64 shorter side (tiny_imagenet), 64x64,
  32x32.  Source photos (``SequenceSet.source_sequences``): any size with at least a pixel
  left after the crop, but not the set's own input shape (passing the set input where the
  original warps or blurs the source photo is the likely mistake; a source photo of exactly
  that shape cannot be told apart and is refused too).
  """
  seq_set = get_set(benchmark)
  h, w = shape[:2]
  if seq_set.inputs(name) == SOURCE:
    own = {"imagenet299": (h, w) == (299, 299), "imagenet64": (h, w) == (64, 64),
           "tiny_imagenet": min(h, w) == 64}[benchmark]
    if own or int(min(h, w) * 0.875) < 1:
      raise ValueError(
          f"{name} of {benchmark} ({seq_set.script}) starts from the source photo, which it "
          f"{'blurs' if name == 'motion_blur' else 'warps'} before resizing; got {h}x{w}, "
          f"{'too small' if not own else 'the shape of ' + seq_set.input_doc}: pass the photo "
          f"itself (imagenet_cp.perturbation_input(photo, {benchmark!r}, {name!r}) returns it)")
    return
  ok = {"imagenet": min(h, w) == 256, "imagenet299": (h, w) == (299, 299),
        "tiny_imagenet": min(h, w) == 64, "imagenet64": (h, w) == (64, 64),
        "cifar": (h, w) == (32, 32)}[benchmark]
  if not ok:
    raise ValueError(f"{name} of {benchmark} takes {seq_set.input_doc}; got {h}x{w}"
                     + _hint_for(shape, seq_set, name))


def perturbation_input(image: Image.Image | np.ndarray, benchmark: str = "imagenet",
                       name: str | None = None) -> np.ndarray:
  """The input sequence ``name`` of ``benchmark`` starts from, made from a source photo.

  Host side (PIL, as the scripts call it), uint8 [H, W, 3]:

  - imagenet: ``Resize(256)``;
  - imagenet299: ``resized_center_crop`` (0.875 centre crop, ``resize((299, 299), BILINEAR)``);
    for translate, rotate, tilt and shear the photo itself;
  - tiny_imagenet: ``Resize(64)`` (shorter side); for motion_blur the photo itself;
  - imagenet64: ``Resize((64, 64))``; for motion_blur the photo itself;
  - cifar: the 32x32 image itself (the original never resizes: anything else is an error).

  Args:
    image: PIL image or uint8 array [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] (converted to RGB
      like the scripts' ``.convert('RGB')``).
    benchmark: one of ``BENCHMARKS``.
    name: the sequence; None gives the set input (what all but ``source_sequences`` take).
  """
  from imagenet_cp.preprocess import (
      as_rgb_array, resize_exact, resize_short_side, resized_center_crop)
  seq_set = get_set(benchmark)
  if name is not None:
    from imagenet_cp.perturbations import PERTURBATIONS
    if name not in PERTURBATIONS:
      raise ValueError(f"unknown perturbation {name!r}; expected one of {', '.join(PERTURBATIONS)}")
  rgb = as_rgb_array(image)
  if name is not None and seq_set.inputs(name) == SOURCE:
    return rgb
  if benchmark == "imagenet":
    return resize_short_side(rgb, 256)
  if benchmark == "imagenet299":
    return resized_center_crop(rgb, 0.875, 299)
  if benchmark == "tiny_imagenet":
    return resize_short_side(rgb, 64)
  if benchmark == "imagenet64":
    return resize_exact(rgb, (64, 64))
  if rgb.shape[:2] != (32, 32):
    raise ValueError(f"CIFAR-P takes the 32x32 CIFAR image itself (make_cifar_p.py never "
                     f"resizes); got {rgb.shape[0]}x{rgb.shape[1]}")
  return rgb
