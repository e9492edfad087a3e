"""What every suite shares: the model under test, tasks, the output store, batching and processes.

* ``Model``: the model a run evaluates (name, ``apply_fn``, variables);
* ``Classifier``: that model data-parallel over this process's devices
  (``models.parallel.DataParallel``: one jit, variables replicated, a padded global batch) with the
  NaN check every suite applies to the logits it scores;
* ``Task`` and ``Store``: one file per finished unit of work plus JSON figures, every file written
  atomically (``atomic_write``), so an interrupted run loses at most the task in flight; a
  ``Store`` holds its folder's lock (``DirectoryLock``), refuses a folder that holds another run
  (``run.json``) and validates every task file it loads (``Store.load``);
* what identifies a model's weights (``model_identity``);
* padding and batching helpers, and the single-process shortcuts of ``suites.distributed``.
"""
from __future__ import annotations

import dataclasses
import datetime
import errno
import fcntl
import hashlib
import json
import os
import pathlib
import socket
import tempfile
import threading
import warnings
import zipfile
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from imagenet_cp.models.parallel import DataParallel

CORRUPT_NPZ = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
# results.json's layout (docs/evaluation.md, "results.json, field by field").
SCHEMA_VERSION = 1
# run.json and task files: 2 = run identity from the source listing and the weights, task files
# carry the run's digest (format 1 folders are refused as a different run).
STORE_FORMAT = 2


class StoreError(ValueError):
  """An output folder that cannot be used as it is (another run's, in use, unwritable)."""


@dataclasses.dataclass(frozen=True)
class Model:
  """A classifier to evaluate: ``apply_fn(variables, images float32 [N, H, W, 3] in [0, 1]) ->
  logits [N, C]``; ``name`` names it in the results (and picks a zoo model's compile setting).

  ``weights``: what identifies the weights beyond the digest of ``variables`` every run records
  (e.g. ``{"checkpoint_sha256": ...}`` of a ``--checkpoint``), compared on resume like it;
  ``weights_file``: where they were read from (recorded in results.json, not compared).
  """
  name: str
  apply_fn: Callable
  variables: Any
  weights: Mapping[str, str] = dataclasses.field(default_factory=dict)
  weights_file: str | None = None


def variables_digest(variables) -> str:
  """sha256 of a variable tree: every leaf's path, dtype, shape and bytes, in path order.  The
  same weights give the same digest on any device or process.  Computed afresh every time (NumPy
  leaves can change in place; hashing costs about a second per GB)."""
  digest = hashlib.sha256()
  leaves = jax.tree_util.tree_flatten_with_path(variables)[0]
  for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
    array = np.ascontiguousarray(jax.device_get(leaf))
    digest.update(f"{jax.tree_util.keystr(path)}\t{array.dtype.str}\t{array.shape}\n".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def model_identity(model: Model) -> dict:
  """What a run records and compares of its model: the name, ``weights_sha256`` (the digest of
  the variables) and ``model.weights`` (e.g. the checkpoint file's sha256)."""
  return {"model": model.name, "weights_sha256": variables_digest(model.variables),
          **dict(model.weights)}


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
  tmp = None
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=suffix)
    os.close(fd)
    write(tmp)
    # mkstemp makes 0600 files; outputs get the mode any other new file gets (0644 by umask 022).
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException as err:
    if tmp is not None:
      pathlib.Path(tmp).unlink(missing_ok=True)
    if isinstance(err, OSError):
      raise StoreError(f"cannot write {path}: {err.strerror or err}{_OS_HINTS.get(err.errno, '')}"
                       ) from err
    raise


_OS_HINTS = {errno.ENOSPC: " (the disk is full: free space, or choose another --output_dir)",
             errno.EDQUOT: " (disk quota exceeded)",
             errno.EFBIG: " (larger than this process's file size limit)",
             errno.EROFS: " (a read-only file system: choose another --output_dir)",
             errno.EACCES: " (no permission to write there: choose another --output_dir)"}


TMP_PREFIX = "tmp"
_UMASK_LOCK = threading.Lock()


def _umask() -> int:
  with _UMASK_LOCK:
    mask = os.umask(0o022)
    os.umask(mask)
  return mask


def remove_orphans(directory: pathlib.Path) -> list[pathlib.Path]:
  """Deletes the temporary files (``tmp*.tmp``, ``tmp*.tmp.npz``) a killed writer left in
  ``directory``; call it only while holding the folder's lock."""
  removed = []
  for path in pathlib.Path(directory).glob(f"{TMP_PREFIX}*.tmp*"):
    if path.is_file() and (path.name.endswith(".tmp") or path.name.endswith(".tmp.npz")):
      path.unlink(missing_ok=True)
      removed.append(path)
  return removed


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


