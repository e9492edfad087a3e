"""tiny_imagenet_c/_p, imagenet64_c/_p, imagenet299_c from stand-ins, and the Tiny export.

Stand-ins: a ``tiny-imagenet-200.zip`` generated here (the official layout, 2 classes, 3 val
images), a folder of ``<wnid>/<file>`` crops, and the ImageNet validation tar of
tests/imagenet_standin.py.  Every build writes array_record and is read back with
tfds.data_source (no TensorFlow); two go through Beam's DirectRunner (tiny_imagenet_c and
tiny_imagenet_p), every builder through launch.build_datasets (the TF-free path).  Expected pixels are computed here from the decoded source with
PIL (as the original scripts) and ``corrupt`` / ``perturb`` with the documented keys, one image
at a time.  Tolerance everywhere: none.  JPEG configs are compared as bytes with PIL's q85
encoding of our own ``corrupt`` output (the same encoder on the same pixels is deterministic),
PNG frames as decoded pixels (lossless).
"""
import io
import json
import pathlib
import subprocess
import sys
import tarfile
import zipfile

from absl import app
import numpy as np
import pytest
from PIL import Image

tfds = pytest.importorskip("tensorflow_datasets")

import imagenet_cp  # noqa: E402
import imagenet_cp.datasets  # noqa: E402,F401  (registers the builders)
from conftest import photo  # noqa: E402
from imagenet_cp import perturbations, sources  # noqa: E402
from imagenet_cp.datasets import common, tiny_imagenet, tiny_release  # noqa: E402
from imagenet_standin import make_val_tar  # noqa: E402
from launch import build_datasets  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
NEW = ("tiny_imagenet_c", "tiny_imagenet_p", "imagenet64_c", "imagenet64_p", "imagenet299_c")
WNIDS = ("n01443537", "n09428293")  # two of the 200 Tiny ImageNet classes
# Stand-in val images: (file name, wnid, photo); sorted file-name order is the build's order.
TINY_VAL = (("val_0.JPEG", WNIDS[1], "chelsea"), ("val_1.JPEG", WNIDS[0], "coffee"),
            ("val_10.JPEG", WNIDS[1], "astronaut"))


def jpeg(pixels, quality=90) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
  return buf.getvalue()


def decode(data) -> np.ndarray:
  return np.asarray(Image.open(io.BytesIO(bytes(data))).convert("RGB"))


def release_jpeg_bytes(pixels) -> bytes:
  """The release stage as the original saved it: PIL JPEG quality 85, optimize=True."""
  buf = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(buf, format="JPEG", quality=85,
                                                     optimize=True)
  return buf.getvalue()


def tiny_photo(name, size=(64, 64)):
  return np.asarray(Image.fromarray(photo(name)).resize(size, Image.BILINEAR))


