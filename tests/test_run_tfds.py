"""On-the-fly examples equal the ones the TFDS builders stored (demo source, array_record)."""
import pytest
import tensorflow_datasets as tfds

import imagenet_cp.datasets  # noqa: F401  (registers the builders)
import task_records
from distributed_worker import tiny_classifier
from imagenet_cp.suites import corruption as ev

KW = dict(source="demo", corruptions=("contrast",), severities=(1,), batch_size=4, bootstrap=0,
          progress=False)


def _build(name, data_dir):
  builder = tfds.builder(name, data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(data_dir)))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  for name in ("imagenet_c_demo/contrast_1_png", "imagenet_c_demo/contrast_1",
               "imagenet_p_demo/translate"):
    _build(name, data_dir)
  return data_dir


def _records(tmp_path, **kwargs):
  apply_fn, variables = tiny_classifier()
  ev.evaluate(apply_fn, variables, output_dir=tmp_path, **KW, **kwargs)
  return task_records.read(tmp_path, drop=task_records.IDENTITY)


def test_lossless_builds_give_identical_records(built, tmp_path):
  fly = _records(tmp_path / "fly", perturbations=("translate",))
  stored = _records(tmp_path / "tfds", perturbations=("translate",), tfds_data_dir=built,
                    tfds_image_format="png")
  task_records.assert_same(fly, stored)


def test_release_like_jpeg_build_agrees(built, tmp_path):
  # The stored files are PIL JPEG q85 of the corrupted pixels; release_jpeg is bit-exact to PIL's
  # codec (tests/test_ops_jpeg.py), so even this format feeds the model the same pixels.
  fly = _records(tmp_path / "fly", perturbations=())
  stored = _records(tmp_path / "tfds", perturbations=(), tfds_data_dir=built,
                    tfds_image_format="jpeg")
  task_records.assert_same(fly, stored)


def test_missing_build_is_a_clear_error(built, tmp_path):
  apply_fn, variables = tiny_classifier()
  with pytest.raises(ValueError, match="imagenet_c_demo/contrast_1_raw is not built"):
    ev.evaluate(apply_fn, variables, tfds_data_dir=built, tfds_image_format="raw",
                perturbations=(), **KW)