LOCK_NAME = "lock"
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class DirectoryLock:
  """An exclusive lock on an output folder: ``flock`` on ``<folder>/lock``, whose text names the
  holder (pid, host, start time).

  Stale-lock rule: the kernel drops an flock when its process ends, however it ends (SIGKILL
  and crashes included), so a lock is never stale and nothing needs deleting: a ``lock`` file
  left on disk by a finished run locks nothing.  Re-entrant within one process (``run_suites``
  holds the folder while a suite's ``Store`` locks it again).  On NFS, Linux maps flock to POSIX
  locks, which the server arbitrates between hosts.
  """

  _held: dict[str, list] = {}   # real path of the lock file -> [fd, holders in this process]
  _guard = threading.Lock()

  def __init__(self, directory):
    self.directory = pathlib.Path(directory)
    self.path = self.directory / LOCK_NAME
    self._key: str | None = None

  def acquire(self) -> "DirectoryLock":
    if self._key is not None:
      return self
    try:
      self.directory.mkdir(parents=True, exist_ok=True)
      key = os.path.realpath(self.path)
      with self._guard:
        held = self._held.get(key)
        if held is not None:
          held[1] += 1
          self._key = key
          return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
          fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
          holder = _lock_holder(fd)
          os.close(fd)
          raise StoreError(
              f"{self.directory} is in use by another run ({holder}; lock file {self.path}). "
              "Wait for it to end, or choose another output folder (--output_dir). The lock "
              "is released when that process ends, however it ends (kill -9 too), so there is "
              "no stale lock to delete.") from None
        except OSError as err:
          if err.errno not in _NO_LOCKS:
            os.close(fd)
            raise
          # A file system without locks (some FUSE mounts): run, but say what is not checked.
          warnings.warn(f"{self.directory}: cannot lock it ({err.strerror}); another run on "
                        "this folder would not be detected", RuntimeWarning, stacklevel=2)
        except BaseException:
          os.close(fd)
          raise
        note = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(note) + "\n").encode(), 0)
        self._held[key] = [fd, 1]
        self._key = key
    except OSError as err:
      raise StoreError(f"cannot use {self.directory} as the output folder: "
                       f"{err.strerror or err}{_OS_HINTS.get(err.errno, '')}") from err
    return self

  def release(self) -> None:
    if self._key is None:
      return
    with self._guard:
      held = self._held[self._key]
      held[1] -= 1
      if held[1] == 0:
        del self._held[self._key]
        os.close(held[0])   # closing the last descriptor drops the flock
    self._key = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def _lock_holder(fd: int) -> str:
  try:
    note = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    return f"pid {note['pid']} on {note['host']}, since {note['since']}"
  except (OSError, ValueError, KeyError, TypeError):
    return "a process that has not yet written its pid"


def records_problem(records: Mapping[str, np.ndarray], ids: Sequence[str], *,
                    id_key: str = "ids", required: Sequence[str] = (),
                    kinds: Mapping[str, str] | None = None, axes: Mapping[str, int] | None = None,
                    ragged: Sequence[str] = ()) -> str | None:
  """Why ``records`` are not one task's per-example records of exactly ``ids``, in that order
  (None when they are): ``id_key`` must hold the ids; every key of ``required`` must be there;
  every other array except ``ragged`` ones has one entry per example (on axis ``axes[key]``,
  else 0); ``kinds`` gives the dtype kinds a key may have (e.g. 'iu' for integers)."""
  kinds, axes = kinds or {}, axes or {}
  missing = [k for k in (id_key, *required) if k not in records]
  if missing:
    return f"lacks {', '.join(missing)}"
  got = np.asarray(records[id_key])
  if got.ndim != 1 or got.dtype.kind not in "US":
    return f"its {id_key} are not a list of names ({got.dtype} {got.shape})"
  if got.shape[0] != len(ids):
    return f"holds {got.shape[0]} examples, the run has {len(ids)}"
  differ = np.flatnonzero(got.astype(str) != np.asarray(list(ids), dtype=str))
  if differ.size:
    i = int(differ[0])
    return f"holds other examples ({str(got[i])!r} where the run has {ids[i]!r})"
  for key, value in records.items():
    value = np.asarray(value)
    if key in kinds and value.dtype.kind not in kinds[key]:
      return f"{key} has dtype {value.dtype}"
    if key == id_key or key in ragged or (value.ndim == 0 and key not in axes):
      continue
    axis = axes.get(key, 0)
    if value.ndim <= axis or value.shape[axis] != len(ids):
      return f"{key} has shape {value.shape}, not one entry per example ({len(ids)})"
  return None


