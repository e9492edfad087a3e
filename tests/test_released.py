"""The released layouts (ImageNet-C tree and tars, ImageNet-P MP4s, CIFAR-10-C/-P .npy,
Tiny-ImageNet-C) read by ``source="released"``: stand-ins written from our own regeneration give
the on-the-fly run's predictions exactly where the pixels are the same (the JPEG q85 stage is
bit-exact to PIL's; the .npy files are lossless), the MP4 path decodes what the original's
codec settings stored; RobustBench's image list and preprocessings; the refusals."""
import importlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

import cifar_standin
import imagenet_standin
import released_standin as rs
from imagenet_cp import cifar, image_lists, metrics
preprocess_module = importlib.import_module("imagenet_cp.preprocess")  # the function shadows it
from imagenet_cp.released import imagenet_c, tiny_imagenet, videos
from imagenet_cp.released.common import ReleasedError
from imagenet_cp.suites import corruption as ev

REPO = pathlib.Path(__file__).resolve().parents[1]
CORRUPTIONS = ("gaussian_noise", "fog")
SEVERITIES = (1, 3)
FAST = dict(perturbations=(), bootstrap=0, progress=False, batch_size=4, log=lambda line: None)


def _predictions(output_dir) -> dict:
  out = {}
  for path in sorted((pathlib.Path(output_dir) / "tasks").glob("*.npz")):
    with np.load(path) as data:
      ids = [str(i).rsplit("/", 1)[-1] for i in data["ids"]]
      key = "predictions" if "predictions" in data.files else "flips"
      out[path.stem] = dict(zip(ids, data[key].tolist()))
  return out


@pytest.fixture(scope="module")
def imagenet_release(tmp_path_factory):
  root = tmp_path_factory.mktemp("released")
  val = imagenet_standin.make_val_tar(root / "val", n=3)
  files = rs.imagenet_c_files(val, CORRUPTIONS, SEVERITIES)
  return val, rs.write_tree(root / "tree", files), rs.write_tars(root / "tars", files)


def test_imagenet_c_tree_and_tars_give_the_on_the_fly_predictions(imagenet_release, tmp_path):
  val, tree, tars = imagenet_release
  apply_fn, variables = rs.tiny_classifier()
  kw = dict(corruptions=CORRUPTIONS, severities=SEVERITIES, **FAST)
  fly = ev.evaluate(apply_fn, variables, source="imagenet", imagenet_dir=val,
                    output_dir=tmp_path / "fly", **kw)
  from_tree = ev.evaluate(apply_fn, variables, source="released", released_dir=tree,
                          imagenet_dir=val, output_dir=tmp_path / "tree", **kw)
  from_tars = ev.evaluate(apply_fn, variables, source="released", released_dir=tars,
                          output_dir=tmp_path / "tars", **kw)
  expected = _predictions(tmp_path / "fly")
  # Exact: the stand-in JPEGs are PIL q85 saves of our corrupted pixels and release_jpeg is
  # bit-exact to PIL's save + load, so the model sees identical pixels.
  assert _predictions(tmp_path / "tree") == expected
  tars_predictions = _predictions(tmp_path / "tars")
  assert "clean" not in tars_predictions and from_tars.get("clean") is None
  assert tars_predictions == {k: v for k, v in expected.items() if k != "clean"}
  assert from_tree["corruptions"] == fly["corruptions"] == from_tars["corruptions"]
  assert from_tree["clean"] == fly["clean"]
  run = from_tars["run"]
  assert run["source"] == "released" and run["release_jpeg"] is True
  assert run["released"]["imagenet_c"]["layout"] == "tars"
  assert [t for t, _ in run["released"]["imagenet_c"]["tars"]] == ["noise.tar", "weather.tar"]
  assert from_tree["run"]["released"]["imagenet_c"]["layout"] == "tree"


