"""The imagenet_c / imagenet_p TFDS builders: real builds from the demo photos and a stand-in tar.

One process imports TensorFlow once (DatasetBuilderTestCase, tfrecord + tfds.load); every other
build writes array_record and is read back with tfds.data_source.
"""
import importlib.util
import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
import unittest

import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("tensorflow")

import imagenet_cp  # noqa: E402
import imagenet_cp.datasets  # noqa: E402,F401  (registers the builders)
from imagenet_cp import assets, sources  # noqa: E402
from imagenet_cp.datasets import common  # noqa: E402
from imagenet_cp.datasets.imagenet_c import imagenet_c_dataset_builder as c_builder  # noqa: E402
from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder as p_builder  # noqa: E402
from imagenet_standin import make_val_tar  # noqa: E402
from launch import build_datasets  # noqa: E402

# Cheap to compile; brightness goes through the HSV round trip, gaussian_noise draws a key.
C_CONFIG = "contrast_3"
NOISE_CONFIG = "gaussian_noise_2"


def build(name, data_dir, *, manual_dir=None, file_format="array_record", beam=False):
  builder = tfds.builder(name, data_dir=str(data_dir), file_format=file_format)
  beam_options = None
  if beam:
    beam_lib = tfds.core.lazy_imports.apache_beam
    beam_options = beam_lib.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir and str(manual_dir), beam_options=beam_options))
  return builder


def read_all(name, data_dir):
  """All examples in on-disk order, decoded, through tfds.data_source (no TensorFlow)."""
  source = tfds.data_source(name, data_dir=str(data_dir), split="validation")
  return [source[i] for i in range(len(source))]


def by_name(examples):
  return {ex["file_name"].decode(): ex for ex in examples}


def demo_crops():
  return {ex.file_name: imagenet_cp.preprocess(sources.decode(ex))
          for ex in sources.demo_examples()}


def expected_corrupted(crops, corruption, severity, chunk):
  """corrupt() on the crops with the documented keys: what the on-the-fly evaluation computes."""
  names = sorted(crops)
  images = np.stack([crops[n] for n in names])
  keys = imagenet_cp.example_keys(common.ROOT_SEED, corruption, severity, names)
  out = np.concatenate([np.asarray(imagenet_cp.corrupt(images[i:i + chunk], corruption, severity,
                                                       keys[i:i + chunk]))
                        for i in range(0, len(names), chunk)])
  return dict(zip(names, out))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("demo_data")


@pytest.fixture(scope="module")
def demo_build(demo_dir):
  """imagenet_c_demo contrast_3 in all three image formats, built once for several tests."""
  for suffix in ("", "_png", "_raw"):
    build(f"imagenet_c_demo/{C_CONFIG}{suffix}", demo_dir)
  return demo_dir


# ----------------------------------------------------------------------------------------------
# TFDS's own builder test on dummy data shaped like the real manual download.


# DatasetBuilderTestCase needs dill (not a dependency of TFDS or Beam any more); it is in the test
# extra. Without it only these two classes are skipped.
HAVE_DILL = importlib.util.find_spec("dill") is not None


@unittest.skipUnless(HAVE_DILL, "DatasetBuilderTestCase needs dill")
class ImagenetCTest(tfds.testing.DatasetBuilderTestCase if HAVE_DILL else unittest.TestCase):
  """imagenet_c from dummy_data/ILSVRC2012_img_val.tar (3 real photos, official file names)."""
  DATASET_CLASS = c_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = [C_CONFIG, c_builder.parse_config(f"{C_CONFIG}_png")]
  SPLITS = {"validation": 3}
  SKIP_CHECKSUMS = False


@unittest.skipUnless(HAVE_DILL, "DatasetBuilderTestCase needs dill")
class ImagenetPTest(tfds.testing.DatasetBuilderTestCase if HAVE_DILL else unittest.TestCase):
  """imagenet_p from the same kind of dummy tar, one lossy-frame config to stay fast."""
  DATASET_CLASS = p_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = [p_builder.parse_config("brightness_jpeg")]
  SPLITS = {"validation": 3}


# ----------------------------------------------------------------------------------------------
# Configs and registration


