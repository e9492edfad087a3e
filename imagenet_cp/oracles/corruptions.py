"""The oracle: Hendrycks's original ImageNet-C code, run on today's libraries, with replayed draws.

The original corruption code is on PyPI as ``imagenet-c==0.0.3`` (``imagenet_c/corruptions.py``,
the same numerics as ``ImageNet-C/create_c/make_imagenet_c.py``). It was written for NumPy 1.14,
SciPy 1.0, scikit-image 0.13 and an old setuptools. ``load_original`` imports it unchanged (the
file in site-packages is never edited) and patches a few names in the imported module's globals,
so that it runs on the pinned NumPy 2.4 / SciPy 1.17 / scikit-image 0.26 / setuptools 84.
Each shim only renames or re-points an API; none re-implements an algorithm:

1. ``pkg_resources`` (``from pkg_resources import resource_filename`` at import time): no longer
   shipped by today's setuptools (not importable with the pinned 84), so the import itself
   fails. A stand-in ``pkg_resources`` module is put in ``sys.modules`` only while the module is
   imported, and the module's ``resource_filename`` is then pointed at the frost directory. The
   package never shipped the frost files anyway; the directory is an argument, else
   ``$IMAGENET_CP_FROST_DIR``, else the copy packaged with imagenet_cp (the original's files,
   sha256-checked in the tests; never a download).
2. ``np.float_`` (``plasma_fractal``, i.e. fog): removed in NumPy 2.0; it was float64.
3. ``np.fromstring(bytes, np.uint8)`` (``motion_blur`` and ``snow`` decode ImageMagick's PNG):
   binary mode, deprecated since NumPy 1.14, now raises ValueError; ``np.frombuffer`` (the
   replacement NumPy's message names) returns the same bytes. Shims 2 and 3 are a small proxy bound to the module's global ``np``; it forwards
   every other name to NumPy, so ``np.random`` is still the real global NumPy RNG (and ``Replay``
   can patch it); NumPy itself is left untouched for everyone else.
4. ``skimage.filters.gaussian(..., multichannel=True)`` (``gaussian_blur``, ``glass_blur``): the
   keyword was removed in scikit-image 0.19+; it becomes ``channel_axis=-1`` (same per-channel
   filter, same defaults: mode='nearest', truncate=4).

Things that still work unchanged and needed nothing: ``from scipy.ndimage.interpolation import
map_coordinates`` (a DeprecationWarning only, silenced during the import), Wand 0.7 with
ImageMagick 6.9 through the original ``MotionImage`` ctypes call, OpenCV 5, Pillow 12
(``fromarray(mode='L')`` warns only), ``PIL.Image.BOX``. The module's own
``warnings.simplefilter("ignore", UserWarning)`` is confined to the import, so it does not change
the warning filters of the importing process.

One behaviour did change underneath the original: ``impulse_noise`` calls
``skimage.util.random_noise``, which in scikit-image >= 0.20 draws from
``np.random.default_rng()`` (two ``Generator.random(shape)`` calls: "flipped" then "salted"),
not from the global ``np.random`` (the pinned 0.13 drew from the global RNG; the distribution is
the same: each value is flipped with probability ``amount``, then salt or pepper 50/50).
``Replay`` therefore also patches ``np.random.default_rng``.

Example (the test suite has one per random corruption)::

  z = np.random.default_rng(0).standard_normal((224, 224, 3))
  with Replay(normal=z, standard=True) as r:        # the original draws scale * z
    out = run_original("gaussian_noise", image, 3)  # == uint8(clip(x/255 + 0.18 z, 0, 1) * 255)
  assert r.calls["normal"] == 1

``run_original`` reproduces the original save path's pixels before its JPEG q85 step
(``np.uint8(out)``, a truncation). ``Replay`` feeds the original our own random draws through a
patched global ``np.random`` and checks that it consumed exactly what it should.
``fidelity``/``assert_faithful`` are the figures the tests hold every corruption to.

Test-only: needs the ``test`` extra (Wand + ImageMagick) and ``imagenet-c==0.0.3`` installed with
``--no-deps``; ``make test`` sets all of that up.
"""
from __future__ import annotations

import contextlib
import math
import os
import pathlib
import sys
import types
import warnings
from typing import Any, Iterable, Mapping

