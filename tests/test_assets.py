"""Frost textures: lookup order, sha256 checks, and the download path on a loopback server."""
import hashlib
import http.server
import importlib
import sys
import threading

import cv2
import numpy as np
import pytest

from imagenet_cp import assets
from imagenet_cp.corruptions import weather

from conftest import FROST_DIR


def _sha(path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def env(tmp_path, monkeypatch):
  """A clean environment: no explicit folder, a temporary cache, no imagecorruptions, an empty
  packaged folder and an unreachable download URL (each test opts into what it needs)."""
  monkeypatch.delenv(assets.FROST_DIR_ENV, raising=False)
  monkeypatch.delenv(assets.BASE_URL_ENV, raising=False)
  monkeypatch.setenv(assets.CACHE_ENV, str(tmp_path / "cache"))
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  for proxy in ("no_proxy", "NO_PROXY"):  # the loopback server must never go through a proxy
    monkeypatch.setenv(proxy, "127.0.0.1,localhost")
  monkeypatch.setattr(assets, "imagecorruptions_dir", lambda: None)
  monkeypatch.setattr(assets, "PACKAGED_DIR", tmp_path / "packaged")
  monkeypatch.setattr(assets, "DEFAULT_BASE_URL", "http://127.0.0.1:9/none/")  # discard port
  monkeypatch.setattr(assets, "DOWNLOAD_TIMEOUT_S", 5.0)
  return tmp_path


def _fill(folder, names=assets.FROST_FILES):
  folder.mkdir(parents=True, exist_ok=True)
  for name in names:
    (folder / name).write_bytes((FROST_DIR / name).read_bytes())
  return folder


def test_packaged_files_have_the_recorded_sha256():
  for name, digest in assets.FROST_SHA256.items():
    assert _sha(FROST_DIR / name) == digest
    assert _sha(assets.PACKAGED_DIR / name) == digest
    assert (FROST_DIR / name).stat().st_size == assets.FROST_SIZES[name]
  assert (assets.PACKAGED_DIR / "README.md").is_file()


def test_lookup_order(env, monkeypatch):
  name = "frost4.jpg"
  explicit, cache = env / "explicit", env / "cache" / "frost"
  ic, packaged = env / "ic" / "frost", env / "packaged"
  for folder in (explicit, cache, ic, packaged):
    _fill(folder, [name])
  monkeypatch.setattr(assets, "imagecorruptions_dir", lambda: ic)
  where = lambda **kw: assets.read_texture_bytes(name, **kw)[1]  # noqa: E731
  assert where(frost_dir=explicit) == str(explicit / name)
  monkeypatch.setenv(assets.FROST_DIR_ENV, str(explicit))
  assert where() == str(explicit / name)
  monkeypatch.delenv(assets.FROST_DIR_ENV)
  assert where() == str(cache / name)
  (cache / name).unlink()
  assert where() == str(ic / name)
  (ic / name).unlink()
  assert where() == str(packaged / name)
  (packaged / name).unlink()
  with pytest.raises(assets.AssetError, match="could not be downloaded"):
    where()
  with pytest.raises(assets.AssetError, match="downloads are disabled"):
    assets.read_texture_bytes(name, allow_download=False)


def test_explicit_folder_errors_name_the_file(env):
  folder = _fill(env / "explicit", ["frost1.png"])
  with pytest.raises(assets.AssetError, match="frost2.png not found"):
    assets.read_texture_bytes("frost2.png", frost_dir=folder)
  data = (FROST_DIR / "frost1.png").read_bytes()
  (folder / "frost1.png").write_bytes(data[:1000])
  with pytest.raises(assets.AssetError, match="frost1.png .* truncated"):
    assets.read_texture_bytes("frost1.png", frost_dir=folder)
  (folder / "frost1.png").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
  with pytest.raises(assets.AssetError, match="frost1.png .* sha256"):
    assets.read_texture_bytes("frost1.png", frost_dir=folder)
  with pytest.raises(ValueError, match="unknown frost texture"):
    assets.read_texture_bytes("frost7.png")


def test_imagecorruptions_found_without_importing_it(tmp_path, monkeypatch):
  package = tmp_path / "site" / "imagecorruptions"
  _fill(package / "frost", ["frost5.jpg"])
  (package / "__init__.py").write_text("raise RuntimeError('imported imagecorruptions')\n")
  monkeypatch.syspath_prepend(str(tmp_path / "site"))
  importlib.invalidate_caches()
  assert assets.imagecorruptions_dir() == package / "frost"
  assert "imagecorruptions" not in sys.modules


class _Handler(http.server.BaseHTTPRequestHandler):
  """Serves /good/<name>, /short/<name> (truncated) and /bad/<name> (one bit flipped)."""

  def do_GET(self):  # noqa: N802
    kind, _, name = self.path.strip("/").partition("/")
    if name not in assets.FROST_SHA256 or kind not in ("good", "short", "bad"):
      self.send_error(404)
      return
    data = (FROST_DIR / name).read_bytes()
    if kind == "short":
      data = data[: len(data) // 2]
    elif kind == "bad":
      data = data[:-1] + bytes([data[-1] ^ 1])
    self.send_response(200)
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def log_message(self, *args):
    pass


@pytest.fixture
def server():
  """A loopback HTTP server on 127.0.0.1 that stops by itself after 60 s at the latest."""
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
  thread.start()
  stopper = threading.Timer(60.0, httpd.shutdown)
  stopper.daemon = True
  stopper.start()
  yield f"http://127.0.0.1:{httpd.server_address[1]}"
  stopper.cancel()
  httpd.shutdown()
  httpd.server_close()
  thread.join(timeout=5)


def test_download_into_cache_with_checksum(env, server, monkeypatch):
  cache = env / "cache" / "frost"
  data, path = assets.read_texture_bytes("frost2.png", base_url=f"{server}/good/")
  assert path == str(cache / "frost2.png") and _sha(cache / "frost2.png") == (
      assets.FROST_SHA256["frost2.png"])
  assert [p.name for p in cache.iterdir()] == ["frost2.png"]  # no temporary file left
  # Second lookup: served from the cache, even with the server's URL broken.
  assert assets.read_texture_bytes("frost2.png", base_url=f"{server}/missing/")[1] == path
  # The environment variable names the base URL too.
  monkeypatch.setenv(assets.BASE_URL_ENV, f"{server}/good")
  assert assets.read_texture_bytes("frost6.jpg")[1] == str(cache / "frost6.jpg")


@pytest.mark.parametrize("kind,message", [("short", "truncated"), ("bad", "sha256"),
                                          ("missing", "could not be downloaded")])
def test_bad_downloads_are_rejected_and_not_cached(env, server, kind, message):
  with pytest.raises(assets.AssetError, match=f"frost3.png .*{message}"):
    assets.read_texture_bytes("frost3.png", base_url=f"{server}/{kind}/")
  cache = env / "cache" / "frost"
  assert not cache.exists() or not any(cache.iterdir())


def test_frost_textures_decode_like_cv2_imread(env, monkeypatch):
  monkeypatch.setenv(assets.FROST_DIR_ENV, str(FROST_DIR))
  textures = assets.frost_textures()
  assert len(textures) == 6
  for name, texture in zip(assets.FROST_FILES, textures):
    bgr = cv2.imread(str(FROST_DIR / name))  # what the original reads (alpha dropped)
    np.testing.assert_array_equal(texture, bgr[..., ::-1])
    assert texture.dtype == np.uint8 and not texture.flags.writeable
  assert [t.shape[:2] for t in textures[:5]] == list(weather.FROST_SHAPES)
