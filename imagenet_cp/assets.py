"""The frost textures of ImageNet-C: find, verify (sha256), cache, download, decode.

The original ``frost`` corruption reads six image files next to its script
(``hendrycks/robustness`` ``ImageNet-C/create_c/frost{1,2,3}.png``, ``frost{4,5,6}.jpg``; the
same bytes are in the ``imagecorruptions`` wheel).  Each file is looked up on its own, in this
order, and the first copy found is used:

1. an explicit directory: the ``frost_dir`` argument, else ``$IMAGENET_CP_FROST_DIR``.  A
   directory named this way must hold the file (missing or wrong bytes are an error, never a
   silent fall-through to another copy);
2. the user cache: ``$IMAGENET_CP_CACHE/frost``, else ``~/.cache/imagenet_cp/frost``;
3. the data files of the ``imagecorruptions`` package, if installed (found with
   ``importlib.util.find_spec``, never imported: its import needs an old setuptools);
4. the copy packaged with imagenet_cp (``imagenet_cp/assets_data/frost``, Apache-2.0, see the
   README there), so a fresh machine needs no network;
5. a download from the original repository (base URL overridable with ``base_url=`` or
   ``$IMAGENET_CP_FROST_URL``) into the user cache, written atomically and only after its
   sha256 matched.

Every file is checked against the sha256 below before it is used, wherever it came from.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import pathlib
import tempfile
import urllib.error
import urllib.request

import numpy as np

# The six files, in the original's list order, with their sha256 (hendrycks/robustness at
# 8190fe3 and the imagecorruptions 1.1.2 wheel hold identical bytes).
FROST_SHA256 = {
    "frost1.png": "ff9f907860bd7a835d459e32f9d588062b7f61ee267343cc7222b56753a14755",
    "frost2.png": "fe211a89b336999c207a852ce05818d4545d0b57c5beadd824b4cc9d9a9b6137",
    "frost3.png": "2d0d50b4a9bb213f38b024ef7768731bb83cc08d2f26b5766bbc167cdfa0e504",
    "frost4.jpg": "3f8b91ca1a9fa7167b09e773da53f5ae60d0a1fd88f02a783f6e328a72887f6e",
    "frost5.jpg": "5fc6a19df4a429ba68abdcc8f8a4278d4c9f81c9ccafd2c92ab0c8cf8992ebd2",
    "frost6.jpg": "1f92b2f48408748085b68dd81d816ef239f42cef3029c25d041fcb6760fb4f25",
}
FROST_FILES = tuple(FROST_SHA256)
FROST_SIZES = {  # bytes, for early "truncated" errors
    "frost1.png": 1_199_930, "frost2.png": 299_002, "frost3.png": 299_002,
    "frost4.jpg": 36_734, "frost5.jpg": 155_150, "frost6.jpg": 90_185,
}

FROST_DIR_ENV = "IMAGENET_CP_FROST_DIR"
CACHE_ENV = "IMAGENET_CP_CACHE"
BASE_URL_ENV = "IMAGENET_CP_FROST_URL"
DEFAULT_BASE_URL = ("https://raw.githubusercontent.com/hendrycks/robustness/"
                    "8190fe329f5f072a06e3a2aea02bb5dda69aed9f/ImageNet-C/create_c/")
PACKAGED_DIR = pathlib.Path(__file__).resolve().parent / "assets_data" / "frost"
DOWNLOAD_TIMEOUT_S = 60.0


class AssetError(RuntimeError):
  """A frost texture is missing, truncated or has the wrong bytes."""


def cache_dir() -> pathlib.Path:
  """``$IMAGENET_CP_CACHE/frost``, else ``~/.cache/imagenet_cp/frost``."""
  root = os.environ.get(CACHE_ENV)
  base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "imagenet_cp"
  return base / "frost"


def imagecorruptions_dir() -> pathlib.Path | None:
  """The ``frost`` data folder of an installed ``imagecorruptions`` package, without importing it."""
  try:
    spec = importlib.util.find_spec("imagecorruptions")
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  for location in spec.submodule_search_locations:
    folder = pathlib.Path(location) / "frost"
    if folder.is_dir():
      return folder
  return None


def sha256_bytes(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def check_bytes(name: str, data: bytes, origin: str) -> bytes:
  """Raises AssetError naming ``name`` and ``origin`` unless ``data`` are the expected bytes."""
  expected_size = FROST_SIZES[name]
  if len(data) != expected_size:
    kind = "truncated" if len(data) < expected_size else "too long"
    raise AssetError(
        f"frost texture {name} from {origin} is {kind}: {len(data)} bytes, expected "
        f"{expected_size} (sha256 {FROST_SHA256[name]}); delete it and retry")
  digest = sha256_bytes(data)
  if digest != FROST_SHA256[name]:
    raise AssetError(
        f"frost texture {name} from {origin} has sha256 {digest}, expected {FROST_SHA256[name]}; "
        "it is not the original file (delete it and retry)")
  return data


def _explicit_dir(frost_dir) -> pathlib.Path | None:
  if frost_dir is not None:
    return pathlib.Path(frost_dir)
  env = os.environ.get(FROST_DIR_ENV)
  return pathlib.Path(env) if env else None


def candidate_dirs(frost_dir=None) -> list[tuple[str, pathlib.Path]]:
  """The local lookup order as (label, folder); the explicit folder, if any, comes alone."""
  explicit = _explicit_dir(frost_dir)
  if explicit is not None:
    return [("explicit directory", explicit)]
  dirs = [("user cache", cache_dir())]
  ic = imagecorruptions_dir()
  if ic is not None:
    dirs.append(("imagecorruptions package", ic))
  dirs.append(("packaged copy", PACKAGED_DIR))
  return dirs


def download(name: str, dest_dir: pathlib.Path, base_url: str | None = None,
             timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
  """Downloads ``name`` from ``base_url`` into ``dest_dir`` (atomically, after the sha256 check)."""
  base = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
  url = base.rstrip("/") + "/" + name
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response:
      data = response.read()
  except (urllib.error.URLError, OSError) as e:
    raise AssetError(
        f"frost texture {name} is not available locally and could not be downloaded from {url} "
        f"({e}). Put the six files {', '.join(FROST_FILES)} in a folder and pass frost_dir= or set "
        f"${FROST_DIR_ENV}") from e
  check_bytes(name, data, url)
  dest_dir.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=dest_dir)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    os.replace(tmp, dest_dir / name)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise
  return data


def read_texture_bytes(name: str, frost_dir=None, *, base_url: str | None = None,
                       allow_download: bool = True) -> tuple[bytes, str]:
  """The verified bytes of frost texture ``name`` and where they came from (see module doc)."""
  if name not in FROST_SHA256:
    raise ValueError(f"unknown frost texture {name!r}; expected one of {', '.join(FROST_FILES)}")
  dirs = candidate_dirs(frost_dir)
  for label, folder in dirs:
    path = folder / name
    if path.is_file():
      return check_bytes(name, path.read_bytes(), f"{label} {path}"), str(path)
    if label == "explicit directory":
      raise AssetError(
          f"frost texture {name} not found in {folder} (given as frost_dir= or ${FROST_DIR_ENV}); "
          f"it must hold {', '.join(FROST_FILES)}")
  if not allow_download:
    raise AssetError(
        f"frost texture {name} not found in {', '.join(str(d) for _, d in dirs)} and downloads "
        "are disabled")
  dest = cache_dir()
  return download(name, dest, base_url), str(dest / name)


def decode_bgr(data: bytes) -> np.ndarray:
  """``cv2.imread(file)`` of the bytes: uint8 [H, W, 3] in OpenCV's BGR order, alpha dropped."""
  import cv2  # runtime dependency (opencv-python-headless), imported lazily
  image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if image is None:
    raise AssetError("could not decode a frost texture")
  return image


@functools.lru_cache(maxsize=8)
def _frost_textures_cached(frost_dir: str | None, base_url: str | None,
                           env: tuple) -> tuple[np.ndarray, ...]:
  del env  # part of the cache key only
  out = []
  for name in FROST_FILES:
    data, _ = read_texture_bytes(name, frost_dir, base_url=base_url)
    rgb = np.ascontiguousarray(decode_bgr(data)[..., ::-1])  # the original's [..., [2, 1, 0]]
    rgb.setflags(write=False)
    out.append(rgb)
  return tuple(out)


def frost_textures(frost_dir=None, *, base_url: str | None = None) -> tuple[np.ndarray, ...]:
  """The six textures as uint8 RGB [H, W, 3] (frost1..frost6), decoded as ``cv2.imread`` does.

  Cached per (folder, URL, environment); the arrays are read-only.
  """
  env = tuple(os.environ.get(k) for k in (FROST_DIR_ENV, CACHE_ENV, BASE_URL_ENV))
  return _frost_textures_cached(
      None if frost_dir is None else str(frost_dir), base_url, env)
