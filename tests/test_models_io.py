"""Checkpoint reading, conversion errors and the download path of the model zoo.

Downloads run against a loopback HTTP server (127.0.0.1, ephemeral port, short timeouts) that
serves a generated ``.pth`` named by its sha256 prefix, a truncated copy, a copy whose bytes do
not match its name, and a response that closes before its announced length.
"""
import hashlib
import http.server
import io
import os
import pathlib
import pickle
import shutil
import threading

import jax
import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import checkpoint, robustbench_weights, timm_weights, weights
from imagenet_cp.models.checkpoint import CheckpointError

torch = pytest.importorskip("torch")


def _sample_state_dict():
  """Several dtypes, a non-contiguous view and two tensors sharing one storage."""
  base = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
  return {
      "w": torch.randn(5, 3, 3, 3),
      "view": base[:, 1],
      "transposed": base.transpose(0, 2),
      "shared": base,
      "long": torch.arange(7),
      "half": torch.randn(4).half(),
      "scalar": torch.tensor(2.5),
      "flag": torch.tensor([True, False]),
  }


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_reads_both_formats_exactly(tmp_path, zip_format):
  sd = _sample_state_dict()
  path = tmp_path / "sample.pth"
  torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
  with open(path, "rb") as f:
    assert (f.read(2) == b"PK") == zip_format
  got = checkpoint.load_state_dict(path)
  assert list(got) == list(sd)
  for key, value in sd.items():
    assert got[key].dtype == value.numpy().dtype, key
    np.testing.assert_array_equal(got[key], value.numpy(), err_msg=key)


def test_reads_the_shipped_legacy_lite0_file():
  path = models.lite0_checkpoint()
  with open(path, "rb") as f:
    assert f.read(4) == bytes.fromhex("80028a0a")  # legacy format
  got = checkpoint.load_state_dict(path)
  ref = torch.load(path, map_location="cpu", weights_only=True)
  assert list(got) == list(ref) and len(got) == 296
  for key in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_fc.bias"):
    np.testing.assert_array_equal(got[key], ref[key].numpy())