def test_configs_cover_the_release_in_paper_order():
  names = [c.name for c in c_builder.Builder.BUILDER_CONFIGS]
  assert len(names) == 95 and names[0] == "gaussian_noise_1" and names[74] == "jpeg_compression_5"
  assert names[75:] == [f"{c}_{s}" for c in imagenet_cp.EXTRA_CORRUPTIONS for s in range(1, 6)]
  p_names = [c.name for c in p_builder.Builder.BUILDER_CONFIGS]
  assert p_names[:4] == ["gaussian_noise", "gaussian_noise_2", "gaussian_noise_3", "shot_noise"]
  assert len(p_names) == 14 + 6 and "shear" in p_names and "rotate_2" not in p_names
  assert c_builder.Builder.get_builder_config("fog_5_raw").image_format == "raw"
  assert p_builder.Builder.get_builder_config("tilt_jpeg").frame_format == "jpeg"
  assert c_builder.Builder.get_builder_config("fog_6") is None
  assert {"imagenet_c", "imagenet_p", "imagenet_c_demo", "imagenet_p_demo"} <= set(
      tfds.list_builders(with_community_datasets=False))


def test_build_cli_selects_configs_and_rejects_typos():
  assert len(build_datasets.select_configs(c_builder.Builder, ["benchmark"])) == 75
  assert len(build_datasets.select_configs(c_builder.Builder, ["all", "fog_1_png"])) == 96
  assert len(build_datasets.select_configs(p_builder.Builder, ["benchmark"])) == 14
  with pytest.raises(Exception, match="no config 'fog_9'"):
    build_datasets.select_configs(c_builder.Builder, ["fog_9"])


def test_checksums_list_the_verified_frost_textures():
  rows = [line.split("\t") for line in
          (c_builder.Builder.pkg_dir_path / "checksums.tsv").read_text().splitlines()]
  assert {r[3]: (int(r[1]), r[2]) for r in rows} == {
      n: (assets.FROST_SIZES[n], assets.FROST_SHA256[n]) for n in assets.FROST_FILES}


# ----------------------------------------------------------------------------------------------
# Demo builds read back: which pixels each image format stores


def test_demo_formats_store_the_documented_pixels(demo_build):
  crops = demo_crops()
  corrupted = expected_corrupted(crops, "contrast", 3, chunk=len(crops))
  raw = by_name(read_all(f"imagenet_c_demo/{C_CONFIG}_raw", demo_build))
  png = by_name(read_all(f"imagenet_c_demo/{C_CONFIG}_png", demo_build))
  jpeg = by_name(read_all(f"imagenet_c_demo/{C_CONFIG}", demo_build))
  assert sorted(raw) == sorted(crops) == [f"demo/{p.name}.png" for p in sorted(
      sources.DEMO_PHOTOS, key=lambda p: p.name)]
  for name, pixels in corrupted.items():
    np.testing.assert_array_equal(raw[name]["image"], pixels)   # PNG of corrupt(): exact
    released = np.asarray(imagenet_cp.release_jpeg(pixels))
    np.testing.assert_array_equal(png[name]["image"], released)  # PNG of release_jpeg(): exact
    # The default stores PIL's q85 JPEG of corrupt(), as the release did. release_jpeg is
    # libjpeg-turbo's lossy path, so with the pinned Pillow the decoded JPEG equals it exactly.
    np.testing.assert_array_equal(jpeg[name]["image"], released)
    label = {f"demo/{p.name}.png": p.label for p in sources.DEMO_PHOTOS}[name]
    assert raw[name]["label"] == png[name]["label"] == jpeg[name]["label"] == label


def test_demo_metadata_records_provenance_and_says_demo(demo_build):
  builder = tfds.builder(f"imagenet_c_demo/{C_CONFIG}", data_dir=str(demo_build))
  meta = json.loads((pathlib.Path(builder.data_path) / "metadata.json").read_text())
  import jax
  assert meta["source"] == "demo" and "NOT ImageNet" in meta["source_description"]
  assert meta["root_seed"] == common.ROOT_SEED and meta["prng_impl"] == "threefry2x32"
  assert meta["imagenet_cp_version"] == imagenet_cp.__version__
  assert meta["jax_version"] == jax.__version__
  assert (meta["corruption"], meta["severity"], meta["image_format"]) == ("contrast", 3, "jpeg")
  assert "DEMO" in builder.info.description and builder.info.description != (
      tfds.builder(f"imagenet_c/{C_CONFIG}", data_dir=str(demo_build)).info.description)
  # Same keys -> same on-disk order in every config (per-image alignment across configs).
  orders = [[ex["file_name"] for ex in read_all(f"imagenet_c_demo/{C_CONFIG}{s}", demo_build)]
            for s in ("", "_png", "_raw")]
  assert orders[0] == orders[1] == orders[2]