import numpy as np

from imagenet_cp import assets

DEFAULT_FROST_DIR = assets.PACKAGED_DIR
FROST_ENV = assets.FROST_DIR_ENV
FROST_FILES = assets.FROST_FILES

# The 19 functions, in the order of imagenet_c.corruption_tuple (= imagenet_cp.CORRUPTIONS).
ORIGINAL_NAMES = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate")

_INSTALL_HINT = (
    "The ImageNet-C oracle is test-only: it needs the original code (PyPI imagenet-c==0.0.3, "
    "installed with --no-deps), Wand with ImageMagick's libMagickWand, OpenCV, SciPy and "
    "scikit-image. Run `make test` (it installs the `test` extra and imagenet-c into ./.venv and "
    "libmagickwand-dev), or by hand: `pip install -e '.[test]' && pip install --no-deps "
    "imagenet-c==0.0.3` plus `apt-get install libmagickwand-dev`.")

# --------------------------------------------------------------------------------------------
# Shims


class _NumpyShim(types.ModuleType):
  """NumPy as the 2018 code saw it: ``float_`` and binary ``fromstring``; all else is NumPy."""

  float_ = np.float64

  @staticmethod
  def fromstring(string, dtype=float, count=-1, sep=""):
    if sep == "":  # binary mode now raises; frombuffer is the replacement NumPy names
      return np.frombuffer(string, dtype=dtype, count=count)
    return np.fromstring(string, dtype=dtype, count=count, sep=sep)

  def __getattr__(self, name):
    return getattr(np, name)


def _gaussian_shim(skimage_gaussian):
  """skimage ``gaussian`` accepting the removed ``multichannel`` keyword (-> ``channel_axis=-1``)."""

  def gaussian(image, *args, multichannel=None, **kwargs):
    if multichannel:
      kwargs["channel_axis"] = -1
    return skimage_gaussian(image, *args, **kwargs)

  gaussian.__wrapped__ = skimage_gaussian
  return gaussian


def frost_dir_default() -> pathlib.Path:
  """$IMAGENET_CP_FROST_DIR, else the copy packaged with imagenet_cp. Never downloads."""
  env = os.environ.get(FROST_ENV)
  return pathlib.Path(env) if env else DEFAULT_FROST_DIR


def _resource_filename_shim(frost_dir: pathlib.Path):
  """``pkg_resources.resource_filename(pkg, 'frost/frostN.ext')`` -> ``frost_dir/frostN.ext``."""

  def resource_filename(package, resource):
    del package
    path = frost_dir / pathlib.PurePosixPath(resource).name
    if not path.is_file():
      raise FileNotFoundError(
          f"frost texture {path} not found: pass frost_dir= or set ${FROST_ENV} to a folder "
          f"holding {', '.join(FROST_FILES)}")
    return str(path)

  return resource_filename


_MODULE = None


def _import_original():
  global _MODULE
  if _MODULE is not None:
    return _MODULE
  stub = types.ModuleType("pkg_resources")
  stub.resource_filename = _resource_filename_shim(frost_dir_default())
  saved = sys.modules.get("pkg_resources")
  sys.modules["pkg_resources"] = stub
  try:
    with warnings.catch_warnings():  # also confines the module's own simplefilter("ignore")
      warnings.simplefilter("ignore", DeprecationWarning)
      import skimage.filters
      import imagenet_c.corruptions as module  # noqa: F401  (imports wand, cv2, scipy, skimage)
  except ImportError as e:
    raise ImportError(f"{_INSTALL_HINT} (import failed: {e})") from e
  finally:
    if saved is None:
      sys.modules.pop("pkg_resources", None)
    else:
      sys.modules["pkg_resources"] = saved
  module.np = _NumpyShim("numpy")
  module.gaussian = _gaussian_shim(skimage.filters.gaussian)
  _MODULE = module
  return module


def load_original(frost_dir=None) -> types.ModuleType:
  """The original ``imagenet_c.corruptions`` module, shimmed to run on today's libraries.

  Args:
    frost_dir: folder with frost1.png ... frost6.jpg; default ``$IMAGENET_CP_FROST_DIR``, else
      the packaged copy (``frost_dir_default``). Each call re-points the module's frost paths.

  Returns:
    The module; its 19 corruption functions take a 224x224 PIL RGB image and a severity.
  """
  module = _import_original()
  frost_dir = pathlib.Path(frost_dir) if frost_dir is not None else frost_dir_default()
  module.resource_filename = _resource_filename_shim(frost_dir)
  return module


