"""Reads PyTorch ``.pth`` state dicts into NumPy without torch and without running code from the file.

A ``.pth`` file is a pickle whose tensors point at raw storages.  ``pickle.load`` would import and
call whatever the file names (``os.system`` included), so this module unpickles with a
``find_class`` that resolves only a fixed allow-list of names (tensor rebuilding, storage types,
``OrderedDict``) to our own NumPy re-implementations; anything else raises before it is called.

Two on-disk formats are read (torch/serialization.py):
  * zip (torch >= 1.6): ``<root>/data.pkl`` plus one raw little-endian file per storage,
    ``<root>/data/<key>``; the pickle refers to storages through ``persistent_load`` ids
    ``('storage', storage_type, key, location, numel)``.
  * legacy (e.g. the EfficientNet-Lite0 weights): five pickles in a row (magic number, protocol
    version, sys info, the object, the list of storage keys), then for every key an int64 element
    count followed by the storage's bytes.  Storage ids there are
    ``('storage', storage_type, key, location, numel, view_metadata)``.
The pre-1.0 tar format is refused with a clear error.  ``.safetensors`` files (timm's Hugging
Face weights) are read with the ``safetensors`` package: a JSON header and raw tensors, no pickle.

Nothing is allocated from a size the file merely declares: a storage is read only when the file
holds its bytes (zip members must be stored uncompressed, as ``torch.save`` writes them), and a
tensor is a lazy view (``TensorRef``) checked against its storage before it is materialised.  A
view whose logical size exceeds its storage (a stride-0 ``expand()``, overlapping strides) is
refused by ``load_pth``; ``load_state_dict(path, lazy=True)`` hands the views over unmaterialised
so that the caller can check their shapes against the architecture first (``models.load`` does:
such a view is then materialised only when the architecture expects exactly that shape).
Non-finite (NaN / inf) floating-point values are reported with a ``CheckpointWarning``.
"""
from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
import warnings
import zipfile
from typing import Mapping

import ml_dtypes
import numpy as np
import safetensors

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage classes pickled as GLOBAL 'torch <Name>Storage' -> element dtype.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(ValueError):
  """A checkpoint file that cannot be read safely or does not fit the model."""


class CheckpointWarning(UserWarning):
  """Something in a checkpoint that loads but deserves a look (e.g. NaN weights)."""