class _Evil:
  """Pickles as a call to os.system: loading it with plain pickle would run the command."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", ["zip", "legacy", "raw_pickle"])
def test_refuses_malicious_pickle_without_running_it(tmp_path, fmt):
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.pth"
  payload = {"weight": torch.zeros(2), "evil": _Evil(marker)}
  if fmt == "raw_pickle":  # a plain pickle: no torch framing at all
    path.write_bytes(pickle.dumps({"evil": _Evil(marker)}, protocol=2))
  else:
    torch.save(payload, path, _use_new_zipfile_serialization=fmt == "zip")
  with pytest.raises(CheckpointError, match=r"refusing to load global (posix|os)\.system"):
    checkpoint.load_pth(path)
  assert not marker.exists()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_truncated_checkpoint_names_the_file(tmp_path, zip_format):
  path = tmp_path / "cut.pth"
  torch.save({"w": torch.randn(64, 64)}, path, _use_new_zipfile_serialization=zip_format)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) * 2 // 3])
  with pytest.raises(CheckpointError, match="cut.pth"):
    checkpoint.load_pth(path)


def test_not_a_checkpoint(tmp_path):
  path = tmp_path / "notes.pth"
  path.write_text("hello")
  with pytest.raises(CheckpointError, match="not a torch checkpoint"):
    checkpoint.load_pth(path)
  with pytest.raises(FileNotFoundError, match="missing.pth"):
    checkpoint.load_pth(tmp_path / "missing.pth")


def _squeezenet_state_dict():
  from conftest import import_torchvision
  tv = import_torchvision()
  torch.manual_seed(1)
  return tv.models.squeezenet1_1(weights=None).eval().state_dict()


@pytest.fixture(scope="module")
def squeeze_sd():
  return _squeezenet_state_dict()


@pytest.mark.parametrize("damage,message", [
    ("missing", r"missing key 'features\.3\.squeeze\.weight'"),
    ("extra", r"unexpected key 'features\.99\.weight'"),
    ("shape", r"key 'classifier\.1\.weight' has shape \(10, 512, 1, 1\), the model needs "
              r"\(1000, 512, 1, 1\)"),
])
def test_mismatched_checkpoint_names_the_key(tmp_path, squeeze_sd, damage, message):
  sd = dict(squeeze_sd)
  if damage == "missing":
    del sd["features.3.squeeze.weight"]
  elif damage == "extra":
    sd["features.99.weight"] = torch.zeros(3)
  else:
    sd["classifier.1.weight"] = torch.zeros(10, 512, 1, 1)
  path = tmp_path / "bad.pth"
  torch.save(sd, path)
  with pytest.raises(CheckpointError, match=message):
    models.load("squeezenet1_1", checkpoint=path)


class _Server:
  """127.0.0.1 HTTP server over a folder; ``/short/<name>`` announces more bytes than it sends."""

  def __init__(self, root: pathlib.Path):
    self.root, self.requests = root, []
    outer = self

    class Handler(http.server.SimpleHTTPRequestHandler):
      def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(root), **kwargs)

      def do_GET(self):
        outer.requests.append(self.path)
        if self.path.startswith("/short/"):
          data = (root / self.path[len("/short/"):]).read_bytes()
          self.send_response(200)
          self.send_header("Content-Length", str(len(data)))
          self.end_headers()
          self.wfile.write(data[:len(data) // 2])
          return
        super().do_GET()

      def log_message(self, *args):
        pass

    self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.httpd.timeout = 5
    self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
    self.thread.start()

  def close(self):
    self.httpd.shutdown()
    self.httpd.server_close()
    self.thread.join(timeout=5)


@pytest.fixture
def served(tmp_path, squeeze_sd, monkeypatch):
  """A generated squeezenet1_1 .pth named by its sha256, plus damaged copies, on a loopback server."""
  root = tmp_path / "www"
  (root / "truncated").mkdir(parents=True)
  (root / "wrong").mkdir()
  buf = io.BytesIO()
  torch.save(squeeze_sd, buf)
  data = buf.getvalue()
  name = f"squeezenet1_1-{hashlib.sha256(data).hexdigest()[:8]}.pth"
  (root / name).write_bytes(data)
  (root / "truncated" / name).write_bytes(data[:len(data) // 2])
  (root / "wrong" / name).write_bytes(data[:-4] + b"\0\0\0\0")
  monkeypatch.setenv("IMAGENET_CP_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT_S", 10.0)
  server = _Server(root)
  yield server, name
  server.close()


def test_load_downloads_converts_once_and_reuses_cache(served, squeeze_sd, monkeypatch):
  server, name = served
  monkeypatch.setitem(weights.URLS, "squeezenet1_1", server.url + name)
  module, variables, spec = models.load("squeezenet1_1")
  cache = weights.cache_dir()
  assert sorted(p.name for p in cache.iterdir()) == sorted([name, name[:-4] + ".msgpack"])
  assert server.requests == ["/" + name]
  # Second load: converted file only, no request.
  _, again, _ = models.load("squeezenet1_1")
  assert server.requests == ["/" + name]
  jax.tree_util.tree_map(np.testing.assert_array_equal, variables, again)
  # The converted weights compute what torch computes.
  x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype(np.float32)
  from conftest import import_torchvision
  ref_model = import_torchvision().models.squeezenet1_1(weights=None).eval()
  ref_model.load_state_dict(squeeze_sd)
  with torch.inference_mode():
    ref = ref_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
  got = np.asarray(jax.jit(module.apply)(variables, x))
  assert np.max(np.abs(got - ref)) <= 1e-4 * np.max(np.abs(ref))
  assert spec.resize == 256 and spec.crop == 224


@pytest.mark.parametrize("where,message", [
    ("truncated/", "failed the hash check"),
    ("wrong/", "failed the hash check"),
    ("short/", "truncated download"),
])
def test_bad_downloads_are_refused_and_not_cached(served, where, message):
  server, name = served
  with pytest.raises(CheckpointError, match=message):
    weights.download(server.url + where + name)
  assert not weights.cache_dir().exists() or not list(weights.cache_dir().iterdir())


def test_damaged_cached_copy_is_downloaded_again(served):
  server, name = served
  cache = weights.cache_dir()
  cache.mkdir(parents=True)
  (cache / name).write_bytes(b"garbage")
  path = weights.download(server.url + name)
  assert path == cache / name and server.requests == ["/" + name]
  weights.verify(path, weights.hash_prefix(name))


def test_download_needs_hash_in_name_and_reports_unreachable_url(served):
  server, _ = served
  with pytest.raises(ValueError, match="no sha256 prefix"):
    weights.download(server.url + "model.pth")
  with pytest.raises(OSError, match="checkpoint=<path"):
    weights.download(server.url + "absent-0123abcd.pth")


def test_damaged_converted_file_is_reported(tmp_path):
  path = tmp_path / "x.msgpack"
  path.write_bytes(b"\x01\x02")
  with pytest.raises(CheckpointError, match="x.msgpack"):
    weights.load_variables(path)


def test_pinned_urls():
  # timm's: local files only; RobustBench's: their own table (robustbench_weights, its tests).
  assert set(weights.URLS) - set(models.NOT_CLASSIFIERS) == (
      set(models.names(dataset="imagenet")) - set(models.LITE_WEIGHTS)
      - set(timm_weights.WEIGHTS) - set(robustbench_weights.WEIGHTS)
      - set(models.ares_weights.WEIGHTS))
  assert weights.URLS["resnet50"] == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
  assert weights.URLS["resnet50.v2"] == "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
  for url in weights.URLS.values():
    assert len(weights.hash_prefix(url)) >= 8  # 10 on four old files (shufflenetv2_x1-5666bf0f80)