def write_tiny_zip(directory, annotations=True, wnids=WNIDS, missing=()):
  """A tiny-imagenet-200.zip in the official layout (a train member too, never read);
  ``missing``: file names val_annotations.txt lists but the zip does not hold."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  path = directory / tiny_imagenet.ZIP_NAME
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("tiny-imagenet-200/wnids.txt", "".join(f"{w}\n" for w in wnids))
    archive.writestr(f"tiny-imagenet-200/train/{WNIDS[0]}/images/{WNIDS[0]}_0.JPEG",
                     jpeg(tiny_photo("rocket")))
    if annotations:
      listed = [(name, wnid) for name, wnid, _ in TINY_VAL] + [(m, WNIDS[0]) for m in missing]
      archive.writestr("tiny-imagenet-200/val/val_annotations.txt", "".join(
          f"{name}\t{wnid}\t0\t0\t63\t63\n" for name, wnid in listed))
    for name, _, source in TINY_VAL:
      archive.writestr(f"tiny-imagenet-200/val/images/{name}", jpeg(tiny_photo(source)))
  return path


@pytest.fixture(scope="module")
def tiny_manual(tmp_path_factory):
  """(manual dir with the zip, {file name: (decoded 64x64 pixels, label)})."""
  directory = tmp_path_factory.mktemp("tiny_manual")
  path = write_tiny_zip(directory)
  with zipfile.ZipFile(path) as archive:
    inputs = {name: (decode(archive.read(f"tiny-imagenet-200/val/images/{name}")),
                     tiny_imagenet.wnids().index(wnid)) for name, wnid, _ in TINY_VAL}
  return directory, inputs


@pytest.fixture(scope="module")
def imagenet_manual(tmp_path_factory):
  """(manual dir with a 2-image ILSVRC2012_img_val.tar, {file name: decoded photo})."""
  directory = tmp_path_factory.mktemp("imagenet_manual")
  tar = make_val_tar(directory, n=2)
  with tarfile.open(tar) as archive:
    photos = {m.name: decode(archive.extractfile(m).read()) for m in archive.getmembers()}
  return directory, photos


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
  return tmp_path_factory.mktemp("tiny_data")


def build(name, data_dir, manual_dir, beam=False):
  beam_options = None
  if beam:
    beam_lib = tfds.core.lazy_imports.apache_beam
    beam_options = beam_lib.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
  builder = tfds.builder(name, data_dir=str(data_dir), file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual_dir), beam_options=beam_options))
  return builder


def read_all(name, data_dir, raw=None):
  """Examples in on-disk order; ``raw``: a feature left encoded (its bytes)."""
  decoders = {raw: tfds.decode.SkipDecoding()} if raw else None
  source = tfds.data_source(name, data_dir=str(data_dir), split="validation", decoders=decoders)
  return [source[i] for i in range(len(source))]


def by_name(examples):
  return {e["file_name"].decode(): e for e in examples}


def corrupted(image, corruption, severity, file_name):
  key = imagenet_cp.example_key(common.ROOT_SEED, corruption, severity, file_name)
  return np.asarray(imagenet_cp.corrupt(image[None], corruption, severity, key[None]))[0]


def frames(image, name, difficulty, file_name, benchmark, from_photo=False):
  key = imagenet_cp.example_key(common.ROOT_SEED, name, difficulty, file_name)
  run = perturbations.perturb_photo if from_photo else imagenet_cp.perturb
  return np.asarray(run(image, name, key, difficulty, benchmark=benchmark))


def metadata(builder):
  return json.loads((pathlib.Path(builder.data_path) / "metadata.json").read_text())


def check_jpeg_config(stored, inputs, corruption, severity):
  """Stored bytes == PIL q85 of corrupt(input) (tolerance: none)."""
  assert sorted(stored) == sorted(inputs)
  for name, image in inputs.items():
    assert bytes(stored[name]["image"]) == release_jpeg_bytes(
        corrupted(image, corruption, severity, name)), name


# ----------------------------------------------------------------------------------------------
# Configs, registration, the bare-name error


def test_configs_frame_counts_and_classes():
  for name in NEW:
    cls = tfds.builder_cls(name)
    names = [c.name for c in cls.BUILDER_CONFIGS]
    assert len(names) == (95 if name.endswith("_c") else 20), name
    assert name in build_datasets.DATASETS
    assert len(build_datasets.select_configs(cls, ["benchmark"])) == (
        75 if name.endswith("_c") else 14)
  assert tfds.builder("imagenet299_c/fog_3_png").info.features["image"].shape == (299, 299, 3)
  assert tfds.builder("imagenet64_c/fog_3").info.features["image"].shape == (64, 64, 3)
  # Tiny/64 -P: translate has 31 frames (ImageNet-P 41); motion_blur's frames are uncropped.
  translate = tfds.builder("tiny_imagenet_p/translate").info.features["frames"]
  assert translate.shape == (31, 64, 64, 3)
  assert tfds.builder("imagenet64_p/motion_blur_jpeg").info.features["frames"].shape == (
      31, None, None, 3)
  assert tfds.builder("imagenet_p/translate").info.features["frames"].shape == (41, 224, 224, 3)
  labels = tfds.builder("tiny_imagenet_c/fog_3").info.features["label"].names
  assert len(labels) == 200 and labels == sorted(labels)
  assert set(labels) <= set(sources.imagenet_wnids())
  assert tfds.builder("imagenet64_p/rotate").info.features["label"].num_classes == 1000


@pytest.mark.parametrize("name", NEW)
def test_bare_name_and_unknown_config_fail(name, tmp_path):
  first = tfds.builder_cls(name).BUILDER_CONFIGS[0].name
  with pytest.raises(ValueError, match=f"{name} has no default config.*Configs: {first}, "):
    tfds.builder(name, data_dir=str(tmp_path))
  with pytest.raises(app.UsageError, match=f"{name} has no config 'nope'"):
    build_datasets.select_configs(tfds.builder_cls(name), ["nope"])
  with pytest.raises(ValueError, match="BuilderConfig nope not found"):
    tfds.builder(f"{name}/nope", data_dir=str(tmp_path))


# ----------------------------------------------------------------------------------------------
# Bad sources fail before any image is decoded, naming the problem


def test_bad_tiny_sources_name_the_problem(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(sources.SourceError,
                     match="does not exist or is empty.*tiny-imagenet-200.zip"):
    build("tiny_imagenet_c/contrast_3", tmp_path / "d0", empty)
  assert not (tmp_path / "d0" / "tiny_imagenet_c").exists()  # nothing half-built is left
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "readme.txt").write_text("x")
  with pytest.raises(sources.SourceError, match="no Tiny ImageNet source in .*readme.txt"):
    tiny_imagenet.list_items(tmp_path / "other")
  write_tiny_zip(tmp_path / "no_ann", annotations=False)
  with pytest.raises(sources.SourceError, match="has no tiny-imagenet-200/val/val_annotations"):
    build("tiny_imagenet_c/contrast_3", tmp_path / "d1", tmp_path / "no_ann")
  write_tiny_zip(tmp_path / "alien", wnids=WNIDS + ("n01440764",))  # an ImageNet class, not Tiny
  with pytest.raises(sources.SourceError, match="'n01440764' is not one of the 200 Tiny"):
    tiny_imagenet.list_items(tmp_path / "alien")
  write_tiny_zip(tmp_path / "short", missing=("val_9.JPEG",))
  with pytest.raises(sources.SourceError, match="lacks .*val/images/val_9.JPEG"):
    tiny_imagenet.list_items(tmp_path / "short")
  (tmp_path / "bad.zip").write_bytes(b"not a zip")
  (tmp_path / "badzip").mkdir()
  (tmp_path / "bad.zip").rename(tmp_path / "badzip" / tiny_imagenet.ZIP_NAME)
  with pytest.raises(sources.SourceError, match="not a readable zip"):
    tiny_imagenet.list_items(tmp_path / "badzip")


def test_imagenet_sized_builder_without_the_tar_names_it(tmp_path):
  (tmp_path / "manual").mkdir()
  (tmp_path / "manual" / "notes.txt").write_text("x")
  with pytest.raises(sources.SourceError, match="expected .*ILSVRC2012_img_val.tar"):
    build("imagenet299_c/contrast_3", tmp_path / "data", tmp_path / "manual")


# ----------------------------------------------------------------------------------------------
# -C builds: stored bytes are the release stage of corrupt() on the scripts' inputs


def test_tiny_c_from_the_zip_through_beam(tiny_manual, tiny_data):
  """One of the two Beam (DirectRunner) builds: a -C one here, a -P one below."""
  directory, inputs = tiny_manual
  builder = build("tiny_imagenet_c/contrast_3", tiny_data, directory, beam=True)
  stored = by_name(read_all("tiny_imagenet_c/contrast_3", tiny_data, raw="image"))
  # A 64x64 Tiny image is its own Resize((64, 64)).
  check_jpeg_config(stored, {n: im for n, (im, _) in inputs.items()}, "contrast", 3)
  assert {n: stored[n]["label"] for n in stored} == {n: lab for n, (_, lab) in inputs.items()}
  meta = metadata(builder)
  assert meta["source"] == "tiny_imagenet" and meta["source_layout"] == "zip"
  assert "NOT the original's bounding-box crops" in meta["source_description"]
  assert meta["image_size"] == 64 and "Resize((64, 64))" in meta["preprocessing"]


def test_tiny_c_from_crops_through_launch(tmp_path):
  """A user's <wnid>/<file> crops of any size: Resize((64, 64)) (PIL bilinear) first."""
  crops = {f"{WNIDS[0]}/a.JPEG": tiny_photo("coffee", (90, 70)),
           f"{WNIDS[1]}/b.png": tiny_photo("chelsea", (50, 40))}
  for name, pixels in crops.items():
    (tmp_path / "crops" / name).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(tmp_path / "crops" / name)
  (tmp_path / "crops" / "notes").mkdir()  # not a wnid: ignored
  path, built = build_datasets.build("tiny_imagenet_c", "contrast_3", data_dir=str(tmp_path / "d"),
                                     manual_dir=str(tmp_path / "crops"))
  assert built and path.endswith("tiny_imagenet_c/contrast_3/1.0.0")
  stored = by_name(read_all("tiny_imagenet_c/contrast_3", tmp_path / "d", raw="image"))
  inputs = {n: np.asarray(Image.open(tmp_path / "crops" / n).convert("RGB").resize(
      (64, 64), Image.BILINEAR)) for n in crops}
  check_jpeg_config(stored, inputs, "contrast", 3)
  assert stored[f"{WNIDS[1]}/b.png"]["label"] == tiny_imagenet.wnids().index(WNIDS[1])
  meta = json.loads((pathlib.Path(path) / "metadata.json").read_text())
  assert meta["source_layout"] == "crops"


