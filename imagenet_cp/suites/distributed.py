"""Multi-host evaluation: every process evaluates its own share of the images (cache chunks
round-robin), then per-example records are all-gathered so every process holds the full table.

Records are integers (predictions, flips, summed distances) or per-example values computed from
that example alone (the adversarial suite's distortions and query counts), so the combined
figures are exact and independent of how the images were split.  Process 0 writes the files.
Used by the corruption suite (``suites.corruption``), the adversarial suite
(``suites.adversarial``) and the OOD suite (``suites.ood``: dataset slices round-robin,
gathered whole with ``gather_parts``).  The helpers at the end (``gather``, ``from_first``,
``total``, ``on_every_process``, ``raise_together``) also take the one-process case, where they
do no collective at all.

Set-up: ``python -m metrics.run --distributed [--coordinator_address=HOST:PORT
--num_processes=N --process_id=I]`` calls ``jax.distributed.initialize`` (on GPU clusters, SLURM
and TPU VMs the arguments are discovered automatically).  Tested here with two CPU processes on
127.0.0.1 (gloo collectives); multi-GPU, SLURM and TPU pods are not run here (see launch/).
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils

NAME_BYTES = 256


def _allgather_ragged(array: np.ndarray) -> np.ndarray:
  """Concatenation over processes (process order) of arrays whose first axis may differ."""
  array = np.asarray(array)
  counts = np.asarray(multihost_utils.process_allgather(np.int64(array.shape[0])))
  width = int(counts.max()) if counts.size else 0
  padded = np.zeros((max(width, 1),) + array.shape[1:], array.dtype)
  padded[:array.shape[0]] = array
  gathered = np.asarray(multihost_utils.process_allgather(padded))   # [P, width, ...]
  return np.concatenate([gathered[p, :int(n)] for p, n in enumerate(counts.ravel())])


def _encode_names(names: Sequence[str]) -> np.ndarray:
  out = np.zeros((len(names), NAME_BYTES), np.uint8)
  for i, name in enumerate(names):
    raw = name.encode("utf-8")
    if len(raw) > NAME_BYTES:
      raise ValueError(f"file name longer than {NAME_BYTES} bytes: {name!r}")
    out[i, :len(raw)] = np.frombuffer(raw, np.uint8)
  return out


def _decode_names(encoded: np.ndarray) -> list[str]:
  return [bytes(row[row != 0]).decode("utf-8") for row in encoded]


def gather_records(local: dict, names: Sequence[str], axes: dict | None = None,
                   id_key: str = "file_names") -> dict:
  """One task's per-example records from every process, aligned with ``names`` (global order),
  the unique ids under ``id_key``.

  axes: {key: axis} for records whose example axis is not the first (e.g. a curve [T + 1, N]
  has its examples on axis 1); every process must hold the same keys with the same trailing
  shapes and dtypes (collectives run key by key)."""
  axes = axes or {}
  gathered_names = _decode_names(_allgather_ragged(_encode_names(list(local[id_key]))))
  position = {name: i for i, name in enumerate(gathered_names)}
  order = np.array([position[n] for n in names], np.int64)
  out = {}
  for key, value in local.items():
    if key == id_key:
      out[key] = np.array(list(names))
    elif np.ndim(value) == 0:
      out[key] = value
    else:
      axis = axes.get(key, 0)
      moved = np.moveaxis(np.asarray(value), axis, 0)
      out[key] = np.moveaxis(_allgather_ragged(moved)[order], 0, axis)
  return out


def gather_parts(parts: dict, template: dict) -> dict:
  """Every process's numbered parts, on every process: {part index: records} -> the union.

  records: {key: array} with a leading axis whose length may differ between keys of one part
  (e.g. a flattened ragged list beside per-example values); string arrays travel as UTF-8 names
  (at most ``NAME_BYTES`` each).  template: records with the keys, dtypes and trailing shapes
  (e.g. empty ones), so that a process without parts joins every collective the same way.
  Part indices must be unique over the processes; values arrive exactly."""
  indices = sorted(parts)
  gathered_indices = [int(i) for i in _allgather_ragged(np.array(indices, np.int64))]
  out = {i: {} for i in gathered_indices}
  for key, empty in template.items():
    pieces = [np.asarray(parts[i][key]) for i in indices]
    lengths = _allgather_ragged(np.array([p.shape[0] for p in pieces], np.int64))
    local = np.concatenate(pieces) if pieces else np.asarray(empty)
    text = local.dtype.kind in "US"
    flat = _allgather_ragged(_encode_names(list(local)) if text else local)
    if text:
      flat = np.array(_decode_names(flat), dtype=str)
    for i, piece in zip(gathered_indices, np.split(flat, np.cumsum(lengths)[:-1])):
      out[i][key] = piece
  return out


def _allgather_bytes(data: bytes) -> list[bytes]:
  """Every process's bytes, in process order."""
  lengths = _allgather_ragged(np.array([len(data)], np.int64))
  flat = _allgather_ragged(np.frombuffer(data, np.uint8))
  return [bytes(piece) for piece in np.split(flat, np.cumsum(lengths)[:-1])]


def raise_together(message: str | None) -> None:
  """ValueError on every process when any process has an error message (the first process's,
  named), so that no process is left waiting in a collective for one that failed."""
  if jax.process_count() == 1:
    if message:
      raise ValueError(message)
    return
  messages = _allgather_bytes((message or "").encode("utf-8"))
  for process, raw in enumerate(messages):
    if raw:
      raise ValueError(f"process {process}: {raw.decode('utf-8')}")


def on_every_process(compute: Callable):
  """``compute()``; with several processes a ValueError on any one is raised on every one, so
  no process is left waiting in the next collective."""
  if jax.process_count() == 1:
    return compute()
  value, message = {}, None
  try:
    value = compute()
  except ValueError as err:
    message = str(err)
  raise_together(message)
  return value


def gather(records: dict, names: Sequence[str], axes: dict | None = None) -> dict:
  """``gather_records``; one process: the records as they are (already in ``names``' order)."""
  if jax.process_count() == 1:
    return records
  return gather_records(records, names, axes)


def total(value: int) -> int:
  """The sum of an integer over the processes (e.g. the devices in use)."""
  if jax.process_count() == 1:
    return value
  return int(np.asarray(multihost_utils.process_allgather(np.int32(value))).sum())


def from_first(value: np.ndarray) -> np.ndarray:
  """Process 0's array on every process (e.g. which tasks are left: only process 0 reads the
  output directory)."""
  if jax.process_count() == 1:
    return value
  return np.asarray(multihost_utils.broadcast_one_to_all(value))


def broadcast_from_first(value: bool) -> bool:
  """Process 0's flag on every process (e.g. whether a task is already saved)."""
  return bool(from_first(np.bool_(value)))
