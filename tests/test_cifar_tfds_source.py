"""A TFDS build of TFDS's own cifar10 / cifar100 as the source of CIFAR-10/100-C/-P.

TFDS's cifar builders run here on stand-in *binary* archives (the layout TFDS reads) holding the
same test images and labels as the python stand-ins (tests/cifar_standin.py).  TFDS pins the real
archives' checksums, so only its download is replaced (by extracting the stand-in); the rest
(parsing, shuffling, writing array_record / tfrecord) is TFDS's own.  The builds must read back
as the tarball does (test-set order restored from ``id``), and -C builds and ``metrics.run`` on
them must equal those on the tarball.
"""
import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import imagenet_cp.datasets  # noqa: E402,F401  (registers the builders)
from cifar_standin import make_archive  # noqa: E402
from imagenet_cp import cifar, sources  # noqa: E402
from imagenet_cp.suites import corruption as ev  # noqa: E402
from launch import build_datasets  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
N10, N100 = 7, 5
BINARY_URLS = {"cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
               "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"}


def _record(image, *labels) -> bytes:
  """One binary-version record: the label byte(s), then the red, green and blue planes."""
  return bytes(labels) + np.ascontiguousarray(image.transpose(2, 0, 1)).tobytes()


def binary_archive(path, cifar_set, images, labels, coarse=None):
  """cifar-10-binary.tar.gz / cifar-100-binary.tar.gz with the given test set (and one
  training image per training file)."""
  if cifar_set is cifar.CIFAR10:
    folder = "cifar-10-batches-bin"
    test = b"".join(_record(i, int(l)) for i, l in zip(images, labels))
    members = {f"data_batch_{k}.bin": _record(images[0], 0) for k in range(1, 6)}
    members.update({"test_batch.bin": test,
                    "batches.meta.txt": ("\n".join(cifar_set.classes) + "\n\n").encode()})
  else:
    folder = "cifar-100-binary"
    test = b"".join(_record(i, int(c), int(l)) for i, c, l in zip(images, coarse, labels))
    members = {"train.bin": _record(images[0], 0, 0), "test.bin": test,
               "coarse_label_names.txt": "\n".join(f"coarse_{i}" for i in range(20)).encode(),
               "fine_label_names.txt": "\n".join(cifar_set.classes).encode()}
  with tarfile.open(path, "w:gz") as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(f"{folder}/{name}")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


def build_tfds_cifar(name, archive, data_dir, file_format):
  """TFDS's own ``name`` builder on the stand-in ``archive``; returns its version folder."""
  extracted = pathlib.Path(data_dir) / "extracted"

  def download_and_extract(self, url):
    del self
    assert url == BINARY_URLS[name]  # TFDS reads the binary version, not the python one
    with tarfile.open(archive) as tar:
      tar.extractall(extracted, filter="data")
    return os.fspath(extracted)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(tfds.download.DownloadManager, "download_and_extract", download_and_extract)
    builder = tfds.builder(name, data_dir=str(data_dir), file_format=file_format)
    builder.download_and_prepare()
  return pathlib.Path(builder.data_path)


@pytest.fixture(scope="module")
def srcs(tmp_path_factory):
  """The python tarballs (one folder), and TFDS builds of the same test sets: cifar10 as
  array_record and as tfrecord, cifar100 as array_record (each in its own data_dir)."""
  root = tmp_path_factory.mktemp("cifar_sources")
  _, images10, labels10 = make_archive(root / "tar", cifar.CIFAR10, n=N10, seed=0)
  _, images100, labels100 = make_archive(root / "tar", cifar.CIFAR100, n=N100, seed=3)
  coarse = (labels100 + 7) % 20  # differs from the fine label: which one is read shows
  bin10 = binary_archive(root / "c10.tar.gz", cifar.CIFAR10, images10, labels10)
  bin100 = binary_archive(root / "c100.tar.gz", cifar.CIFAR100, images100, labels100, coarse)
  return {
      "root": root, "tar": root / "tar", "images10": images10, "labels10": labels10,
      "images100": images100, "labels100": labels100, "coarse100": coarse,
      "tfds10": build_tfds_cifar("cifar10", bin10, root / "tfds10", "array_record"),
      "tfds10_tfrecord": build_tfds_cifar("cifar10", bin10, root / "tfds10r", "tfrecord"),
      "tfds100": build_tfds_cifar("cifar100", bin100, root / "tfds100", "array_record"),
  }


def read_all(name, data_dir):
  source = tfds.data_source(name, data_dir=str(data_dir), split="test")
  return [source[i] for i in range(len(source))]


# ----------------------------------------------------------------------------------------------
# Reading a TFDS build