def test_image_list_is_kept_in_order_recorded_and_checked_on_resume(imagenet_release, tmp_path):
  val, tree, _ = imagenet_release
  apply_fn, variables = rs.tiny_classifier()
  names = sorted(p.relative_to(tree / "fog" / "1").as_posix()
                 for p in (tree / "fog" / "1").glob("*/*.JPEG"))
  (tmp_path / "two.txt").write_text(f"{names[2]}\n{names[0]}\n")
  (tmp_path / "other.txt").write_text(f"{names[1]}\n{names[0]}\n")
  kw = dict(corruptions=("fog",), severities=(1,), released_dir=tree, source="released",
            output_dir=tmp_path / "out", **FAST)
  results = ev.evaluate(apply_fn, variables, image_list=str(tmp_path / "two.txt"), **kw)
  with np.load(tmp_path / "out" / "tasks" / "corruption__fog__1.npz") as data:
    assert list(data["ids"]) == [names[2], names[0]]
  assert results["run"]["image_list_images"] == 2
  assert results["run"]["image_list"] == str((tmp_path / "two.txt").resolve())
  with pytest.raises(ValueError, match="different run.*image_list"):
    ev.evaluate(apply_fn, variables, image_list=str(tmp_path / "other.txt"), **kw)
  with pytest.raises(ValueError, match="not in"):
    ev.evaluate(apply_fn, variables, image_list="robustbench_5k",
                **dict(kw, output_dir=tmp_path / "rb"))


def test_robustbench_list_is_the_shipped_copy():
  chosen = image_lists.load("robustbench_5k")
  assert len(chosen.entries) == 5000 and len(set(chosen.file_names())) == 5000
  assert all(e.count("/") == 1 and e.startswith("n") and e.endswith(".JPEG")
             for e in chosen.entries)
  # The installed package's file, found without importing robustbench (it imports torchvision).
  spec = importlib.util.find_spec("robustbench")
  if spec is None:
    pytest.skip("robustbench is not installed")
  installed = pathlib.Path(spec.submodule_search_locations[0])
  text = (installed / "helper_files" / "imagenet_test_image_ids.txt").read_text()
  assert list(chosen.entries) == [line for line in text.splitlines() if line]


@pytest.mark.parametrize("name", preprocess_module.PREPROCESSINGS)
def test_preprocessings_equal_torchvision(name):
  from conftest import import_torchvision  # pylint: disable=g-import-not-at-top
  transforms = import_torchvision().transforms
  bicubic = transforms.InterpolationMode.BICUBIC
  reference = {"Res256Crop224": [transforms.Resize(256), transforms.CenterCrop(224)],
               "BicubicRes256Crop224": [transforms.Resize(256, interpolation=bicubic),
                                        transforms.CenterCrop(224)],
               "Crop288": [transforms.CenterCrop(288)]}[name]
  rng = np.random.default_rng(0)
  # A photo larger than 288 and a small one (Crop288 pads it with black, as torchvision does).
  for shape in ((300, 411, 3), (261, 250, 3)):
    image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))
    expected = np.asarray(transforms.Compose(reference)(image))
    np.testing.assert_array_equal(preprocess_module.robustbench_preprocess(image, name), expected)


def test_crop288_clean_with_released_corruptions(imagenet_release, tmp_path):
  val, tree, _ = imagenet_release
  apply_fn, variables = rs.tiny_classifier()
  results = ev.evaluate(apply_fn, variables, source="released", released_dir=tree,
                        imagenet_dir=val, corruptions=("fog",), severities=(1,),
                        preprocessing="Crop288", **FAST)
  assert results["run"]["preprocessing"] == "Crop288"
  crops = np.stack([preprocess_module.robustbench_preprocess(p, "Crop288")
                    for p in rs.val_photos(val)[2]])
  logits = apply_fn(variables, crops.astype(np.float32) / 255)
  labels = np.array([imagenet_c.imagenet_label(w) for w in rs.val_photos(val)[1]])
  assert results["clean"]["error"] == float(np.mean(np.argmax(logits, -1) != labels))
  with pytest.raises(ValueError, match="288"):
    ev.evaluate(apply_fn, variables, source="imagenet", imagenet_dir=val, corruptions=("fog",),
                severities=(1,), preprocessing="Crop288", **FAST)