def test_beam_build_equals_local_build(demo_dir, tmp_path):
  """Determinism: the same noise config built in-process and through Beam's DirectRunner."""
  build(f"imagenet_c_demo/{NOISE_CONFIG}", demo_dir)
  build(f"imagenet_c_demo/{NOISE_CONFIG}", tmp_path, beam=True)
  local = read_all(f"imagenet_c_demo/{NOISE_CONFIG}", demo_dir)
  beam = read_all(f"imagenet_c_demo/{NOISE_CONFIG}", tmp_path)
  assert [e["file_name"] for e in local] == [e["file_name"] for e in beam]
  for a, b in zip(local, beam):
    np.testing.assert_array_equal(a["image"], b["image"])
    assert a["label"] == b["label"]
  assert not np.array_equal(local[0]["image"], local[1]["image"])


def test_tfrecord_build_reads_back_with_tfds_load(demo_build, tmp_path):
  """tfrecord + tfds.load gives the same pixels as array_record + data_source for lossless PNG.

  (For the JPEG configs the stored bytes are the same, but TensorFlow's JPEG decoder rounds
  differently from PIL's, by up to a few grey levels: docs/datasets.md.)
  """
  name = f"imagenet_c_demo/{C_CONFIG}_png"
  build(name, tmp_path, file_format="tfrecord")
  loaded = list(tfds.as_numpy(tfds.load(name, split="validation", data_dir=str(tmp_path),
                                        download=False)))
  reference = by_name(read_all(name, demo_build))
  assert len(loaded) == len(reference) == len(sources.DEMO_PHOTOS)
  for ex in loaded:
    np.testing.assert_array_equal(ex["image"], reference[ex["file_name"].decode()]["image"])


def test_imagenet_p_demo_frames_are_lossless(tmp_path):
  build("imagenet_p_demo/brightness", tmp_path)
  stored = by_name(read_all("imagenet_p_demo/brightness", tmp_path))
  resized = {ex.file_name: imagenet_cp.resize_short_side(sources.decode(ex))
             for ex in sources.demo_examples()}
  names = sorted(resized)
  canvas, sizes = imagenet_cp.pad_to_canvas([resized[n] for n in names])
  keys = imagenet_cp.example_keys(common.ROOT_SEED, "brightness", 1, names)
  frames = np.asarray(imagenet_cp.perturb_batch(canvas, sizes, "brightness", keys))
  for i, name in enumerate(names):
    assert len(stored[name]["frames"]) == 31
    np.testing.assert_array_equal(np.stack(stored[name]["frames"]), frames[i])
  builder = tfds.builder("imagenet_p_demo/brightness", data_dir=str(tmp_path))
  meta = json.loads((pathlib.Path(builder.data_path) / "metadata.json").read_text())
  assert str(builder.version) == "1.1.0" and "lowbias32" in meta["noise_generator"]


# ----------------------------------------------------------------------------------------------
# The ImageNet source: stand-in tar, crop cache, errors, interruption


def test_imagenet_build_uses_crop_cache_and_matches_on_the_fly(tmp_path, monkeypatch):
  manual = tmp_path / "manual"
  tar = make_val_tar(manual, n=5)
  data_dir = tmp_path / "data"
  build(f"imagenet_c/{C_CONFIG}_raw", data_dir, manual_dir=manual)
  caches = list((data_dir / common.CACHE_DIRNAME).iterdir())
  assert len(caches) == 1 and caches[0].name.startswith(common.CROP_224)
  with sources_tar_examples(tar) as examples:
    crops = {ex.file_name: imagenet_cp.preprocess(sources.decode(ex)) for ex in examples}
  stored = by_name(read_all(f"imagenet_c/{C_CONFIG}_raw", data_dir))
  expected = expected_corrupted(crops, "contrast", 3, chunk=5)
  assert sorted(stored) == sorted(expected)
  for name in expected:
    np.testing.assert_array_equal(stored[name]["image"], expected[name])
    assert stored[name]["label"] == sources.validation_label(name)
  meta = json.loads((pathlib.Path(tfds.builder(f"imagenet_c/{C_CONFIG}_raw", data_dir=str(
      data_dir)).data_path) / "metadata.json").read_text())
  assert meta["source"] == "imagenet"

  # A second config reuses the cached crops: no image is decoded again.
  def no_decode(*args, **kwargs):
    raise AssertionError("decoded an image although the crop cache exists")
  monkeypatch.setattr(common, "load_pixels", no_decode)
  build(f"imagenet_c/{C_CONFIG}", data_dir, manual_dir=manual)
  assert len(read_all(f"imagenet_c/{C_CONFIG}", data_dir)) == 5


