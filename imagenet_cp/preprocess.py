"""Resize(256) + CenterCrop(224), equal to torchvision's transforms on a PIL image.

torchvision's ``Resize`` on a PIL image calls PIL's own bilinear ``Image.resize`` (PIL always
filters with support scaled to the reduction, i.e. antialiased), so the exact way to match it
is to call PIL the same way.  This runs on the host, where JPEG decoding happens anyway.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

RESIZE = 256
CROP = 224


def _as_rgb_pil(image) -> Image.Image:
  """PIL image or uint8 ndarray ([H, W], [H, W, 1], [H, W, 3] or [H, W, 4]) -> RGB PIL image.

  Grayscale, RGBA and palette inputs go through ``.convert('RGB')`` like the original's loader.
  """
  if isinstance(image, Image.Image):
    return image.convert("RGB")
  arr = np.asarray(image)
  if arr.dtype != np.uint8:
    raise ValueError(f"preprocess expects uint8 pixels, got dtype {arr.dtype}")
  if arr.ndim == 3 and arr.shape[-1] == 1:
    arr = arr[..., 0]
  if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
    raise ValueError(
        "preprocess expects one image [H, W], [H, W, 1], [H, W, 3] or [H, W, 4]; "
        f"got shape {arr.shape}")
  if min(arr.shape[:2]) < 1:
    raise ValueError(f"preprocess got an empty image of shape {arr.shape}")
  return Image.fromarray(arr).convert("RGB")


def short_side_size(h: int, w: int, side: int) -> tuple[int, int]:
  """torchvision ``Resize(side)``'s output (h, w): shorter side ``side``, the other
  ``int(side * long / short)``."""
  if w <= h:
    return int(side * h / w), side
  return side, int(side * w / h)


def center_crop_offsets(h: int, w: int, size: int = CROP) -> tuple[int, int]:
  """torchvision ``CenterCrop(size)``'s (top, left): ``int(round((dim - size) / 2.))``."""
  if h < size or w < size:
    raise ValueError(f"center_crop({size}) needs an image at least {size}x{size}, got {h}x{w}")
  return int(round((h - size) / 2.0)), int(round((w - size) / 2.0))


def resize_short_side(image: Image.Image | np.ndarray, size: int = RESIZE) -> np.ndarray:
  """torchvision ``Resize(size)``: shorter side -> size, longer -> int(size * long / short).

  Returns uint8 [H, W, 3].  This is the ImageNet-P input (shorter side 256).
  """
  pil = _as_rgb_pil(image)
  w, h = pil.size
  oh, ow = short_side_size(h, w, size)
  if (ow, oh) != (w, h):
    pil = pil.resize((ow, oh), Image.BILINEAR)
  return np.asarray(pil, dtype=np.uint8)


def as_rgb_array(image) -> np.ndarray:
  """PIL image or uint8 ndarray -> uint8 [H, W, 3], converted like the originals' ``.convert('RGB')``."""
  return np.asarray(_as_rgb_pil(image), dtype=np.uint8)


def resize_exact(image, size_hw: tuple[int, int]) -> np.ndarray:
  """torchvision ``Resize((h, w))`` on PIL: ``img.resize((w, h), BILINEAR)`` (aspect ratio not
  kept; ImageNet 64x64-C/-P's input).  Returns uint8 [h, w, 3]."""
  h, w = size_hw
  return np.asarray(_as_rgb_pil(image).resize((w, h), Image.BILINEAR), dtype=np.uint8)


def resized_center_crop(image, scale: float = 0.875, size: int = 299) -> np.ndarray:
  """The Inception (299) scripts' ``resized_center_crop``: ``center_crop(img, scale)`` with
  ``th, tw = int(h * scale), int(w * scale)`` at ``int(round((h - th) / 2.))``, then
  ``img.resize((size, size), BILINEAR)``.  Returns uint8 [size, size, 3]."""
  pil = _as_rgb_pil(image)
  w, h = pil.size
  th, tw = int(h * scale), int(w * scale)
  if min(th, tw) < 1:
    raise ValueError(f"resized_center_crop({scale}) of a {h}x{w} image leaves no pixel")
  i, j = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
  pil = pil.crop((j, i, j + tw, i + th)).resize((size, size), Image.BILINEAR)
  return np.asarray(pil, dtype=np.uint8)


