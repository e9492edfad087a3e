"""ImageNet-C and ImageNet-P (Hendrycks & Dietterich, ICLR 2019) as pure, jittable JAX functions.

Public API (DESIGN.md)::

  imagenet_cp.CORRUPTIONS, imagenet_cp.BENCHMARK_CORRUPTIONS
  imagenet_cp.corrupt(images, name, severity, key)       # uint8 [..., S, S, 3] -> same; S = 32,
                                                         # 64, 224 or 299 selects the set
  imagenet_cp.PERTURBATIONS
  imagenet_cp.perturb(image, name, key, difficulty=1, benchmark="imagenet")
                                                         # Resize(256) image -> uint8 [T, 224, 224, 3];
                                                         # benchmark: imagenet299, tiny_imagenet,
                                                         # imagenet64, cifar (other sizes and inputs)
  imagenet_cp.perturbation_input(photo, benchmark, name) # the input that set's sequence starts from
  imagenet_cp.perturb_batch(canvas, sizes, name, keys)   # images of different widths on a padded
                                                         # canvas (pad_to_canvas) -> [N, T, 224, 224, 3]
  imagenet_cp.preprocess(image)                          # -> uint8 [224, 224, 3]
  imagenet_cp.preprocess_on_device(images)               # the same in JAX (jittable, bit-exact)
  imagenet_cp.corruption_input(photo, size)              # the input of the -C set at that size
  imagenet_cp.random_corrupt(images, keys, names=None, severities=None)
                                                         # a corruption and severity per image
  imagenet_cp.release_jpeg(images)                       # the release's JPEG q85 stage
  imagenet_cp.example_key(seed, name, severity, file_name)
"""
from imagenet_cp.corruptions import BENCHMARK_CORRUPTIONS, CORRUPTIONS, EXTRA_CORRUPTIONS, corrupt
from imagenet_cp.corruptions.augment import random_corrupt
from imagenet_cp.keys import example_key, example_keys
from imagenet_cp.perturbations import (
    PERTURBATIONS, TEST_PERTURBATIONS, VALIDATION_PERTURBATIONS, pad_to_canvas, perturb, perturb_batch,
    perturbation_input)
from imagenet_cp.perturbations import BENCHMARKS as PERTURBATION_BENCHMARKS
from imagenet_cp.preprocess import corruption_input, preprocess, resize_short_side
from imagenet_cp.preprocess_device import preprocess_on_device
from imagenet_cp.release import release_jpeg

__version__ = "0.1.0"

__all__ = [
    "BENCHMARK_CORRUPTIONS", "CORRUPTIONS", "EXTRA_CORRUPTIONS", "PERTURBATIONS",
    "PERTURBATION_BENCHMARKS", "TEST_PERTURBATIONS", "VALIDATION_PERTURBATIONS", "corrupt",
    "corruption_input",
    "example_key", "example_keys", "pad_to_canvas", "perturb", "perturb_batch",
    "perturbation_input", "preprocess", "preprocess_on_device", "random_corrupt", "release_jpeg",
    "resize_short_side",
]