def test_tfds_builds_read_as_the_tarball(srcs):
  for build, cifar_set in ((srcs["tfds10"], cifar.CIFAR10),
                           (srcs["tfds10_tfrecord"], cifar.CIFAR10),
                           (srcs["tfds100"], cifar.CIFAR100)):
    tarball = cifar.read_test_set(srcs["tar"] / cifar_set.archive, cifar_set)
    got = cifar.read_source(build, cifar_set)
    np.testing.assert_array_equal(got.images, tarball.images, err_msg=str(build))
    np.testing.assert_array_equal(got.labels, tarball.labels, err_msg=str(build))
    assert got.sha256() == tarball.sha256()
  # TFDS stores the test split shuffled: the order comes from the ids, not the files.
  stored = read_all("cifar10", srcs["tfds10"].parents[1])
  ids = [e["id"].decode() for e in stored]
  assert sorted(ids) == [f"test_{i:05d}" for i in range(N10)] and ids != sorted(ids)
  # CIFAR-100: the fine label ("label"), not "coarse_label".
  stored = read_all("cifar100", srcs["tfds100"].parents[1])
  coarse = {e["id"].decode(): e["coarse_label"] for e in stored}
  assert [coarse[f"test_{i:05d}"] for i in range(N100)] == list(srcs["coarse100"])
  assert not np.array_equal(srcs["coarse100"], srcs["labels100"])


def test_find_source_and_its_refusals(srcs, tmp_path):
  build = srcs["tfds10"]
  data_dir = build.parents[1]
  assert cifar.find_source(data_dir, cifar.CIFAR10) == build  # a TFDS data_dir
  assert cifar.find_source(build, cifar.CIFAR10) == build     # its version folder
  assert cifar.find_source(data_dir, cifar.CIFAR100) is None  # holds no cifar100
  assert cifar.find_source(srcs["tfds100"], cifar.CIFAR10) is None
  assert cifar.find_source(srcs["tar"], cifar.CIFAR10) == srcs["tar"] / cifar.CIFAR10.archive
  assert cifar.source_identity(build, cifar.CIFAR10) == {
      "format": "tfds", "tfds_build": "cifar10/3.0.2", "tfds_file_format": "array_record"}
  # Both sources in one folder: ambiguous.
  both = tmp_path / "both"
  make_archive(both, cifar.CIFAR10, n=2)
  os.symlink(build.parent, both / "cifar10")
  with pytest.raises(sources.SourceError, match="holds both cifar-10-python.tar.gz and a TFDS "):
    cifar.find_source(both, cifar.CIFAR10)
  # A build of the other dataset, an incomplete one, a foreign id.
  with pytest.raises(sources.SourceError, match="TFDS build of 'cifar100', not 'cifar10'"):
    cifar.read_tfds_test_set(srcs["tfds100"], cifar.CIFAR10)
  # A build whose info counts one more test image than its files hold (tfrecord: read by its
  # framing, so the count is the ids').
  tfrecord = srcs["tfds10_tfrecord"]
  partial = tmp_path / "partial" / "cifar10" / "3.0.2"
  partial.mkdir(parents=True)
  for f in tfrecord.iterdir():
    if f.name != "dataset_info.json":
      os.symlink(f, partial / f.name)
  info = json.loads((tfrecord / "dataset_info.json").read_text())
  next(s for s in info["splits"] if s["name"] == "test")["shardLengths"] = [str(N10 + 1)]
  (partial / "dataset_info.json").write_text(json.dumps(info))
  with pytest.raises(sources.SourceError, match=r"1 of 8 test images are missing \(e\.g\. "
                                                "test_00007\\); is the build complete"):
    cifar.read_source(cifar.find_source(partial.parents[1], cifar.CIFAR10), cifar.CIFAR10)
  with pytest.raises(sources.SourceError, match=r"test id 'train_00001' is not test_00000 \.\.\."):
    cifar._tfds_index(b"train_00001", N10, build)  # pylint: disable=protected-access


# ----------------------------------------------------------------------------------------------
# -C builds from a TFDS build equal those from the tarball