class sources_tar_examples:  # pylint: disable=invalid-name
  def __init__(self, tar):
    self.tar = tar

  def __enter__(self):
    return list(sources.imagenet_val_examples(self.tar.parent))

  def __exit__(self, *exc):
    return False


def test_missing_and_truncated_manual_downloads_name_the_file(tmp_path):
  with pytest.raises(sources.SourceError, match="ILSVRC2012_img_val.tar"):
    build(f"imagenet_c/{C_CONFIG}", tmp_path / "data", manual_dir=tmp_path / "nothing_here")
  manual = tmp_path / "manual"
  tar = make_val_tar(manual, n=3)
  tar.write_bytes(tar.read_bytes()[:tar.stat().st_size // 2])
  with pytest.raises(sources.SourceError, match=f"{tar}.*(truncated|not a readable tar)"):
    build(f"imagenet_c/{C_CONFIG}", tmp_path / "data", manual_dir=manual)
  assert not (tmp_path / "data" / "imagenet_c" / C_CONFIG / "1.0.0").exists()


@pytest.mark.parametrize("name", [f"imagenet_c/{C_CONFIG}", "imagenet_p/rotate"])
def test_build_stopped_by_missing_manual_download_leaves_no_folders(tmp_path, name):
  """TFDS makes <data_dir>/<name>/<config>/ (and .config/, downloads/) before the source check."""
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  (data_dir / "users_file.txt").write_text("not ours")
  with pytest.raises(sources.SourceError, match="ILSVRC2012_img_val.tar"):
    build(name, data_dir, manual_dir=tmp_path / "nothing_here")
  assert [p.name for p in data_dir.rglob("*")] == ["users_file.txt"]
  fresh = tmp_path / "fresh"
  with pytest.raises(sources.SourceError, match="ILSVRC2012_img_val.tar"):
    build(name, fresh, manual_dir=tmp_path / "nothing_here")
  assert not fresh.exists()


def test_interrupted_build_leaves_nothing_and_rerun_completes(demo_build, tmp_path, monkeypatch):
  name = f"imagenet_c_demo/{C_CONFIG}"
  calls = {"n": 0}
  real_encode = common.encode_jpeg

  def failing_encode(image):
    calls["n"] += 1
    if calls["n"] == 3:
      raise KeyboardInterrupt("simulated interruption")
    return real_encode(image)

  monkeypatch.setattr(common, "encode_jpeg", failing_encode)
  with pytest.raises(KeyboardInterrupt):
    build(name, tmp_path)
  config_dir = tmp_path / "imagenet_c_demo" / C_CONFIG
  assert not tfds.builder(name, data_dir=str(tmp_path)).is_prepared()
  assert not (config_dir / "1.0.0").exists()
  assert not config_dir.exists()  # no incomplete.* and no empty config folder left
  monkeypatch.setattr(common, "encode_jpeg", real_encode)
  _, built = build_datasets.build("imagenet_c_demo", C_CONFIG, data_dir=str(tmp_path))
  assert built
  _, built_again = build_datasets.build("imagenet_c_demo", C_CONFIG, data_dir=str(tmp_path))
  assert not built_again  # the rerun skips what is complete
  fresh = read_all(name, tmp_path)
  reference = read_all(name, demo_build)
  for a, b in zip(fresh, reference):
    np.testing.assert_array_equal(a["image"], b["image"])


def test_interrupted_crop_cache_is_not_left_half_written(tmp_path, monkeypatch):
  manual = tmp_path / "manual"
  make_val_tar(manual, n=3)
  items = common.list_items(common.SOURCE_IMAGENET, manual)
  real_load = common.load_pixels
  calls = {"n": 0}

  def failing_load(item, kind):
    calls["n"] += 1
    if calls["n"] == 2:
      raise OSError("disk full (simulated)")
    return real_load(item, kind)

  monkeypatch.setattr(common, "load_pixels", failing_load)
  with pytest.raises(OSError):
    common.pixel_source(items, common.CROP_224, common.SOURCE_IMAGENET, tmp_path, log=None)
  assert not list((tmp_path / common.CACHE_DIRNAME).iterdir())
  monkeypatch.setattr(common, "load_pixels", real_load)
  pixels = common.pixel_source(items, common.CROP_224, common.SOURCE_IMAGENET, tmp_path, log=None)
  assert pixels.cache.exists()
  np.testing.assert_array_equal(pixels.get(items[1]), real_load(items[1], common.CROP_224))


def test_jpeg_encoding_matches_the_release_settings():
  image = demo_crops()["demo/coffee.png"]
  data = common.encode_jpeg(image)
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="JPEG", quality=85, optimize=True)
  assert data == buf.getvalue()


def test_remote_manual_dir_lists_the_same_items(tmp_path):
  """The gs:// path (driver reads tar headers through etils.epath) on a local file system."""
  tar = make_val_tar(tmp_path / "manual", n=4)
  local = common.list_items(common.SOURCE_IMAGENET, tar.parent)
  remote = common._remote_tar_items(str(tar.parent))  # pylint: disable=protected-access
  assert [(i.file_name, i.label, i.locator) for i in remote] == [
      (i.file_name, i.label, i.locator) for i in local]
  assert common.read_bytes(remote[2]) == dict(
      (e.file_name, e.data) for e in sources.imagenet_val_examples(tar.parent))[remote[2].file_name]
  with pytest.raises(sources.SourceError, match="not found"):
    common._remote_tar_items(str(tmp_path / "elsewhere"))  # pylint: disable=protected-access


def test_tfds_command_line_builds_with_imports(tmp_path):
  """`tfds build imagenet_c --imports imagenet_cp.datasets ...`, through TFDS's own CLI code."""
  cli = pytest.importorskip("tensorflow_datasets.scripts.cli.main")
  manual = tmp_path / "manual"
  make_val_tar(manual, n=3)
  args = cli._parse_flags([  # pylint: disable=protected-access
      "tfds", "build", "imagenet_c", "--imports", "imagenet_cp.datasets", "--config", C_CONFIG,
      "--manual_dir", str(manual), "--data_dir", str(tmp_path / "data"),
      "--file_format", "array_record"])
  cli.main(args)
  examples = read_all(f"imagenet_c/{C_CONFIG}", tmp_path / "data")
  assert sorted(e["file_name"].decode() for e in examples) == [
      f"ILSVRC2012_val_{i:08d}.JPEG" for i in (1, 2, 3)]


def test_killed_build_leaves_no_dataset_and_rerun_completes(demo_build, tmp_path):
  """A build killed with SIGKILL mid-way (no cleanup runs) never shows up as a dataset."""
  script = textwrap.dedent(f"""
      import os, signal
      import tensorflow_datasets as tfds
      import imagenet_cp.datasets
      from imagenet_cp.datasets import common
      real, calls = common.encode_jpeg, []
      def encode_then_die(image):
        calls.append(1)
        if len(calls) == 3:
          os.kill(os.getpid(), signal.SIGKILL)
        return real(image)
      common.encode_jpeg = encode_then_die
      tfds.builder("imagenet_c_demo/{C_CONFIG}", data_dir={str(tmp_path)!r},
                   file_format="array_record").download_and_prepare()
  """)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
  result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          timeout=120, check=False)
  assert result.returncode == -9, result.stderr.decode()[-2000:]
  name = f"imagenet_c_demo/{C_CONFIG}"
  assert not tfds.builder(name, data_dir=str(tmp_path)).is_prepared()
  assert not (tmp_path / "imagenet_c_demo" / C_CONFIG / "1.0.0").exists()
  _, built = build_datasets.build("imagenet_c_demo", C_CONFIG, data_dir=str(tmp_path))
  assert built
  for a, b in zip(read_all(name, tmp_path), read_all(name, demo_build)):
    np.testing.assert_array_equal(a["image"], b["image"])


def test_extracted_folder_gives_the_same_items_and_pixels_as_the_tar(tmp_path):
  from imagenet_standin import make_val_folder
  tar_items = common.list_items(common.SOURCE_IMAGENET, make_val_tar(tmp_path / "a", n=3).parent)
  folder = make_val_folder(tmp_path / "b", n=3, by_wnid=True)
  folder_items = common.list_items(common.SOURCE_IMAGENET, folder)
  assert [(i.file_name, i.label) for i in folder_items] == [
      (i.file_name, i.label) for i in tar_items]
  for a, b in zip(tar_items, folder_items):
    np.testing.assert_array_equal(common.load_pixels(a, common.RESIZE_256),
                                  common.load_pixels(b, common.RESIZE_256))


def test_frost_config_builds_with_the_verified_textures(tmp_path):
  build("imagenet_c_demo/frost_2_raw", tmp_path)
  stored = by_name(read_all("imagenet_c_demo/frost_2_raw", tmp_path))
  crops = demo_crops()
  expected = expected_corrupted(crops, "frost", 2, chunk=len(crops))
  for name, pixels in expected.items():
    np.testing.assert_array_equal(stored[name]["image"], pixels)
