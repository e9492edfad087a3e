"""The corruption suite (``metrics.evaluate``): any JAX classifier on ImageNet-C and ImageNet-P.

The evaluation is a list of tasks -- the clean images, each (corruption, severity) and each
(perturbation, difficulty) -- run one after another over the same images.  For every task the
examples are generated on the fly from their per-example keys (``imagenet_cp.example_key``, the
same derivation the TFDS builders use), the model runs data-parallel over all local devices, and
per-example records are kept:

* clean / corruption tasks: the top-1 prediction of every image;
* perturbation tasks: per video, the number of flips and the summed top-5 distance.

Those records are what the exact integer counts of ``metrics.counts`` sum to, and what the
bootstrap resamples; they are keyed by the images' unique ids (paths relative to the source).
With an ``output_dir`` each finished task is written at once (``tasks/<id>.npz``, atomically)
and ``results.json`` is rewritten atomically after every task, so an interrupted run loses at
most the task in flight and a rerun skips finished tasks.  The folder is locked while a run
uses it; ``run.json`` pins what was run (the images' listing digest, the model and a digest of
its weights, seed, JPEG stage, data) and a rerun that differs is refused; every task file read
back is checked (this run's digest, its examples in order, its fields' dtypes and shapes) and
recomputed when it fails, with a line saying why.

The images are the demo photos, ImageNet, or the user's own (``own_data``: arrays, batches or a
TFDS dataset, with their own ids, digest and rule for ImageNet-P on 224 crops).

``benchmark="cifar10"`` / ``"cifar100"`` evaluates CIFAR-10/100-C and -P the same way: the 32x32
test images (``cifar_dir``, or the user's 32x32 arrays) go unchanged to ``corrupt`` (CIFAR-10-C's
constants) and ``perturb_batch(..., benchmark="cifar")``, with no JPEG stage (the CIFAR release
truncates to uint8 and stores arrays), and the figures are the unnormalised ones the field
reports for CIFAR (``metrics.scores.unnormalized_means``).

``tfds_data_dir`` reads the stored examples instead (``images.TfdsSource``): ImageNet's
``imagenet_c`` / ``imagenet_p``, or the other benchmarks' ``<benchmark>_c`` / ``<benchmark>_p``
(there the run's images may come from the builds themselves: ``sized.build_listing``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import time
from typing import Any, Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import imagenet_cp
from imagenet_cp import perturbations as _perturbations
from imagenet_cp.metrics import bootstrap as _bootstrap
from imagenet_cp.metrics.baselines import ALEXNET, Baseline, check_difficulty, check_severity
from imagenet_cp.metrics.baselines import NOISE_PERTURBATIONS as NOISE_SEQUENCES
from imagenet_cp.metrics.counts import ErrorCounts, SequenceCounts, per_video_counts
from imagenet_cp.metrics.ranking import frame_pairs
from imagenet_cp.metrics.scores import summarize, unnormalized_means
from imagenet_cp.preprocess import DEFAULT_PREPROCESSING
from imagenet_cp.suites import distributed
from imagenet_cp.suites import own_data as _own_data
from imagenet_cp.suites import released as _released
from imagenet_cp.suites import sized as _sized
from imagenet_cp.suites.common import (SCHEMA_VERSION, Classifier, Model, Store, Task,
                                       check_finite, file_digest, model_identity, pad_batch,
                                       pad_keys, progress_bar, records_problem, text,
                                       with_results_json)
from imagenet_cp.suites.images import (CHUNK, Chunk, ImageCache, SourceListing, TfdsSource,
                                       check_max_images, sequence_key_level, source_listing)

SECTION = None                       # its figures are results.json's top level
# --suite=auto runs it on these.
AUTO_SOURCES = ("demo", "imagenet", *_sized.BENCHMARKS, "released")


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
  """What to evaluate and how (the arguments of ``evaluate``, see there)."""
  source: str = "demo"
  imagenet_dir: str | None = None
  benchmark: str = "imagenet"   # or one of suites.sized's (source: their clean images)
  cifar_dir: str | None = None
  tiny_imagenet_dir: str | None = None
  corruptions: Sequence[str] = imagenet_cp.CORRUPTIONS
  severities: Sequence[int] = (1, 2, 3, 4, 5)
  perturbations: Sequence[str] = imagenet_cp.PERTURBATIONS
  difficulty: int = 1
  batch_size: int = 32
  seed: int = 0
  release_jpeg: bool | None = None   # None: on for ImageNet, off for CIFAR (its release)
  baseline: Baseline = ALEXNET
  bootstrap: int = 1000
  max_images: int | None = None
  chunk_size: int = CHUNK
  tfds_data_dir: str | None = None
  tfds_image_format: str = "jpeg"
  progress: bool = True
  # source="released": the released files (suites.released); image_list: an image_lists name
  # or file; preprocessing: how the clean crops are made (preprocess.PREPROCESSINGS).
  released_dir: str | None = None
  image_list: str | None = None
  preprocessing: str = DEFAULT_PREPROCESSING
  # The user's own images (``own_data.OwnData``); ``source`` is then its kind: 'arrays',
  # 'batches' or 'tfds'.
  data: _own_data.OwnData | None = dataclasses.field(default=None, compare=False)


def plan(corruptions: Sequence[str] = imagenet_cp.CORRUPTIONS,
         severities: Sequence[int] = (1, 2, 3, 4, 5),
         perturbations: Sequence[str] = imagenet_cp.PERTURBATIONS,
         difficulty: int = 1) -> list[Task]:
  """The clean task, then corruptions x severities, then perturbations at ``difficulty``."""
  for name in corruptions:
    if name not in imagenet_cp.CORRUPTIONS:
      raise ValueError(f"unknown corruption {name!r}; expected some of {', '.join(imagenet_cp.CORRUPTIONS)}")
  for name in perturbations:
    if name not in imagenet_cp.PERTURBATIONS:
      raise ValueError(f"unknown perturbation {name!r}; expected some of {', '.join(imagenet_cp.PERTURBATIONS)}")
  severities = [check_severity(s) for s in severities]
  difficulty = check_difficulty(difficulty)
  tasks = [Task("clean")]
  tasks += [Task("corruption", c, s) for c in corruptions for s in severities]
  tasks += [Task("perturbation", p, difficulty) for p in perturbations]
  return tasks


def check(config: SuiteConfig) -> list[Task]:
  """The planned tasks; ValueError for an unknown name, level or stored-image format."""
  tasks = plan(config.corruptions, config.severities, config.perturbations, config.difficulty)
  check_max_images(config.max_images)
  _own_data.image_size(config.benchmark)  # a known benchmark
  _check_source_dirs(config)
  if is_sized(config):
    _check_sized(config)
  if config.data is not None:
    if config.source != config.data.kind:
      raise ValueError(f"source={config.source!r} with your own data ({config.data.kind}): give "
                       "one source of images")
    if config.imagenet_dir is not None:
      raise ValueError("imagenet_dir= names the ImageNet source; your own data was given too")
    if config.tfds_data_dir is not None:
      raise ValueError("tfds_data_dir= reads ImageNet-C/P as the builders stored them from the "
                       "demo or ImageNet photos; your own data is corrupted on the fly")
    if config.data.kind == "arrays":
      _own_data.check_sequences(tuple(config.data.images.shape[1:3]), bool(config.perturbations),
                                "the images")
  elif config.source in _own_data.SOURCES:
    raise ValueError(f"source={config.source!r} needs the data itself (images=, batches= or "
                     "tfds_name=)")
  _check_released(config, tasks)
  if config.tfds_data_dir is not None:
    tfds_source(config).identity(tasks)  # every planned build exists (else: how to build it)
  return tasks


def tfds_source(config: SuiteConfig) -> TfdsSource:
  """The builds ``config.tfds_data_dir`` holds for ``config``'s benchmark."""
  return TfdsSource(str(config.tfds_data_dir), demo=config.source == "demo",
                    image_format=config.tfds_image_format, benchmark=config.benchmark,
                    jpeg_stage=_release_has_jpeg(config))


