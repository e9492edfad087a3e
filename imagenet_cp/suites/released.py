"""The released ImageNet-C/P and CIFAR-10/100-C/P files as the corruption suite's data
(``source="released"``, ``released_dir=...``), read like the built TFDS datasets: the suite asks
``ReleasedSource.batches(task, size)`` for the stored images or frames of a task.

The run's images are those of the first planned released folder (a corruption at its first
severity, else a sequence), optionally cut to an image list (``image_lists``) and
``max_images``; every other planned folder must hold them all (else ValueError: ImageNet-C and
ImageNet-P hold different images, evaluate them in separate runs or pass a list both hold).
Ids: ``<wnid>/<file>.JPEG`` (ImageNet; a video's ``.mp4`` is named by its photo's ``.JPEG``),
``test/00000`` ... (CIFAR).  The clean images are not in the release: with ``imagenet_dir`` /
``cifar_dir`` the clean task reads them from there (same file names, labels checked);
without, the clean task is left out (and relative mCE with it).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Sequence

import jax
import numpy as np

from imagenet_cp import image_lists, sources
from imagenet_cp.released import cifar as released_cifar
from imagenet_cp.released import imagenet_c, videos
from imagenet_cp.released import tiny_imagenet as released_tiny
from imagenet_cp.released.common import ReleasedError
from imagenet_cp.suites import sized
from imagenet_cp.suites.common import Task
from imagenet_cp.suites.images import SourceListing, check_max_images, with_preprocessing
from imagenet_cp.suites.own_data import cifar_listing

SOURCE = "released"


def jpeg_name(file_name: str) -> str:
  """A released file's photo: ``X.mp4`` / ``X.JPEG`` -> ``X.JPEG``."""
  return file_name.rsplit(".", 1)[0] + ".JPEG"


@dataclasses.dataclass
class ReleasedSource:
  """The stored examples of each task: ``{task: reader(ids) -> uint8 array}`` over the run's
  ids (``ids``, in order).  ``applies_release_jpeg``: the files carry ImageNet-C's q85 stage."""
  data_dir: str
  benchmark: str
  ids: list[str]
  readers: dict[Task, Callable[[Sequence[int]], np.ndarray]]
  applies_release_jpeg: bool
  image_format: str = "released"

  @property
  def record(self) -> str:
    return f"released {self.data_dir}"

  def batches(self, task: Task, size: int) -> Iterator[list[dict]]:
    """This process's share of the task's examples (every process_count-th), ``size`` at a time:
    ``{"file_name": id, "image" | "frames": uint8 array}``."""
    key = "frames" if task.kind == "perturbation" else "image"
    mine = range(jax.process_index(), len(self.ids), jax.process_count())
    for start in range(0, len(mine), size):
      rows = list(mine[start:start + size])
      arrays = self.readers[task](rows)
      yield [{"file_name": self.ids[r], key: a} for r, a in zip(rows, arrays)]


def _planned(tasks: Sequence[Task]) -> tuple[list[Task], list[Task]]:
  return ([t for t in tasks if t.kind == "corruption"],
          [t for t in tasks if t.kind == "perturbation"])


def _select(ids: list[str], file_names: list[str], image_list, max_images, where: str
            ) -> tuple[list[int], dict]:
  """Rows of the run's images: the list's (in its order) or all, then the first max_images."""
  rows, extra = list(range(len(ids))), {}
  if image_list is not None:
    chosen = image_lists.load(image_list)
    wnids = [i.split("/")[0] if "/" in i else None for i in ids]
    rows, extra = image_lists.select(chosen, file_names, wnids, where), chosen.identity()
  return rows[:max_images], extra


def _rows_in(files, ids: list[str], what: str) -> list:
  """``files`` (SourceFiles) aligned with ``ids``; ValueError naming the first one missing."""
  by_id = {f"{f.id.rsplit('/', 1)[0]}/{jpeg_name(f.file_name)}": f for f in files}
  missing = [i for i in ids if i not in by_id]
  if missing:
    raise ReleasedError(f"{what} lacks {len(missing)} of the run's {len(ids)} images (first: "
                        f"{missing[0]}): the released folders hold different images; evaluate "
                        "ImageNet-C and ImageNet-P in separate runs, or pass an image list that "
                        "every folder holds")
  return [by_id[i] for i in ids]


def imagenet_release(config, tasks: Sequence[Task]) -> tuple[SourceListing, ReleasedSource]:
  """The listing and stored examples of released ImageNet-C/P under ``config.released_dir``."""
  corruptions, sequences = _planned(tasks)
  c_tree = imagenet_c.imagenet_c(config.released_dir) if corruptions else None
  p_tree = videos.imagenet_p(config.released_dir) if sequences else None
  ids, file_names, labels, readers, identity, extra = _tree_release(
      config, tasks, c_tree, p_tree, imagenet_c.imagenet_label)
  listing = _imagenet_listing(config, ids, file_names, labels, dict(extra, released=identity))
  source = ReleasedSource(str(config.released_dir), "imagenet", ids, readers, True)
  return with_preprocessing(listing, config.preprocessing), source


