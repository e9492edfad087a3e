"""Pinned torchvision checkpoints: download, sha256 check, convert once, cache.

Cache layout (``cache_dir()`` = ``$IMAGENET_CP_CACHE/models``, else
``~/.cache/imagenet_cp/models``)::

  resnet50-0676ba61.pth        the original file, kept so the conversion can be redone
  resnet50-0676ba61.msgpack    the converted Flax variables (flax.serialization), read on later loads

The 8 (or more) hex digits before ``.pth`` are the start of the file's sha256, torchvision's
``check_hash`` convention; every download is checked against them before it is renamed into
place, so a truncated or corrupted transfer never lands in the cache.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import pathlib
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

import flax.serialization
import numpy as np

from imagenet_cp.models import torchvision_weights
from imagenet_cp.models.checkpoint import CheckpointError

BASE_URL = torchvision_weights.BASE_URL
# Zoo name -> the torchvision checkpoint's URL, for every weight in ``torchvision_weights`` (the
# paper's numbers are the V1 weights, which carry the bare model names; ``resnet50.v2`` etc. are
# the others).
URLS = {name: w.url for name, w in torchvision_weights.WEIGHTS.items()}

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.(?:pth|pt)$")
DOWNLOAD_TIMEOUT_S = 60.0


def cache_dir() -> pathlib.Path:
  """``$IMAGENET_CP_CACHE/models`` if set, else ``~/.cache/imagenet_cp/models``."""
  root = os.environ.get("IMAGENET_CP_CACHE")
  base = pathlib.Path(root) if root else pathlib.Path.home() / ".cache" / "imagenet_cp"
  return base / "models"


def hash_prefix(file_name: str) -> str:
  """The sha256 prefix a checkpoint's name carries (``resnet50-0676ba61.pth`` -> ``0676ba61``)."""
  m = _HASH_IN_NAME.search(os.path.basename(file_name))
  if not m:
    raise ValueError(f"checkpoint name {file_name!r} carries no sha256 prefix (<name>-<hex>.pth)")
  return m.group(1)


def sha256_file(path: str | os.PathLike) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      digest.update(chunk)
  return digest.hexdigest()


def verify(path: str | os.PathLike, prefix: str) -> None:
  """Raises CheckpointError unless the file's sha256 starts with ``prefix``."""
  actual = sha256_file(path)
  if not actual.startswith(prefix):
    raise CheckpointError(f"{os.fspath(path)}: sha256 {actual[:16]}... does not start with "
                          f"{prefix} (corrupt or truncated download)")


def download(url: str, dest_dir: str | os.PathLike | None = None,
             timeout: float = DOWNLOAD_TIMEOUT_S) -> pathlib.Path:
  """Downloads ``url`` into ``dest_dir`` (default ``cache_dir()``) unless a verified copy is there.

  The file name must carry its sha256 prefix; the data goes to a temporary file that is checked
  and only then renamed, so the cache never holds a bad file.  Returns the local path.
  """
  name = os.path.basename(urllib.request.urlparse(url).path)
  prefix = hash_prefix(name)
  dest_dir = pathlib.Path(dest_dir) if dest_dir is not None else cache_dir()
  dest = dest_dir / name
  if dest.exists():
    try:
      verify(dest, prefix)
      return dest
    except CheckpointError:
      dest.unlink()  # a damaged cached copy is replaced by a fresh download
  dest_dir.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=dest_dir)
  try:
    with os.fdopen(fd, "wb") as out:
      _fetch(url, out, timeout)
    try:
      verify(tmp, prefix)
    except CheckpointError as e:
      raise CheckpointError(f"download of {url} failed the hash check: {e}") from None
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, dest)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)
  return dest


def _fetch(url: str, out, timeout: float) -> None:
  print(f"downloading {url}", file=sys.stderr)
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response:
      expected = response.headers.get("Content-Length")
      shutil.copyfileobj(response, out, 1 << 20)
  except http.client.IncompleteRead as e:
    raise CheckpointError(f"{url}: connection closed early ({e}); truncated download") from None
  except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
    raise OSError(f"cannot download {url}: {e}. Download it yourself and pass "
                  "checkpoint=<path to the .pth> (the offline path).") from None
  if expected is not None and out.tell() != int(expected):
    raise CheckpointError(f"{url}: got {out.tell()} bytes, the server announced {expected} "
                          "(truncated download)")


# Google Drive's direct-download endpoint; ``confirm=t`` skips the "can't scan for viruses" page
# of large files (what gdown, RobustBench's downloader, ends up requesting).
GDRIVE_DOWNLOAD = "https://drive.usercontent.google.com/download?id={}&export=download&confirm=t"