def _check_released(config: SuiteConfig, tasks: Sequence[Task]) -> None:
  """What the released source, the image lists and the preprocessings refuse."""
  released = config.source == _released.SOURCE
  if released != (config.released_dir is not None):
    raise ValueError("source='released' and released_dir= go together")
  if released and (config.tfds_data_dir is not None or config.data is not None):
    raise ValueError("source='released' reads the released files; tfds_data_dir= and your own "
                     "data are other sources")
  if released and config.release_jpeg is False and _release_has_jpeg(config):
    raise ValueError(f"release_jpeg=False with the released {config.benchmark}-C: its files "
                     "carry the JPEG q85 stage")
  if is_sized(config) and (config.image_list is not None
                           or config.preprocessing != DEFAULT_PREPROCESSING):
    raise ValueError(f"image_list= and preprocessing= select and crop ImageNet's 224 crops; "
                     f"benchmark={config.benchmark!r} makes its own inputs")
  if config.image_list is not None and config.source not in ("imagenet", _released.SOURCE):
    raise ValueError(f"image_list= selects ImageNet validation images, not {config.source!r}")
  crops_corrupted = not released and config.tfds_data_dir is None and any(
      t.kind == "corruption" for t in tasks)
  if config.preprocessing == "Crop288" and crops_corrupted:
    raise ValueError("preprocessing='Crop288' gives 288x288 clean crops; ImageNet-C is made "
                     "from 224 crops: evaluate ImageNet-C from the released files "
                     "(source='released') or pass corruptions=()")


CIFAR_BENCHMARKS = ("cifar10", "cifar100")


def is_cifar(config: SuiteConfig) -> bool:
  return config.benchmark in CIFAR_BENCHMARKS


def is_sized(config: SuiteConfig) -> bool:
  """A benchmark at another size than ImageNet's 224 (``suites.sized``)."""
  return _sized.get(config.benchmark) is not None


def _release_has_jpeg(config: SuiteConfig) -> bool:
  benchmark = _sized.get(config.benchmark)
  return benchmark is None or benchmark.release_jpeg


def release_jpeg_on(config: SuiteConfig) -> bool:
  """The JPEG q85 stage: as given, else as the benchmark's release (on but for CIFAR)."""
  return _release_has_jpeg(config) if config.release_jpeg is None else bool(config.release_jpeg)


