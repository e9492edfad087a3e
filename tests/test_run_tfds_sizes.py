"""The other benchmarks read from their TFDS builds (``tfds_data_dir=`` with benchmark=cifar10,
imagenet64, ...): the same per-example records as on the fly, the run's images from the builds
when no clean folder is given, what is recorded and compared on resume, and the refusals.

Stand-ins: a 6-image cifar-10-python.tar.gz (tests/cifar_standin.py) and an
ILSVRC2012_img_val.tar of 3 small photos, built as array_record through
launch.build_datasets (the TF-free path), only the configs the runs read.  The model predicts
the sum of its input's 0..255 pixels modulo its classes, so equal predictions (and flips and
top-5 distances) mean equal inputs, up to a 1 in C coincidence per image.  Tolerance: none
(the builds store exactly what the on-the-fly path feeds the model: CIFAR's lossless PNG of
``corrupt``, the JPEG q85 of PIL, which ``release_jpeg`` reproduces bit for bit, lossless PNG
frames).
"""
import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

import cifar_standin  # noqa: E402
from conftest import photo  # noqa: E402
import imagenet_standin  # noqa: E402
import sized_standin as st  # noqa: E402
import task_records  # noqa: E402
from imagenet_cp import cifar  # noqa: E402
from imagenet_cp.suites import corruption as ev  # noqa: E402
from imagenet_cp.suites.common import StoreError  # noqa: E402
from launch import build_datasets  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
N = 6
SEVERITIES = (1, 3)
CIFAR_P = ("gaussian_noise", "translate")
FAST = dict(bootstrap=0, progress=False, batch_size=4)


def _build(data_dir, manual_dir, dataset, configs):
  for config in configs:
    build_datasets.build(dataset, config, data_dir=str(data_dir), manual_dir=str(manual_dir))


@pytest.fixture(scope="module")
def cifar10(tmp_path_factory):
  """(cifar_dir, data_dir with the CIFAR-10 builds the runs read, labels)."""
  root = tmp_path_factory.mktemp("cifar")
  _, _, labels = cifar_standin.make_archive(root / "cifar", cifar.CIFAR10, n=N)
  _build(root / "data", root / "cifar", "cifar10_c", [f"contrast_{s}" for s in SEVERITIES])
  _build(root / "data", root / "cifar", "cifar10_p", CIFAR_P)
  return root / "cifar", root / "data", labels


def _digest_model(classes: int):
  """Predicts (sum of the 0..255 pixels) mod ``classes``: the prediction fingerprints the input."""
  def apply_fn(variables, images):
    del variables
    pixels = jnp.round(images * 255.0).astype(jnp.int32)
    return jax.nn.one_hot(jnp.sum(pixels, axis=(1, 2, 3)) % classes, classes) * 10.0
  return apply_fn, {}


def digest10():
  """``--model=test_run_tfds_sizes:digest10``."""
  return _digest_model(10)


def _cifar_run(cifar10, out, log=print, **kwargs):
  apply_fn, variables = _digest_model(10)
  settings = dict(benchmark="cifar10", corruptions=("contrast",), severities=SEVERITIES,
                  perturbations=CIFAR_P, output_dir=out, log=log, **FAST)
  return ev.evaluate(apply_fn, variables, **dict(settings, **kwargs))


def _records(output_dir) -> dict:
  return task_records.read(output_dir, drop=task_records.IDENTITY)


def _cells(results):
  return {(c, s): cell["error"] for c, v in results["corruptions"].items()
          for s, cell in v["severities"].items()}


