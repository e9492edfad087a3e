"""ImageNet validation source (tar / folder stand-ins) and the demo source."""
import numpy as np
import pytest

from imagenet_cp import sources
from imagenet_standin import make_val_folder, make_val_tar, standin_jpegs


def test_validation_labels_follow_tfds():
  # ILSVRC2012_val_00000001 is n01751748 (sea snake, label 65) in the official label list.
  assert sources.validation_label("ILSVRC2012_val_00000001.JPEG") == 65
  assert sources.imagenet_wnids()[65] == "n01751748"
  with pytest.raises(sources.SourceError, match="not an ImageNet validation file name"):
    sources.validation_label("cat.jpg")


def test_tar_and_folders_give_the_same_examples(tmp_path):
  tar_examples = list(sources.imagenet_val_examples(make_val_tar(tmp_path / "t", 5).parent))
  flat = list(sources.imagenet_val_examples(make_val_folder(tmp_path / "f", 5)))
  by_wnid = list(sources.imagenet_val_examples(make_val_folder(tmp_path / "w", 5, by_wnid=True)))
  assert [e.file_name for e in tar_examples] == [n for n, _ in standin_jpegs(5)]  # sorted, not tar order
  assert tar_examples == flat == by_wnid
  assert sources.count_imagenet_val(tmp_path / "t") == 5


def test_missing_download_names_the_expected_file(tmp_path):
  with pytest.raises(sources.SourceError, match="ILSVRC2012_img_val.tar") as err:
    sources.locate_imagenet_val(tmp_path)
  assert "image-net.org" in str(err.value)


def test_truncated_tar_is_rejected_before_work_starts(tmp_path):
  path = make_val_tar(tmp_path, 4)
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])
  with pytest.raises(sources.SourceError, match="truncated|not a readable tar"):
    list(sources.imagenet_val_examples(tmp_path))


def test_corrupt_jpeg_names_the_file(tmp_path):
  root = make_val_folder(tmp_path, 2)
  (root / "ILSVRC2012_val_00000002.JPEG").write_bytes(b"\xff\xd8 not a jpeg")
  examples = list(sources.imagenet_val_examples(root))
  sources.decode(examples[0])
  with pytest.raises(sources.SourceError, match="ILSVRC2012_val_00000002.JPEG"):
    sources.decode(examples[1])


def test_demo_source_is_marked_and_real():
  examples = sources.demo_examples()
  assert len(examples) == len(sources.DEMO_PHOTOS) >= 4
  for example, photo in zip(examples, sources.DEMO_PHOTOS):
    assert sources.is_demo(example.file_name) and example.file_name.endswith(".png")
    assert sources.imagenet_wnids()[photo.label] == photo.wnid
    image = np.asarray(sources.decode(example))
    assert image.ndim == 3 and min(image.shape[:2]) >= 256 and image.std() > 20