def run_original(name: str, image, severity: int, frost_dir=None) -> np.ndarray:
  """The original corruption's pixels as its save path has them before the JPEG step.

  Args:
    name: one of the 19 names.
    image: uint8 [224, 224, 3] (e.g. ``imagenet_cp.preprocess(photo)``).
    severity: 1..5.
    frost_dir: see ``load_original``.

  Returns:
    uint8 [224, 224, 3]: ``np.uint8(out)`` (truncation) of the function's return value
    (PIL images via ``np.asarray``; a 2-D result is repeated over 3 channels).
  """
  if name not in ORIGINAL_NAMES:
    raise ValueError(f"unknown corruption {name!r}; expected one of {', '.join(ORIGINAL_NAMES)}")
  if int(severity) not in (1, 2, 3, 4, 5):
    raise ValueError(f"severity must be in 1..5, got {severity}")
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.shape != (224, 224, 3):
    raise ValueError(f"run_original expects uint8 [224, 224, 3], got {image.dtype} {image.shape}")
  from PIL import Image
  module = load_original(frost_dir)
  with warnings.catch_warnings():  # the original ran with UserWarnings off; old APIs warn now
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", RuntimeWarning)  # np.uint8 of NaN (spatter, no edges)
    out = getattr(module, name)(Image.fromarray(image), int(severity))
    if not isinstance(out, np.ndarray):
      out = np.asarray(out)
    out = np.uint8(out)
  if out.ndim == 2:
    out = np.repeat(out[..., None], 3, axis=-1)
  if out.shape != (224, 224, 3):
    raise AssertionError(f"original {name} returned shape {out.shape}")
  return np.ascontiguousarray(out)


# --------------------------------------------------------------------------------------------
# Replaying draws through the global np.random


class ReplayError(AssertionError):
  """The original consumed more or fewer draws than the test queued (or an unqueued kind)."""


def _shape(size, *params) -> tuple:
  if size is None:
    return np.broadcast_shapes(*(np.shape(p) for p in params))
  if isinstance(size, (int, np.integer)):
    return (int(size),)
  return tuple(int(s) for s in size)


class _Queue:
  """One flat buffer with a read index."""

  __slots__ = ("name", "buf", "pos", "dtype")

  def __init__(self, name, values, dtype):
    self.name = name
    self.dtype = dtype
    if isinstance(values, (list, tuple)):
      parts = [np.asarray(v).reshape(-1) for v in values]
      values = np.concatenate(parts) if parts else np.zeros((0,))
    buf = np.asarray(values).reshape(-1)
    if dtype == np.int64 and buf.size and not np.issubdtype(buf.dtype, np.integer):
      if not np.array_equal(buf, np.round(buf)):
        raise ValueError(f"Replay: values queued for {name} must be integers")
    self.buf = buf.astype(dtype)
    self.pos = 0

  def take(self, shape):
    n = math.prod(shape)
    start = self.pos
    end = start + (n if shape else 1)
    if end > self.buf.size:
      raise ReplayError(
          f"Replay: np.random {self.name} over-consumed: a call wanted {n if shape else 1} "
          f"value(s) at position {start}, but only {self.buf.size} were queued")
    self.pos = end
    if not shape:
      return self.buf[start]
    return self.buf[start:end].reshape(shape)


_PATCHED = ("normal", "uniform", "randint", "poisson", "random", "random_sample", "default_rng")
_FORBIDDEN = ("rand", "randn", "standard_normal", "choice", "shuffle", "permutation",
              "integers", "binomial", "exponential", "sample", "ranf")


