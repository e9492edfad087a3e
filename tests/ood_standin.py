"""Stand-in OOD datasets built by the real TFDS builders, and a planted classifier.

Each stand-in source (ImageNet-A/-R folders, an ImageNet-V2 folder, an ImageNet-Sketch zip, a
tar shaped like ILSVRC2012_img_val.tar plus a real.json) is laid out like the original download;
only the DownloadManager's network calls are patched to return those local files, so the
builders' own ``_split_generators`` / ``_generate_examples`` write the datasets into a tmp
data_dir and ``tfds.builder(name, data_dir=...)`` reads them back the normal way.

Every image is one flat colour that encodes an integer code (3 bits per channel); the planted
classifier reads the code back from the mean pixel (flat colours survive JPEG, Resize and
CenterCrop) and returns the logits the test planted for it.
"""
import io
import json
import pathlib
import tarfile
import zipfile
from unittest import mock

import jax.numpy as jnp
import numpy as np
from PIL import Image

NUM_CLASSES = 1000
LEVELS = 8


def code_colour(code: int) -> tuple[int, int, int]:
  """Code in [0, 512) -> the flat RGB colour that encodes it."""
  digits = (code % LEVELS, (code // LEVELS) % LEVELS, code // LEVELS ** 2)
  return tuple(16 + 32 * d for d in digits)


def jpeg(code: int, size=(40, 56), gray: bool = False) -> bytes:
  """A flat JPEG of ``code`` (grayscale codes need equal digits: r = g = b)."""
  colour = code_colour(code)
  if gray:
    assert len(set(colour)) == 1, "a grayscale code needs r = g = b"
    image = Image.new("L", size[::-1], colour[0])
  else:
    image = Image.new("RGB", size[::-1], colour)
  buf = io.BytesIO()
  image.save(buf, format="JPEG", quality=95)
  return buf.getvalue()


def ranked_logits(ranking) -> np.ndarray:
  """float32 [1000] whose descending order starts with ``ranking`` (then 0, 1, 2, ...)."""
  logits = -np.arange(NUM_CLASSES, dtype=np.float32) * 1e-3
  for place, cls in enumerate(ranking):
    logits[cls] = 10.0 - place
  return logits


def planted_apply(variables, images):
  """images float32 [N, 224, 224, 3] in [0, 1] -> the planted logits of each image's code."""
  assert images.shape[1:] == (224, 224, 3), images.shape
  mean = jnp.mean(images, axis=(1, 2)) * 255.0
  digits = jnp.clip(jnp.round((mean - 16.0) / 32.0), 0, LEVELS - 1).astype(jnp.int32)
  code = digits[:, 0] + LEVELS * digits[:, 1] + LEVELS ** 2 * digits[:, 2]
  return variables["table"][code]


def planted_variables(rankings: dict) -> dict:
  """{code: ranking} -> the planted classifier's variables (other codes rank 0, 1, 2, ...)."""
  table = np.stack([ranked_logits(())] * LEVELS ** 3)
  for code, ranking in rankings.items():
    table[code] = ranked_logits(ranking)
  return {"table": jnp.asarray(table)}


# ----------------------------------------------------------------------------------------------
# Building through the real builders.


def _fixed(path):
  return lambda self, *args, **kwargs: path


def build(name: str, data_dir, *, extract=None, download=None, manual_dir=None):
  """Runs the real TFDS builder ``name`` with its downloads replaced by local paths."""
  import tensorflow_datasets as tfds
  patches = {}
  if extract is not None:
    patches["download_and_extract"] = _fixed(pathlib.Path(extract))
  if download is not None:
    patches["download"] = _fixed(pathlib.Path(download))
  config = tfds.download.DownloadConfig(manual_dir=manual_dir,
                                        compute_stats=tfds.download.ComputeStatsMode.SKIP)
  with mock.patch.multiple("tensorflow_datasets.core.download.DownloadManager", **patches):
    tfds.builder(name, data_dir=data_dir).download_and_prepare(download_config=config)


def write_folder(root: pathlib.Path, files: dict) -> pathlib.Path:
  """{relative path: bytes} -> files under ``root``."""
  for rel, data in files.items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
  return root


def write_zip(path: pathlib.Path, files: dict) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  with zipfile.ZipFile(path, "w") as archive:
    for rel, data in files.items():
      archive.writestr(rel, data)
  return path


def write_tar(path: pathlib.Path, files: dict) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  with tarfile.open(path, "w") as archive:
    for rel, data in files.items():
      info = tarfile.TarInfo(rel)
      info.size = len(data)
      archive.addfile(info, io.BytesIO(data))
  return path


def write_real_json(path: pathlib.Path, sets: dict) -> pathlib.Path:
  """real.json: 50,000 label lists in val-file order; ``sets`` {1-based index: labels}."""
  labels = [sets.get(i + 1, []) for i in range(50000)]
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(labels))
  return path