def test_cifar10_c_from_tfds_builds_equals_the_tarball(srcs, tmp_path):
  configs = ("gaussian_noise_2", "contrast_1")
  for config in configs:  # from the tarball, through the TF-free launcher
    build_datasets.build("cifar10_c", config, data_dir=str(tmp_path / "tar"),
                         manual_dir=str(srcs["tar"]))
  # From TFDS builds: the tfrecord one through the launcher (a data_dir as manual dir), the
  # array_record one on Beam (its version folder as manual dir).
  build_datasets.build("cifar10_c", configs[0], data_dir=str(tmp_path / "tfds"),
                       manual_dir=str(srcs["tfds10_tfrecord"].parents[1]))
  beam = tfds.core.lazy_imports.apache_beam
  builder = tfds.builder(f"cifar10_c/{configs[1]}", data_dir=str(tmp_path / "tfds"),
                         file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(srcs["tfds10"]),
      beam_options=beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])))
  for config in configs:
    want = read_all(f"cifar10_c/{config}", tmp_path / "tar")
    got = read_all(f"cifar10_c/{config}", tmp_path / "tfds")
    assert [e["file_name"] for e in got] == [e["file_name"] for e in want]
    assert [e["file_name"].decode() for e in got] == [cifar.file_name(i) for i in range(N10)]
    assert [e["label"] for e in got] == [e["label"] for e in want] == list(srcs["labels10"])
    np.testing.assert_array_equal(np.stack([e["image"] for e in got]),
                                  np.stack([e["image"] for e in want]), err_msg=config)
  # The metadata says which source each build read; the pixels' digests agree.
  meta = {kind: json.loads((tmp_path / kind / "cifar10_c" / configs[1] / "1.0.0" /
                            "metadata.json").read_text()) for kind in ("tar", "tfds")}
  assert meta["tfds"]["source_format"] == "tfds"
  assert meta["tfds"]["source_tfds_build"] == "cifar10/3.0.2"
  assert "TFDS build cifar10/3.0.2" in meta["tfds"]["source_description"]
  assert "source_md5" not in meta["tfds"]
  assert meta["tar"]["source_format"] == "python tarball"
  assert meta["tfds"]["source_images_sha256"] == meta["tar"]["source_images_sha256"] == (
      cifar.read_source(srcs["tfds10"], cifar.CIFAR10).sha256())
  first = json.loads((tmp_path / "tfds" / "cifar10_c" / configs[0] / "1.0.0" /
                      "metadata.json").read_text())
  assert first["source_tfds_file_format"] == "tfrecord"


# ----------------------------------------------------------------------------------------------
# metrics.run: the same run on either source


def _cli(*args, cwd):
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def _predictions(output_dir):
  out = {}
  for path in sorted((output_dir / "tasks").glob("*.npz")):
    with np.load(path) as data:
      out[path.stem] = (list(data["ids"]), data["predictions"])
  return out


def test_metrics_run_on_a_tfds_build_equals_the_tarball(srcs, tmp_path):
  args = ("--benchmark=cifar10", "--model=released_standin:cifar_classifier",
          "--corruptions=contrast,gaussian_noise", "--severities=1", "--perturbations=none",
          "--bootstrap=0", "--noprogress")
  runs = {}
  for kind, folder in (("tar", srcs["tar"]), ("tfds", srcs["tfds10"].parents[1])):
    proc = _cli(*args, f"--cifar_dir={folder}", f"--output_dir={tmp_path / kind}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs[kind] = json.loads((tmp_path / kind / "results.json").read_text())
  tar, tfds_run = runs["tar"], runs["tfds"]
  assert tfds_run["run"]["cifar_tfds"] == "cifar10/3.0.2" and "cifar_tfds" not in tar["run"]
  assert tfds_run["run"]["data_sha256"] == tar["run"]["data_sha256"]
  assert tfds_run["clean"] == tar["clean"] and tfds_run["corruptions"] == tar["corruptions"]
  assert tfds_run["clean"]["examples"] == N10
  want, got = _predictions(tmp_path / "tar"), _predictions(tmp_path / "tfds")
  assert sorted(got) == sorted(want) and len(got) == 3
  for task, (ids, predictions) in want.items():
    assert got[task][0] == ids == [cifar.file_name(i) for i in range(N10)]
    np.testing.assert_array_equal(got[task][1], predictions, err_msg=task)
  # Resuming the TFDS run's folder on the tarball is refused: the source is part of the run.
  proc = _cli(*args, f"--cifar_dir={srcs['tar']}", f"--output_dir={tmp_path / 'tfds'}",
              cwd=tmp_path)
  assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "cifar_tfds" in proc.stderr


def test_wrong_or_missing_tfds_source_is_refused(srcs, tmp_path):
  def refused(cifar_dir, benchmark="cifar10"):
    with pytest.raises(ValueError) as err:
      ev.evaluate(lambda v, x: 1 / 0, {}, benchmark=benchmark, cifar_dir=cifar_dir,
                  progress=False, output_dir=tmp_path / "out")
    return str(err.value)

  # A data_dir holding only cifar100 is no CIFAR-10 source (and says where to get one).
  message = refused(srcs["tfds100"].parents[1])
  assert "cifar-10-python.tar.gz (not in" in message and "TFDS data_dir" in message
  assert "cifar10/<version>" in message
  both = tmp_path / "both"
  make_archive(both, cifar.CIFAR100, n=2)
  os.symlink(srcs["tfds100"].parent, both / "cifar100")
  assert "holds both cifar-100-python.tar.gz and a TFDS build" in refused(both, "cifar100")