class Replay(contextlib.AbstractContextManager):
  """Patches the global ``np.random`` so the original code draws OUR values, in call order.

  ``Replay(normal=..., uniform=..., randint=..., poisson=..., random=..., standard=False,
  strict=True)``: each queue is an array or a list of arrays; a list is flattened and
  concatenated into one buffer (float64; int64 for ``randint`` and ``poisson``). Every call of
  the matching function takes the next ``prod(shape)`` values (1 for a scalar call) and
  reshapes them, where ``shape`` is ``size`` or, without ``size``, the broadcast shape of the
  parameters (``poisson(lam)`` takes ``lam.shape``).

  Patched: ``np.random.normal``, ``uniform``, ``randint``, ``poisson``, ``random`` /
  ``random_sample`` (queue ``random``) and ``np.random.default_rng``, which returns a generator
  whose ``random``, ``normal``, ``uniform``, ``integers`` and ``poisson`` methods read the same
  queues (``random``, ``normal``, ``uniform``, ``randint``, ``poisson``). Other global draws
  (``rand``, ``choice``, ...) raise while the context is active.

  ``standard``: False (default) returns queued values as they are (they must already be
  ``loc + scale * z`` etc.). True, or a collection of queue names, treats those queues as
  standard draws: ``normal`` -> ``loc + scale * z``, ``uniform`` -> ``low + (high - low) * u``
  with u in [0, 1); ``randint``/``poisson``/``random`` are always returned as they are.

  After the block: ``calls[fn]`` counts calls per queue (and ``'default_rng'``), ``args[fn]``
  lists each call's parameters: normal ``(loc, scale, shape)``, uniform and randint
  ``(low, high, shape)`` (randint's ``randint(n)`` recorded as ``(0, n, shape)``), poisson
  ``(lam, shape)``, random ``(shape,)``. ``consumed[fn]`` and ``queued[fn]`` count values. With
  ``strict=True`` the exit raises ``ReplayError`` if any queue was not consumed exactly, if a
  function without a queue was called, or if a replayed ``randint`` value lies outside its call's
  ``[low, high)``. Over-consumption raises at the offending call.
  """

  _INT = ("randint", "poisson")

  def __init__(self, *, normal=None, uniform=None, randint=None, poisson=None, random=None,
               standard: bool | Iterable[str] = False, strict: bool = True):
    given = dict(normal=normal, uniform=uniform, randint=randint, poisson=poisson, random=random)
    self.queues = {
        k: _Queue(k, v, np.int64 if k in self._INT else np.float64)
        for k, v in given.items() if v is not None}
    if standard is True:
      standard = ("normal", "uniform")
    self.standard = frozenset(standard or ())
    unknown = self.standard - {"normal", "uniform"}
    if unknown:
      raise ValueError(f"Replay: standard= applies to normal and uniform only, got {sorted(unknown)}")
    self.strict = strict
    self.calls = {k: 0 for k in ("normal", "uniform", "randint", "poisson", "random", "default_rng")}
    self.args: dict[str, list] = {k: [] for k in self.calls}
    self._saved: dict[str, Any] = {}
    self._errors: list[str] = []

  # -- the patched functions ------------------------------------------------------------------
  def _queue(self, name):
    q = self.queues.get(name)
    if q is None:
      msg = f"Replay: np.random {name} was called but no values were queued for it"
      self._errors.append(msg)
      raise ReplayError(msg)
    return q

  def normal(self, loc=0.0, scale=1.0, size=None):
    shape = _shape(size, loc, scale)
    self.calls["normal"] += 1
    self.args["normal"].append((loc, scale, shape))
    z = self._queue("normal").take(shape)
    return loc + scale * z if "normal" in self.standard else z

  def uniform(self, low=0.0, high=1.0, size=None):
    shape = _shape(size, low, high)
    self.calls["uniform"] += 1
    self.args["uniform"].append((low, high, shape))
    u = self._queue("uniform").take(shape)
    return low + (high - low) * u if "uniform" in self.standard else u

  def randint(self, low, high=None, size=None, dtype=int):
    if high is None:
      low, high = 0, low
    shape = _shape(size, low, high)
    self.calls["randint"] += 1
    self.args["randint"].append((low, high, shape))
    v = self._queue("randint").take(shape)
    return v if dtype is int else (v.astype(dtype) if shape else np.dtype(dtype).type(v))

  def poisson(self, lam=1.0, size=None):
    shape = _shape(size, lam)
    self.calls["poisson"] += 1
    self.args["poisson"].append((lam, shape))
    return self._queue("poisson").take(shape)

  def random(self, size=None, dtype=np.float64, out=None):
    if out is not None or np.dtype(dtype) != np.float64:
      raise ReplayError("Replay: random(out=..., dtype=float32) is not supported")
    shape = _shape(size)
    self.calls["random"] += 1
    self.args["random"].append((shape,))
    return self._queue("random").take(shape)

  def default_rng(self, seed=None):
    self.calls["default_rng"] += 1
    self.args["default_rng"].append((seed,))
    return _ReplayGenerator(self)

  # -- context ----------------------------------------------------------------------------------
  def __enter__(self):
    if self._saved:
      raise RuntimeError("Replay is not re-entrant")
    patches = {"normal": self.normal, "uniform": self.uniform, "randint": self.randint,
               "poisson": self.poisson, "random": self.random, "random_sample": self.random,
               "default_rng": self.default_rng}
    for name in _FORBIDDEN:
      if hasattr(np.random, name):
        patches[name] = self._forbidden(name)
    for name, fn in patches.items():
      self._saved[name] = getattr(np.random, name)
      setattr(np.random, name, fn)
    return self

  def _forbidden(self, name):
    def fn(*args, **kwargs):
      msg = f"Replay: the original called np.random.{name}, which Replay does not replay"
      self._errors.append(msg)
      raise ReplayError(msg)
    return fn

  def __exit__(self, exc_type, exc, tb):
    for name, fn in self._saved.items():
      setattr(np.random, name, fn)
    self._saved = {}
    if exc_type is not None or not self.strict:
      return False
    self.check()
    return False

  @property
  def consumed(self) -> dict[str, int]:
    return {k: q.pos for k, q in self.queues.items()}

  @property
  def queued(self) -> dict[str, int]:
    return {k: q.buf.size for k, q in self.queues.items()}

  def check(self) -> None:
    """Raises ReplayError unless every queue was consumed exactly and randint stayed in range."""
    problems = list(self._errors)
    for name, q in self.queues.items():
      if q.pos != q.buf.size:
        problems.append(
            f"np.random {name}: {q.pos} of {q.buf.size} queued values consumed "
            f"in {self.calls[name]} call(s)")
    problems += self._randint_range_problems()
    if problems:
      raise ReplayError("Replay: " + "; ".join(problems))

  def _randint_range_problems(self) -> list[str]:
    q = self.queues.get("randint")
    if q is None or not self.args["randint"]:
      return []
    calls = self.args["randint"]
    counts = np.array([math.prod(s) if s else 1 for _, _, s in calls])
    lows = np.repeat(np.array([np.min(lo) for lo, _, _ in calls], dtype=np.int64), counts)
    highs = np.repeat(np.array([np.max(hi) for _, hi, _ in calls], dtype=np.int64), counts)
    v = q.buf[:counts.sum()]
    bad = np.flatnonzero((v < lows) | (v >= highs))
    if bad.size:
      i = bad[0]
      return [f"np.random randint: {bad.size} replayed value(s) outside [low, high), first at "
              f"value {i}: {v[i]} not in [{lows[i]}, {highs[i]})"]
    return []


