"""What every suite shares: the model under test, tasks, the output store, batching and processes.

* ``Model``: the model a run evaluates (name, ``apply_fn``, variables);
* ``Classifier``: that model data-parallel over this process's devices
  (``models.parallel.DataParallel``: one jit, variables replicated, a padded global batch) with the
  NaN check every suite applies to the logits it scores;
* ``Task`` and ``Store``: one file per finished unit of work plus JSON figures, every file written
  atomically (``atomic_write``), so an interrupted run loses at most the task in flight;
* padding and batching helpers, and the single-process shortcuts of ``suites.distributed``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import tempfile
import zipfile
from typing import Any, Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from imagenet_cp.models.parallel import DataParallel

CORRUPT_NPZ = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


@dataclasses.dataclass(frozen=True)
class Model:
  """A classifier to evaluate: ``apply_fn(variables, images float32 [N, H, W, 3] in [0, 1]) ->
  logits [N, C]``; ``name`` names it in the results (and picks a zoo model's compile setting)."""
  name: str
  apply_fn: Callable
  variables: Any


# ----------------------------------------------------------------------------------------------
# Tasks and their files.


@dataclasses.dataclass(frozen=True)
class Task:
  """One unit of work: ``kind`` is e.g. 'clean', 'corruption', 'perturbation', 'adversarial',
  'transfer' or 'ood'; ``level`` a severity, difficulty or slice index."""
  kind: str
  name: str = "clean"
  level: int = 0

  @property
  def id(self) -> str:
    return "clean" if self.kind == "clean" else f"{self.kind}/{self.name}/{self.level}"

  @property
  def file_stem(self) -> str:
    return self.id.replace("/", "__")


def atomic_write(path: pathlib.Path, write: Callable[[str], None], suffix: str = ".tmp") -> None:
  """``write(temporary path)`` next to ``path``, then renamed onto it: readers see the old file
  or the complete new one, never a partial one."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix)
  os.close(fd)
  try:
    write(tmp)
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def write_text(path: pathlib.Path, text: str) -> None:
  atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text(text, encoding="utf-8"))


def save_npz(path: pathlib.Path, arrays: dict) -> None:
  atomic_write(path, lambda tmp: np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()}),
               suffix=".tmp.npz")


def json_default(value):
  """NumPy scalars and arrays as JSON numbers and lists."""
  if isinstance(value, (np.integer,)):
    return int(value)
  if isinstance(value, (np.floating,)):
    return float(value)
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path: pathlib.Path, payload: dict) -> pathlib.Path:
  write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=json_default))
  return pathlib.Path(path)


def readable_npz(path: pathlib.Path, key: str) -> bool:
  """Whether ``path`` is a complete ``.npz`` holding ``key``."""
  try:
    with np.load(path) as data:
      return key in data.files
  except CORRUPT_NPZ:
    return False


class Store:
  """A suite's output folder: run.json (what was run; a rerun must match it), tasks/*.npz (one
  per finished task) and JSON figures, all written atomically."""

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
      write_text(path, json.dumps(run_info, indent=2, sort_keys=True))

  def task_path(self, task: Task) -> pathlib.Path:
    return self.root / "tasks" / f"{task.file_stem}.npz"

  def load(self, task: Task) -> dict | None:
    path = self.task_path(task)
    if not path.exists():
      return None
    try:
      with np.load(path) as data:
        return {k: data[k] for k in data.files}
    except CORRUPT_NPZ as err:
      raise ValueError(f"{path} is corrupt ({err}); delete that file to recompute the task") from err

  def save(self, task: Task, records: dict) -> None:
    save_npz(self.task_path(task), records)

  def write_json(self, name: str, payload: dict) -> pathlib.Path:
    return write_json(self.root / name, payload)


def file_digest(file_names: Sequence[str]) -> str:
  """Short sha256 of the file-name list: which images a run used (recorded in run.json)."""
  return hashlib.sha256("\n".join(file_names).encode()).hexdigest()[:16]


def text(value) -> str:
  """A stored string (TFDS gives bytes) as ``str``."""
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------------------------
# Batches.


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


def progress_bar(total: int, enabled: bool, **kwargs):
  """A tqdm bar counting images (shown only when ``enabled``)."""
  return tqdm(total=total, unit="img", disable=not enabled, dynamic_ncols=True, **kwargs)


# ----------------------------------------------------------------------------------------------
# The model, data-parallel over this process's devices.


@jax.jit
def _top1(logits, subset):
  """logits [N, C] -> (argmax over ``subset`` as a class index, argmax, whether a row holds NaN);
  without a subset the first two agree.  Ties go to the lowest index, ``subset`` being ascending."""
  full = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  nan = jnp.any(jnp.isnan(logits), axis=-1)
  if subset is None:
    return full, full, nan
  return subset[jnp.argmax(logits[:, subset], axis=-1)], full, nan


def check_finite(nan, file_names: Sequence[str], context: str | None = None) -> None:
  """ValueError naming the examples whose logits hold NaN (``nan``: bool, one per example)."""
  nan = np.asarray(nan)[:len(file_names)]
  if nan.any():
    first = file_names[int(np.argmax(nan))]
    raise ValueError(f"{context + ': ' if context else ''}the model returned NaN logits for "
                     f"{int(nan.sum())} images (first: {first}); results would be meaningless")


class Classifier:
  """A ``Model`` data-parallel over ``devices`` (default: this process's), compiled with
  ``models.compiler_options(model.name)``.  Every call sees the same global batch (padded, with a
  mask), so one program serves the run.

  uint8: the inputs are pixels 0..255, divided by 255 inside the jit (the corruption and OOD
  suites); else float32 in [0, 1], passed as they are (the adversarial suite, whose attacks call
  ``apply_fn`` on the same images).
  """

  def __init__(self, model: Model, batch_size: int, *, uint8: bool = True,
               devices: Sequence[jax.Device] | None = None):
    self.name = model.name
    self.apply_fn = model.apply_fn
    fn = ((lambda v, pixels: model.apply_fn(v, pixels.astype(jnp.float32) / 255.0)) if uint8
          else model.apply_fn)
    self.parallel = DataParallel(fn, model.variables, batch_size, devices, model.name)
    self.batch_size = self.parallel.batch_size
    mesh = self.parallel.mesh
    self.devices = len(mesh.devices.ravel())
    self._sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))

  @property
  def variables(self):
    """The variables, replicated over the devices."""
    return self.parallel.variables

  def shard(self, array):
    """Splits a batch over the devices (so corruptions and attacks run data-parallel too); a
    batch that does not divide evenly stays where it is."""
    if array.shape[0] % self.devices:
      return array
    return jax.device_put(array, self._sharding)

  def padded_size(self, n: int) -> int:
    """The padded batch for n examples: the global batch, or n rounded up to the device count
    when fewer (an attack costs a backward pass per padded row)."""
    return max(min(self.batch_size, -(-n // self.devices) * self.devices), self.devices)

  def _padded(self, pixels):
    """(real rows, logits [batch_size, C]) per global batch of ``pixels`` [N, ...], any N."""
    n = pixels.shape[0]
    for start, (logits, _) in zip(range(0, n, self.batch_size), self.parallel.batches(pixels)):
      yield min(self.batch_size, n - start), logits

  def logits(self, pixels) -> jax.Array:
    """[N, H, W, 3], any N -> float logits [N, C] (on device; the caller checks for NaN)."""
    return jnp.concatenate([logits[:rows] for rows, logits in self._padded(pixels)], axis=0)

  def top1(self, pixels, file_names: Sequence[str], *, subset: np.ndarray | None = None,
           classes: int | None = None, context: str | None = None):
    """Top-1 predictions of ``pixels`` [N, H, W, 3] whose first ``len(file_names)`` rows are real:
    (argmax over the ascending class list ``subset``, argmax over all), int32 [len(file_names)].
    ValueError for NaN logits, or for other than ``classes`` logits per image when given."""
    subs, fulls, nans = [], [], []
    index = None if subset is None else jnp.asarray(subset)
    for rows, logits in self._padded(pixels):
      if classes is not None and logits.shape[-1] != classes:
        raise ValueError(f"the model returned {logits.shape[-1]} logits per image; these datasets "
                         f"are labelled with the {classes} ImageNet-1k classes")
      sub, full, nan = (np.asarray(a)[:rows] for a in _top1(logits, index))
      subs.append(sub)
      fulls.append(full)
      nans.append(nan)
    n = len(file_names)
    check_finite(np.concatenate(nans)[:n], file_names, context)
    return np.concatenate(subs)[:n], np.concatenate(fulls)[:n]

  def numpy_logits(self, images, file_names: Sequence[str]) -> np.ndarray:
    """[N, H, W, 3] -> logits [N, C] as NumPy, NaN-checked (N = 0: an empty [0, 0])."""
    if images.shape[0] == 0:
      return np.zeros((0, 0), np.float32)
    logits = self.parallel(np.asarray(images, np.float32))
    check_finite(np.isnan(logits).any(axis=-1), file_names)
    return logits
