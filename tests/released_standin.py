"""Stand-ins for the released files, written in their layouts from our own regeneration.

* ImageNet-C: ``corrupt`` with the run's per-example keys, then saved as the original saved
  (``PIL ... save(path, quality=85, optimize=True)``), as a tree or packed into the five tars;
* ImageNet-P: ``perturb`` with the run's keys, then written as MP4 with the original's x264
  settings (``released.videos.write_video``);
* CIFAR-10-C / -P: ``corrupt`` / ``perturb_batch`` at 32 px, stored as the .npy files.
The photos are those of ``imagenet_standin`` (real photos, validation file names).
"""
import io
import pathlib
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

import imagenet_cp
from imagenet_cp import perturbations, sources
from imagenet_cp.released import imagenet_c, videos
from imagenet_cp.suites.images import sequence_key_level

SEED = 0


def tiny_classifier(classes: int = 1000, seed: int = 3):
  """A plain JAX classifier for any square size divisible by 8: 8x8 average-pooled pixels ->
  a random linear map (its top-1 moves with small pixel changes, so equal predictions mean
  equal inputs)."""
  w = jax.random.normal(jax.random.key(seed), (8 * 8 * 3, classes))

  def apply_fn(variables, images):
    n, h, w_, _ = images.shape
    pooled = images.reshape(n, 8, h // 8, 8, w_ // 8, 3).mean(axis=(2, 4)).reshape(n, -1)
    return jnp.dot(pooled, variables["w"], precision=jax.lax.Precision.HIGHEST)

  return apply_fn, {"w": w}


def cifar_classifier():
  return tiny_classifier(classes=10)


def val_photos(imagenet_dir):
  """(file names, wnids, decoded photos) of the validation stand-in, in file-name order."""
  _, files = sources.list_imagenet_val(imagenet_dir)
  wnids = sources.imagenet_wnids()
  photos = [sources.decode(sources.Example(f.file_name, f.label, sources.read_source_file(f)))
            for f in files]
  return [f.file_name for f in files], [wnids[f.label] for f in files], photos


def _jpeg_q85(pixels: np.ndarray) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format="JPEG", quality=85, optimize=True)
  return buf.getvalue()


def imagenet_c_files(imagenet_dir, corruptions, severities) -> dict[str, bytes]:
  """{'<corruption>/<severity>/<wnid>/<file>.JPEG': JPEG bytes} from our corrupted crops."""
  names, wnids, photos = val_photos(imagenet_dir)
  crops = np.stack([imagenet_cp.preprocess(p) for p in photos])
  out = {}
  for c in corruptions:
    for s in severities:
      keys = imagenet_cp.example_keys(SEED, c, s, names)
      corrupted = np.asarray(imagenet_cp.corrupt(crops, c, s, keys))
      for name, wnid, pixels in zip(names, wnids, corrupted):
        out[f"{c}/{s}/{wnid}/{name}"] = _jpeg_q85(pixels)
  return out


def write_tree(root, files: dict[str, bytes]) -> pathlib.Path:
  root = pathlib.Path(root)
  for rel, data in files.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
  return root


def write_tars(root, files: dict[str, bytes]) -> pathlib.Path:
  """The files packed as the release packs them: one tar per category (``TARS``)."""
  root = pathlib.Path(root)
  root.mkdir(parents=True, exist_ok=True)
  by_tar = {}
  for rel, data in sorted(files.items()):
    by_tar.setdefault(imagenet_c.TAR_OF[rel.split("/")[0]], []).append((rel, data))
  for tar_name, members in by_tar.items():
    with tarfile.open(root / tar_name, "w") as tar:
      for rel, data in members:
        info = tarfile.TarInfo(rel)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
  return root


def imagenet_p_frames(imagenet_dir, name: str, difficulty: int) -> dict[str, np.ndarray]:
  """{'<wnid>/<file>': uint8 [T, 224, 224, 3]}: our sequences with the run's keys."""
  names, wnids, photos = val_photos(imagenet_dir)
  resized = [imagenet_cp.resize_short_side(p) for p in photos]
  canvas, sizes = perturbations.pad_to_canvas(resized, multiple=128)
  keys = imagenet_cp.example_keys(SEED, name, sequence_key_level(name, difficulty), names)
  frames = np.asarray(perturbations.perturb_batch(canvas, sizes, name, keys, difficulty))
  return {f"{w}/{n}": f for n, w, f in zip(names, wnids, frames)}


def write_imagenet_p(root, imagenet_dir, name: str, difficulty: int = 1) -> dict:
  """Writes ``<root>/<name>[_d]/<wnid>/<file>.mp4``; returns the frames that were encoded."""
  frames = imagenet_p_frames(imagenet_dir, name, difficulty)
  folder = pathlib.Path(root) / videos.folder_name(name, difficulty)
  for rel, video in frames.items():
    videos.write_video(video, folder / (rel[:-len(".JPEG")] + ".mp4"),
                       noise=name in perturbations.NOISE_PERTURBATIONS)
  return frames


def write_cifar(root, images, labels, corruptions, sequences=(), seed: int = SEED) -> pathlib.Path:
  """CIFAR-10-C (``<c>.npy`` 5N rows, severity-major, ``labels.npy``) and CIFAR-10-P
  (``<p>.npy`` [N, T, 32, 32, 3]) from our regeneration with the run's keys (``seed``: another
  seed stands for the original's unseeded draws)."""
  from imagenet_cp import cifar  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(root)
  (root / "CIFAR-10-C").mkdir(parents=True, exist_ok=True)
  names = [cifar.file_name(i) for i in range(len(images))]
  np.save(root / "CIFAR-10-C" / "labels.npy", np.tile(np.asarray(labels, np.int64), 5))
  for c in corruptions:
    blocks = [np.asarray(imagenet_cp.corrupt(images, c, s, imagenet_cp.example_keys(seed, c, s,
                                                                                    names)))
              for s in range(1, 6)]
    np.save(root / "CIFAR-10-C" / f"{c}.npy", np.concatenate(blocks))
  if sequences:
    (root / "CIFAR-10-P").mkdir(exist_ok=True)
  for p, d in sequences:
    keys = imagenet_cp.example_keys(SEED, p, sequence_key_level(p, d), names)
    sizes = np.tile(np.array([[32, 32]], np.int32), (len(images), 1))
    frames = perturbations.perturb_batch(images, sizes, p, keys, d, benchmark="cifar")
    np.save(root / "CIFAR-10-P" / f"{videos.folder_name(p, d)}.npy", np.asarray(frames))
  return root