class _ReplayGenerator:
  """What ``np.random.default_rng()`` returns under ``Replay``: a Generator reading its queues."""

  def __init__(self, replay: Replay):
    self._r = replay

  def random(self, size=None, dtype=np.float64, out=None):
    return self._r.random(size, dtype, out)

  def normal(self, loc=0.0, scale=1.0, size=None):
    return self._r.normal(loc, scale, size)

  def uniform(self, low=0.0, high=1.0, size=None):
    return self._r.uniform(low, high, size)

  def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
    if endpoint:
      raise ReplayError("Replay: Generator.integers(endpoint=True) is not supported")
    return self._r.randint(low, high, size, dtype)

  def poisson(self, lam=1.0, size=None):
    return self._r.poisson(lam, size)

  def __getattr__(self, name):
    raise ReplayError(f"Replay: Generator.{name} is not replayed")


# --------------------------------------------------------------------------------------------
# Helpers for building queues in the original's call order


def expected_draws(name: str, severity: int) -> dict[str, list[tuple]]:
  """The original's np.random calls for one image: queue name -> the shape of each call, in order.

  A scalar call has shape ``()``. Deterministic corruptions give ``{}``. ``impulse_noise`` also
  makes one ``np.random.default_rng()`` call whose generator draws the two ``random`` fields
  ("flipped" then "salted"). fog's plasma fractal draws, for n = 1, 2, 4, ..., 128, three
  ``uniform(-w, w, (n, n))`` fields (squares, then the two diamond fields).
  """
  image, plane = (224, 224, 3), (224, 224)
  table = {
      "gaussian_noise": {"normal": [image]},
      "speckle_noise": {"normal": [image]},
      "shot_noise": {"poisson": [image]},
      "impulse_noise": {"random": [image, image]},
      "glass_blur": {"randint": [(2,)] * glass_blur_calls(severity)},
      "motion_blur": {"uniform": [()]},
      "snow": {"normal": [plane], "uniform": [()]},
      "frost": {"randint": [(), (), ()]},
      "fog": {"uniform": [(n, n) for n in (2 ** k for k in range(8)) for _ in range(3)]},
      "elastic_transform": {"uniform": [(3, 2), plane, plane]},
      "spatter": {"normal": [plane]},
  }
  if name not in ORIGINAL_NAMES:
    raise ValueError(f"unknown corruption {name!r}")
  return table.get(name, {})