def test_released_layout_errors(imagenet_release, tmp_path):
  _, tree, tars = imagenet_release
  apply_fn, variables = rs.tiny_classifier()
  kw = dict(source="released", corruptions=("fog",), severities=(1,), **FAST)
  with pytest.raises(ValueError, match="is not a folder"):
    ev.evaluate(apply_fn, variables, released_dir=tmp_path / "none", **kw)
  (tmp_path / "odd" / "fogg").mkdir(parents=True)
  with pytest.raises(ValueError, match="unknown corruption folder.*fogg"):
    ev.evaluate(apply_fn, variables, released_dir=tmp_path / "odd", **kw)
  with pytest.raises(ValueError, match="contrast is not in"):
    ev.evaluate(apply_fn, variables, released_dir=tree, **dict(kw, corruptions=("contrast",)))
  with pytest.raises(ValueError, match="fog/3.*lacks"):
    (tmp_path / "part").mkdir()
    for s in (1, 3):
      files = sorted((tree / "fog" / str(s)).glob("*/*.JPEG"))[:(3 if s == 1 else 2)]
      for f in files:
        dest = tmp_path / "part" / f.relative_to(tree)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    ev.evaluate(apply_fn, variables, released_dir=tmp_path / "part", **dict(kw, severities=(1, 3)))
  # A noise.tar holding a weather corruption is not the release's noise.tar.
  (tmp_path / "bad").mkdir()
  with tarfile.open(tars / "weather.tar") as src, tarfile.open(tmp_path / "bad" / "noise.tar",
                                                               "w") as dst:
    for m in src.getmembers():
      dst.addfile(m, src.extractfile(m) if m.isfile() else None)
  with pytest.raises(ValueError, match="does not match noise.tar"):
    ev.evaluate(apply_fn, variables, released_dir=tmp_path / "bad",
                **dict(kw, corruptions=("gaussian_noise",)))
  # A 256-px image: the released ones are 224 and are never resized or cropped.
  big = tmp_path / "big" / "fog" / "1" / "n01440764" / "ILSVRC2012_val_00000001.JPEG"
  big.parent.mkdir(parents=True)
  Image.new("RGB", (256, 256)).save(big)
  with pytest.raises(ValueError, match="256x256.*no resize or crop"):
    ev.evaluate(apply_fn, variables, released_dir=tmp_path / "big", **kw)
  with pytest.raises(ValueError, match="JPEG q85"):
    ev.evaluate(apply_fn, variables, released_dir=tree, release_jpeg=False, **kw)


def test_imagenet_p_mp4_as_the_original_encoded_them(imagenet_release, tmp_path):
  val, _, _ = imagenet_release
  root = tmp_path / "ImageNet-P"
  frames = rs.write_imagenet_p(root, val, "gaussian_noise", difficulty=2)
  apply_fn, variables = rs.tiny_classifier()
  results = ev.evaluate(apply_fn, variables, source="released", released_dir=tmp_path,
                        corruptions=(), difficulty=2,
                        **dict(FAST, perturbations=("gaussian_noise",)))
  assert (root / "gaussian_noise_2").is_dir() and not (root / "gaussian_noise").exists()
  decoded = {rel: videos.read_video(root / "gaussian_noise_2" / (rel[:-5] + ".mp4"), 224)
             for rel in frames}
  import av  # pylint: disable=g-import-not-at-top
  with av.open(str(root / "gaussian_noise_2" / (next(iter(frames))[:-5] + ".mp4"))) as c:
    stream = c.streams.video[0]
    assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv444p")
    assert stream.codec_context.profile == "High 4:4:4 Predictive" and stream.average_rate == 1
  for rel, video in frames.items():
    assert decoded[rel].shape == video.shape and decoded[rel].dtype == np.uint8
    # Lossy: the reference measured a mean |difference| of 4.1 grey levels for -tune grain on
    # real noise frames; 8 allows for the stand-in photos, catching a wrong colour conversion
    # or frame order (tens of levels).
    assert np.abs(decoded[rel].astype(int) - video).mean() < 8
  # The run's flip probability is the metric of the decoded frames' predictions.
  stacked = np.stack([decoded[rel] for rel in sorted(frames)])
  logits = apply_fn(variables, stacked.reshape((-1, 224, 224, 3)).astype(np.float32) / 255)
  predictions = np.argmax(logits, -1).reshape(stacked.shape[:2])
  expected = metrics.flip_probability(predictions, noise=True, difficulty=2)
  got = results["perturbations"]["gaussian_noise"]["2"]["flip_probability"]
  assert got == pytest.approx(float(expected), rel=1e-6)  # float32 ratio of the same integers