def robustbench_path(weight, root: str | os.PathLike | None = None) -> pathlib.Path:
  """Where RobustBench model ``weight`` (``robustbench_weights.RobustBenchWeight``) is cached:
  ``<root or cache_dir()>/robustbench/<dataset>/<threat model>/<name>.pt`` (``corruptions``,
  ``Linf``), RobustBench's own ``model_dir`` layout (so a RobustBench ``models/`` folder can be
  copied or linked there)."""
  root = pathlib.Path(root) if root is not None else cache_dir()
  return root / "robustbench" / weight.dataset / weight.threat_model / f"{weight.model}.pt"


def robustbench_file(weight, root: str | os.PathLike | None = None, url: str | None = None,
                     timeout: float = DOWNLOAD_TIMEOUT_S) -> pathlib.Path:
  """RobustBench model ``weight``'s ``.pt``, downloaded from Google Drive (or its release URL)
  once (``url``: another source, e.g. a mirror), its digest recorded at the first download
  (``recorded_file``: RobustBench publishes none)."""
  url = url or (GDRIVE_DOWNLOAD.format(weight.gdrive_id) if weight.gdrive_id else weight.url)
  return recorded_file(
      url, robustbench_path(weight, root), timeout,
      f"Download it with RobustBench (robustbench.utils.load_model('{weight.model}', "
      f"dataset='{weight.dataset}', threat_model='{weight.threat_model}')) or gdown and pass "
      "checkpoint=<path>.", "Google Drive's quota or confirmation page")


def ares_path(weight, root: str | os.PathLike | None = None) -> pathlib.Path:
  """Where ARES-Bench's checkpoint of ``weight`` (``ares_weights.AresWeight``) is cached:
  ``<root or cache_dir()>/ares/imagenet/<ARES's file name>``."""
  root = pathlib.Path(root) if root is not None else cache_dir()
  return root / "ares" / "imagenet" / weight.file


def ares_file(weight, root: str | os.PathLike | None = None, url: str | None = None,
              timeout: float = DOWNLOAD_TIMEOUT_S) -> pathlib.Path:
  """ARES-Bench's checkpoint of ``weight``, downloaded from ARES's server (``weight.url``;
  ``url``: another source, e.g. a mirror) once, its digest recorded at the first download
  (``recorded_file``: ARES publishes none)."""
  return recorded_file(
      url or weight.url, ares_path(weight, root), timeout,
      f"Download {weight.file} yourself and pass checkpoint=<path>.", "an error page")


def recorded_file(url: str, dest: pathlib.Path, timeout: float = DOWNLOAD_TIMEOUT_S,
                  advice: str = "", page: str = "an error page") -> pathlib.Path:
  """``url`` downloaded to ``dest`` once, for a source that publishes no digest: the sha256 is
  recorded at the first download (``<dest>.sha256``, trust on first use) and every later use
  is checked against it; a cached copy that fails the check is fetched again and must then
  match.  A web page instead of the file (``page``: what it likely is) is refused with
  ``advice``."""
  digest_file = dest.with_name(dest.name + ".sha256")
  recorded = digest_file.read_text().split()[0] if digest_file.exists() else None
  if dest.exists():
    if recorded is None or sha256_file(dest) == recorded:
      return dest
    dest.unlink()  # damaged since it was recorded: fetched again below, and checked
  dest.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
  try:
    with os.fdopen(fd, "wb") as out:
      _fetch(url, out, timeout)
    with open(tmp, "rb") as f:
      head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
      raise OSError(f"{url} sent a web page, not {dest.name} ({page}). {advice}")
    actual = sha256_file(tmp)
    if recorded is not None and actual != recorded:
      raise CheckpointError(f"download of {url}: sha256 {actual[:16]}... differs from the "
                            f"{recorded[:16]}... recorded at the first download ({digest_file})")
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, dest)
    if recorded is None:
      digest_file.write_text(f"{actual}  {dest.name}\n")
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)
  return dest


def converted_path(pth: str | os.PathLike) -> pathlib.Path:
  """Where the converted variables of checkpoint ``pth`` are stored (next to it)."""
  pth = pathlib.Path(pth)
  return pth.with_suffix(".msgpack")


def save_variables(path: str | os.PathLike, variables) -> None:
  """Writes Flax variables (nested dict of arrays) as one msgpack file, atomically."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  data = flax.serialization.msgpack_serialize(_to_numpy(variables))
  fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    # mkstemp's 0600 -> the mode of any other new file (umask), like the downloaded .pth.
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)   # a full disk leaves no partial file behind
    raise


def load_variables(path: str | os.PathLike) -> dict:
  """Reads variables written by ``save_variables``; CheckpointError naming the file if damaged."""
  try:
    with open(path, "rb") as f:
      return flax.serialization.msgpack_restore(f.read())
  except (ValueError, TypeError, KeyError) as e:  # msgpack's errors derive from ValueError
    raise CheckpointError(f"{os.fspath(path)}: damaged converted weights ({e}); delete it to "
                          "convert again") from None


def _to_numpy(tree):
  if isinstance(tree, dict):
    return {k: _to_numpy(v) for k, v in tree.items()}
  return np.asarray(tree)