def test_imagenet64_c_through_launch(imagenet_manual, tmp_path):
  directory, photos = imagenet_manual
  build_datasets.build("imagenet64_c", "gaussian_noise_2", data_dir=str(tmp_path),
                       manual_dir=str(directory))
  stored = by_name(read_all("imagenet64_c/gaussian_noise_2", tmp_path, raw="image"))
  # make_imagenet_64_c.py: Resize((64, 64)) of the whole photo, aspect ratio not kept.
  inputs = {n: np.asarray(Image.fromarray(p).resize((64, 64), Image.BILINEAR))
            for n, p in photos.items()}
  check_jpeg_config(stored, inputs, "gaussian_noise", 2)
  assert {n: e["label"] for n, e in stored.items()} == {
      n: sources.validation_label(n) for n in photos}


def test_imagenet299_c_through_launch(imagenet_manual, tmp_path):
  directory, photos = imagenet_manual
  build_datasets.build("imagenet299_c", "contrast_3", data_dir=str(tmp_path),
                       manual_dir=str(directory))
  stored = by_name(read_all("imagenet299_c/contrast_3", tmp_path, raw="image"))
  inputs = {}
  for name, p in photos.items():  # resized_center_crop: 0.875 centre crop, 299x299 bilinear
    h, w = p.shape[:2]
    th, tw = int(h * 0.875), int(w * 0.875)
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    inputs[name] = np.asarray(Image.fromarray(p[top:top + th, left:left + tw]).resize(
        (299, 299), Image.BILINEAR))
  check_jpeg_config(stored, inputs, "contrast", 3)