def test_cifar_npy_give_the_on_the_fly_predictions(tmp_path):
  _, images, labels = cifar_standin.make_archive(tmp_path / "cifar", cifar.CIFAR10, n=6)
  sequences = (("gaussian_noise", 1), ("brightness", 1))
  rs.write_cifar(tmp_path / "rel", images, labels, CORRUPTIONS, sequences)
  apply_fn, variables = rs.cifar_classifier()
  kw = dict(FAST, benchmark="cifar10", corruptions=CORRUPTIONS, severities=(1, 5))
  for name, _ in sequences:
    fly = ev.evaluate(apply_fn, variables, cifar_dir=tmp_path / "cifar",
                      output_dir=tmp_path / f"fly_{name}", **dict(kw, perturbations=(name,)))
    rel = ev.evaluate(apply_fn, variables, source="released", released_dir=tmp_path / "rel",
                      cifar_dir=tmp_path / "cifar", output_dir=tmp_path / f"rel_{name}",
                      **dict(kw, perturbations=(name,)))
    # Exact: the .npy files hold the very uint8 images and frames the on-the-fly run makes.
    assert _predictions(tmp_path / f"rel_{name}") == _predictions(tmp_path / f"fly_{name}")
    assert rel["corruptions"] == fly["corruptions"] and rel["clean"] == fly["clean"]
    assert rel["perturbations"] == fly["perturbations"]
  alone = ev.evaluate(apply_fn, variables, source="released", released_dir=tmp_path / "rel",
                      **dict(kw, perturbations=()))
  assert alone.get("clean") is None and alone["corruptions"] == fly["corruptions"]
  assert [f for f, _ in alone["run"]["released"]["files"]][:2] == [
      "CIFAR-10-C/labels.npy", "CIFAR-10-C/gaussian_noise.npy"]
  np.save(tmp_path / "rel" / "CIFAR-10-C" / "fog.npy", images)  # 6 rows, not 5 x 6
  with pytest.raises(ValueError, match=r"fog.npy.*\(5 x labels.npy's 6\)"):
    ev.evaluate(apply_fn, variables, source="released", released_dir=tmp_path / "rel",
                **dict(kw, perturbations=()))


def test_tiny_imagenet_c_drops_frost_extra_classes(tmp_path):
  root = tmp_path / "Tiny-ImageNet-C"
  rng = np.random.default_rng(0)
  for name, wnids in (("gaussian_noise", ("n01443537", "n01629819")),
                      ("frost", ("n01443537", "n01629819", "n01440764"))):
    for wnid in wnids:
      folder = root / name / "1" / wnid
      folder.mkdir(parents=True)
      for k in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            folder / f"{wnid}_val_{k}.JPEG", quality=85)
  tiny = tiny_imagenet.TinyImageNetC(tmp_path)
  assert tiny.classes == ("n01443537", "n01629819")
  frost = tiny.cell("frost", 1)
  assert frost.dropped == 2 and list(frost.labels) == [0, 0, 1, 1]
  assert tiny.read(frost).shape == (4, 64, 64, 3)
  with pytest.raises(ReleasedError, match="frost/2 is missing"):
    tiny.cell("frost", 2)


def _run_cli(*args, cwd):
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=600,
                        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def test_cli_released_source(imagenet_release, tmp_path):
  val, tree, _ = imagenet_release
  out = tmp_path / "out"
  args = ("--source=released", "--model=released_standin:tiny_classifier",
          "--corruptions=fog", "--severities=1", "--perturbations=none", "--bootstrap=0",
          "--noprogress")
  proc = _run_cli(*args, f"--released_dir={tree}", f"--imagenet_dir={val}",
                  f"--output_dir={out}", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  results = json.loads((out / "results.json").read_text())
  assert results["run"]["source"] == "released" and results["clean"]["examples"] == 3
  bad = _run_cli(*args, f"--released_dir={tmp_path / 'missing'}", f"--output_dir={out}2",
                 cwd=tmp_path)
  assert bad.returncode == 2 and "error:" in bad.stderr and "is not a folder" in bad.stderr
