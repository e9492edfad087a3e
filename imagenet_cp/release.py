"""The released ImageNet-C's last stage: every corrupted image was saved as JPEG quality 85.

That stage moves model errors (hendrycks/robustness#14), so the builders and the on-the-fly
evaluation both apply it by default, through this one function.
"""
from __future__ import annotations

import jax
from jax.typing import ArrayLike

RELEASE_QUALITY = 85


def release_jpeg(images: ArrayLike) -> jax.Array:
  """uint8 [..., H, W, 3] -> uint8 [..., H, W, 3]: the lossy part of a PIL JPEG save at q85."""
  from imagenet_cp.ops import jpeg  # pylint: disable=g-import-not-at-top
  return jpeg.jpeg_roundtrip(images, RELEASE_QUALITY)