# ----------------------------------------------------------------------------------------------
# -P builds: stored PNG frames are perturb()'s frames


def test_tiny_p_beam_build(tiny_manual, tiny_data):
  """The other Beam build; the batch is a padded canvas, the expected frames one at a time."""
  directory, inputs = tiny_manual
  build("tiny_imagenet_p/gaussian_noise_2", tiny_data, directory, beam=True)
  stored = by_name(read_all("tiny_imagenet_p/gaussian_noise_2", tiny_data))
  assert sorted(stored) == sorted(inputs)
  for name, (image, label) in inputs.items():
    got = np.stack(stored[name]["frames"])
    assert got.shape == (31, 64, 64, 3)
    np.testing.assert_array_equal(got, frames(image, "gaussian_noise", 2, name, "tiny_imagenet"))
    np.testing.assert_array_equal(got[0], image)  # noise sequences start with the clean image
    assert stored[name]["label"] == label


def test_tiny_p_motion_blur_starts_from_the_photo(tiny_manual, tmp_path):
  """motion_blur blurs the 64x64 photo itself (perturb would take it for the set input)."""
  directory, inputs = tiny_manual
  name = sorted(inputs)[0]
  with pytest.raises(ValueError, match="starts from the source photo"):
    imagenet_cp.perturb(inputs[name][0], "motion_blur", imagenet_cp.example_key(0, "m", 1, "x"),
                        benchmark="tiny_imagenet")
  build_datasets.build("tiny_imagenet_p", "motion_blur", data_dir=str(tmp_path),
                       manual_dir=str(directory))
  stored = by_name(read_all("tiny_imagenet_p/motion_blur", tmp_path))
  for file_name, (image, _) in inputs.items():
    np.testing.assert_array_equal(
        np.stack(stored[file_name]["frames"]),
        frames(image, "motion_blur", 1, file_name, "tiny_imagenet", from_photo=True))
  with pytest.raises(ValueError, match="does not start from the source photo"):
    perturbations.perturb_photo(inputs[name][0], "brightness", imagenet_cp.example_key(
        0, "b", 1, "x"), benchmark="tiny_imagenet")