# The folders of each benchmark's clean images (the others' are refused with it).
SOURCE_DIRS = ("imagenet_dir", "cifar_dir", "tiny_imagenet_dir")


def _source_dir_arg(benchmark: str) -> str:
  sized = _sized.get(benchmark)
  return "imagenet_dir" if sized is None else sized.source_arg


def _check_source_dirs(config: SuiteConfig) -> None:
  """A folder of another benchmark's clean images is a mistake, not something to ignore."""
  own = _source_dir_arg(config.benchmark)
  for arg in SOURCE_DIRS:
    if arg != own and getattr(config, arg) is not None:
      raise ValueError(f"{arg}= with benchmark={config.benchmark!r}: its clean images are read "
                       f"from {own}=")


def _check_sized(config: SuiteConfig) -> None:
  """What a benchmark of another size refuses: a JPEG stage its release lacks, a TFDS dataset
  of 224 crops, a source of other images, a missing clean set (before anything is read; with
  ``tfds_data_dir`` the clean set is optional)."""
  benchmark = _sized.get(config.benchmark)
  if config.release_jpeg and not benchmark.release_jpeg:
    raise ValueError(f"release_jpeg=True with benchmark={config.benchmark!r}: the CIFAR-10/100-C "
                     "release truncates to uint8 and stores arrays, with no JPEG stage; leave "
                     "release_jpeg unset (or False)")
  if config.tfds_data_dir is not None and config.release_jpeg is not None and (
      config.release_jpeg != tfds_source(config).applies_release_jpeg):
    raise ValueError(f"release_jpeg={config.release_jpeg} with tfds_data_dir=: the stored "
                     "images' JPEG stage is the build's (tfds_image_format='raw' has none); "
                     "leave release_jpeg unset")
  directory = getattr(config, benchmark.source_arg)
  if config.data is not None:
    if config.data.kind == "tfds":
      raise ValueError(f"benchmark={config.benchmark!r} takes {benchmark.size}x{benchmark.size} "
                       "arrays or batches; a TFDS dataset is decoded to 224 crops")
    if directory is not None:
      raise ValueError(f"{benchmark.source_arg}= names the {config.benchmark} images; your own "
                       "data was given too")
    return
  if config.source not in (config.benchmark, _released.SOURCE):
    raise ValueError(f"source={config.source!r} with benchmark={config.benchmark!r}: the source "
                     f"is the {config.benchmark} images in {benchmark.source_arg}= (or your own "
                     f"{benchmark.size}x{benchmark.size} arrays)")
  if directory is None and (config.source == _released.SOURCE
                            or config.tfds_data_dir is not None):
    return  # the clean task is left out
  if not benchmark.from_photos:
    _own_data.find_cifar_archive(config.benchmark, config.cifar_dir)
  elif directory is None:
    raise ValueError(f"benchmark={config.benchmark!r} needs {benchmark.source_arg}= (its clean "
                     "images)")


def describe(config: SuiteConfig) -> str | None:
  """The line announcing the suite (none: the corruption suite's DEMO line comes first)."""
  del config
  return None


# ----------------------------------------------------------------------------------------------
# Per-example records of one task.


@dataclasses.dataclass
class Options:
  seed: int = 0
  release_jpeg: bool = True
  batch_size: int = 32
  video_batch: int = 4
  sequences: str = "imagenet"  # the perturbation set (perturbations.sets.BENCHMARKS)
  photos: Callable | None = None  # ids -> source photos (SourceListing.photos)
  tfds: TfdsSource | None = None
  ids: dict | None = None     # TFDS file name -> the source image's id
  labels: dict | None = None  # id -> label, checked against the builds' (other benchmarks)


def _image_batch(task: Task, chunk: Chunk, start: int, opts: Options, n: int, model: Classifier):
  """uint8 [n_padded, 224, 224, 3] of a clean or corrupted batch (n real, padded to batch)."""
  crops = model.shard(pad_batch(chunk.crops[start:start + n], opts.batch_size))
  if task.kind == "clean":
    return crops
  names = list(chunk.file_names[start:start + n])
  keys = model.shard(pad_keys(imagenet_cp.example_keys(opts.seed, task.name, task.level, names),
                               opts.batch_size))
  images = imagenet_cp.corrupt(crops, task.name, task.level, keys)
  return imagenet_cp.release_jpeg(images) if opts.release_jpeg else images


def _run_images(task: Task, chunk: Chunk, model: Classifier, opts: Options, tick) -> dict:
  predictions = []
  for start in range(0, len(chunk.file_names), opts.batch_size):
    n = min(opts.batch_size, len(chunk.file_names) - start)
    _, pred = model.top1(_image_batch(task, chunk, start, opts, n, model),
                         chunk.ids[start:start + n], context=task.id)
    predictions.append(pred)
    tick(n)
  return {"predictions": np.concatenate(predictions)}