def tiny_release(config, tasks: Sequence[Task]) -> tuple[SourceListing, ReleasedSource]:
  """The listing and stored examples of released Tiny-ImageNet-C/P under ``released_dir``:
  labels index the 200 sorted Tiny ImageNet wnids (what ImageFolder gives on the release);
  images of other classes (the frost folder's, hendrycks/robustness#60) are left out."""
  # The builders' package registers them with TFDS on import: only Tiny runs pay it.
  from imagenet_cp.datasets import tiny_imagenet as tiny_source
  corruptions, sequences = _planned(tasks)
  where = str(config.released_dir)
  c_tree = (released_tiny.TinyImageNetC(config.released_dir, tiny_source.wnids()).tree
            if corruptions else None)
  p_tree = released_tiny.tiny_imagenet_p(config.released_dir) if sequences else None
  classes = set(tiny_source.wnids())
  ids, file_names, labels, readers, identity, extra = _tree_release(
      config, tasks, c_tree, p_tree, lambda wnid: tiny_source.label(wnid, where),
      keep=lambda wnid: wnid in classes)
  listing = _tiny_listing(config, ids, file_names, labels, dict(extra, released=identity))
  return listing, ReleasedSource(where, "tiny_imagenet", ids, readers, True)


def _tiny_listing(config, ids, file_names, labels, extra) -> SourceListing:
  """The run's images; their clean photos from ``config.tiny_imagenet_dir`` when given (matched
  by file name, or by ``<wnid>/<file>`` in a crops folder; labels checked)."""
  if config.tiny_imagenet_dir is None:
    return SourceListing(SOURCE, str(config.released_dir), ids, file_names, labels,
                         [0] * len(ids), None, extra=extra)
  benchmark = sized.get("tiny_imagenet")
  items, location, _ = sized.photo_items(benchmark, config.tiny_imagenet_dir)
  by_name = {it.file_name: it for it in items}
  chosen = [by_name.get(n, by_name.get(i)) for n, i in zip(file_names, ids)]
  missing = [i for i, it in zip(ids, chosen) if it is None]
  if missing:
    raise ValueError(f"{location} lacks {len(missing)} of the released images (first: "
                     f"{missing[0]}): the clean images must be the released ones' photos")
  wrong = [i for i, it, label in zip(ids, chosen, labels) if it.label != label]
  if wrong:
    raise ValueError(f"{wrong[0]}: its released wnid folder and its label in {location} differ")
  by_id = dict(zip(ids, chosen))
  return SourceListing(
      SOURCE, f"{config.released_dir} (clean: {location})", ids, file_names, labels,
      [sized.encoded_size(it) for it in chosen], None,
      chunk=lambda a, b: sized.photo_chunk(benchmark, chosen[a:b], ids[a:b]),
      extra=dict(extra, clean_source=location),
      photos=lambda wanted: sized.read_photos([by_id[i] for i in wanted]))


def _tree_release(config, tasks: Sequence[Task], c_tree, p_tree, label_of, keep=None):
  """(ids, file names, labels, readers, identity, extra) of a released C tree and P tree: the
  run's images are the first planned folder's (of the wnids ``keep`` keeps), every other
  planned folder must hold them."""
  corruptions, sequences = _planned(tasks)
  kept = (lambda files: files) if keep is None else (
      lambda files: tuple(f for f in files if keep(f.id.split("/")[0])))
  cells = {t: c_tree.cell(t.name, t.level) for t in corruptions}
  cells = {t: dataclasses.replace(c, files=kept(c.files)) for t, c in cells.items()}
  clips = {t: kept(p_tree.files(t.name, t.level)) for t in sequences}
  first = list(cells.values())[0].files if cells else list(clips.values())[0]
  ids = [f"{f.id.split('/')[0]}/{jpeg_name(f.file_name)}" for f in first]
  file_names = [i.split("/")[1] for i in ids]
  rows, extra = _select(ids, file_names, config.image_list, config.max_images,
                        str(config.released_dir))
  ids, file_names = [ids[r] for r in rows], [file_names[r] for r in rows]
  labels = np.array([label_of(i.split("/")[0]) for i in ids], np.int32)
  readers, identity = {}, {"dir": str(config.released_dir)}
  if cells:
    aligned = {t: _rows_in(c.files, ids, f"{t.name}/{t.level}") for t, c in cells.items()}
    readers.update({t: (lambda rows, fs=fs: c_tree.read([fs[r] for r in rows]))
                    for t, fs in aligned.items()})
    identity["imagenet_c"] = c_tree.identity(list(cells.values()))
  if clips:
    aligned = {t: _rows_in(fs, ids, videos.folder_name(t.name, t.level))
               for t, fs in clips.items()}
    readers.update({t: (lambda rows, fs=fs: p_tree.read([fs[r] for r in rows]))
                    for t, fs in aligned.items()})
    identity["imagenet_p"] = p_tree.identity(
        [(videos.folder_name(t.name, t.level), fs) for t, fs in clips.items()])
  return ids, file_names, labels, readers, identity, extra


