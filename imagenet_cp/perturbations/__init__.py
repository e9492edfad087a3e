"""The 14 ImageNet-P perturbation sequences behind one entry point, ``perturb``.

Input: the Resize(256) image (shorter side 256, the other side whatever the photo gives),
because the geometric sequences transform the whole image before CenterCrop(224) and tilt's
focal length depends on the true size.  Output: uint8 ``[T, 224, 224, 3]``, T = 31 (translate:
41), frame 0 as the original makes it.

Batches of different sizes use a **padded canvas plus the true sizes**: ``perturb_batch``
takes ``images`` uint8 [N, Hc, Wc, 3] with image n in the top-left ``sizes[n] = (h, w)`` of
its canvas (``pad_to_canvas`` builds both), and every warp, crop and border uses the true
size, so a photo's frames do not depend on the canvas or on its batch-mates.  One compile per
(sequence, canvas shape); ``pad_to_canvas`` rounds the canvas up to a multiple of 64 pixels so
that a stream of ImageNet photos meets only a few canvas shapes.

``difficulty`` (1..3) only changes the noise sequences' levels (the original's ``_2``/``_3``
datasets); for the other sequences the stride that difficulty means is applied by the metrics.

``benchmark`` picks the released set (``perturbations.sets``): "imagenet" (the above, the
default), "imagenet299", "tiny_imagenet", "imagenet64" or "cifar", each with its own constants,
input and frame size (299, 64, 64, 32); ``perturbation_input(photo, benchmark, name)`` makes the
input a sequence starts from.  The sequences that start from the source photo (imagenet299's
translate, rotate, tilt, shear; tiny_imagenet's and imagenet64's motion_blur) take one photo at a
time (``perturb``; one compile per photo size), not ``perturb_batch``.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from imagenet_cp import keys as _keys
from imagenet_cp import workarounds
from imagenet_cp.corruptions.base import check_level, check_uint8, level_operand, registered
from imagenet_cp.ops.tracing import is_concrete
from imagenet_cp.perturbations import blur, digital, geometric, noise, sets, sized, weather
from imagenet_cp.perturbations.base import CROP, Perturbation
from imagenet_cp.perturbations.sets import BENCHMARKS, perturbation_input  # noqa: F401
from imagenet_cp.preprocess import RESIZE

# The paper's 10 test sequences (Table 3 order), then the 4 validation sequences.
TEST_PERTURBATIONS = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)
VALIDATION_PERTURBATIONS = ("speckle_noise", "gaussian_blur", "spatter", "shear")
PERTURBATIONS = TEST_PERTURBATIONS + VALIDATION_PERTURBATIONS
NOISE_PERTURBATIONS = ("gaussian_noise", "shot_noise", "speckle_noise")
DIFFICULTIES = (1, 2, 3)

REGISTRY: dict[str, Perturbation] = {}
for _module in (noise, blur, weather, digital, geometric):
  REGISTRY.update(_module.REGISTRY)


def get(name: str, benchmark: str = "imagenet") -> Perturbation:
  """The registered sequence ``name`` of ``benchmark``; a clear error for unknown names."""
  sets.get_set(benchmark)
  registry = REGISTRY if benchmark == "imagenet" else sized.REGISTRIES[benchmark]
  return registered(registry, PERTURBATIONS, name, "perturbation")


def num_frames(name: str, benchmark: str = "imagenet") -> int:
  """T of sequence ``name``: 31, or 41 for translate (cifar: translate 16, motion_blur 21;
  tiny_imagenet / imagenet64: translate 31)."""
  return get(name, benchmark).num_frames


def check_difficulty(difficulty) -> int:
  """Difficulty as a Python int in 1..3, else ValueError (checked before anything is traced)."""
  return check_level(difficulty, DIFFICULTIES, "difficulty")


def _check_size(h: int, w: int, what: str) -> None:
  if min(h, w) != RESIZE:
    hint = (" (it looks already cropped to 224; ImageNet-P needs the Resize(256) image before "
            "the crop)" if (h, w) == (CROP, CROP) else "")
    raise ValueError(
        f"{what} must be the Resize(256) image (shorter side 256, e.g. "
        f"imagenet_cp.resize_short_side(photo)); got {h}x{w}{hint}")


def check_image(image, benchmark: str = "imagenet", name: str | None = None) -> None:
  """uint8 [H, W, 3] of the size sequence ``name`` of ``benchmark`` takes (imagenet: min(H, W)
  == 256; the others: ``sets.check_input_shape``), else ValueError naming what is wrong."""
  shape = check_uint8(image, "image")
  if len(shape) != 3 or shape[-1] != 3:
    raise ValueError(f"image must have shape [H, W, 3] (one RGB image), got {shape}")
  if benchmark == "imagenet":
    _check_size(shape[0], shape[1], "image")
  else:
    sets.check_input_shape(shape, benchmark, name)


def _check_batch(images, sizes, keys, benchmark="imagenet", name=None):
  shape = check_uint8(images, "images")
  if len(shape) != 4 or shape[-1] != 3:
    raise ValueError(f"images must be a padded canvas [N, Hc, Wc, 3], got shape {shape}")
  crop = sets.get_set(benchmark).size
  if shape[1] < crop or shape[2] < crop:
    raise ValueError(f"canvas {shape[1]}x{shape[2]} is smaller than the {crop} crop")
  sizes_shape = tuple(getattr(sizes, "shape", np.shape(sizes)))
  if sizes_shape != (shape[0], 2):
    raise ValueError(f"sizes must be int [N, 2] (true height, width), got shape {sizes_shape}")
  # Traced sizes are checked by the caller.
  known = np.asarray(sizes) if is_concrete(sizes) else np.zeros((0, 2), np.int64)
  for h, w in known.tolist():
    if benchmark == "imagenet":
      _check_size(h, w, "every image")
    else:
      sets.check_input_shape((h, w, 3), benchmark, name)
    if h > shape[1] or w > shape[2]:
      raise ValueError(f"true size {h}x{w} exceeds the canvas {shape[1]}x{shape[2]}")
  keys = _keys.as_typed_keys(keys)
  if tuple(keys.shape) != (shape[0],):
    raise ValueError(f"need one key per image: key shape {tuple(keys.shape)} != ({shape[0]},)")
  return keys


def pad_to_canvas(images: Sequence[np.ndarray], multiple: int = 64,
                  canvas_hw: tuple[int, int] | None = None, benchmark: str = "imagenet"):
  """Stacks Resize(256) images (``benchmark``'s set inputs) of different sizes on a zero canvas.

  Returns (canvas uint8 [N, Hc, Wc, 3], sizes int32 [N, 2]); Hc, Wc are the largest sizes
  rounded up to ``multiple`` unless ``canvas_hw`` is given.
  """
  for image in images:
    check_image(image, benchmark)
  sizes = np.array([im.shape[:2] for im in images], np.int32).reshape(-1, 2)
  if canvas_hw is None:
    canvas_hw = tuple(int(-(-m // multiple) * multiple) for m in sizes.max(axis=0))
  canvas = np.zeros((len(images), canvas_hw[0], canvas_hw[1], 3), np.uint8)
  for n, image in enumerate(images):
    canvas[n, :image.shape[0], :image.shape[1]] = image
  return canvas, sizes


@functools.partial(jax.jit, static_argnames=("name", "flags", "benchmark"))
def _perturb_canvas(images, sizes, keys, difficulty, *, name, flags, benchmark="imagenet"):
  """``flags``: ``workarounds.static_flags``, resolved for the images' devices by the caller."""
  seq = get(name, benchmark)

  def one(canvas, size, key):
    return seq.apply(canvas, size[0], size[1], seq.draw(key, difficulty), difficulty)

  with workarounds.override(**dict(flags)):
    if seq.one_image_at_a_time and workarounds.enabled("perturbation_image_loop"):
      return jax.lax.map(lambda args: one(*args), (images, sizes, keys))
    return jax.vmap(one)(images, sizes, keys)


def _flags(images) -> tuple[tuple[str, bool], ...]:
  return workarounds.static_flags(workarounds.resolve(images))


def perturb_batch(images: ArrayLike, sizes: ArrayLike, name: str, keys: ArrayLike,
                  difficulty: int | ArrayLike = 1,
                  benchmark: str = "imagenet") -> jax.Array:
  """ImageNet-P sequence ``name`` for a batch of Resize(256) images on a padded canvas.

  Args:
    images: uint8 [N, Hc, Wc, 3]; image n occupies the top-left ``sizes[n]`` (the rest is
      ignored); see ``pad_to_canvas``.
    sizes: int [N, 2], the true (height, width), shorter side 256.
    name: one of ``PERTURBATIONS``.
    keys: one PRNG key per image, shape [N] (typed or raw uint32 [N, 2]).
    difficulty: 1..3 (noise levels of the noise sequences; no effect on the others); traced
      values are clipped into 1..3, concrete ones outside raise.
    benchmark: the set (``BENCHMARKS``): images and sizes are its set inputs (tiny_imagenet:
      shorter side 64 on a canvas; imagenet299, imagenet64, cifar: [N, S, S, 3] with sizes all
      (S, S)).  Sequences that start from the source photo are refused (use ``perturb``).

  Returns:
    uint8 [N, T, S, S, 3] (S = 224 for imagenet).
  """
  get(name, benchmark)
  if sets.get_set(benchmark).inputs(name) == sets.SOURCE:
    raise ValueError(f"{name} of {benchmark} starts from the source photo (its size is part of "
                     f"the program): call perturb() for one photo at a time")
  difficulty = level_operand(difficulty, DIFFICULTIES, "difficulty")
  keys = _check_batch(images, sizes, keys, benchmark, name)
  images = jnp.asarray(images)
  return _perturb_canvas(images, jnp.asarray(sizes, jnp.int32), keys, difficulty, name=name,
                         flags=_flags(images), benchmark=benchmark)


def perturb(image: ArrayLike, name: str, key: ArrayLike, difficulty: int | ArrayLike = 1,
            benchmark: str = "imagenet") -> jax.Array:
  """Resize(256) uint8 image [256, W, 3] or [H, 256, 3] -> uint8 [T, 224, 224, 3].

  Args:
    image: the Resize(256) image (``imagenet_cp.resize_short_side``), not the 224 crop; for
      another ``benchmark``, what ``perturbation_input(photo, benchmark, name)`` returns.
    name: one of ``PERTURBATIONS``.
    key: the image's PRNG key (``imagenet_cp.example_key``); frame t uses ``fold_in(key, t)``.
    difficulty: 1..3 (only the noise sequences' levels depend on it): a Python, NumPy or JAX
      integer, or traced (clipped into 1..3; a concrete value outside raises).
    benchmark: "imagenet" (default), "imagenet299", "tiny_imagenet", "imagenet64" or "cifar".

  Returns:
    uint8 [T, S, S, 3], S = 224, 299, 64, 64, 32; tiny_imagenet's and imagenet64's motion_blur
    frames are the Resize(64) of the blurred photo, uncropped: [31, 64, W', 3] or [31, H', 64, 3].
  """
  get(name, benchmark)
  difficulty = level_operand(difficulty, DIFFICULTIES, "difficulty")
  check_image(image, benchmark, name)
  return _perturb_one(image, name, key, difficulty, benchmark)


def perturb_photo(photo: ArrayLike, name: str, key: ArrayLike, difficulty: int | ArrayLike = 1,
                  benchmark: str = "tiny_imagenet") -> jax.Array:
  """``perturb`` for a sequence that starts from the source photo, any size (64x64 too).

  ``perturb`` refuses a photo of the set input's shape for those sequences (passing the set
  input instead of the photo is the likely mistake there); a caller that knows it holds the
  photo, e.g. a Tiny ImageNet image, which is 64x64 itself, uses this.  Same arguments and
  frames as ``perturb``; ``name`` must be in ``benchmark``'s ``source_sequences``.
  """
  get(name, benchmark)
  if sets.get_set(benchmark).inputs(name) != sets.SOURCE:
    raise ValueError(f"{name} of {benchmark} does not start from the source photo: call "
                     "perturb() with its set input")
  difficulty = level_operand(difficulty, DIFFICULTIES, "difficulty")
  shape = check_uint8(photo, "photo")
  if len(shape) != 3 or shape[-1] != 3 or min(shape[:2]) < 1:
    raise ValueError(f"photo must be one RGB image [H, W, 3], got shape {shape}")
  return _perturb_one(photo, name, key, difficulty, benchmark)


def _perturb_one(image, name: str, key, difficulty, benchmark: str) -> jax.Array:
  """One checked image's frames (one compile per image shape)."""
  key = _keys.as_typed_keys(key)
  if tuple(key.shape) != ():
    raise ValueError(f"perturb takes one key for one image, got key shape {tuple(key.shape)}")
  h, w = image.shape[:2]
  images = jnp.asarray(image)[None]
  out = _perturb_canvas(images, jnp.array([[h, w]], jnp.int32), key[None], difficulty,
                        name=name, flags=_flags(images), benchmark=benchmark)
  return out[0]


def draw(name: str, key, difficulty: int = 1, benchmark: str = "imagenet"):
  """The random draws of one image's sequence (for tests and the benchmark's replay)."""
  seq = get(name, benchmark)
  return seq.draw(_keys.as_typed_keys(key), jnp.int32(check_difficulty(difficulty)))


def apply(image, name: str, draws, difficulty: int = 1, benchmark: str = "imagenet") -> jax.Array:
  """Sequence ``name`` of ONE Resize(256) image (``benchmark``'s input) with given draws:
  uint8 [T, 224, 224, 3] (``perturb``'s frames)."""
  seq = get(name, benchmark)
  difficulty = check_difficulty(difficulty)
  check_image(image, benchmark, name)
  h, w = image.shape[:2]
  return seq.apply(jnp.asarray(image), jnp.int32(h), jnp.int32(w), draws, jnp.int32(difficulty))