class _StorageType:
  """Stand-in for ``torch.<Name>Storage``: only carries the element dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = _STORAGE_DTYPES[name]


class _Storage:
  """A flat storage: ``data`` is a 1-D array, filled now (zip) or after the pickle (legacy)."""

  def __init__(self, dtype: np.dtype, numel: int):
    self.dtype = dtype
    self.numel = numel
    self.data: np.ndarray | None = None


class TensorRef:
  """A tensor of the checkpoint as a strided view of a storage, materialised on demand
  (``numpy()`` or ``np.asarray``); ``shape``, ``dtype`` and ``ndim`` cost nothing."""

  def __init__(self, storage, offset: int, size, stride):
    try:
      self.size = tuple(int(n) for n in size)
      self.stride = tuple(int(n) for n in stride)
      self.offset = int(offset)
    except (TypeError, ValueError) as err:
      raise CheckpointError(f"a tensor has a malformed size or stride ({err})") from None
    if len(self.size) != len(self.stride) or min(self.size, default=0) < 0:
      raise CheckpointError(f"a tensor has size {self.size} and stride {self.stride}")
    self.storage = storage
    base, start, capacity = self._container()
    del base
    last = start + sum((n - 1) * s for n, s in zip(self.size, self.stride))
    if self.numel and (start < 0 or min(self.stride, default=0) < 0 or last >= capacity):
      raise CheckpointError(f"tensor of size {self.size} at offset {start} overruns its storage "
                            f"of {capacity} elements")

  def _container(self):
    """(root storage, offset in it, elements this view may address)."""
    if isinstance(self.storage, _StorageView):
      view = self.storage
      return view.base, view.offset + self.offset, view.offset + view.numel
    return self.storage, self.offset, self.storage.numel

  @property
  def shape(self) -> tuple[int, ...]:
    return self.size

  @property
  def ndim(self) -> int:
    return len(self.size)

  @property
  def dtype(self) -> np.dtype:
    return self._container()[0].dtype

  @property
  def numel(self) -> int:
    return math.prod(self.size)

  @property
  def expanded(self) -> bool:
    """Whether the view has more elements than the storage it may address (stride 0 or
    overlapping strides): materialising it allocates more than the file holds."""
    base, _, capacity = self._container()
    del base
    return self.numel > capacity

  def numpy(self) -> np.ndarray:
    base, offset, _ = self._container()
    if base.data is None:
      raise CheckpointError("a tensor refers to a storage whose bytes are missing from the file")
    data = base.data
    if self.numel == 0:
      return np.zeros(self.size, data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
    if last >= data.size:
      raise CheckpointError(f"tensor of size {self.size} at offset {offset} overruns its storage "
                            f"of {data.size} elements")
    item = data.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[offset:], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False)
    try:
      return np.array(view, copy=True)
    except MemoryError:
      raise CheckpointError(f"a tensor of size {self.size} does not fit in memory") from None

  def __array__(self, dtype=None, copy=None):
    del copy
    array = self.numpy()
    return array if dtype is None else array.astype(dtype)


class _StorageView:
  """Legacy-format view into a root storage (``view_metadata``)."""

  def __init__(self, base: _Storage, offset: int, numel: int):
    self.base, self.offset, self.numel = base, offset, numel


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None):
  """Our ``torch._utils._rebuild_tensor_v2``: records the view; the bytes may come later."""
  del requires_grad, backward_hooks, metadata
  if not isinstance(storage, (_Storage, _StorageView)):
    raise CheckpointError(f"_rebuild_tensor_v2 got a {type(storage).__name__}, not a storage")
  return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  """Our ``torch._utils._rebuild_parameter``: a Parameter is just its tensor here."""
  del requires_grad, backward_hooks
  return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves only allow-listed globals to local stand-ins; never imports from the file."""

  def __init__(self, file, source: str, persistent_load):
    super().__init__(file)
    self._source = source
    self._persistent = persistent_load

  def find_class(self, module, name):
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    fn = _ALLOWED.get((module, name))
    if fn is None:
      raise CheckpointError(
          f"{self._source}: refusing to load global {module}.{name} (only tensors, storages and "
          "OrderedDict are allowed in a checkpoint; the file may be malicious)")
    return fn

  def persistent_load(self, pid):
    return self._persistent(pid)


def _storage_id(pid, source: str):
  """Validates a persistent id ('storage', type, key, location, numel[, view]) -> its fields."""
  if not isinstance(pid, tuple) or len(pid) < 5:
    raise CheckpointError(f"{source}: unexpected persistent id {pid!r}")
  tag = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
  if tag != "storage" or not isinstance(pid[1], _StorageType):
    raise CheckpointError(f"{source}: unexpected persistent id {pid!r}")
  key = pid[2].decode("ascii") if isinstance(pid[2], bytes) else str(pid[2])
  try:
    numel = int(pid[4])
  except (TypeError, ValueError):
    raise CheckpointError(f"{source}: storage {key} has element count {pid[4]!r}") from None
  if numel < 0:
    raise CheckpointError(f"{source}: storage {key} has element count {numel}")
  return pid[1], key, numel, (pid[5] if len(pid) > 5 else None)