def test_cifar_builds_give_the_on_the_fly_records(cifar10, tmp_path):
  cifar_dir, data_dir, labels = cifar10
  fly = _cifar_run(cifar10, tmp_path / "fly", cifar_dir=cifar_dir)
  stored = _cifar_run(cifar10, tmp_path / "tfds", cifar_dir=cifar_dir, tfds_data_dir=data_dir)
  records = _records(tmp_path / "tfds")
  assert sorted(records) == ["clean", "corruption__contrast__1", "corruption__contrast__3",
                             "perturbation__gaussian_noise__1", "perturbation__translate__1"]
  task_records.assert_same(_records(tmp_path / "fly"), records)
  assert _cells(fly) == _cells(stored) and fly["clean"] == stored["clean"]
  assert fly["perturbations"] == stored["perturbations"]
  # The model tells the inputs apart: another severity's images would show.
  assert (records["corruption__contrast__1"]["predictions"]
          != records["corruption__contrast__3"]["predictions"]).any()
  run = stored["run"]
  assert run["data"] == f"tfds {data_dir} (release format)" and run["release_jpeg"] is False
  assert run["tfds"] == {"data_dir": str(data_dir), "datasets": {
      f"cifar10_{name}": {"version": "1.0.0", "examples": N} for name in (
          "c/contrast_1", "c/contrast_3", "p/gaussian_noise", "p/translate")}}

  # Without cifar_dir the run's images are the builds': ids and labels from them, no clean task.
  lines = []
  alone = _cifar_run(cifar10, tmp_path / "alone", tfds_data_dir=data_dir, log=lines.append)
  assert any("the TFDS builds hold no clean images: the clean task is left out (pass "
             "cifar_dir= for it)" in line for line in lines)
  del records["clean"]
  task_records.assert_same(records, _records(tmp_path / "alone"))
  assert "clean" not in alone and alone["run"]["tasks_planned"] == 4
  assert alone["run"]["source_location"] == f"tfds {data_dir} (cifar10_c/contrast_1)"
  # max_images: the first images of the builds, the others read but not classified.
  first = _cifar_run(cifar10, None, corruptions=("contrast",), severities=(1,),
                     perturbations=(), tfds_data_dir=data_dir, max_images=2)
  assert first["run"]["images"] == 2
  cell = first["corruptions"]["contrast"]["severities"]["1"]
  assert cell["examples"] == 2 and cell["error"] == np.mean(
      records["corruption__contrast__1"]["predictions"][:2] != labels[:2])


def test_resume_refuses_another_source(cifar10, tmp_path):
  cifar_dir, data_dir, _ = cifar10
  kwargs = dict(corruptions=("contrast",), severities=(1,), perturbations=(),
                cifar_dir=cifar_dir)
  lines = []
  _cifar_run(cifar10, tmp_path / "out", tfds_data_dir=data_dir, **kwargs)
  _cifar_run(cifar10, tmp_path / "out", tfds_data_dir=data_dir, log=lines.append, **kwargs)
  assert "resuming: 2 of 2 tasks already done" in " ".join(lines)
  with pytest.raises(StoreError, match=r'differs in: data, tfds: data was "tfds .*", now "on '
                                       r'the fly"'):
    _cifar_run(cifar10, tmp_path / "out", **kwargs)
  copy = tmp_path / "copy"  # the same builds in another data_dir are another source too
  _build(copy, cifar_dir, "cifar10_c", ["contrast_1"])
  with pytest.raises(StoreError, match="differs in: data, tfds"):
    _cifar_run(cifar10, tmp_path / "out", tfds_data_dir=copy, **kwargs)


def _small_val_tar(directory):
  """An ILSVRC2012_img_val.tar of 3 small photos, two 2:3 and one square (motion_blur blurs the
  photo itself: small photos keep the build and the on-the-fly run short)."""
  directory.mkdir(parents=True)
  with tarfile.open(directory / "ILSVRC2012_img_val.tar", "w") as tar:
    for i, (name, size) in enumerate((("chelsea", (120, 80)), ("coffee", (96, 64)),
                                      ("astronaut", (80, 80)))):
      data = st.jpeg(np.asarray(Image.fromarray(photo(name)).resize(size, Image.BILINEAR)))
      info = tarfile.TarInfo(imagenet_standin.val_name(i + 1))
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def imagenet64(tmp_path_factory):
  """(imagenet_dir with 3 photos, data_dir with imagenet64_c/contrast_3 and
  imagenet64_p/motion_blur)."""
  root = tmp_path_factory.mktemp("in64")
  _small_val_tar(root / "val")
  _build(root / "data", root / "val", "imagenet64_c", ["contrast_3"])
  _build(root / "data", root / "val", "imagenet64_p", ["motion_blur"])
  return root / "val", root / "data"