def center_crop(image: np.ndarray, size: int = CROP) -> np.ndarray:
  """torchvision ``CenterCrop(size)``: offsets ``int(round((dim - size) / 2.))``."""
  top, left = center_crop_offsets(image.shape[0], image.shape[1], size)
  return image[top:top + size, left:left + size]


def preprocess(image: Image.Image | np.ndarray, resize: int = RESIZE, crop: int = CROP
               ) -> np.ndarray:
  """PIL image or uint8 ndarray -> uint8 [crop, crop, 3]; Resize(resize) then CenterCrop(crop)."""
  return np.ascontiguousarray(center_crop(resize_short_side(image, resize), crop))


def corruption_input(image: Image.Image | np.ndarray, size: int = CROP) -> np.ndarray:
  """A source photo as the ImageNet-C script of ``size`` hands it to the corruption.

  224: ``preprocess`` (Resize(256) + CenterCrop(224)); 299 (the Inception set):
  ``resized_center_crop``; 64 (Tiny-ImageNet-C, ImageNet 64x64-C) and 32 (CIFAR-10/100-C):
  ``Resize((size, size))``, which leaves an image already that size (CIFAR's, Tiny-ImageNet's)
  as it is.  Returns uint8 [size, size, 3], what ``imagenet_cp.corrupt`` takes at that size.
  """
  if size == CROP:
    return preprocess(image)
  if size == 299:
    return resized_center_crop(image)
  if size in (32, 64):
    return resize_exact(image, (size, size))
  raise ValueError(f"no ImageNet-C set at {size} px; the sizes are 32, 64, 224 and 299")


# RobustBench's named ImageNet preprocessings (robustbench/data.py ``PREPROCESSINGS``, before
# ToTensor): Res256Crop224 and Crop288 as in robustbench 1.1.1, BicubicRes256Crop224 as in its
# later releases (Resize(256, bicubic) + CenterCrop(224)).
PREPROCESSINGS = ("Res256Crop224", "BicubicRes256Crop224", "Crop288")
DEFAULT_PREPROCESSING = "Res256Crop224"


def center_crop_padded(image: np.ndarray, size: int) -> np.ndarray:
  """torchvision ``CenterCrop(size)`` on PIL, padding with black first where the image is
  smaller: left/top ``(size - dim) // 2``, right/bottom ``(size - dim + 1) // 2``."""
  h, w = image.shape[:2]
  pad_h, pad_w = max(size - h, 0), max(size - w, 0)
  if pad_h or pad_w:
    image = np.pad(image, ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2),
                           (0, 0)))
  return center_crop(image, size)


def robustbench_preprocess(image: Image.Image | np.ndarray, name: str) -> np.ndarray:
  """PIL image or uint8 ndarray -> the uint8 crop RobustBench's ``name`` preprocessing gives:
  [224, 224, 3] (Res256Crop224, BicubicRes256Crop224) or [288, 288, 3] (Crop288)."""
  if name == "Res256Crop224":
    return preprocess(image)
  if name == "BicubicRes256Crop224":
    pil = _as_rgb_pil(image)
    w, h = pil.size
    oh, ow = short_side_size(h, w, RESIZE)
    if (ow, oh) != (w, h):
      pil = pil.resize((ow, oh), Image.BICUBIC)
    return np.ascontiguousarray(center_crop(np.asarray(pil, np.uint8), CROP))
  if name == "Crop288":
    return np.ascontiguousarray(center_crop_padded(as_rgb_array(image), 288))
  raise ValueError(f"unknown preprocessing {name!r}; expected one of {', '.join(PREPROCESSINGS)}")