def _materialize(obj, source: str):
  """Replaces every TensorRef inside dicts/lists/tuples by its NumPy array; refuses views that
  are larger than their storage (no architecture says what to expect here)."""
  if isinstance(obj, TensorRef):
    if obj.expanded:
      raise CheckpointError(
          f"{source}: a tensor of size {obj.size} (stride {obj.stride}) is a view of "
          f"{obj.numel:,} elements over a storage of {obj._container()[2]:,} (an expand() or "
          "overlapping view); refusing to materialise it without a model that expects that shape")
    return obj.numpy()
  if isinstance(obj, dict):
    return type(obj)((k, _materialize(v, source)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialize(v, source) for v in obj)
  return obj


def _resolve(obj, source: str, lazy: bool):
  return obj if lazy else _materialize(obj, source)


def _unpickling_failed(path: str, what: str, err: BaseException) -> CheckpointError:
  """A CheckpointError naming the file for whatever a malformed pickle raised."""
  if isinstance(err, CheckpointError):
    message = str(err)
    return err if message.startswith(path) else CheckpointError(f"{path}: {message}")
  return CheckpointError(f"{path}: {what} ({type(err).__name__}: {err})")


def _load_zip(path: str, lazy: bool = False) -> object:
  """torch's zip format -> unpickled object (TensorRefs resolved unless ``lazy``)."""
  try:
    archive = zipfile.ZipFile(path)
  except zipfile.BadZipFile as e:
    raise CheckpointError(f"{path}: not a readable zip checkpoint (truncated?): {e}") from None
  with archive:
    pkl = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
      raise CheckpointError(f"{path}: zip archive has no single <root>/data.pkl, so it is no torch checkpoint")
    root = pkl[0][:-len("data.pkl")]
    names = set(archive.namelist())
    if root + "byteorder" in names and archive.read(root + "byteorder").strip() != b"little":
      raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
    storages: dict[str, _Storage] = {}
    file_size = os.path.getsize(path)

    def persistent_load(pid):
      storage_type, key, numel, _ = _storage_id(pid, path)
      if key not in storages:
        member = f"{root}data/{key}"
        if member not in names:
          raise CheckpointError(f"{path}: storage {member} is missing from the archive")
        storage = _Storage(storage_type.dtype, numel)
        info = archive.getinfo(member)
        # Stored members hold at most the file's bytes; a compressed one could inflate to any size.
        if info.compress_type != zipfile.ZIP_STORED:
          raise CheckpointError(f"{path}: storage {member} is compressed; torch.save stores "
                                "storages uncompressed")
        if info.file_size != info.compress_size or info.file_size > file_size:
          raise CheckpointError(f"{path}: storage {member} claims {info.file_size} bytes, more "
                                f"than the file's {file_size}")
        if info.file_size < numel * storage.dtype.itemsize:
          raise CheckpointError(f"{path}: storage {member} has {info.file_size} bytes, expected "
                                f"{numel * storage.dtype.itemsize}")
        try:
          raw = archive.read(member)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
          raise CheckpointError(f"{path}: cannot read storage {member}: {e}") from None
        if len(raw) < numel * storage.dtype.itemsize:
          raise CheckpointError(f"{path}: storage {member} has {len(raw)} bytes, expected "
                                f"{numel * storage.dtype.itemsize}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype, count=numel)
        storages[key] = storage
      return storages[key]

    try:
      with archive.open(pkl[0]) as f:
        obj = _RestrictedUnpickler(io.BytesIO(f.read()), path, persistent_load).load()
    except (Exception, MemoryError) as e:  # a malformed pickle raises many types
      raise _unpickling_failed(path, f"corrupt pickle in {pkl[0]}", e) from None
    return _resolve(obj, path, lazy)


def _load_legacy(path: str, lazy: bool = False) -> object:
  """torch's legacy (non-zip, non-tar) format -> unpickled object (TensorRefs resolved unless
  ``lazy``)."""
  with open(path, "rb") as f:
    try:
      magic = _RestrictedUnpickler(f, path, _no_persistent(path)).load()
      if magic != LEGACY_MAGIC:
        raise CheckpointError(f"{path}: not a torch checkpoint (bad magic number {magic!r})")
      protocol = _RestrictedUnpickler(f, path, _no_persistent(path)).load()
      if protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"{path}: unsupported legacy protocol version {protocol!r}")
      sys_info = _RestrictedUnpickler(f, path, _no_persistent(path)).load()
      if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise CheckpointError(f"{path}: big-endian checkpoints are not supported")
      roots: dict[str, _Storage] = {}

      def persistent_load(pid):
        storage_type, key, numel, view = _storage_id(pid, path)
        if key not in roots:
          roots[key] = _Storage(storage_type.dtype, numel)
        if view is None:
          return roots[key]
        _, view_offset, view_numel = view
        return _StorageView(roots[key], int(view_offset), int(view_numel))

      obj = _RestrictedUnpickler(f, path, persistent_load).load()
      keys = _RestrictedUnpickler(f, path, _no_persistent(path)).load()
      if not isinstance(keys, (list, tuple)):
        raise CheckpointError(f"{path}: the storage key list is a {type(keys).__name__}")
    except (Exception, MemoryError) as e:  # a malformed pickle raises many types
      raise _unpickling_failed(path, "not a torch checkpoint, or a corrupt or truncated one",
                               e) from None
    file_size = os.fstat(f.fileno()).st_size
    for key in keys:
      key = str(key)
      if key not in roots:
        raise CheckpointError(f"{path}: storage key {key} is listed but never used")
      _read_legacy_storage(f, roots[key], path, key, file_size)
  return _resolve(obj, path, lazy)


def _no_persistent(path):
  def refuse(pid):
    raise CheckpointError(f"{path}: unexpected persistent id {pid!r} outside the main pickle")
  return refuse


def _read_legacy_storage(f, storage: _Storage, path: str, key: str, file_size: int) -> None:
  """Reads one storage record: little-endian int64 element count, then the raw elements."""
  header = f.read(8)
  if len(header) != 8:
    raise CheckpointError(f"{path}: truncated before storage {key}")
  (numel,) = struct.unpack("<q", header)
  if numel != storage.numel:
    raise CheckpointError(f"{path}: storage {key} has {numel} elements, the pickle says {storage.numel}")
  nbytes = numel * storage.dtype.itemsize
  if nbytes > file_size - f.tell():
    raise CheckpointError(f"{path}: truncated in storage {key} ({file_size - f.tell()} of "
                          f"{nbytes} bytes)")
  raw = f.read(nbytes)
  if len(raw) != nbytes:
    raise CheckpointError(f"{path}: truncated in storage {key} ({len(raw)} of {nbytes} bytes)")
  storage.data = np.frombuffer(raw, dtype=storage.dtype)


def load_pth(path: str | os.PathLike, lazy: bool = False) -> object:
  """Reads a ``.pth`` file (zip or legacy format) -> the pickled object, tensors as NumPy arrays
  (``lazy``: as unmaterialised ``TensorRef`` views, for the caller to check first).

  Raises CheckpointError (a ValueError) naming the file for truncated, corrupt or unsafe files.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"checkpoint file not found: {path}")
  with open(path, "rb") as f:
    head = f.read(512)
  if len(head) == 0:
    raise CheckpointError(f"{path}: empty checkpoint file")
  if head[:4] == b"PK\x03\x04":
    return _load_zip(path, lazy)
  if len(head) >= 262 and head[257:262] == b"ustar":
    raise CheckpointError(f"{path}: the pre-1.0 tar checkpoint format is not supported; re-save it "
                          "with a current torch.save")
  if head[:1] != b"\x80":
    raise CheckpointError(f"{path}: not a torch checkpoint (neither zip nor legacy pickle)")
  return _load_legacy(path, lazy)


# Top-level keys that hold the state dict in training checkpoints, unwrapped in this order.
WRAPPERS = ("state_dict", "model")


# The header's dtype names (safetensors' format spec) this reader hands on.
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
                       "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32,
                       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


class SafetensorsRef:
  """A tensor of a ``.safetensors`` file, read on demand (``numpy()`` or ``np.asarray``);
  ``shape``, ``dtype`` and ``ndim`` come from the header and cost nothing."""

  def __init__(self, path: str, key: str, shape, dtype: str):
    self.path, self.key, self.shape = path, key, tuple(int(n) for n in shape)
    try:
      self.dtype = np.dtype(_SAFETENSORS_DTYPES[dtype])
    except KeyError:
      raise CheckpointError(f"{path}: tensor {key!r} has unsupported dtype {dtype}") from None
    self.ndim = len(self.shape)

  def numpy(self) -> np.ndarray:
    with safetensors.safe_open(self.path, framework="numpy") as f:
      return f.get_tensor(self.key)

  def __array__(self, dtype=None, copy=None):
    del copy
    array = self.numpy()
    return array if dtype is None else array.astype(dtype)


def is_safetensors(path: str | os.PathLike) -> bool:
  """Whether ``path`` looks like a safetensors file: a little-endian u64 header length, then
  the JSON header's ``{`` (a torch zip starts ``PK``, a legacy pickle ``\\x80``)."""
  with open(path, "rb") as f:
    head = f.read(9)
  return len(head) == 9 and head[8:9] == b"{"


def load_safetensors(path: str | os.PathLike, lazy: bool = False) -> dict:
  """A ``.safetensors`` file -> {key: NumPy array} (``lazy``: {key: ``SafetensorsRef``}).  The
  package checks that the header's offsets cover exactly the file's bytes, so a declared shape
  never exceeds what the file holds; CheckpointError for a malformed file."""
  path = os.fspath(path)
  try:
    with safetensors.safe_open(path, framework="numpy") as f:
      refs = {k: SafetensorsRef(path, k, f.get_slice(k).get_shape(), f.get_slice(k).get_dtype())
              for k in f.keys()}
  except safetensors.SafetensorError as err:
    raise CheckpointError(f"{path}: not a valid safetensors file ({err})") from None
  if lazy:
    return refs
  arrays = {k: ref.numpy() for k, ref in refs.items()}
  warn_nonfinite(arrays, path)
  return arrays


def load_state_dict(path: str | os.PathLike, lazy: bool = False,
                    wrappers: tuple[str, ...] = WRAPPERS) -> dict:
  """A ``.pth`` state dict -> {torch key: NumPy array} (``lazy``: {torch key: ``TensorRef``},
  nothing materialised, for the caller to check the shapes first); unwraps {'state_dict': ...}
  and {'model': ...} wrappers (``wrappers``, in order, e.g. RobustBench's ``'last'`` first).
  Raises CheckpointError if the file holds no such mapping; warns (``CheckpointWarning``) about
  non-finite values in what it materialises."""
  if os.path.isfile(path) and is_safetensors(path):
    return load_safetensors(path, lazy)
  kind = TensorRef if lazy else np.ndarray
  obj = load_pth(path, lazy)
  for wrapper in wrappers:
    if isinstance(obj, dict) and set(obj) >= {wrapper} and isinstance(obj[wrapper], dict) and not any(
        isinstance(v, kind) for v in obj.values()):
      obj = obj[wrapper]
  if not isinstance(obj, dict):
    raise CheckpointError(f"{os.fspath(path)}: holds a {type(obj).__name__}, not a state dict")
  bad = [k for k, v in obj.items() if not isinstance(v, kind)]
  if bad:
    raise CheckpointError(f"{os.fspath(path)}: entry {bad[0]!r} is not a tensor")
  if not lazy:
    warn_nonfinite(obj, os.fspath(path))
  return dict(obj)


def warn_nonfinite(arrays: Mapping[str, np.ndarray], source: str) -> int:
  """Warns once (``CheckpointWarning``) naming the floating-point entries that hold NaN or inf;
  returns how many entries do."""
  bad = {}
  for key, value in arrays.items():
    value = np.asarray(value)
    if value.dtype.kind == "f" or value.dtype == np.dtype(ml_dtypes.bfloat16):
      count = int(value.size - np.count_nonzero(np.isfinite(value)))
      if count:
        bad[key] = count
  if bad:
    first = next(iter(bad))
    warnings.warn(f"{source}: {len(bad)} tensor(s) hold NaN or inf values (first: {first!r}, "
                  f"{bad[first]} of {np.asarray(arrays[first]).size}); the model's outputs are "
                  "unlikely to mean anything", CheckpointWarning, stacklevel=2)
  return len(bad)
