"""The checkpoint reader allocates nothing a small file merely declares (issue 16, case 6), names
the file for anything that is not a checkpoint, and reports non-finite weights."""
import tracemalloc
import warnings

import numpy as np
import pytest

from imagenet_cp import models
from imagenet_cp.models import checkpoint
from imagenet_cp.models.checkpoint import CheckpointError, CheckpointWarning

torch = pytest.importorskip("torch")

MiB = 1 << 20


def _peak(fn) -> int:
  """Peak traced allocation (NumPy's included) while ``fn`` runs; ``fn`` must raise."""
  tracemalloc.start()
  try:
    fn()
  finally:
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
  return peak


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_an_expanded_view_is_refused_before_allocating(tmp_path, zip_format):
  path = tmp_path / "expand.pth"
  # One float stored, a 16384 x 16384 (1 GiB) stride-0 view of it.
  torch.save({"w": torch.zeros(1).expand(16384, 16384)}, path,
             _use_new_zipfile_serialization=zip_format)
  assert path.stat().st_size < 4096
  caught = []

  def load():
    with pytest.raises(CheckpointError, match=r"expand\.pth: a tensor of size \(16384, 16384\)"):
      checkpoint.load_pth(path)
    caught.append(True)

  assert _peak(load) < 16 * MiB and caught


@pytest.fixture(scope="module")
def squeeze_sd():
  from conftest import import_torchvision
  tv = import_torchvision()
  torch.manual_seed(1)
  return tv.models.squeezenet1_1(weights=None).eval().state_dict()


def test_the_architecture_is_checked_before_anything_is_materialised(tmp_path, squeeze_sd):
  sd = dict(squeeze_sd)
  sd["features.0.weight"] = torch.zeros(1).expand(16384, 16384)   # 1 GiB, and the wrong shape
  path = tmp_path / "big.pth"
  torch.save(sd, path)
  caught = []

  def load():
    with pytest.raises(CheckpointError, match=r"key 'features\.0\.weight' has shape "
                                              r"\(16384, 16384\), the model needs \(64, 3, 3, 3\)"):
      models.load("squeezenet1_1", checkpoint=path)
    caught.append(True)

  assert _peak(load) < 64 * MiB and caught


def test_an_expanded_view_the_architecture_expects_loads(tmp_path, squeeze_sd):
  sd = dict(squeeze_sd)
  sd["classifier.1.bias"] = torch.full((1,), 0.25).expand(1000)
  path = tmp_path / "expanded_bias.pth"
  torch.save(sd, path)
  _, variables, _ = models.load("squeezenet1_1", checkpoint=path)
  np.testing.assert_array_equal(np.asarray(variables["params"]["classifier.1"]["bias"]),
                                np.full(1000, 0.25, np.float32))


def test_a_pickle_that_is_no_checkpoint_names_the_file(tmp_path):
  path = tmp_path / "notes.pth"
  path.write_bytes(b"\x80\x23 this starts like a pickle")
  with pytest.raises(CheckpointError, match=r"notes\.pth: .*unsupported pickle protocol: 35"):
    checkpoint.load_pth(path)


def test_a_compressed_storage_is_refused(tmp_path):
  import zipfile
  path = tmp_path / "plain.pth"
  torch.save({"w": torch.zeros(64)}, path)
  packed = tmp_path / "packed.pth"
  with zipfile.ZipFile(path) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
      dst.writestr(info.filename, src.read(info.filename))
  with pytest.raises(CheckpointError, match=r"packed\.pth: storage .* is compressed"):
    checkpoint.load_pth(packed)


def test_non_finite_weights_are_reported(tmp_path, squeeze_sd):
  path = tmp_path / "nan.pth"
  torch.save({"w": torch.tensor([1.0, float("nan"), float("inf")]), "n": torch.arange(3)}, path)
  with pytest.warns(CheckpointWarning, match=r"nan\.pth: 1 tensor\(s\) hold NaN or inf values "
                                             r"\(first: 'w', 2 of 3\)"):
    checkpoint.load_state_dict(path)
  sd = dict(squeeze_sd)
  sd["classifier.1.bias"] = torch.full((1000,), float("nan"))
  torch.save(sd, path)
  with pytest.warns(CheckpointWarning, match="'classifier.1.bias', 1000 of 1000"):
    models.load("squeezenet1_1", checkpoint=path)
  torch.save(squeeze_sd, path)
  with warnings.catch_warnings():
    warnings.simplefilter("error", CheckpointWarning)
    models.load("squeezenet1_1", checkpoint=path)