def test_imagenet64_p_through_launch(imagenet_manual, tmp_path):
  directory, photos = imagenet_manual
  build_datasets.build("imagenet64_p", "brightness", data_dir=str(tmp_path),
                       manual_dir=str(directory))
  stored = by_name(read_all("imagenet64_p/brightness", tmp_path))
  for name, p in photos.items():
    image = np.asarray(Image.fromarray(p).resize((64, 64), Image.BILINEAR))
    np.testing.assert_array_equal(np.stack(stored[name]["frames"]),
                                  frames(image, "brightness", 1, name, "imagenet64"))


# ----------------------------------------------------------------------------------------------
# Export to the release's folder trees, and back


def test_tiny_export_round_trips(tiny_manual, tiny_data, tmp_path):
  directory, inputs = tiny_manual
  # Built unless an earlier test built it (build_datasets.build skips what is complete).
  build_datasets.build("tiny_imagenet_c", "contrast_3", data_dir=str(tiny_data),
                       manual_dir=str(directory))
  build_datasets.build("tiny_imagenet_p", "gaussian_noise_2", data_dir=str(tiny_data),
                       manual_dir=str(directory))
  with pytest.raises(ValueError, match="stores png, not the release's JPEG"):
    tiny_release.export("tiny_imagenet_c", tiny_data, tmp_path / "x", names=["fog_3_png"])
  with pytest.raises(ValueError, match="tiny_imagenet_c/fog_3 is not built"):
    tiny_release.export("tiny_imagenet_c", tiny_data, tmp_path / "x", names=["fog_3"])

  result = subprocess.run(
      [sys.executable, "-m", "launch.export_release", "--dataset=tiny_imagenet_c",
       f"--data_dir={tiny_data}", f"--out={tmp_path / 'c'}"],
      cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  wnid = {n: tiny_imagenet.wnids()[lab] for n, (_, lab) in inputs.items()}
  files = sorted(p.relative_to(tmp_path / "c").as_posix()
                 for p in (tmp_path / "c").rglob("*") if p.is_file())
  assert files == sorted(f"contrast/3/{wnid[n]}/{n}" for n in inputs)
  stored = by_name(read_all("tiny_imagenet_c/contrast_3", tiny_data, raw="image"))
  for name, (image, _) in inputs.items():
    data = (tmp_path / "c" / "contrast" / "3" / wnid[name] / name).read_bytes()
    assert data == bytes(stored[name]["image"])  # the stored JPEG itself, not re-encoded
    np.testing.assert_array_equal(decode(data), decode(release_jpeg_bytes(
        corrupted(image, "contrast", 3, name))))

  written = tiny_release.export("tiny_imagenet_p", tiny_data, tmp_path / "p", log=None)
  assert len(written) == 31 * len(inputs)
  for name, (image, _) in inputs.items():
    folder = tmp_path / "p" / "gaussian_noise_2" / wnid[name] / name[:-len(".JPEG")]
    got = np.stack([decode((folder / f"img{t}.png").read_bytes()) for t in range(31)])
    np.testing.assert_array_equal(got, frames(image, "gaussian_noise", 2, name,
                                              "tiny_imagenet"))