def glass_blur_iterations(severity: int) -> tuple[int, int]:
  """(max_delta d, iterations) of glass_blur at ``severity``."""
  sigma_d_iters = [(0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)][severity - 1]
  return sigma_d_iters[1], sigma_d_iters[2]


def glass_blur_calls(severity: int, size: int = 224) -> int:
  """Number of ``randint(-d, d, size=(2,))`` calls of glass_blur: iterations * (size - 2d)**2."""
  d, iters = glass_blur_iterations(severity)
  return iters * (size - 2 * d) ** 2


def glass_blur_queue(dx, dy, severity: int) -> np.ndarray:
  """The randint queue for glass_blur from per-pixel offsets.

  Args:
    dx, dy: int [iterations, 224, 224]: the column and row offsets drawn for pixel (h, w) in
      each iteration (only pixels d < h, w <= 224 - d are visited; the rest are ignored).
    severity: 1..5.

  Returns:
    int64 [iterations * (224 - 2d)**2 * 2] in the original's call order: iterations, then h from
    224-d down to d+1, then w likewise, each call giving (dx, dy).
  """
  d, iters = glass_blur_iterations(severity)
  dx, dy = np.asarray(dx), np.asarray(dy)
  if dx.shape != (iters, 224, 224) or dy.shape != dx.shape:
    raise ValueError(f"glass_blur_queue: dx, dy must be [{iters}, 224, 224], got {dx.shape}, {dy.shape}")
  rows = slice(224 - d, d, -1)
  pairs = np.stack([dx[:, rows, rows], dy[:, rows, rows]], axis=-1)
  return pairs.reshape(-1).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Fidelity figures


def fidelity(ours, theirs) -> dict[str, float]:
  """Mean absolute difference (grey levels), fraction of values differing by > 2, max |diff|."""
  a = np.asarray(ours)
  b = np.asarray(theirs)
  if a.shape != b.shape:
    raise ValueError(f"fidelity: shapes differ, {a.shape} vs {b.shape}")
  diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
  return dict(mad=float(diff.mean()), frac_gt2=float((diff > 2).mean()), max=float(diff.max()))


def assert_faithful(ours, theirs, mad: float = 0.5, frac_gt2: float = 0.01, context: str = "") -> dict:
  """Raises AssertionError (with all three figures) unless mad and frac_gt2 are within bounds."""
  f = fidelity(ours, theirs)
  if not (f["mad"] <= mad and f["frac_gt2"] <= frac_gt2):
    raise AssertionError(
        f"{context + ': ' if context else ''}not faithful: mad={f['mad']:.4f} (<= {mad}), "
        f"frac_gt2={f['frac_gt2']:.5f} (<= {frac_gt2}), max={f['max']:.0f}")
  return f


def originals(frost_dir=None) -> Mapping[str, Any]:
  """name -> the shimmed original function, for the 19 names."""
  module = load_original(frost_dir)
  return {name: getattr(module, name) for name in ORIGINAL_NAMES}
