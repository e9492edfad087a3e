"""Stand-ins for the benchmarks at other sizes: random-weight models for any image side
(``module:function`` for ``metrics.run``), a ``tiny-imagenet-200.zip`` in the official layout
and a released Tiny-ImageNet-C tree written from our own corrupted images.
"""
import io
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import imagenet_cp
from conftest import photo

SEED = 0
WNIDS = ("n01443537", "n09428293")  # two of the 200 Tiny ImageNet classes
# (file name, wnid, photo): the stand-in's validation images, 64x64 as Tiny ImageNet's.
TINY_VAL = (("val_0.JPEG", WNIDS[1], "chelsea"), ("val_1.JPEG", WNIDS[0], "coffee"),
            ("val_2.JPEG", WNIDS[1], "astronaut"))


def pooled_classifier(classes: int, among=(), seed: int = 3):
  """Any square size: the centred pixels resized to 8x8 -> a random linear map (its top-1 moves
  with small pixel changes, so equal predictions mean equal inputs).  ``among``: the only
  classes it predicts (the stand-ins' labels, so that its errors are neither all nor none)."""
  w = jax.random.normal(jax.random.key(seed), (8 * 8 * 3, classes))
  bias = jnp.full((classes,), -1e4).at[jnp.asarray(among, jnp.int32)].set(0.0) if among else 0.0

  def apply_fn(variables, images):
    pooled = jax.image.resize(images - 0.5, (images.shape[0], 8, 8, 3), "linear")
    return jnp.dot(pooled.reshape(images.shape[0], -1), variables["w"],
                   precision=jax.lax.Precision.HIGHEST) + bias

  return apply_fn, {"w": w}


def tiny_imagenet_model():
  from imagenet_cp.datasets import tiny_imagenet  # pylint: disable=g-import-not-at-top
  return pooled_classifier(200, among=[tiny_imagenet.wnids().index(w) for w in WNIDS])


def imagenet_model(among=()):
  return pooled_classifier(1000, among=among)


def jpeg(pixels, quality: int = 90, optimize: bool = False) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(buf, format="JPEG", quality=quality,
                                                     optimize=optimize)
  return buf.getvalue()


def tiny_photo(name: str) -> np.ndarray:
  return np.asarray(Image.fromarray(photo(name)).resize((64, 64), Image.BILINEAR))


def write_tiny_zip(directory, val=TINY_VAL) -> pathlib.Path:
  """``<directory>/tiny-imagenet-200.zip``: wnids.txt, val_annotations.txt and val images."""
  path = pathlib.Path(directory) / "tiny-imagenet-200.zip"
  path.parent.mkdir(parents=True, exist_ok=True)
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("tiny-imagenet-200/wnids.txt", "".join(f"{w}\n" for w in WNIDS))
    archive.writestr("tiny-imagenet-200/val/val_annotations.txt", "".join(
        f"{name}\t{wnid}\t0\t0\t63\t63\n" for name, wnid, _ in val))
    for name, _, source in val:
      archive.writestr(f"tiny-imagenet-200/val/images/{name}", jpeg(tiny_photo(source)))
  return path


def decoded_val(zip_path) -> dict:
  """{file name: the decoded 64x64 val image} as the zip stores it."""
  with zipfile.ZipFile(zip_path) as archive:
    return {name: np.asarray(Image.open(io.BytesIO(archive.read(
        f"tiny-imagenet-200/val/images/{name}"))).convert("RGB")) for name, _, _ in TINY_VAL}


def write_tiny_c_tree(root, zip_path, corruptions, severities) -> pathlib.Path:
  """``<root>/Tiny-ImageNet-C/<c>/<s>/<wnid>/<file>``: our corruption of each 64x64 image with
  the run's keys, saved as make_tinyimagenet_c.py saved (PIL quality 85, optimize)."""
  images = decoded_val(zip_path)
  names = [name for name, _, _ in TINY_VAL]
  pixels = np.stack([images[n] for n in names])  # Resize((64, 64)) leaves 64x64 unchanged
  tree = pathlib.Path(root) / "Tiny-ImageNet-C"
  for c in corruptions:
    for s in severities:
      out = np.asarray(imagenet_cp.corrupt(pixels, c, s,
                                           imagenet_cp.example_keys(SEED, c, s, names)))
      for (name, wnid, _), image in zip(TINY_VAL, out):
        path = tree / c / str(s) / wnid / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg(image, quality=85, optimize=True))
  return tree