def test_imagenet64_jpeg_builds_and_photo_sequences_equal_on_the_fly(imagenet64, tmp_path):
  """The release-like JPEG config (PIL q85) and motion_blur's frames of each photo's own aspect
  (non-square photos: [31, 64, W', 3], one video per call) give the on-the-fly records."""
  val, data_dir = imagenet64
  apply_fn, variables = _digest_model(1000)
  settings = dict(benchmark="imagenet64", corruptions=("contrast",), severities=(3,),
                  perturbations=("motion_blur",), log=lambda m: None, **FAST)
  fly = ev.evaluate(apply_fn, variables, imagenet_dir=val, output_dir=tmp_path / "fly",
                    **settings)
  stored = ev.evaluate(apply_fn, variables, imagenet_dir=val, tfds_data_dir=data_dir,
                       output_dir=tmp_path / "tfds", **settings)
  built = tfds.data_source("imagenet64_p/motion_blur", data_dir=str(data_dir), split="validation")
  shapes = {np.asarray(built[i]["frames"]).shape for i in range(len(built))}
  assert len(shapes) == 2  # the photos' aspects differ: the videos cannot share a batch
  task_records.assert_same(_records(tmp_path / "fly"), _records(tmp_path / "tfds"))
  assert _cells(fly) == _cells(stored) and fly["perturbations"] == stored["perturbations"]
  assert stored["run"]["data"] == f"tfds {data_dir} (jpeg)" and stored["run"]["release_jpeg"]
  # Without imagenet_dir: the builds' images, sorted by file name, the same records.
  alone = ev.evaluate(apply_fn, variables, tfds_data_dir=data_dir, output_dir=tmp_path / "alone",
                      **settings)
  with_clean = _records(tmp_path / "tfds")
  del with_clean["clean"]
  task_records.assert_same(with_clean, _records(tmp_path / "alone"))
  assert alone["run"]["images"] == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(corruptions=("fog",), severities=(1,)),
     r"cifar10_c/fog_1 is not built in .*; build it with python -m launch.build_datasets "
     r"--datasets=cifar10_c --configs=fog_1 --data_dir=.* --manual_dir=DIR \(or `tfds build "
     r"cifar10_c --imports imagenet_cp.datasets --config fog_1"),
    (dict(perturbations=("rotate",)), r"cifar10_p/rotate is not built"),
    (dict(tfds_image_format="png"),
     r"cifar10_c has no config 'contrast_1_png' \(its configs: gaussian_noise_1, .*"
     r"tfds_image_format='png' names a variant it does not store"),
    (dict(release_jpeg=True), "release_jpeg=True with benchmark='cifar10'"),
    (dict(source="released", released_dir="x"), "tfds_data_dir= and your own data are other"),
])
def test_missing_builds_and_bad_settings_fail_before_any_work(cifar10, tmp_path, kwargs,
                                                                message):
  settings = dict(dict(corruptions=("contrast",), severities=(1,), perturbations=()), **kwargs)
  with pytest.raises(ValueError, match=message):
    _cifar_run(cifar10, tmp_path / "out", tfds_data_dir=cifar10[1], **settings)
  assert not (tmp_path / "out").exists()  # nothing evaluated, nothing written


def test_other_images_and_impossible_builds_are_refused(cifar10, imagenet64, tmp_path):
  _, data_dir, labels = cifar10
  # A test set with other labels: the builds were made from other images.
  other = tmp_path / "other"
  _, _, other_labels = cifar_standin.make_archive(other, cifar.CIFAR10, n=N, seed=5)
  assert (other_labels != labels).any()
  with pytest.raises(ValueError, match=r"cifar10_c/contrast_1: test/\d+ is labelled \d+ there, "
                                       r"\d+ in the run's images: it was built from other"):
    _cifar_run(cifar10, tmp_path / "out", corruptions=("contrast",), severities=(1,),
               perturbations=(), cifar_dir=other, tfds_data_dir=data_dir)
  more = tmp_path / "more"  # more images than the builds hold
  cifar_standin.make_archive(more, cifar.CIFAR10, n=N + 1)
  with pytest.raises(ValueError, match=f"cifar10_c/contrast_1 in .* holds {N} examples, the run "
                                       f"{N + 1} images"):
    _cifar_run(cifar10, tmp_path / "out2", corruptions=("contrast",), severities=(1,),
               perturbations=(), cifar_dir=more, tfds_data_dir=data_dir)
  # imagenet299 has no -P builder: refused before anything is read; its -C is read.
  val, _ = imagenet64
  apply_fn, variables = _digest_model(1000)
  with pytest.raises(ValueError, match="there is no imagenet299_p dataset .*perturbations=\\(\\)"):
    ev.evaluate(apply_fn, variables, benchmark="imagenet299", imagenet_dir=val,
                tfds_data_dir=tmp_path, corruptions=(), perturbations=("rotate",), **FAST)
  with pytest.raises(ValueError, match="imagenet299_c/contrast_3_raw is not built"):
    ev.evaluate(apply_fn, variables, benchmark="imagenet299", imagenet_dir=val,
                tfds_data_dir=tmp_path, corruptions=("contrast",), severities=(3,),
                perturbations=(), tfds_image_format="raw", **FAST)
  with pytest.raises(ValueError, match="release_jpeg=False with tfds_data_dir="):
    ev.evaluate(apply_fn, variables, benchmark="imagenet64", imagenet_dir=val,
                tfds_data_dir=tmp_path, corruptions=("contrast",), release_jpeg=False, **FAST)