def video_records(task: Task, frames, names, model: Classifier) -> dict:
  """Frames of a batch of videos (uint8 [B, T, 224, 224, 3], the first ``len(names)`` real) ->
  their per-video flips and summed top-5 distances (what both data sources record)."""
  count = frames.shape[1]
  n = len(names)
  # The padding videos are not classified (on 6 photos in batches of 4 they were a quarter).
  frames = frames[:n]
  logits = model.logits(jnp.reshape(frames, (-1,) + frames.shape[2:]))
  flips, distance, nan = per_video_counts(
      jnp.reshape(logits, frames.shape[:2] + logits.shape[-1:]),
      noise=task.name in NOISE_SEQUENCES, difficulty=task.level)
  check_finite(nan, names, task.id)
  pairs = len(frame_pairs(count, task.name in NOISE_SEQUENCES, task.level)[0])
  return {"flips": np.asarray(flips)[:n], "distance": np.asarray(distance)[:n],
          "pairs_per_video": np.int64(pairs), "frames": np.int64(count)}


def _run_photo_videos(task: Task, chunk: Chunk, model: Classifier, opts: Options, tick) -> dict:
  """A sequence that starts from the source photo: one photo per call (its size is part of the
  program), each video classified alone (its frames' shape may be the photo's own)."""
  level = sequence_key_level(task.name, task.level)
  keys = imagenet_cp.example_keys(opts.seed, task.name, level, list(chunk.file_names))
  parts = []
  for i, photo in enumerate(_photos(chunk, opts)):
    frames = _perturbations.perturb_photo(photo, task.name, keys[i], task.level,
                                          benchmark=opts.sequences)
    parts.append(video_records(task, frames[None], chunk.ids[i:i + 1], model))
    tick(1)
  return _concat_records(parts)


def _photos(chunk: Chunk, opts: Options) -> list:
  """The chunk's source photos; your own arrays are their own photos (used whole)."""
  if opts.photos is not None:
    return opts.photos(chunk.ids)
  return [chunk.canvas[i, :h, :w] for i, (h, w) in enumerate(chunk.sizes)]


def _starts_from_photo(task: Task, opts: Options) -> bool:
  seq_set = _perturbations.sets.get_set(opts.sequences)
  return seq_set.inputs(task.name) == _perturbations.sets.SOURCE


def _run_videos(task: Task, chunk: Chunk, model: Classifier, opts: Options, tick) -> dict:
  if _starts_from_photo(task, opts):
    return _run_photo_videos(task, chunk, model, opts, tick)
  level = sequence_key_level(task.name, task.level)
  parts = []
  for start in range(0, len(chunk.file_names), opts.video_batch):
    n = min(opts.video_batch, len(chunk.file_names) - start)
    names = list(chunk.file_names[start:start + n])
    keys = model.shard(pad_keys(imagenet_cp.example_keys(opts.seed, task.name, level, names),
                                opts.video_batch))
    canvas = model.shard(pad_batch(chunk.canvas[start:start + n], opts.video_batch))
    sizes = model.shard(pad_batch(chunk.sizes[start:start + n], opts.video_batch))
    frames = _perturbations.perturb_batch(canvas, sizes, task.name, keys, task.level,
                                          benchmark=opts.sequences)
    parts.append(video_records(task, frames, chunk.ids[start:start + n], model))
    tick(n)
  return _concat_records(parts)


def _run_tfds(task: Task, model: Classifier, opts: Options, tick) -> dict:
  """Records of this process's share of the stored examples of ``task``."""
  step = opts.video_batch if task.kind == "perturbation" else opts.batch_size
  if task.kind == "perturbation" and _starts_from_photo(task, opts):
    step = 1  # its frames take each photo's own aspect: one video per call, as on the fly
  parts = []
  for examples in opts.tfds.batches(task, step):
    examples = _run_examples(examples, opts, task)
    if not examples:
      continue
    # The builders store the file name; the run's id of that image.
    names = [text(e["file_name"]) for e in examples]
    names = np.array([opts.ids[n] for n in names] if opts.ids else names)
    if task.kind == "corruption":
      pixels = model.shard(pad_batch(np.stack([e["image"] for e in examples]), opts.batch_size))
      _, pred = model.top1(pixels, names, context=task.id)
      parts.append({"predictions": pred, "ids": names})
    else:
      # [B, T, S, S, 3]
      frames = jnp.asarray(np.stack([np.asarray(e["frames"]) for e in examples]))
      parts.append(dict(video_records(task, frames, names, model), ids=names))
    tick(len(examples))
  if not parts:
    raise ValueError(f"{task.id}: {opts.tfds.record} holds none of the run's images (in this "
                     "process's share): it was built from other images")
  return _concat_records(parts)


def _run_examples(examples: list[dict], opts: Options, task: Task) -> list[dict]:
  """The stored examples of the run's images (a build may hold more: max_images, another
  listing); ValueError where a build's label differs from the run's."""
  if opts.ids is None:
    return examples
  kept = [e for e in examples if text(e["file_name"]) in opts.ids]
  for e in kept if opts.labels is not None else ():
    image = opts.ids[text(e["file_name"])]
    if int(e["label"]) != opts.labels[image]:
      raise ValueError(f"{opts.tfds.dataset(task)}: {image} is labelled {int(e['label'])} there, "
                       f"{opts.labels[image]} in the run's images: it was built from other images")
  return kept


def _concat_records(parts: list[dict]) -> dict:
  """Per-example arrays concatenated; per-task scalars (pairs_per_video, frames) kept."""
  return {k: (np.concatenate([p[k] for p in parts]) if np.ndim(parts[0][k]) else parts[0][k])
          for k in parts[0]}