class Store:
  """A suite's output folder: run.json (what was run; a rerun must match it), tasks/*.npz (one
  per finished task) and JSON figures, all written atomically.

  Opening it takes the folder's lock (``DirectoryLock``; ``close`` releases it), deletes the
  temporary files a killed run left, and compares ``run_info`` (plus ``STORE_FORMAT``) with the
  folder's run.json.  Every task file carries the digest of that run info; ``load`` hands back
  only files that are readable, of this run and (with ``problem``) valid, and says why it
  ignores any other, so the task is recomputed.
  """

  def __init__(self, output_dir, run_info: dict, log: Callable[[str], None] = print):
    self.root = pathlib.Path(output_dir)
    self.log = log
    self._lock = DirectoryLock(self.root).acquire()
    try:
      for directory in (self.root, self.root / "tasks"):
        removed = remove_orphans(directory)
        if removed:
          log(f"removed {len(removed)} temporary file(s) an interrupted run left in {directory}")
      self.run_info = dict(run_info, format=STORE_FORMAT)
      self.run_sha256 = hashlib.sha256(
          json.dumps(self.run_info, sort_keys=True, default=json_default).encode()).hexdigest()
      self._check_run_info(self.run_info)
    except BaseException:
      self._lock.release()
      raise

  def close(self) -> None:
    """Releases the folder's lock (the files stay)."""
    self._lock.release()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def _check_run_info(self, run_info: dict) -> None:
    path = self.root / "run.json"
    run_info = json.loads(json.dumps(run_info, default=json_default))
    if path.exists():
      try:
        previous = json.loads(path.read_text())
      except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(f"{path} is corrupt ({err}); delete {self.root} or choose another "
                         "output folder (--output_dir)") from err
      if not isinstance(previous, dict):
        previous = {"run.json": previous}
      if previous != run_info:
        changed = sorted(k for k in set(previous) | set(run_info) if previous.get(k) != run_info.get(k))
        details = "; ".join(f"{k} was {_brief(previous.get(k))}, now {_brief(run_info.get(k))}"
                            for k in changed)
        raise StoreError(f"{self.root} holds a different run (differs in: {', '.join(changed)}: "
                         f"{details}); choose another output folder (--output_dir) to keep both, "
                         "or delete it")
    else:
      write_text(path, json.dumps(run_info, indent=2, sort_keys=True))

  def task_path(self, task: Task) -> pathlib.Path:
    return self.root / "tasks" / f"{task.file_stem}.npz"

  def load(self, task: Task, problem: Callable[[dict], str | None] | None = None) -> dict | None:
    """The saved records of ``task``, or None when there are none or they cannot be used (an
    unreadable file, another run's, or one ``problem(records)`` finds fault with: said in the
    log, and the task is recomputed)."""
    path = self.task_path(task)
    if not path.exists():
      return None
    try:
      with np.load(path) as data:
        records = {k: data[k] for k in data.files}
    except CORRUPT_NPZ as err:
      return self._ignore(path, task, f"unreadable ({type(err).__name__}: {err})")
    digest = records.pop("run_sha256", None)
    if digest is None or str(digest) != self.run_sha256:
      return self._ignore(path, task, "written by another run (its run digest differs)")
    reason = problem(records) if problem is not None else None
    if reason:
      return self._ignore(path, task, reason)
    return records

  def _ignore(self, path: pathlib.Path, task: Task, reason: str) -> None:
    self.log(f"{path}: {reason}; recomputing {task.id}")
    return None

  def save(self, task: Task, records: dict) -> None:
    save_npz(self.task_path(task), dict(records, run_sha256=np.array(self.run_sha256)))

  def write_json(self, name: str, payload: dict) -> pathlib.Path:
    return write_json(self.root / name, payload)


def with_results_json(store: Store | None, results: dict) -> dict:
  """``results``, first written to the store's results.json when the run has a store."""
  if store:
    store.write_json("results.json", results)
  return results


def _brief(value, limit: int = 80) -> str:
  text = json.dumps(value, sort_keys=True, default=json_default)
  return text if len(text) <= limit else text[:limit - 3] + "..."


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
    self.model = model
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
