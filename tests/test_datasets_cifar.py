"""cifar10_c / cifar100_c / cifar10_p / cifar100_p from stand-in python tarballs, and the export.

The stand-ins (tests/cifar_standin.py) have the real archives' members and pickle structure with
a few generated images.  Every build writes array_record and is read back with tfds.data_source
(no TensorFlow); one goes through Beam's DirectRunner, one through launch.build_datasets.
"""
import json
import os
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import imagenet_cp  # noqa: E402
import imagenet_cp.datasets  # noqa: E402,F401  (registers the builders)
from cifar_standin import make_archive, py2_pickle  # noqa: E402
from imagenet_cp import cifar, sources  # noqa: E402
from imagenet_cp.datasets import cifar_builder, cifar_release, common  # noqa: E402
from launch import build_datasets  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
N10, N100 = 5, 4  # stand-in test set sizes


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
  """A manual dir holding both stand-in archives; the images and labels they contain."""
  directory = tmp_path_factory.mktemp("cifar_manual")
  _, images10, labels10 = make_archive(directory, cifar.CIFAR10, n=N10, seed=0)
  _, images100, labels100 = make_archive(directory, cifar.CIFAR100, n=N100, seed=3)
  return directory, {"cifar10": (images10, labels10), "cifar100": (images100, labels100)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("cifar_data")


def build(name, data_dir, manual_dir, beam=False):
  beam_options = None
  if beam:
    beam_lib = tfds.core.lazy_imports.apache_beam
    beam_options = beam_lib.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
  builder = tfds.builder(name, data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual_dir), beam_options=beam_options))
  return builder


def read_all(name, data_dir):
  source = tfds.data_source(name, data_dir=str(data_dir), split="test")
  return [source[i] for i in range(len(source))]


def names(n):
  return [f"test/{i:05d}" for i in range(n)]


def expected_corrupted(images, corruption, severity):
  """corrupt() one image at a time with the documented keys (no batch in common with the build)."""
  keys = imagenet_cp.example_keys(common.ROOT_SEED, corruption, severity, names(len(images)))
  return np.stack([np.asarray(imagenet_cp.corrupt(images[i:i + 1], corruption, severity,
                                                  keys[i:i + 1]))[0]
                   for i in range(len(images))])


def expected_frames(images, perturbation, difficulty):
  keys = imagenet_cp.example_keys(common.ROOT_SEED, perturbation, difficulty, names(len(images)))
  return np.stack([np.asarray(imagenet_cp.perturb(images[i], perturbation, keys[i], difficulty,
                                                  benchmark="cifar"))
                   for i in range(len(images))])


# ----------------------------------------------------------------------------------------------
# The source: restricted unpickling of the python tarballs