def run_task(task: Task, cache: ImageCache, model: Classifier, opts: Options, tick) -> dict:
  """Per-example records of ``task`` over every chunk of the cache (this process's share)."""
  if opts.tfds is not None and task.kind != "clean":
    return _run_tfds(task, model, opts, tick)
  run = _run_videos if task.kind == "perturbation" else _run_images
  return _concat_records([dict(run(task, chunk, model, opts, tick), ids=np.array(chunk.ids))
                          for chunk in cache])


def counts_from_records(tasks_records: dict[Task, dict], labels: np.ndarray):
  """Exact counts (``ErrorCounts`` / ``SequenceCounts``) from per-example records."""
  clean, errors, sequences = None, {}, {}
  for task, rec in tasks_records.items():
    if task.kind == "perturbation":
      sequences[(task.name, task.level)] = SequenceCounts(
          frames=int(rec["frames"]), noise=task.name in NOISE_SEQUENCES, difficulty=task.level,
          videos=int(rec["flips"].shape[0]), flips=int(rec["flips"].sum()),
          distance=int(rec["distance"].sum()), nonfinite=0)
      continue
    counts = ErrorCounts(errors=int((rec["predictions"] != labels).sum()),
                         examples=int(labels.shape[0]), nonfinite=0)
    if task.kind == "clean":
      clean = counts
    else:
      errors[(task.name, task.level)] = counts
  return clean, errors, sequences


# ----------------------------------------------------------------------------------------------
# The entry points.