def test_cli(cifar10, tmp_path, capsys):
  _, data_dir, _ = cifar10
  out = tmp_path / "out"
  args = ("--benchmark=cifar10", "--model=released_standin:cifar_classifier",
          f"--tfds_data_dir={data_dir}", "--severities=1", "--bootstrap=0", "--noprogress")
  proc = subprocess.run(
      [sys.executable, "-m", "metrics.run", *args, "--corruptions=contrast",
       "--perturbations=translate", f"--output_dir={out}"],
      cwd=tmp_path, capture_output=True, text=True, timeout=300,
      env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads((out / "results.json").read_text())
  assert results["run"]["data"] == f"tfds {data_dir} (release format)"
  assert results["run"]["tasks_done"] == 2 and results["run"]["images"] == N
  assert results["corruptions"]["contrast"]["severities"]["1"]["examples"] == N
  assert (out / "report.md").is_file()
  # A config that is not built: one line, exit status 2, before the model loads (in-process).
  from imagenet_cp import run  # pylint: disable=g-import-not-at-top
  run.FLAGS.unparse_flags()
  try:
    run.FLAGS(["metrics.run", *args, "--corruptions=fog", "--perturbations=none",
               f"--output_dir={tmp_path / 'bad'}"])
    assert run.guarded_main([]) == 2
  finally:
    run.FLAGS.unparse_flags()
  assert capsys.readouterr().err.startswith(f"error: cifar10_c/fog_1 is not built in {data_dir}")
  assert not (tmp_path / "bad").exists()


def test_several_models_on_cifar(cifar10, tmp_path, capsys):
  """--models with --benchmark=cifar10: each model into OUTPUT_DIR/<model>/, one comparison."""
  _, data_dir, _ = cifar10
  from imagenet_cp import run  # pylint: disable=g-import-not-at-top
  names = ["released_standin:cifar_classifier", "test_run_tfds_sizes:digest10"]
  run.FLAGS.unparse_flags()
  try:
    run.FLAGS(["metrics.run", "--benchmark=cifar10", f"--models={','.join(names)}",
               f"--tfds_data_dir={data_dir}", "--corruptions=contrast", "--severities=1,3",
               "--perturbations=none", "--bootstrap=0", "--noprogress",
               f"--output_dir={tmp_path / 'out'}"])
    assert run.guarded_main([]) == 0, capsys.readouterr().err[-2000:]
  finally:
    run.FLAGS.unparse_flags()
  comparison = json.loads((tmp_path / "out" / "comparison.json").read_text())
  assert comparison["models"] == names
  for name in names:
    results = json.loads((tmp_path / "out" / name.replace(":", "_") / "results.json").read_text())
    assert results["run"]["model"] == name and results["run"]["benchmark"] == "cifar10"
    errors = comparison["figures"][name]["corruption_errors"]
    assert errors["contrast"] == pytest.approx(np.mean(
        [results["corruptions"]["contrast"]["severities"][s]["error"] for s in ("1", "3")]))
    # The summary's unnormalised figure, from the model's own results: 2 of the 75 cells.
    assert comparison["figures"][name]["evaluated_mean_error"] == pytest.approx(
        results["evaluated_mean_error"])
    assert comparison["figures"][name]["evaluated_cells"] == 2
  report = (tmp_path / "out" / "report.md").read_text()
  assert "--benchmark=cifar10 is reported unnormalised" in report
  summary = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
  assert "mean corruption error (%)" in summary and "mCE" not in summary
  first = comparison["figures"][names[0]]
  assert f"{100 * first['evaluated_mean_error']:.1f} (2 cells)" in summary
