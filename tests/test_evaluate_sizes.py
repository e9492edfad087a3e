"""Tiny-ImageNet-C/-P, ImageNet 64x64-C and the 299 px ImageNet-C evaluated on the fly
(``benchmark="tiny_imagenet" | "imagenet64" | "imagenet299"``): the CLI on a generated
tiny-imagenet-200.zip with figures against the saved records, the released Tiny tree giving the
on-the-fly predictions, the 64 / 299 inputs as the builders make them, and the refusals."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import imagenet_cp
import imagenet_standin
import sized_standin as st
import task_records
from imagenet_cp import sources
from imagenet_cp.datasets import tiny_imagenet
from imagenet_cp.preprocess import resize_exact, resized_center_crop
from imagenet_cp.suites import corruption as ev
from imagenet_cp.suites import inputs

REPO = pathlib.Path(__file__).resolve().parents[1]
FAST = dict(bootstrap=0, progress=False, log=lambda m: None)


def _run_cli(*args, cwd):
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def _records(output_dir) -> dict:
  return task_records.read(output_dir)


@pytest.fixture(scope="module")
def tiny_zip(tmp_path_factory):
  folder = tmp_path_factory.mktemp("tiny")
  return folder, st.write_tiny_zip(folder)


def test_cli_tiny_imagenet_figures_equal_the_records(tiny_zip, tmp_path):
  folder, _ = tiny_zip
  out = tmp_path / "out"
  args = ("--benchmark=tiny_imagenet", f"--tiny_imagenet_dir={folder}",
          "--model=sized_standin:tiny_imagenet_model", "--corruptions=gaussian_noise,contrast",
          "--severities=1,5", "--perturbations=motion_blur", "--bootstrap=0", "--noprogress",
          f"--output_dir={out}")
  proc = _run_cli(*args, cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  results = json.loads((out / "results.json").read_text())
  records = _records(out)
  labels = np.array([tiny_imagenet.wnids().index(w) for _, w, _ in st.TINY_VAL])
  assert list(records["clean"]["ids"]) == [n for n, _, _ in st.TINY_VAL]
  cells = [np.mean(records[f"corruption__{c}__{s}"]["predictions"] != labels)
           for c in ("gaussian_noise", "contrast") for s in (1, 5)]
  assert 0 < np.mean(cells) < 1  # the stand-in model is neither always right nor always wrong
  assert results["evaluated_mean_error"] == pytest.approx(np.mean(cells))
  assert results["evaluated_cells"] == 4 and results["mean_error"] is None
  assert results["corruptions"]["contrast"]["mean_error"] == pytest.approx(np.mean(cells[2:]))
  video = records["perturbation__motion_blur__1"]
  assert int(video["frames"]) == 31  # Tiny's motion_blur: from the 64x64 photo itself
  assert results["perturbations"]["motion_blur"]["1"]["flip_probability"] == pytest.approx(
      video["flips"].sum() / (3 * int(video["pairs_per_video"])))
  run = results["run"]
  assert run["benchmark"] == "tiny_imagenet" and run["source"] == "tiny_imagenet"
  assert run["release_jpeg"] is True and run["source_layout"] == "zip"
  report = (out / "report.md").read_text()
  assert f"mean error over the 4 benchmark cells evaluated (%; the full mean needs all 75) | " \
         f"{100 * np.mean(cells):.1f}" in report
  csv = (out / "results.csv").read_text()
  assert f"summary,evaluated_mean_error,,evaluated_mean_error,{np.mean(cells)},4" in csv


def test_released_tiny_tree_gives_the_on_the_fly_predictions(tiny_zip, tmp_path):
  folder, zip_path = tiny_zip
  tree = st.write_tiny_c_tree(tmp_path / "rel", zip_path, ("contrast",), (2,))
  apply_fn, variables = st.tiny_imagenet_model()
  kw = dict(benchmark="tiny_imagenet", corruptions=("contrast",), severities=(2,),
            perturbations=(), **FAST)
  fly = ev.evaluate(apply_fn, variables, tiny_imagenet_dir=folder, output_dir=tmp_path / "fly",
                    **kw)
  rel = ev.evaluate(apply_fn, variables, source="released", released_dir=tree.parent,
                    tiny_imagenet_dir=folder, output_dir=tmp_path / "released", **kw)
  fly_rec, rel_rec = _records(tmp_path / "fly"), _records(tmp_path / "released")
  by_name = lambda rec: dict(zip([i.split("/")[-1] for i in rec["ids"]],
                                 rec["predictions"].tolist()))
  # Exact: the tree holds PIL q85 saves of our corrupted pixels, and release_jpeg is PIL's
  # save + load bit for bit.
  for task in ("corruption__contrast__2", "clean"):
    assert by_name(rel_rec[task]) == by_name(fly_rec[task])
  assert list(rel_rec["clean"]["ids"]) == [f"{w}/{n}" for n, w, _ in sorted(
      st.TINY_VAL, key=lambda v: (v[1], v[0]))]
  assert rel["corruptions"] == fly["corruptions"] and rel["clean"] == fly["clean"]
  assert rel["run"]["benchmark"] == "tiny_imagenet" and rel["run"]["source"] == "released"
  # A resume with other settings is refused: the seed and the images are part of the run.
  for other in (dict(kw, seed=1), dict(kw, max_images=2)):
    with pytest.raises(ValueError, match="differs in"):
      ev.evaluate(apply_fn, variables, source="released", released_dir=tree.parent,
                  tiny_imagenet_dir=folder, output_dir=tmp_path / "released", **other)


@pytest.fixture(scope="module")
def imagenet_val(tmp_path_factory):
  return imagenet_standin.make_val_tar(tmp_path_factory.mktemp("val"), n=2)


@pytest.mark.parametrize("benchmark,corruption,make_input", [
    ("imagenet64", "gaussian_noise", lambda p: resize_exact(p, (64, 64))),
    ("imagenet299", "contrast", lambda p: resized_center_crop(p, 0.875, 299)),
])
def test_imagenet64_and_299_feed_the_builders_inputs(benchmark, corruption, make_input,
                                                     imagenet_val, tmp_path):
  _, files = sources.list_imagenet_val(imagenet_val)
  labels = [f.label for f in files]
  apply_fn, variables = st.imagenet_model(among=labels)
  results = ev.evaluate(apply_fn, variables, benchmark=benchmark, imagenet_dir=imagenet_val,
                        corruptions=(corruption,), severities=(3,), perturbations=(),
                        output_dir=tmp_path / "out", **FAST)
  photos = [sources.decode(sources.Example(f.file_name, f.label, sources.read_source_file(f)))
            for f in files]
  inputs = np.stack([make_input(p) for p in photos])
  keys = imagenet_cp.example_keys(0, corruption, 3, [f.file_name for f in files])
  pixels = imagenet_cp.release_jpeg(imagenet_cp.corrupt(inputs, corruption, 3, keys))
  expected = np.argmax(apply_fn(variables, np.asarray(pixels, np.float32) / 255.0), axis=-1)
  stored = _records(tmp_path / "out")[f"corruption__{corruption}__3"]["predictions"]
  np.testing.assert_array_equal(stored, expected)
  error = np.mean(expected != np.array(labels))
  assert results["corruptions"][corruption]["severities"]["3"]["error"] == pytest.approx(error)
  assert results["run"]["benchmark"] == benchmark and results["run"]["release_jpeg"] is True


def test_a_model_of_other_classes_or_size_is_refused_before_any_work(tiny_zip, tmp_path):
  folder, _ = tiny_zip
  apply_fn, variables = st.imagenet_model()

  def fail_on_read(*args):
    raise AssertionError("the images were read")

  with pytest.raises(ValueError, match="returns 1000 logits per image; benchmark='tiny_imagenet' "
                                       "has 200 classes"):
    ev.evaluate(apply_fn, variables, benchmark="tiny_imagenet", tiny_imagenet_dir=folder,
                output_dir=tmp_path / "out", **FAST)
  assert not (tmp_path / "out").exists()
  with pytest.raises(ValueError, match="imagenet_dir= with benchmark='tiny_imagenet'"):
    ev.evaluate(fail_on_read, {}, benchmark="tiny_imagenet", imagenet_dir=folder, **FAST)
  # The CLI's check of zoo models (an error line, exit status 2, before the weights load).
  with pytest.raises(inputs.UsageError, match=r"--model=resnet50 classifies imagenet \(224 px\); "
                                              "--benchmark=tiny_imagenet needs 64 px images and "
                                              "200 classes"):
    inputs.check_model_benchmark("resnet50", "tiny_imagenet")
  inputs.check_model_benchmark("inception_v3", "imagenet299")  # its native crop is 299


def test_released_tiny_p_videos_give_the_decoded_frames_flip_probability(tiny_zip, tmp_path):
  """Tiny-ImageNet-P as released (``<p>/<wnid>/<file>.mp4``, H.264 as make_tinyimagenet_p.py
  encoded it): the run's flip probability is the metric of the decoded frames' predictions."""
  from imagenet_cp import metrics  # pylint: disable=g-import-not-at-top
  from imagenet_cp.released import videos  # pylint: disable=g-import-not-at-top
  folder, zip_path = tiny_zip
  images = st.decoded_val(zip_path)
  names = [name for name, _, _ in st.TINY_VAL]
  pixels = np.stack([images[n] for n in names])
  # Other keys than the run's: the released draws are not ours (the metric is what is checked).
  keys = imagenet_cp.example_keys(5, "gaussian_noise", 1, names)
  frames = np.stack([np.asarray(imagenet_cp.perturb(
      imagenet_cp.perturbation_input(p, "tiny_imagenet", "gaussian_noise"), "gaussian_noise", k,
      benchmark="tiny_imagenet")) for p, k in zip(pixels, keys)])
  root = tmp_path / "rel" / "Tiny-ImageNet-P"
  for (name, wnid, _), video in zip(st.TINY_VAL, frames):
    videos.write_video(video, root / "gaussian_noise" / wnid / (name[:-5] + ".mp4"), noise=True)
  # A random projection of every pixel: the frames' noise flips its predictions.
  variables = {"w": np.random.default_rng(0).standard_normal((64 * 64 * 3, 200), np.float32)}
  apply_fn = lambda v, x: jnp.reshape(x, (x.shape[0], -1)) @ v["w"]  # noqa: E731
  results = ev.evaluate(apply_fn, variables, source="released", released_dir=root.parent,
                        tiny_imagenet_dir=folder, benchmark="tiny_imagenet", corruptions=(),
                        perturbations=("gaussian_noise",), output_dir=tmp_path / "out", **FAST)
  # The run orders examples by <wnid>/<file>: decode in that order.
  ordered = sorted(st.TINY_VAL, key=lambda v: (v[1], v[0]))
  decoded = np.stack([videos.read_video(root / "gaussian_noise" / w / (n[:-5] + ".mp4"), 64)
                      for n, w, _ in ordered])
  assert decoded.shape == frames.shape
  # Lossy H.264 (-tune grain): as tests/test_released.py's ImageNet-P bound; a wrong colour
  # conversion is off by tens of grey levels.
  by_id = {(w, n): f for (n, w, _), f in zip(st.TINY_VAL, frames)}
  want = np.stack([by_id[(w, n)] for n, w, _ in ordered]).astype(int)
  assert np.abs(decoded.astype(int) - want).mean() < 8
  logits = apply_fn(variables, decoded.reshape((-1, 64, 64, 3)).astype(np.float32) / 255)
  predictions = np.argmax(np.asarray(logits), -1).reshape(decoded.shape[:2])
  expected = metrics.flip_probability(predictions, noise=True, difficulty=1)
  assert 0 < float(expected) < 1  # the frames' noise moves some predictions
  got = results["perturbations"]["gaussian_noise"]["1"]["flip_probability"]
  assert got == pytest.approx(float(expected), rel=1e-6)  # float32 ratio of the same integers


@pytest.mark.parametrize("name", ["translate", "brightness"])
def test_imagenet299_p_on_the_fly_equals_the_sequences_frames(name, imagenet_val, tmp_path):
  """The 299 set's -P: translate transforms the photo itself, brightness starts from its 299
  crop (make_imagenet_p_inception.py); the run's flips are those of the frames ``perturb`` makes
  from ``perturbation_input`` with the run's keys."""
  from imagenet_cp import metrics  # pylint: disable=g-import-not-at-top
  from imagenet_cp.suites.images import sequence_key_level  # pylint: disable=g-import-not-at-top
  _, files = sources.list_imagenet_val(imagenet_val)

  def apply_fn(variables, x):  # the class of the left half's mean brightness, in 1/64 steps
    level = jnp.floor(jnp.mean(x[:, :, :150], axis=(1, 2, 3)) * 64).astype(jnp.int32)
    return jax.nn.one_hot(level % 1000, 1000)

  results = ev.evaluate(apply_fn, {}, benchmark="imagenet299", imagenet_dir=imagenet_val,
                        corruptions=(), perturbations=(name,), output_dir=tmp_path / "out",
                        **FAST)
  names = [f.file_name for f in files]
  keys = imagenet_cp.example_keys(0, name, sequence_key_level(name, 1), names)
  photos = [sources.decode(sources.Example(f.file_name, f.label, sources.read_source_file(f)))
            for f in files]
  predictions = []
  for photo, key in zip(photos, keys):
    frames = imagenet_cp.perturb(imagenet_cp.perturbation_input(photo, "imagenet299", name),
                                 name, key, benchmark="imagenet299")
    assert frames.shape[1:] == (299, 299, 3)
    predictions.append(np.argmax(apply_fn({}, np.asarray(frames, np.float32) / 255), -1))
  expected = metrics.flip_probability(np.stack(predictions), noise=False, difficulty=1)
  assert 0 < float(expected) < 1  # some frames flip the stand-in's class, not all
  got = results["perturbations"][name]["1"]["flip_probability"]
  assert got == pytest.approx(float(expected), rel=1e-6)
  assert results["run"]["benchmark"] == "imagenet299"