class _Evil:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
  marker = tmp_path / "pwned"
  evil = {b"data": _Evil(marker)}
  for data in (py2_pickle(evil), pickle.dumps(evil, protocol=4)):
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (posix|os|nt)\.system"):
      cifar.restricted_loads(data)
  with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
    cifar.restricted_loads(b"cbuiltins\neval\n(S'1'\ntR.")
  # An allowed helper called on another class, and an object dtype, are refused too.
  with pytest.raises(pickle.UnpicklingError, match="only numpy.ndarray"):
    cifar.restricted_loads(b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\ndtype\n(K\x00tS'b'\ntR.")
  with pytest.raises(pickle.UnpicklingError, match="refusing dtype"):
    cifar.restricted_loads(b"cnumpy\ndtype\n(S'O'\nI00\nI01\ntR.")
  # In an archive: the build fails naming the member, and nothing ran.
  manual = tmp_path / "manual"
  make_archive(manual, cifar.CIFAR10, n=2,
               test_batch=py2_pickle(evil))
  with pytest.raises(sources.SourceError, match=r"test_batch.*refusing to load global \w+\.system"):
    build("cifar10_c/contrast_1", tmp_path / "data", manual)
  assert not marker.exists()
  assert not (tmp_path / "data" / "cifar10_c").exists()


def test_standin_archives_read_like_the_real_layout(manual):
  directory, arrays = manual
  for cifar_set in (cifar.CIFAR10, cifar.CIFAR100):
    test = cifar.read_test_set(directory / cifar_set.archive, cifar_set)
    images, labels = arrays[cifar_set.name]
    np.testing.assert_array_equal(test.images, images)
    np.testing.assert_array_equal(test.labels, labels)
    assert test.file_names == names(len(images))
  # The stand-in's pickle is the real files' Python 2 structure (BINSTRING, numpy.core).
  data = py2_pickle({b"data": np.zeros((1, 3072), np.uint8)})
  assert b"numpy.core.multiarray\n_reconstruct" in data and b"_codecs" not in data


def test_missing_member_and_unreadable_archive_name_the_file(tmp_path):
  bad = tmp_path / cifar.CIFAR100.archive
  bad.write_bytes(b"not a gzip file")
  with pytest.raises(sources.SourceError, match=f"{bad}.*not a readable"):
    cifar.read_test_set(bad, cifar.CIFAR100)
  path, _, _ = make_archive(tmp_path / "ten", cifar.CIFAR10, n=2)
  with pytest.raises(sources.SourceError, match="has no cifar-100-python/test"):
    cifar.read_test_set(path, cifar.CIFAR100)


def test_archive_from_manual_dir_else_the_checked_download(tmp_path):
  class FakeDownloads:
    def __init__(self, manual_dir):
      self._manual = manual_dir
      self.downloaded = []

    @property
    def manual_dir(self):
      if self._manual is None:
        raise AssertionError("Manual directory ... does not exist or is empty")
      return self._manual

    def download(self, url):
      self.downloaded.append(url)
      return tmp_path / "downloaded.tar.gz"

  builder = tfds.builder("cifar100_c/contrast_1", data_dir=str(tmp_path))
  path, _, _ = make_archive(tmp_path / "manual", cifar.CIFAR100, n=1)
  assert builder._archive(FakeDownloads(tmp_path / "manual")) == path  # pylint: disable=protected-access
  fake = FakeDownloads(None)
  assert builder._archive(fake) == tmp_path / "downloaded.tar.gz"  # pylint: disable=protected-access
  assert fake.downloaded == [cifar.CIFAR100.url]
  # checksums.tsv (what TFDS checks a download against) lists the published archives.
  for name, cifar_set in (("cifar10_c", cifar.CIFAR10), ("cifar100_p", cifar.CIFAR100)):
    row = (tfds.builder_cls(name).pkg_dir_path / "checksums.tsv").read_text().strip().split("\t")
    assert row == [cifar_set.url, str(cifar_set.size), cifar_set.sha256, cifar_set.archive]


# ----------------------------------------------------------------------------------------------
# Configs and the bare-load error


def test_configs_and_labels():
  c_names = [c.name for c in tfds.builder_cls("cifar10_c").BUILDER_CONFIGS]
  assert len(c_names) == 95 and c_names[0] == "gaussian_noise_1" and c_names[-1] == "saturate_5"
  p_names = [c.name for c in tfds.builder_cls("cifar100_p").BUILDER_CONFIGS]
  assert p_names[:4] == ["gaussian_noise", "gaussian_noise_2", "gaussian_noise_3", "shot_noise"]
  assert len(p_names) == 20
  assert [cifar_builder.frame_count(p) for p in ("rotate", "motion_blur", "translate")] == [
      31, 21, 16]
  assert len(build_datasets.select_configs(tfds.builder_cls("cifar100_c"), ["benchmark"])) == 75
  assert len(build_datasets.select_configs(tfds.builder_cls("cifar10_p"), ["benchmark"])) == 14
  assert tfds.builder("cifar100_c/fog_5").info.features["label"].names == list(
      cifar.CIFAR100_CLASSES)
  assert tfds.builder("cifar10_p/tilt").info.features["label"].names == list(
      cifar.CIFAR10_CLASSES)
  assert len(cifar.CIFAR100_CLASSES) == 100 and len(set(cifar.CIFAR100_CLASSES)) == 100


@pytest.mark.parametrize("name", ["cifar10_c", "cifar100_c", "cifar10_p", "cifar100_p"])
def test_bare_name_fails_and_lists_the_configs(name, tmp_path):
  first = tfds.builder_cls(name).BUILDER_CONFIGS[0].name
  with pytest.raises(ValueError, match=f"{name} has no default config.*Configs: {first}, "):
    tfds.builder(name, data_dir=str(tmp_path))
  with pytest.raises(ValueError, match="no default config"):
    tfds.data_source(name, data_dir=str(tmp_path), split="test")


# ----------------------------------------------------------------------------------------------
# Builds: the stored pixels are corrupt() / perturb() of the test images, bit for bit


def test_cifar10_c_own_loop_stores_corrupt_in_test_order(manual, data_dir):
  directory, arrays = manual
  images, labels = arrays["cifar10"]
  builder = build("cifar10_c/gaussian_noise_2", data_dir, directory)
  stored = read_all("cifar10_c/gaussian_noise_2", data_dir)
  assert [e["file_name"].decode() for e in stored] == names(N10)  # test-set order on disk
  np.testing.assert_array_equal(np.stack([e["image"] for e in stored]),
                                expected_corrupted(images, "gaussian_noise", 2))
  assert [e["label"] for e in stored] == list(labels)
  meta = json.loads((pathlib.Path(builder.data_path) / "metadata.json").read_text())
  assert meta["source"] == "cifar10" and meta["root_seed"] == common.ROOT_SEED
  assert meta["source_published_md5"] == cifar.CIFAR10.md5
  assert meta["source_is_published_archive"] is False  # a stand-in, and it says so
  assert (meta["corruption"], meta["severity"]) == ("gaussian_noise", 2)
  # No default-config note is left for readers that find the dataset from its files alone.
  assert not (data_dir / "cifar10_c" / ".config").exists()


def test_cifar100_c_beam_build_stores_corrupt(manual, tmp_path):
  directory, arrays = manual
  images, labels = arrays["cifar100"]
  build("cifar100_c/contrast_3", tmp_path, directory, beam=True)
  stored = read_all("cifar100_c/contrast_3", tmp_path)
  assert [e["file_name"].decode() for e in stored] == names(N100)
  np.testing.assert_array_equal(np.stack([e["image"] for e in stored]),
                                expected_corrupted(images, "contrast", 3))
  assert [e["label"] for e in stored] == list(labels)


def test_cifar10_p_own_loop_stores_the_frames(manual, data_dir):
  directory, arrays = manual
  images, labels = arrays["cifar10"]
  build("cifar10_p/gaussian_noise_3", data_dir, directory)
  stored = read_all("cifar10_p/gaussian_noise_3", data_dir)
  frames = np.stack([e["frames"] for e in stored])
  assert frames.shape == (N10, 31, 32, 32, 3) and frames.dtype == np.uint8
  np.testing.assert_array_equal(frames, expected_frames(images, "gaussian_noise", 3))
  np.testing.assert_array_equal(frames[:, 0], images)  # noise sequences start with the clean image
  assert [e["label"] for e in stored] == list(labels)


def test_cifar100_p_through_launch_build_datasets(manual, tmp_path):
  directory, arrays = manual
  images, _ = arrays["cifar100"]
  path, built = build_datasets.build("cifar100_p", "translate", data_dir=str(tmp_path),
                                     manual_dir=str(directory))
  assert built and path.endswith("cifar100_p/translate/1.0.0")
  stored = read_all("cifar100_p/translate", tmp_path)
  np.testing.assert_array_equal(np.stack([e["frames"] for e in stored]),
                                expected_frames(images, "translate", 1))
  _, built_again = build_datasets.build("cifar100_p", "translate", data_dir=str(tmp_path),
                                        manual_dir=str(directory))
  assert not built_again


def test_reader_without_our_package_finds_no_default_config(manual, data_dir):
  """TFDS's default-config note is removed, so the files alone do not name a config either."""
  build_datasets.build("cifar10_c", "gaussian_noise_2", data_dir=str(data_dir),
                       manual_dir=str(manual[0]))
  script = ("import tensorflow_datasets as tfds\n"
            "for name in ('cifar10_c', 'cifar10_c/gaussian_noise_2'):\n"
            "  try:\n"
            f"    print(name, len(tfds.data_source(name, split='test', data_dir={str(data_dir)!r})))\n"
            "  except Exception as e:\n"
            "    print(name, type(e).__name__)\n")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
  assert result.stdout.split("\n")[:2] == ["cifar10_c DatasetNotFoundError",
                                           f"cifar10_c/gaussian_noise_2 {N10}"], result.stderr[-2000:]


# ----------------------------------------------------------------------------------------------
# Export to the release layout


def test_export_round_trips_to_the_release_layout(manual, data_dir, tmp_path):
  directory, arrays = manual
  images, labels = arrays["cifar10"]
  # Built unless an earlier test built it (build() skips what is complete).
  for dataset, config in [("cifar10_c", f"contrast_{s}") for s in range(1, 6)] + [
      ("cifar10_c", "gaussian_noise_2"), ("cifar10_p", "gaussian_noise_3")]:
    build_datasets.build(dataset, config, data_dir=str(data_dir), manual_dir=str(directory))
  with pytest.raises(ValueError, match="fog_1, fog_2, fog_3, fog_4, fog_5 not built"):
    cifar_release.export("cifar10_c", data_dir, tmp_path / "c", names=["fog"])

  # The documented command; gaussian_noise (severity 2 only) is incomplete and skipped.
  result = subprocess.run(
      [sys.executable, "-m", "launch.export_release", "--dataset=cifar10_c",
       f"--data_dir={data_dir}", f"--out={tmp_path / 'c'}"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "skipping gaussian_noise" in result.stdout
  assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["contrast.npy", "labels.npy"]
  contrast = np.load(tmp_path / "c" / "contrast.npy")
  assert contrast.shape == (5 * N10, 32, 32, 3) and contrast.dtype == np.uint8
  for severity in range(1, 6):  # severity-major: s1's N images, then s2's ...
    rows = contrast[(severity - 1) * N10:severity * N10]
    np.testing.assert_array_equal(rows, expected_corrupted(images, "contrast", severity))
    np.testing.assert_array_equal(rows, np.stack(
        [e["image"] for e in read_all(f"cifar10_c/contrast_{severity}", data_dir)]))
  release_labels = np.load(tmp_path / "c" / "labels.npy")
  assert release_labels.dtype == np.uint8
  np.testing.assert_array_equal(release_labels, np.tile(labels, 5))

  # -P: [N, T, 32, 32, 3] per config, under the config's name.
  written = cifar_release.export("cifar10_p", data_dir, tmp_path / "p", log=None)
  assert [p.name for p in written] == ["gaussian_noise_3.npy"]
  frames = np.load(written[0])
  assert frames.shape == (N10, 31, 32, 32, 3)
  np.testing.assert_array_equal(frames, expected_frames(images, "gaussian_noise", 3))