def _imagenet_listing(config, ids, file_names, labels, extra) -> SourceListing:
  """The run's images; their clean photos read from ``config.imagenet_dir`` when given."""
  if config.imagenet_dir is None:
    return SourceListing(SOURCE, str(config.released_dir), ids, file_names, labels,
                         [0] * len(ids), None, extra=extra)
  path, files = sources.list_imagenet_val(config.imagenet_dir)
  by_name = {f.file_name: f for f in files}
  missing = [i for i in ids if i.split("/")[1] not in by_name]
  if missing:
    raise ValueError(f"{path} lacks {len(missing)} of the released images (first: {missing[0]}): "
                     "the clean images must be the released ones' photos")
  clean = [by_name[n] for n in file_names]
  wrong = [i for i, f, label in zip(ids, clean, labels) if f.label != label]
  if wrong:
    raise ValueError(f"{wrong[0]}: its released wnid folder and its ImageNet label in {path} "
                     "differ (another release or another validation set)")

  def read(start: int, stop: int) -> list[sources.Example]:
    with open(path, "rb") if path.is_file() else _nothing() as handle:
      return [sources.Example(file_names[k], int(labels[k]),
                              sources.read_source_file(clean[k], handle), ids[k])
              for k in range(start, stop)]

  return SourceListing(SOURCE, f"{config.released_dir} (clean: {path})", ids, file_names,
                       labels, [f.size for f in clean], read,
                       extra=dict(extra, clean_source=str(path)))


class _nothing:  # a context manager holding no file
  def __enter__(self):
    return None

  def __exit__(self, *exc):
    return False


def cifar_release(config, tasks: Sequence[Task]) -> tuple[SourceListing, ReleasedSource]:
  """The listing and stored examples of released CIFAR-10/100-C/P under ``released_dir``."""
  corruptions, sequences = _planned(tasks)
  release = released_cifar.CifarRelease(config.released_dir, config.benchmark)
  if config.cifar_dir is not None:
    listing = cifar_listing(config.benchmark, config.cifar_dir, None)
  elif release.c_dir is not None:
    labels = release.labels()
    ids = [f"test/{i:05d}" for i in range(len(labels))]
    listing = SourceListing(SOURCE, str(config.released_dir), ids, ids, labels,
                            [0] * len(ids), None)
  else:
    raise ReleasedError(f"no labels.npy in {config.released_dir}: pass cifar_dir= for the "
                        "labels (CIFAR-P alone carries none)")
  if release.c_dir is not None and config.cifar_dir is not None:
    if not np.array_equal(release.labels()[:len(listing.labels)], listing.labels):
      raise ReleasedError(f"labels.npy in {release.c_dir} differs from the {config.benchmark} "
                          f"test set in {config.cifar_dir}")
  stop = None if config.max_images is None else int(config.max_images)
  readers = {t: (lambda rows, t=t: np.asarray(release.corruption(t.name, t.level)[rows]))
             for t in corruptions}
  readers.update({t: (lambda rows, t=t: np.asarray(release.perturbation(t.name, t.level)[rows]))
                  for t in sequences})
  for t in corruptions:  # shapes checked before any work
    release.corruption(t.name, t.level)
  for t in sequences:
    rows = release.perturbation(t.name, t.level).shape[0]
    if rows < len(listing.ids):
      raise ReleasedError(f"{t.name} (difficulty {t.level}) holds {rows} sequences, the run "
                          f"{len(listing.ids)} images")
  names = [t.name for t in corruptions]
  pairs = [(t.name, t.level) for t in sequences]
  listing = dataclasses.replace(
      listing, ids=listing.ids[:stop], file_names=listing.file_names[:stop],
      labels=listing.labels[:stop], sizes=listing.sizes[:stop],
      source=SOURCE, extra=dict(listing.extra, released=dict(
          release.identity(names, pairs), dir=str(config.released_dir))))
  source = ReleasedSource(str(config.released_dir), config.benchmark, listing.ids, readers, False)
  return listing, source


def open_release(config, tasks: Sequence[Task]) -> tuple[SourceListing, ReleasedSource]:
  """(listing, ReleasedSource) of ``config.released_dir`` for ``config.benchmark``."""
  check_max_images(config.max_images)
  if config.released_dir is None:
    raise ValueError("source='released' needs released_dir= (the released tree, tars or .npy)")
  if config.benchmark == "imagenet":
    return imagenet_release(config, tasks)
  if config.benchmark == "tiny_imagenet":
    return tiny_release(config, tasks)
  if config.benchmark in ("imagenet64", "imagenet299"):
    raise ValueError(f"source='released' with benchmark={config.benchmark!r}: no released "
                     f"{config.benchmark} files are read here (evaluate on the fly from "
                     "imagenet_dir=)")
  return cifar_release(config, tasks)
