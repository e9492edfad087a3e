"""Shared test set-up: 4 fake CPU devices, real photos cropped the benchmark way, oracles."""
import os

# Several fake CPU devices so sharding code paths run in every test process.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import functools  # noqa: E402
import http.server  # noqa: E402
import pathlib  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
# The original's frost textures as packaged with imagenet_cp (sha256-checked in test_assets.py).
FROST_DIR = REPO / "imagenet_cp" / "assets_data" / "frost"

# Real photos shipped by scikit-image; coffee (400x600) and rocket (427x640) are non-square.
PHOTO_NAMES = ("chelsea", "coffee", "astronaut", "rocket")


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
  """A scikit-image sample photo as uint8 [H, W, 3] (original size)."""
  import skimage.data
  return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


@functools.lru_cache(maxsize=None)
def photo_224(name: str) -> np.ndarray:
  """The photo after Resize(256) + CenterCrop(224), uint8 [224, 224, 3]."""
  from imagenet_cp.preprocess import preprocess
  return preprocess(photo(name))


@functools.lru_cache(maxsize=None)
def photo_256(name: str) -> np.ndarray:
  """The photo after Resize(256) only (the ImageNet-P input), uint8 [256, W, 3] or [H, 256, 3]."""
  from imagenet_cp.preprocess import resize_short_side
  return resize_short_side(photo(name))


@pytest.fixture(scope="session")
def photos_224():
  return {n: photo_224(n) for n in PHOTO_NAMES}


@pytest.fixture(scope="session")
def photos_256():
  return {n: photo_256(n) for n in PHOTO_NAMES}


def import_torchvision():
  """torchvision 0.28.0 (CUDA wheel) on CPU torch, through the shim in imagenet_cp/oracles/torchvision_shim.py."""
  pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import import_torchvision as shimmed
  return shimmed()


@pytest.fixture(scope="module")
def torch_single_thread():
  """The oracles' torch ops work on one small tensor at a time: threads only contend."""
  torch = pytest.importorskip("torch")
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  yield
  torch.set_num_threads(threads)


def check_batch_independence(batch, keys, names, severity, perm):
  """``imagenet_cp.corrupt`` of a batch of 4: leading batch axes are flattened ([2, 2] gives the
  flat batch's outputs) and an image's output does not depend on its batch-mates (``perm``)."""
  import imagenet_cp
  for name in names:
    flat = np.asarray(imagenet_cp.corrupt(batch, name, severity, keys))
    permuted = np.asarray(imagenet_cp.corrupt(batch[perm], name, severity, keys[perm]))
    np.testing.assert_array_equal(permuted, flat[perm], err_msg=name)
    nested = imagenet_cp.corrupt(batch.reshape(2, 2, *batch.shape[1:]), name, severity,
                                 keys.reshape(2, 2))
    np.testing.assert_array_equal(np.asarray(nested).reshape(flat.shape), flat, err_msg=name)

@pytest.fixture
def http_server():
  """serve(folder) -> the base URL of a 127.0.0.1 HTTP server over it."""
  servers = []

  def serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    servers.append(httpd)
    return f"http://127.0.0.1:{httpd.server_address[1]}"

  yield serve
  for httpd in servers:
    httpd.shutdown()
    httpd.server_close()