def run(config: SuiteConfig, model: Model, output_dir=None,
        log: Callable[[str], None] = print) -> dict:
  """Evaluates ``model`` as ``config`` says; returns the ``results.json`` dict (``evaluate``)."""
  tasks = check(config)
  sized = _sized.get(config.benchmark)
  release_jpeg = release_jpeg_on(config)
  opts = Options(seed=config.seed, release_jpeg=release_jpeg, batch_size=config.batch_size,
                 sequences="imagenet" if sized is None else sized.sequences)
  baseline = config.baseline
  if sized is not None:
    _check_model_classes(model, sized)
  if config.source == _released.SOURCE:
    listing, opts.tfds = _released.open_release(config, tasks)
  elif config.data is None and config.tfds_data_dir is not None and sized is not None and (
      getattr(config, sized.source_arg) is None):
    listing = _sized.build_listing(sized, tfds_source(config), tasks, config.max_images)
  elif config.data is None and sized is not None and sized.from_photos:
    listing = _sized.photo_listing(sized, getattr(config, sized.source_arg), config.max_images)
  elif config.data is None and sized is not None:
    listing = _own_data.cifar_listing(config.benchmark, config.cifar_dir, config.max_images)
  elif config.data is None:
    listing = source_listing(config.source, config.imagenet_dir, config.max_images,
                             config.image_list, config.preprocessing)
  else:
    _own_data.check_resumable(config.data, output_dir)
    listing = _own_data.listing(config.data, config.max_images, bool(config.perturbations))
  if sized is not None or config.data is not None:
    classes = _own_data.model_classes(model.apply_fn, model.variables,
                                      _own_data.image_size(config.benchmark) or 224)
    _own_data.check_classes(listing.labels, classes, bool(config.perturbations))
    baseline = (_own_data.cifar_baseline(baseline, config.benchmark) if sized is not None
                else _own_data.baseline_for(baseline, classes))
  if listing.read is None and listing.chunk is None and any(t.kind == "clean" for t in tasks):
    where = "the release holds" if config.source == _released.SOURCE else "the TFDS builds hold"
    log(f"{where} no clean images: the clean task is left out (pass "
        f"{_source_dir_arg(config.benchmark)}= for it)")
    tasks = [t for t in tasks if t.kind != "clean"]
  names, labels = listing.ids, listing.labels
  opts.photos = listing.photos
  if opts.tfds is not None:
    opts.release_jpeg = release_jpeg = opts.tfds.applies_release_jpeg
  elif config.tfds_data_dir is not None:
    opts.tfds = tfds_source(config)
    opts.release_jpeg = release_jpeg = opts.tfds.applies_release_jpeg
    opts.ids = _ids_by_file_name(listing)
    builds = opts.tfds.identity(tasks)
    if sized is not None:  # ImageNet runs record only `data`: their earlier folders resume
      _check_build_sizes(builds, len(listing))
      opts.labels = dict(zip(listing.ids, listing.labels.tolist()))
  pid, pcount = jax.process_index(), jax.process_count()
  started = time.time()
  run_info = dict(listing.identity(), **model_identity(model), seed=config.seed,
                  release_jpeg=release_jpeg, file_names_sha256=file_digest(names),
                  data="on the fly" if opts.tfds is None else opts.tfds.record)
  if sized is not None:  # absent for ImageNet: folders of earlier ImageNet runs still resume
    run_info["benchmark"] = config.benchmark
    if opts.labels is not None:  # the builds read: data_dir, each dataset's version and size
      run_info["tfds"] = builds
  recorded = {"source_location": listing.location, "weights_file": model.weights_file}
  store = Store(output_dir, run_info, log) if output_dir is not None and pid == 0 else None
  with store or contextlib.nullcontext():  # releases the folder's lock
    cache_dir = pathlib.Path(output_dir) / "cache" if output_dir is not None else None
    # The released source stores every task but the clean one.
    needs_cache = any(t.kind == "clean" for t in tasks) or opts.tfds is None
    cache = (ImageCache(listing, cache_dir, pid, pcount, config.chunk_size, log)
             if needs_cache else [])
    classifier = Classifier(model, config.batch_size)
    opts.batch_size = classifier.batch_size
    opts.video_batch = max(opts.video_batch // classifier.devices, 1) * classifier.devices
    records = {task: saved for task in tasks
               if store and (saved := store.load(task, _task_check(task, names))) is not None}
    todo_mask = distributed.from_first(np.array([task not in records for task in tasks], np.bool_))
    todo = [task for task, left in zip(tasks, todo_mask) if left]
    if records:
      log(f"resuming: {len(records)} of {len(tasks)} tasks already done in {output_dir}")
    per_task = sum(len(c.ids) for c in cache) if cache else len(listing) // pcount
    bar = progress_bar(len(todo) * per_task, config.progress,
                       smoothing=0.05)
    summary = lambda bootstrap: _results(records, labels, names, tasks, baseline,
                                         dict(run_info, **recorded), bootstrap=bootstrap,
                                         started=started, unnormalized=sized is not None)
    for task in todo:
      bar.set_description(task.id)
      records[task] = _gather_records(run_task(task, cache, classifier, opts, bar.update), names)
      if store:
        store.save(task, records[task])
        store.write_json("results.json", summary(0))
    bar.close()
    results = summary(config.bootstrap)
    return with_results_json(store, results)


def _check_model_classes(model: Model, benchmark: _sized.Benchmark) -> None:
  """A model of another input size or number of classes than the benchmark's is refused before
  any image is read (CIFAR keeps its rule: labels must index the logits)."""
  side = benchmark.size
  try:
    classes = _own_data.model_classes(model.apply_fn, model.variables, side)
  except (TypeError, ValueError) as err:
    raise ValueError(f"{model.name} does not take {side}x{side} images, the size of "
                     f"benchmark={benchmark.name!r} ({type(err).__name__}: {err})") from None
  if not benchmark.name.startswith("cifar") and classes != benchmark.classes:
    raise ValueError(f"{model.name} returns {classes} logits per image; benchmark="
                     f"{benchmark.name!r} has {benchmark.classes} classes")


def _check_build_sizes(builds: dict, images: int) -> None:
  """Every planned build holds at least the run's images (which ones: checked as they are read)."""
  for name, build in builds["datasets"].items():
    if build["examples"] < images:
      raise ValueError(f"{name} in {builds['data_dir']} holds {build['examples']} examples, the "
                       f"run {images} images: it was built from other images")


def _ids_by_file_name(listing: SourceListing) -> dict:
  """{file name: id}: TFDS datasets hold one example per file name, so the run's images must
  have distinct file names to be matched with them."""
  ids = dict(zip(listing.file_names, listing.ids))
  if len(ids) != len(listing.ids):
    seen = set()
    twice = next(n for n in listing.file_names if n in seen or seen.add(n))
    raise ValueError(f"{listing.location} holds several images named {twice}; datasets built by "
                     "the TFDS builders cannot tell them apart (evaluate on the fly instead)")
  return ids


def _task_check(task: Task, names: Sequence[str]) -> Callable[[dict], str | None]:
  """What a saved task file must hold: this run's images in order, integer records per image
  and, for a sequence, its integer frame and pair counts."""
  if task.kind == "perturbation":
    fields = ("flips", "distance", "pairs_per_video", "frames")
  else:
    fields = ("predictions",)
  kinds = {k: "iu" for k in fields}

  def problem(records: dict) -> str | None:
    reason = records_problem(records, names, required=fields, kinds=kinds)
    if reason is None and task.kind == "perturbation":
      for key in ("pairs_per_video", "frames"):
        if np.ndim(records[key]) != 0:
          return f"{key} is not one number"
    return reason

  return problem


def evaluate(apply_fn: Callable, variables: Any, *,
             images: np.ndarray | jax.Array | None = None,
             labels: np.ndarray | jax.Array | Sequence[int] | None = None,
             batches: Iterable[tuple[Any, Any]] | None = None,
             source_id: str | None = None,
             tfds_name: str | None = None,
             tfds_split: str | None = None,
             tfds_dir: str | os.PathLike | None = None,
             source: str | None = None,
             imagenet_dir: str | os.PathLike | None = None,
             benchmark: str = "imagenet",
             cifar_dir: str | os.PathLike | None = None,
             tiny_imagenet_dir: str | os.PathLike | None = None,
             corruptions: Sequence[str] = imagenet_cp.CORRUPTIONS,
             severities: Sequence[int] = (1, 2, 3, 4, 5),
             perturbations: Sequence[str] = imagenet_cp.PERTURBATIONS,
             difficulty: int = 1,
             batch_size: int = 32,
             seed: int = 0,
             release_jpeg: bool | None = None,
             output_dir: str | os.PathLike | None = None,
             baseline: Baseline = ALEXNET,
             bootstrap: int = 1000,
             max_images: int | None = None,
             model_name: str = "user model",
             chunk_size: int = CHUNK,
             tfds_data_dir: str | os.PathLike | None = None,
             tfds_image_format: str = "jpeg",
             released_dir: str | os.PathLike | None = None,
             image_list: str | None = None,
             preprocessing: str = DEFAULT_PREPROCESSING,
             progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
  """Evaluates a classifier on ImageNet-C and ImageNet-P (or CIFAR-10/100-C and -P); returns the
  ``results.json`` dict.

  Args:
    apply_fn: ``apply_fn(variables, images) -> logits [N, C]`` with images float32
      [N, 224, 224, 3] pixels in [0, 1] (``models.classifier`` gives one for every zoo model);
      C = 1000 on the demo and ImageNet, any C >= 2 on your own data (>= 5 for ImageNet-P).
    variables: the model's variables.
    images, labels: your own data: uint8 [N, H, W, 3] (NumPy or JAX) and int class indices [N].
      224x224 images are the clean crops, fed to the corruptions as they are (no re-encoding,
      no resize); ImageNet-P cannot be made from crops (its sequences transform the Resize(256)
      image before the crop), so with them pass ``perturbations=()`` (else ValueError).  Images
      with shorter side 256 are Resize(256) images: ImageNet-P takes them whole, ImageNet-C
      their center 224 crop.  Ids: ``f"{source_id or sha256[:16]}/{index}"``.
    batches: your own data as an iterable of ``(images, labels)`` batches of that form (one
      image size), read once at the start and kept in host memory.  Without ``source_id`` a
      run does not resume into an ``output_dir`` that holds one (ValueError).
    source_id: a name for your arrays or batches (their ids' prefix); with or without it the
      sha256 of the pixels and labels is recorded and compared on resume.
    tfds_name, tfds_split, tfds_dir: any TFDS image classification dataset, e.g.
      ``tfds_name="imagenet_v2/matched-frequency", tfds_split="test"``, prepared as array_record
      in ``tfds_dir`` (None: TFDS's default); decoded with PIL, Resize(256) + CenterCrop(224).
    source: 'demo' (packaged photos, not comparable with the paper; the default without your
      own data) or 'imagenet' (the validation set in ``imagenet_dir``: the official tar or an
      extracted folder); with a CIFAR ``benchmark``, that benchmark's name (the default).
    benchmark: 'imagenet' (default), 'cifar10' or 'cifar100': CIFAR-10/100-C and -P from the
      32x32 test set in ``cifar_dir`` (or your own 32x32 ``images``), corrupted with
      CIFAR-10-C's constants and made into CIFAR-P sequences, no JPEG stage; apply_fn then takes
      float32 [N, 32, 32, 3] in [0, 1].  Ids and key names ``test/00000`` ... (the CIFAR TFDS
      builders' file names).  The report is unnormalised (``mean_error``, ``mean_accuracy``,
      ``mean_flip_probability``); CE / FR only with a ``baseline`` you measured.
      'tiny_imagenet', 'imagenet64', 'imagenet299' (``suites.sized``): Tiny-ImageNet-C/-P
      from the Tiny ImageNet validation set in ``tiny_imagenet_dir``, ImageNet 64x64-C/-P and
      the 299 px ImageNet-C (with the imagenet299 -P set) from the validation set in
      ``imagenet_dir``, made as the TFDS builders make them, with the JPEG q85 stage; apply_fn
      takes float32 [N, S, S, 3] (S = 64, 64, 299) and must return 200 / 1000 / 1000 logits
      (else ValueError before any image is read); unnormalised figures as for CIFAR.
    cifar_dir: the folder holding cifar-10-python.tar.gz / cifar-100-python.tar.gz, or a TFDS
      data_dir holding a build of TFDS's cifar10 / cifar100 (``cifar.find_source``; its test
      split in id order, the same images; recorded as ``cifar_tfds``).
    tiny_imagenet_dir: the folder holding tiny-imagenet-200.zip, its extracted folder, or
      <wnid>/<file> crops (``datasets.tiny_imagenet``).
    corruptions, severities, perturbations, difficulty: what to evaluate (all by default).
    batch_size: global batch (rounded up to a multiple of the local device count).
    seed: the root seed of the per-example keys (0 = the TFDS builders' default).
    release_jpeg: apply the released ImageNet-C's JPEG q85 stage (None: on for ImageNet; off,
      and True refused, for CIFAR, whose release has no JPEG stage).
    output_dir: where to save per-task records and results (resumable); None keeps everything
      in memory.
    baseline: the normalising model (AlexNet's published numbers by default).  On your own data
      AlexNet's apply only to a 1000-class model; with another number of classes the report
      has errors, flip probabilities and uT5D, and CE / FR / T5D only with a ``baseline`` you
      measured (``metrics.baseline_from_counts``).
    bootstrap: resamples for the 95% confidence intervals (0 disables them).
    max_images: evaluate only the first N source images.
    chunk_size: images per preprocessing chunk (the unit split between hosts).
    tfds_data_dir: read the corrupted images and the frames from datasets built by the TFDS
      builders there (``imagenet_c`` / ``imagenet_p``, or their ``_demo`` twins for the demo
      source; ``<benchmark>_c`` / ``<benchmark>_p`` for another benchmark, no
      ``imagenet299_p``) instead of generating them; the clean images still come from
      ``source``.  At the other sizes the clean folder is optional: without it the run's images
      are those the builds store (file names and labels; no clean task).  Every planned build
      must exist (else ValueError naming it and its build command, before anything runs); the
      stored labels are checked against the run's, and the builds' versions recorded.
    tfds_image_format: which stored -C variant to read: 'jpeg', 'png' or 'raw' (the CIFAR
      builds store one, the release's: leave 'jpeg').
    released_dir: with ``source='released'``, the released files (``suites.released``):
      ImageNet-C's tree or tars and ImageNet-P's MP4 tree, or CIFAR-10/100-C/P's .npy files;
      the clean images from ``imagenet_dir`` / ``cifar_dir`` when given (else no clean task).
    image_list: ImageNet images to evaluate, in order: 'robustbench_5k' (RobustBench's subset)
      or a text file of ``<wnid>/<file>`` lines (``image_lists``); recorded, checked on resume.
    preprocessing: how the clean crops are made: 'Res256Crop224' (default), RobustBench's
      'BicubicRes256Crop224' or 'Crop288' (288 crops; ImageNet-C then from the release).

  Bad arguments (a wrong dtype or shape, labels of another length, two sources) are a
  ValueError naming the problem before anything is read or traced.  With several processes
  (``jax.distributed``), each evaluates its share of the chunks and process 0 holds and writes
  the complete results (every process passes the same data).  ``run(SuiteConfig(...),
  Model(...))`` is the same with the settings in one object.
  """
  data = _own_data.own_data(images=images, labels=labels, batches=batches, source_id=source_id,
                            tfds_name=tfds_name, tfds_split=tfds_split, tfds_dir=tfds_dir,
                            benchmark=benchmark)
  if source is None:
    source = data.kind if data is not None else benchmark if benchmark != "imagenet" else "demo"
  config = SuiteConfig(
      source=source, imagenet_dir=imagenet_dir, benchmark=benchmark,
      cifar_dir=None if cifar_dir is None else str(cifar_dir),
      tiny_imagenet_dir=None if tiny_imagenet_dir is None else str(tiny_imagenet_dir),
      corruptions=corruptions, severities=severities,
      perturbations=perturbations, difficulty=difficulty, batch_size=batch_size, seed=seed,
      release_jpeg=release_jpeg, baseline=baseline, bootstrap=bootstrap, max_images=max_images,
      chunk_size=chunk_size, tfds_data_dir=tfds_data_dir, tfds_image_format=tfds_image_format,
      progress=progress, data=data,
      released_dir=None if released_dir is None else str(released_dir), image_list=image_list,
      preprocessing=preprocessing)
  return run(config, Model(model_name, apply_fn, variables), output_dir, log)


def _gather_records(local: dict, names: Sequence[str]) -> dict:
  """Records of every process, aligned with ``names`` (the listing's unique ids, in order)."""
  if jax.process_count() > 1:
    return distributed.gather_records(local, names, id_key="ids")
  position = {name: i for i, name in enumerate(local["ids"])}
  missing = [n for n in names if n not in position]
  if missing:
    raise ValueError(f"no record for {len(missing)} of the {len(names)} source images "
                     f"(first: {missing[0]}): the dataset was built from other images")
  order = np.array([position[n] for n in names], np.int64)
  return {k: (np.array(list(names)) if k == "ids" else v[order] if np.ndim(v) else v)
          for k, v in local.items()}


def evaluated_mean_error(errors: dict) -> dict:
  """The mean error over the benchmark corruptions' cells that ran (``mean_error`` needs all
  15 x 5): a partial run's one figure, named with its number of cells."""
  cells = [c.error for (name, _), c in errors.items() if name in imagenet_cp.BENCHMARK_CORRUPTIONS]
  return {"evaluated_mean_error": float(np.mean(cells)) if cells else None,
          "evaluated_cells": len(cells)}


def _results(records, labels, names, tasks, baseline, run_info, *, bootstrap, started,
             unnormalized=False) -> dict:
  done = {t: r for t, r in records.items() if t in set(tasks)}
  clean, errors, sequences = counts_from_records(done, labels)
  results = summarize(errors, clean, sequences, baseline=baseline)
  if unnormalized:  # CIFAR, Tiny, 64, 299: the figures the field reports (robustness#28)
    results.update(unnormalized_means(results))
    for cells in results["corruptions"].values():  # over the severities run (all five: = CE's)
      cells["mean_error"] = float(np.mean([c["error"] for c in cells["severities"].values()]))
    results.update(evaluated_mean_error(errors))
  results["schema_version"] = SCHEMA_VERSION
  results["run"] = dict(run_info, demo=run_info["source"] == "demo", jax=jax.__version__,
                        imagenet_cp=imagenet_cp.__version__, prng_impl="threefry2x32",
                        devices=jax.device_count(), processes=jax.process_count(),
                        benchmark=run_info.get("benchmark", "imagenet"),
                        tasks_done=len(done), tasks_planned=len(tasks),
                        seconds=round(time.time() - started, 1))
  if run_info["source"] == "demo":
    results["run"]["warning"] = (
        f"DEMO on {len(names)} packaged photos: not ImageNet, not comparable with the paper")
  if bootstrap:
    results["confidence_intervals"] = _bootstrap.intervals(done, labels, baseline, bootstrap)
  return results
