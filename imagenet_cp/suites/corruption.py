"""``metrics.evaluate`` (this module's ``evaluate``): any JAX classifier on ImageNet-C and ImageNet-P.

The evaluation is a list of tasks -- the clean images, each (corruption, severity) and each
(perturbation, difficulty) -- run one after another over the same images.  For every task the
examples are generated on the fly from their per-example keys (``imagenet_cp.example_key``, the
same derivation the TFDS builders use), the model runs data-parallel over all local devices, and
per-example records are kept:

* clean / corruption tasks: the top-1 prediction of every image;
* perturbation tasks: per video, the number of flips and the summed top-5 distance.

Those records are what the exact integer counts of ``metrics.counts`` sum to, and what the
bootstrap resamples.  With an ``output_dir`` each finished task is written at once
(``tasks/<id>.npz``, atomically) and ``results.json`` is rewritten atomically after every task,
so an interrupted run loses at most the task in flight and a rerun skips finished tasks.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
import time
import zipfile
from typing import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import imagenet_cp
from imagenet_cp import sources
from imagenet_cp import perturbations as _perturbations
from imagenet_cp.preprocess import center_crop
from imagenet_cp.metrics import bootstrap as _bootstrap
from imagenet_cp.metrics.baselines import ALEXNET, Baseline, check_difficulty, check_severity
from imagenet_cp.metrics.baselines import NOISE_PERTURBATIONS as NOISE_SEQUENCES
from imagenet_cp.metrics.counts import ErrorCounts, SequenceCounts, per_video_counts
from imagenet_cp.metrics.ranking import frame_pairs
from imagenet_cp.metrics.scores import summarize

_CORRUPT_NPZ = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
CHUNK = 256          # images per cache chunk (one padded ImageNet-P canvas per chunk)
CANVAS_MULTIPLE = 128


# ----------------------------------------------------------------------------------------------
# Tasks


@dataclasses.dataclass(frozen=True)
class Task:
  """One unit of work: ``kind`` is 'clean', 'corruption' or 'perturbation'."""
  kind: str
  name: str = "clean"
  level: int = 0      # severity 1..5 or difficulty 1..3

  @property
  def id(self) -> str:
    return "clean" if self.kind == "clean" else f"{self.kind}/{self.name}/{self.level}"

  @property
  def file_stem(self) -> str:
    return self.id.replace("/", "__")


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


def sequence_key_level(name: str, difficulty: int) -> int:
  """The level that enters a sequence's example key: only the noise sequences' data changes with
  difficulty (the separate ``_2``/``_3`` datasets); the others are one dataset whose difficulty
  is a stride applied by the metrics."""
  return difficulty if name in NOISE_SEQUENCES else 1


# ----------------------------------------------------------------------------------------------
# Images: decoded and preprocessed once, reused by every task.


@dataclasses.dataclass
class Chunk:
  file_names: list[str]
  labels: np.ndarray        # int32 [n]
  crops: np.ndarray         # uint8 [n, 224, 224, 3]   (ImageNet-C input)
  canvas: np.ndarray        # uint8 [n, Hc, Wc, 3]     (Resize(256) images, top-left aligned)
  sizes: np.ndarray         # int32 [n, 2]             true (height, width) on the canvas


def _chunk_from_examples(examples: Sequence[sources.Example]) -> Chunk:
  resized = [imagenet_cp.resize_short_side(sources.decode(e)) for e in examples]
  crops = np.stack([center_crop(r) for r in resized])
  canvas, sizes = _perturbations.pad_to_canvas(resized, multiple=CANVAS_MULTIPLE)
  return Chunk([e.file_name for e in examples], np.array([e.label for e in examples], np.int32),
               crops, canvas, sizes)


def batched(items: Iterable, size: int) -> Iterator[list]:
  """Lists of ``size`` consecutive items (the last one shorter); itertools.batched is 3.12+."""
  batch = []
  for item in items:
    batch.append(item)
    if len(batch) == size:
      yield batch
      batch = []
  if batch:
    yield batch


class ImageCache:
  """Preprocessed chunks of the source images, in memory or as ``.npz`` files in ``directory``."""

  def __init__(self, examples: Iterable[sources.Example], directory: pathlib.Path | None = None,
               process_index: int = 0, process_count: int = 1, chunk_size: int = CHUNK):
    self._dir = directory
    self._memory: list[Chunk] = []
    self._paths: list[pathlib.Path] = []
    for index, batch in enumerate(batched(examples, chunk_size)):
      if index % process_count != process_index:
        continue
      self._add(index, batch)

  def _add(self, index: int, examples: Sequence[sources.Example]) -> None:
    if self._dir is None:
      self._memory.append(_chunk_from_examples(examples))
      return
    path = self._dir / f"chunk_{index:05d}.npz"
    if not _readable_npz(path):
      _atomic_save_npz(path, dataclasses.asdict(_chunk_from_examples(examples)))
    self._paths.append(path)

  def __iter__(self) -> Iterator[Chunk]:
    yield from self._memory
    for path in self._paths:
      with np.load(path) as data:
        yield Chunk(list(data["file_names"]), data["labels"], data["crops"], data["canvas"],
                    data["sizes"])

  def __len__(self) -> int:
    return len(self._memory) + len(self._paths)


def _readable_npz(path: pathlib.Path) -> bool:
  try:
    with np.load(path) as data:
      return "crops" in data.files
  except _CORRUPT_NPZ:
    return False


def _atomic_save_npz(path: pathlib.Path, arrays: dict) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
  os.close(fd)
  np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
  os.replace(tmp, path)


def _atomic_write_text(path: pathlib.Path, text: str) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
  with os.fdopen(fd, "w") as f:
    f.write(text)
  os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# The model, data-parallel over local devices.


class Classifier:
  """``apply_fn(variables, images in [0, 1]) -> logits``, jitted once, batch sharded over devices,
  compiled with ``models.compiler_options(model_name)`` (a zoo model's own XLA:CPU setting).

  Every call sees the same global batch (padded, with a mask), so one program serves the run.
  """

  def __init__(self, apply_fn: Callable, variables, batch_size: int, model_name: str | None = None):
    from imagenet_cp.models.parallel import DataParallel  # pylint: disable=g-import-not-at-top
    self._parallel = DataParallel(
        lambda v, pixels: apply_fn(v, pixels.astype(jnp.float32) / 255.0), variables, batch_size,
        model_name=model_name)
    self.batch_size = self._parallel.batch_size
    self.devices = len(self._parallel.mesh.devices.ravel())
    self._sharding = jax.sharding.NamedSharding(
        self._parallel.mesh, jax.sharding.PartitionSpec(self._parallel.mesh.axis_names[0]))

  def shard(self, array):
    """Splits a batch over the devices (so corruptions run data-parallel too)."""
    if array.shape[0] % self.devices:
      return array
    return jax.device_put(array, self._sharding)

  def logits(self, pixels: jax.Array) -> jax.Array:
    """uint8 pixels [N, 224, 224, 3], any N -> float logits [N, C] (on device)."""
    out = []
    for start in range(0, pixels.shape[0], self.batch_size):
      part = pixels[start:start + self.batch_size]
      logits, _ = self._parallel.apply_padded(part)
      out.append(logits[:part.shape[0]])
    return jnp.concatenate(out, axis=0)


# ----------------------------------------------------------------------------------------------
# Per-example records.


@jax.jit
def _predictions(logits):
  return jnp.argmax(logits, axis=-1).astype(jnp.int32), jnp.any(jnp.isnan(logits), axis=-1)


def pad_batch(array: np.ndarray, n: int) -> np.ndarray:
  """Pads a ragged batch to ``n`` rows with copies of its last row (finite; masked by callers)."""
  if array.shape[0] == n:
    return array
  fill = np.repeat(array[-1:], n - array.shape[0], axis=0)
  return np.concatenate([array, fill], axis=0)


def pad_keys(keys: jax.Array, n: int) -> jax.Array:
  """``pad_batch`` for typed PRNG keys."""
  if keys.shape[0] == n:
    return keys
  return jnp.concatenate([keys, jnp.repeat(keys[-1:], n - keys.shape[0], axis=0)])


def _raise_if_nan(nan, task: Task, file_names) -> None:
  nan = np.asarray(nan)[:len(file_names)]
  if nan.any():
    bad = [f for f, b in zip(file_names, nan) if b]
    raise ValueError(f"{task.id}: the model returned NaN logits for {len(bad)} examples "
                     f"(first: {bad[0]}); results would be meaningless")


@dataclasses.dataclass
class Options:
  seed: int = 0
  release_jpeg: bool = True
  batch_size: int = 32
  video_batch: int = 4
  tfds: "TfdsSource | None" = None


def _image_batch(task: Task, chunk: Chunk, start: int, opts: Options, n: int, model: Classifier):
  """uint8 [n_padded, 224, 224, 3] of a clean or corrupted batch (n real, padded to batch)."""
  crops = model.shard(pad_batch(chunk.crops[start:start + n], opts.batch_size))
  if task.kind == "clean":
    return crops
  names = chunk.file_names[start:start + n]
  keys = model.shard(pad_keys(imagenet_cp.example_keys(opts.seed, task.name, task.level, names),
                               opts.batch_size))
  images = imagenet_cp.corrupt(crops, task.name, task.level, keys)
  return imagenet_cp.release_jpeg(images) if opts.release_jpeg else images


def _run_images(task: Task, chunk: Chunk, model: Classifier, opts: Options, tick) -> dict:
  predictions = []
  for start in range(0, len(chunk.file_names), opts.batch_size):
    n = min(opts.batch_size, len(chunk.file_names) - start)
    pred, nan = _predictions(model.logits(_image_batch(task, chunk, start, opts, n, model)))
    _raise_if_nan(nan, task, chunk.file_names[start:start + n])
    predictions.append(np.asarray(pred)[:n])
    tick(n)
  return {"predictions": np.concatenate(predictions)}


def video_records(task: Task, frames, names, model: Classifier) -> dict:
  """Frames of a batch of videos (uint8 [B, T, 224, 224, 3], the first ``len(names)`` real) ->
  their per-video flips and summed top-5 distances (what both data sources record)."""
  count = frames.shape[1]
  logits = model.logits(jnp.reshape(frames, (-1,) + frames.shape[2:]))
  flips, distance, nan = per_video_counts(
      jnp.reshape(logits, frames.shape[:2] + logits.shape[-1:]),
      noise=task.name in NOISE_SEQUENCES, difficulty=task.level)
  _raise_if_nan(nan, task, names)
  n = len(names)
  pairs = len(frame_pairs(count, task.name in NOISE_SEQUENCES, task.level)[0])
  return {"flips": np.asarray(flips)[:n], "distance": np.asarray(distance)[:n],
          "pairs_per_video": np.int64(pairs), "frames": np.int64(count)}


def _run_videos(task: Task, chunk: Chunk, model: Classifier, opts: Options, tick) -> dict:
  level = sequence_key_level(task.name, task.level)
  parts = []
  for start in range(0, len(chunk.file_names), opts.video_batch):
    n = min(opts.video_batch, len(chunk.file_names) - start)
    names = chunk.file_names[start:start + n]
    keys = model.shard(pad_keys(imagenet_cp.example_keys(opts.seed, task.name, level, names),
                                opts.video_batch))
    canvas = model.shard(pad_batch(chunk.canvas[start:start + n], opts.video_batch))
    sizes = model.shard(pad_batch(chunk.sizes[start:start + n], opts.video_batch))
    frames = _perturbations.perturb_batch(canvas, sizes, task.name, keys, task.level)
    parts.append(video_records(task, frames, names, model))
    tick(n)
  return _concat_records(parts)


def _concat_records(parts: list[dict]) -> dict:
  """Per-example arrays concatenated; per-task scalars (pairs_per_video, frames) kept."""
  return {k: (np.concatenate([p[k] for p in parts]) if np.ndim(parts[0][k]) else parts[0][k])
          for k in parts[0]}


def run_task(task: Task, cache: ImageCache, model: Classifier, opts: Options, tick) -> dict:
  """Per-example records of ``task`` over every chunk of the cache (this process's share)."""
  if opts.tfds is not None and task.kind != "clean":
    return opts.tfds.run(task, model, opts, tick)
  run = _run_videos if task.kind == "perturbation" else _run_images
  return _concat_records([dict(run(task, chunk, model, opts, tick),
                               file_names=np.array(chunk.file_names)) for chunk in cache])


# ----------------------------------------------------------------------------------------------
# Reading the datasets the TFDS builders wrote (instead of generating on the fly).


@dataclasses.dataclass
class TfdsSource:
  """Built ``imagenet_c[_demo]`` / ``imagenet_p[_demo]`` datasets under ``data_dir``.

  ``image_format`` picks the ImageNet-C variant: 'jpeg' (PIL q85, like the release), 'png'
  (lossless ``release_jpeg`` pixels: identical to the on-the-fly input) or 'raw' (no JPEG stage).
  ImageNet-P frames are read from the default (lossless PNG) configs.  Records carry file names,
  so TFDS's on-disk order and any split across processes do not matter.
  """
  data_dir: str
  demo: bool
  image_format: str = "jpeg"

  def __post_init__(self):
    if self.image_format not in ("jpeg", "png", "raw"):
      raise ValueError(f"unknown ImageNet-C image format {self.image_format!r}: jpeg, png or raw")

  @property
  def applies_release_jpeg(self) -> bool:
    return self.image_format != "raw"

  def dataset(self, task: Task) -> str:
    import imagenet_cp.datasets  # pylint: disable=g-import-not-at-top,unused-import
    from imagenet_cp.datasets.imagenet_c import imagenet_c_dataset_builder as c_builder  # pylint: disable=g-import-not-at-top
    from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder as p_builder  # pylint: disable=g-import-not-at-top
    suffix = "_demo" if self.demo else ""
    if task.kind == "corruption":
      return f"imagenet_c{suffix}/{c_builder.config_name(task.name, task.level, self.image_format)}"
    level = sequence_key_level(task.name, task.level)
    return f"imagenet_p{suffix}/{p_builder.config_name(task.name, level)}"

  def _open(self, task: Task):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    name = self.dataset(task)
    try:
      return tfds.data_source(name, data_dir=self.data_dir, split="validation")
    except Exception as err:  # TFDS raises several types for a missing build.
      raise ValueError(
          f"{name} is not built in {self.data_dir} ({type(err).__name__}: {err}); build it with "
          f"`python -m launch.build_datasets` or `tfds build` (docs/datasets.md)") from err

  def run(self, task: Task, model: Classifier, opts: Options, tick) -> dict:
    """This process's share of the stored examples (every process_count-th record)."""
    source = self._open(task)
    mine = range(jax.process_index(), len(source), jax.process_count())
    step = opts.video_batch if task.kind == "perturbation" else opts.batch_size
    parts = []
    for start in range(0, len(mine), step):
      examples = [source[i] for i in mine[start:start + step]]
      parts.append(self._records(task, examples, model, opts))
      tick(len(examples))
    return _concat_records(parts)

  def _records(self, task: Task, examples, model: Classifier, opts: Options) -> dict:
    names = np.array([_text(e["file_name"]) for e in examples])
    if task.kind == "corruption":
      pixels = model.shard(pad_batch(np.stack([e["image"] for e in examples]), opts.batch_size))
      pred, nan = _predictions(model.logits(pixels))
      _raise_if_nan(nan, task, names)
      return {"predictions": np.asarray(pred)[:len(examples)], "file_names": names}
    frames = jnp.asarray(np.stack([np.asarray(e["frames"]) for e in examples]))  # [B, T, 224, 224, 3]
    return dict(video_records(task, frames, names, model), file_names=names)


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------------------------
# Records -> counts -> the paper's figures.


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
# Storage: one file per finished task + results.json, both written atomically.


class Store:
  """``output_dir`` layout: run.json (what was run), tasks/*.npz (per-example records),
  cache/ (preprocessed images), results.json (figures so far)."""

  def __init__(self, output_dir, run_info: dict):
    self.root = pathlib.Path(output_dir)
    self.root.mkdir(parents=True, exist_ok=True)
    self._check_run_info(run_info)

  def _check_run_info(self, run_info: dict) -> None:
    path = self.root / "run.json"
    if path.exists():
      try:
        previous = json.loads(path.read_text())
      except json.JSONDecodeError as err:
        raise ValueError(f"{path} is corrupt ({err}); delete {self.root} or choose another "
                         "--output_dir") from err
      if previous != run_info:
        changed = sorted(k for k in set(previous) | set(run_info) if previous.get(k) != run_info.get(k))
        raise ValueError(f"{self.root} holds a different run (differs in: {', '.join(changed)}); "
                         "choose another --output_dir to keep both, or delete it")
    else:
      _atomic_write_text(path, json.dumps(run_info, indent=2, sort_keys=True))

  def task_path(self, task: Task) -> pathlib.Path:
    return self.root / "tasks" / f"{task.file_stem}.npz"

  def load(self, task: Task) -> dict | None:
    path = self.task_path(task)
    if not path.exists():
      return None
    try:
      with np.load(path) as data:
        return {k: data[k] for k in data.files}
    except _CORRUPT_NPZ as err:
      raise ValueError(f"{path} is corrupt ({err}); delete that file to recompute the task") from err

  def save(self, task: Task, records: dict) -> None:
    _atomic_save_npz(self.task_path(task), records)

  def write_json(self, name: str, payload: dict) -> pathlib.Path:
    path = self.root / name
    _atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=_json_default))
    return path


def _json_default(value):
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (np.floating,)):
    return float(value)
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"not JSON serializable: {type(value).__name__}")


# ----------------------------------------------------------------------------------------------
# The public entry point.


def source_examples(source: str, imagenet_dir, max_images: int | None):
  """The source's examples ('demo' or 'imagenet'), in file-name order, the first ``max_images``."""
  if source == "demo":
    examples = sources.demo_examples()
  elif source == "imagenet":
    examples = sources.imagenet_val_examples(imagenet_dir)
  else:
    raise ValueError(f"unknown source {source!r}; expected 'demo' or 'imagenet'")
  if max_images is not None:
    examples = (e for i, e in enumerate(examples) if i < max_images)
  return examples


def file_digest(file_names: Sequence[str]) -> str:
  """Short sha256 of the file-name list: which images a run used (recorded in run.json)."""
  return hashlib.sha256("\n".join(file_names).encode()).hexdigest()[:16]


def evaluate(apply_fn: Callable, variables, *,
             source: str = "demo",
             imagenet_dir=None,
             corruptions: Sequence[str] = imagenet_cp.CORRUPTIONS,
             severities: Sequence[int] = (1, 2, 3, 4, 5),
             perturbations: Sequence[str] = imagenet_cp.PERTURBATIONS,
             difficulty: int = 1,
             batch_size: int = 32,
             seed: int = 0,
             release_jpeg: bool = True,
             output_dir=None,
             baseline: Baseline = ALEXNET,
             bootstrap: int = 1000,
             max_images: int | None = None,
             model_name: str = "user model",
             chunk_size: int = CHUNK,
             tfds_data_dir=None,
             tfds_image_format: str = "jpeg",
             progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
  """Evaluates a classifier on ImageNet-C and ImageNet-P; returns the ``results.json`` dict.

  Args:
    apply_fn: ``apply_fn(variables, images) -> logits [N, 1000]`` with images float32
      [N, 224, 224, 3] pixels in [0, 1] (``models.classifier`` gives one for every zoo model).
    variables: the model's variables.
    source: 'demo' (packaged photos, not comparable with the paper) or 'imagenet' (the
      validation set in ``imagenet_dir``: the official tar or an extracted folder).
    corruptions, severities, perturbations, difficulty: what to evaluate (all by default).
    batch_size: global batch (rounded up to a multiple of the local device count).
    seed: the root seed of the per-example keys (0 = the TFDS builders' default).
    release_jpeg: apply the released ImageNet-C's JPEG q85 stage (default True).
    output_dir: where to save per-task records and results (resumable); None keeps everything
      in memory.
    baseline: the normalising model (AlexNet's published numbers by default).
    bootstrap: resamples for the 95% confidence intervals (0 disables them).
    max_images: evaluate only the first N source images.
    chunk_size: images per preprocessing chunk (the unit split between hosts).
    tfds_data_dir: read the corrupted images and the frames from datasets built by the TFDS
      builders there (``imagenet_c`` / ``imagenet_p``, or their ``_demo`` twins for the demo
      source) instead of generating them; the clean images still come from ``source``.
    tfds_image_format: which stored ImageNet-C variant to read: 'jpeg', 'png' or 'raw'.

  With several processes (``jax.distributed``), each evaluates its share of the chunks and
  process 0 holds and writes the complete results.
  """
  tasks = plan(corruptions, severities, perturbations, difficulty)
  opts = Options(seed=seed, release_jpeg=release_jpeg, batch_size=batch_size)
  if tfds_data_dir is not None:
    opts.tfds = TfdsSource(str(tfds_data_dir), demo=source == "demo", image_format=tfds_image_format)
    opts.release_jpeg = release_jpeg = opts.tfds.applies_release_jpeg
  pid, pcount = jax.process_index(), jax.process_count()
  started = time.time()
  cache_dir = pathlib.Path(output_dir) / "cache" if output_dir is not None else None
  cache = ImageCache(source_examples(source, imagenet_dir, max_images), cache_dir, pid, pcount,
                     chunk_size)
  model = Classifier(apply_fn, variables, batch_size, model_name)
  opts.batch_size = model.batch_size
  opts.video_batch = max(opts.video_batch // model.devices, 1) * model.devices
  names, labels = _gather_names_labels(cache)
  run_info = {"model": model_name, "source": source, "seed": seed, "release_jpeg": release_jpeg,
              "images": len(names), "file_names_sha256": file_digest(names),
              "data": "on the fly" if opts.tfds is None else
                      f"tfds {opts.tfds.data_dir} ({opts.tfds.image_format})"}
  store = Store(output_dir, run_info) if output_dir is not None and pid == 0 else None
  records = {task: saved for task in tasks if store and (saved := store.load(task)) is not None}
  todo = _broadcast_todo([task not in records for task in tasks], tasks)
  if records:
    log(f"resuming: {len(records)} of {len(tasks)} tasks already done in {output_dir}")
  bar = _progress(todo, sum(len(c.file_names) for c in cache), progress)
  for task in todo:
    bar.set_description(task.id)
    records[task] = _gather_records(run_task(task, cache, model, opts, bar.update), names)
    if store:
      store.save(task, records[task])
      store.write_json("results.json", _results(records, labels, names, tasks, baseline, run_info,
                                                bootstrap=0, started=started))
  bar.close()
  results = _results(records, labels, names, tasks, baseline, run_info, bootstrap=bootstrap,
                     started=started)
  if store:
    store.write_json("results.json", results)
  return results


def _broadcast_todo(todo_mask: list[bool], tasks: list[Task]) -> list[Task]:
  """Process 0 decides what is left to do (only it reads the output directory)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    todo_mask = np.asarray(multihost_utils.broadcast_one_to_all(np.array(todo_mask, np.bool_)))
  return [t for t, todo in zip(tasks, todo_mask) if todo]


def _progress(todo, images, enabled):
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm(total=len(todo) * images, unit="img", disable=not enabled, smoothing=0.05,
              dynamic_ncols=True)


def _gather_names_labels(cache: ImageCache):
  names = [f for chunk in cache for f in chunk.file_names]
  labels = np.concatenate([chunk.labels for chunk in cache]) if len(cache) else np.zeros(0, np.int32)
  if jax.process_count() > 1:
    from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
    names, labels = distributed.gather_names_labels(names, labels)
  return names, labels


def _gather_records(local: dict, names: Sequence[str]) -> dict:
  """Records of every process, aligned with ``names`` (the sources' order)."""
  if jax.process_count() > 1:
    from imagenet_cp.suites import distributed  # pylint: disable=g-import-not-at-top
    return distributed.gather_records(local, names)
  position = {name: i for i, name in enumerate(local["file_names"])}
  missing = [n for n in names if n not in position]
  if missing:
    raise ValueError(f"no record for {len(missing)} of the {len(names)} source images "
                     f"(first: {missing[0]}): the dataset was built from other images")
  order = np.array([position[n] for n in names], np.int64)
  return {k: (np.array(list(names)) if k == "file_names" else v[order] if np.ndim(v) else v)
          for k, v in local.items()}


def _results(records, labels, names, tasks, baseline, run_info, *, bootstrap, started) -> dict:
  done = {t: r for t, r in records.items() if t in set(tasks)}
  clean, errors, sequences = counts_from_records(done, labels)
  results = summarize(errors, clean, sequences, baseline=baseline)
  results["run"] = dict(run_info, demo=run_info["source"] == "demo", jax=jax.__version__,
                        imagenet_cp=imagenet_cp.__version__, prng_impl="threefry2x32",
                        devices=jax.device_count(), processes=jax.process_count(),
                        tasks_done=len(done), tasks_planned=len(tasks),
                        seconds=round(time.time() - started, 1))
  if run_info["source"] == "demo":
    results["run"]["warning"] = (
        f"DEMO on {len(names)} packaged photos: not ImageNet, not comparable with the paper")
  if bootstrap:
    results["confidence_intervals"] = _bootstrap.intervals(done, labels, baseline, bootstrap)
  return results
