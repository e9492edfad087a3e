"""suites.ood on stand-in datasets built by the real TFDS builders, with a planted classifier.

Every image's planted ranking is chosen so each accuracy is known in closed form: ImageNet-A/-R
images whose highest logit is outside the 200 classes and second highest on the true label are
right over the 200 classes and wrong over 1000; ReaL images cover a hit outside the original
label, a miss on the original label, and empty label sets (excluded).
"""
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

import ood_published
import ood_standin as standin
from imagenet_cp.suites import ood

pytest.importorskip("tensorflow_datasets")


def wnids():
  return ood.imagenet_wnids()


# (code, ImageNet-1k label, planted ranking).  A: labels 6, 11, 13 are A classes, 0 and 5 are not.
A_PLAN = [(1, 6, (0, 6)), (2, 11, (0, 11)), (3, 13, (5, 13)), (4, 6, (0, 6)),
          (5, 11, (0, 13, 11)), (6, 13, (13,)), (7, 6, (11,))]
A_EXPECT = {"images": 7, "correct": 5, "accuracy_1000": 1 / 7}
# R: labels 1, 2, 4, 6 are R classes, 0 and 3 are not.
R_PLAN = [(10, 1, (0, 1)), (11, 2, (3, 2)), (12, 4, (4,)), (13, 4, (0, 6, 4))]
R_EXPECT = {"images": 4, "correct": 3, "accuracy_1000": 1 / 4}
V2_PLAN = [(20, 0, (0,)), (21, 1, (0,)), (22, 500, (500,)), (23, 999, (999,)), (24, 999, (998,))]
GRAY = 3 + 3 * 8 + 3 * 64   # r = g = b: a grayscale sketch
SKETCH_PLAN = [(30, 0, (0,)), (31, 1, (0,)), (GRAY, 999, (999,)), (32, 999, (1,))]


def real_plan():
  """(code, original label, ReaL set, ranking) for val images 1..7; ReaL 3 of 5, original 3 of 7."""
  from tensorflow_datasets.datasets.imagenet2012 import imagenet_common
  names = [standin_val_name(i) for i in range(1, 8)]
  tar_labels = {n: wnids().index(w) for n, w in _validation_labels(imagenet_common, names).items()}
  o = [tar_labels[n] for n in names]
  other = lambda label, k: (label + k) % 1000
  return [
      (40, o[0], [o[0]], (o[0],)),                                           # both right
      (41, o[1], [], (o[1],)),                                               # excluded; orig. right
      (42, o[2], [other(o[2], 100), other(o[2], 200)], (other(o[2], 200),)),  # ReaL right only
      (43, o[3], [other(o[3], 100)], (o[3],)),                               # original right only
      (44, o[4], [], (other(o[4], 100),)),                                   # excluded; wrong
      (45, o[5], [other(o[5], k) for k in (100, 200, 300)], (other(o[5], 400),)),  # both wrong
      (46, o[6], [o[6], other(o[6], 100)], (other(o[6], 100),)),             # ReaL right only
  ]


def standin_val_name(index: int) -> str:
  return f"ILSVRC2012_val_{index:08d}.JPEG"


def _validation_labels(imagenet_common, names):
  """The original labels (wnids) TFDS assigns to these val file names."""
  import tensorflow_datasets as tfds
  path = tfds.core.tfds_path(imagenet_common._VALIDATION_LABELS_FNAME)  # pylint: disable=protected-access
  labels = path.read_text().split()
  return {n: labels[int(n[15:23]) - 1] for n in names}


def build_a(data_dir: pathlib.Path, src: pathlib.Path) -> None:
  w = wnids()
  a = {f"imagenet-a/{w[label]}/a_{code}.jpg": standin.jpeg(code) for code, label, _ in A_PLAN}
  standin.build("imagenet_a", data_dir, extract=standin.write_folder(src / "a", a))


def build_r(data_dir: pathlib.Path, src: pathlib.Path) -> None:
  w = wnids()
  r = {f"imagenet-r/{w[label]}/r_{code}.jpg": standin.jpeg(code, (64, 48))
       for code, label, _ in R_PLAN}
  standin.build("imagenet_r", data_dir, extract=standin.write_folder(src / "r", r))


def build_v2(data_dir: pathlib.Path, src: pathlib.Path) -> None:
  v2 = {f"imagenetv2-matched-frequency-format-val/{label}/{code}.jpeg": standin.jpeg(code)
        for code, label, _ in V2_PLAN}
  standin.build("imagenet_v2/matched-frequency", data_dir,
                extract=standin.write_folder(src / "v2", v2))


def build_sketch(data_dir: pathlib.Path, src: pathlib.Path) -> None:
  w = wnids()
  sketch = {f"sketch/{w[label]}/sketch_{code}.JPEG": standin.jpeg(code, gray=code == GRAY)
            for code, label, _ in SKETCH_PLAN}
  standin.build("imagenet_sketch", data_dir,
                download=standin.write_zip(src / "sketch" / "ImageNet-Sketch.zip", sketch))


def build_real(data_dir: pathlib.Path, src: pathlib.Path) -> None:
  plan = real_plan()
  tar = {standin_val_name(i + 1): standin.jpeg(p[0]) for i, p in enumerate(plan)}
  standin.write_tar(src / "manual" / "ILSVRC2012_img_val.tar", tar)
  real_json = standin.write_real_json(src / "real.json", {i + 1: p[2] for i, p in enumerate(plan)})
  standin.build("imagenet2012_real", data_dir, download=real_json, manual_dir=src / "manual")


BUILDERS = {"imagenet2012_real": build_real, "imagenet_v2": build_v2, "imagenet_a": build_a,
            "imagenet_r": build_r, "imagenet_sketch": build_sketch}


def build_all(data_dir: pathlib.Path, src: pathlib.Path, names=ood.OOD_DATASETS) -> None:
  """Stand-ins of ``names`` (keys of ``BUILDERS``) built into ``data_dir``."""
  for name in names:
    BUILDERS[name](data_dir, src)


def planted_variables():
  rankings = [p[2] for p in A_PLAN + R_PLAN + V2_PLAN + SKETCH_PLAN]
  codes = [p[0] for p in A_PLAN + R_PLAN + V2_PLAN + SKETCH_PLAN]
  real = real_plan()
  return standin.planted_variables(dict(zip(codes + [p[0] for p in real],
                                            rankings + [p[3] for p in real])))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("ood")
  build_all(root / "data", root / "src")
  return root / "data"


@pytest.fixture(scope="module")
def variables():
  return planted_variables()


@pytest.fixture(scope="module")
def results(data_dir, variables, tmp_path_factory):
  out = tmp_path_factory.mktemp("ood_out")
  return ood.evaluate_ood(standin.planted_apply, variables, datasets=ood.OOD_DATASETS,
                          data_dir=data_dir, batch_size=3, chunk_size=3, output_dir=out,
                          model_name="planted", log=lambda _: None)


def comparable(results: dict) -> dict:
  """Results without wall-clock time and where the files went."""
  out = json.loads(json.dumps(results))
  out["run"].pop("seconds")
  for d in out["datasets"].values():
    d.pop("example_ids_file", None)
  return out


# ----------------------------------------------------------------------------------------------


def test_subset_indices_match_the_originals_published_lists():
  imagenet = wnids()
  assert len(imagenet) == 1000 and imagenet[0] == "n01440764" and imagenet[999] == "n15075141"
  for name, published in (("imagenet_a", ood_published.IMAGENET_A_INDICES_IN_1K),
                          ("imagenet_r", ood_published.IMAGENET_R_INDICES_IN_1K)):
    assert len(set(ood.SUBSET_WNIDS[name])) == 200
    assert ood.subset_indices(name).tolist() == list(published)


def test_planted_accuracies_are_exact(results):
  d = results["datasets"]
  assert list(d) == list(ood.OOD_DATASETS)
  for name, expect in (("imagenet_a", A_EXPECT), ("imagenet_r", R_EXPECT)):
    assert d[name]["images"] == expect["images"]
    assert d[name]["correct"] == expect["correct"]
    assert d[name]["accuracy"] == expect["correct"] / expect["images"]
    assert d[name]["error"] == 1 - d[name]["accuracy"]
    assert d[name]["accuracy_1000"] == expect["accuracy_1000"]
    assert d[name]["subset_indices"] == ood.subset_indices(name).tolist()
    assert d[name]["split"] == "test"
  assert (d["imagenet_v2"]["images"], d["imagenet_v2"]["correct"]) == (5, 3)
  assert d["imagenet_v2"]["tfds"] == "imagenet_v2/matched-frequency"
  assert (d["imagenet_sketch"]["images"], d["imagenet_sketch"]["correct"]) == (4, 2)
  assert d["imagenet_sketch"]["accuracy"] == 0.5
  assert "subset_indices" not in d["imagenet_v2"]
  json.dumps(results)


def test_real_multilabel_scoring_and_empty_sets(results):
  real = results["datasets"]["imagenet2012_real"]
  assert real["split"] == "validation"
  assert (real["images"], real["real_images"], real["excluded_empty"]) == (7, 5, 2)
  assert (real["correct"], real["accuracy"]) == (3, 3 / 5)
  assert (real["original"]["correct"], real["original"]["accuracy"]) == (3, 3 / 7)


def test_real_hits_per_image():
  top1 = np.array([5, 7, 1, 9])
  sizes = np.array([2, 0, 3, 1])
  flat = np.array([4, 5, 1, 2, 3, 8])
  assert ood.real_hits(top1, sizes, flat).tolist() == [True, False, True, False]


def test_evaluated_ids_are_recorded(results):
  for name, expected in (("imagenet_a", {f"a_{c}.jpg" for c, _, _ in A_PLAN}),
                         ("imagenet_r", {f"{wnids()[l]}/r_{c}.jpg" for c, l, _ in R_PLAN})):
    ids = pathlib.Path(results["datasets"][name]["example_ids_file"]).read_text().split()
    assert sorted(ids) == sorted(expected)


def test_max_images_scores_the_recorded_first_examples(data_dir, variables, tmp_path):
  out = ood.evaluate_ood(standin.planted_apply, variables, datasets=["imagenet_v2"],
                         data_dir=data_dir, batch_size=2, max_images=3, output_dir=tmp_path,
                         log=lambda _: None)["datasets"]["imagenet_v2"]
  ids = pathlib.Path(out["example_ids_file"]).read_text().split()
  right = {f"{label}/{code}.jpeg": ranking[0] == label for code, label, ranking in V2_PLAN}
  assert (out["images"], out["split_examples"]) == (3, 5)
  assert out["correct"] == sum(right[i] for i in ids)


def test_resume_after_interrupt_gives_identical_results(data_dir, variables, tmp_path,
                                                        monkeypatch):
  kwargs = dict(datasets=["imagenet_a", "imagenet2012_real"], data_dir=data_dir, batch_size=2,
                chunk_size=2, log=lambda _: None)
  full = ood.evaluate_ood(standin.planted_apply, variables, output_dir=tmp_path / "full", **kwargs)
  real_slice_records = ood.slice_records
  calls, interrupt_at = [], [3]

  def counted(*args, **kw):
    calls.append(1)
    if len(calls) == interrupt_at[0]:
      raise KeyboardInterrupt
    return real_slice_records(*args, **kw)

  monkeypatch.setattr(ood, "slice_records", counted)
  with pytest.raises(KeyboardInterrupt):
    ood.evaluate_ood(standin.planted_apply, variables, output_dir=tmp_path / "resumed", **kwargs)
  calls.clear()
  interrupt_at[0] = None
  resumed = ood.evaluate_ood(standin.planted_apply, variables, output_dir=tmp_path / "resumed",
                             **kwargs)
  assert len(calls) == 4 + 4 - 2          # 7 + 7 examples in slices of 2; 2 slices were saved
  assert comparable(resumed) == comparable(full)
  saved = json.loads((tmp_path / "resumed" / "ood" / "results.json").read_text())
  assert comparable(saved) == comparable(full)


def test_a_saved_slice_that_does_not_fit_is_recomputed(data_dir, variables, tmp_path):
  kwargs = dict(datasets=["imagenet_a"], data_dir=data_dir, batch_size=2, chunk_size=2,
                output_dir=tmp_path)
  full = ood.evaluate_ood(standin.planted_apply, variables, log=lambda _: None, **kwargs)
  path = tmp_path / "ood" / "tasks" / "ood__imagenet_a__0.npz"
  with np.load(path) as data:
    records = {k: (data[k][:1] if data[k].ndim else data[k]) for k in data.files}
  np.savez(path, **records)   # one example where the slice has two, this run's digest kept
  lines = []
  again = ood.evaluate_ood(standin.planted_apply, variables, log=lines.append, **kwargs)
  assert comparable(again) == comparable(full)
  assert any("holds 1 examples, the slice has 2" in line and "recomputing ood/imagenet_a/0" in line
             for line in lines), lines


def test_one_device_equals_four(data_dir, variables):
  assert jax.local_device_count() == 4
  kwargs = dict(datasets="imagenet_a,imagenet_r", data_dir=data_dir, batch_size=3,
                log=lambda _: None)
  four = ood.evaluate_ood(standin.planted_apply, variables, **kwargs)
  one = ood.evaluate_ood(standin.planted_apply, variables, devices=jax.local_devices()[:1],
                         **kwargs)
  assert (four["run"]["devices"], one["run"]["devices"]) == (4, 1)
  for result in (four, one):
    for key in ("seconds", "devices", "batch_size"):
      result["run"].pop(key)
  assert one == four


def test_missing_dataset_says_how_to_prepare_it(tmp_path, variables):
  empty = tmp_path / "empty"
  for name, hint in (("imagenet_a", "tfds build imagenet_a"),
                     ("imagenet_v2/topimages", "tfds build imagenet_v2/topimages"),
                     ("imagenet_sketch", "--manual_dir"),
                     ("imagenet2012_real", "ILSVRC2012_img_val.tar")):
    with pytest.raises(ValueError, match="not built") as err:
      ood.evaluate_ood(standin.planted_apply, variables, datasets=[name], data_dir=empty)
    assert name in str(err.value) and hint in str(err.value) and str(empty) in str(err.value)


def test_unknown_dataset_lists_the_known_ones(data_dir, variables):
  with pytest.raises(ValueError, match="unknown OOD dataset 'imagenet_o'") as err:
    ood.evaluate_ood(standin.planted_apply, variables, datasets=["imagenet_a", "imagenet_o"],
                     data_dir=data_dir)
  assert all(name in str(err.value) for name in ood.OOD_DATASETS)
  with pytest.raises(ValueError, match="unknown OOD dataset"):
    ood.dataset("imagenet_v2/threshold-0.5")


def test_markdown_table_and_mce_beside_it(results):
  text = ood.markdown(results)
  assert "| ImageNet-A | test | 200 classes | 7 | 71.43 | 28.57 |" in text
  assert "| ImageNet-ReaL (ReaL labels) | validation | 1000 classes | 5 | 60.00 | 40.00 |" in text
  assert ("| ImageNet-ReaL (original labels) | validation | 1000 classes | 7 | 42.86 | 57.14 |"
          in text)
  assert "| ImageNet-V2 (matched-frequency) | test | 1000 classes | 5 | 60.00 | 40.00 |" in text
  assert "1000-way accuracy is 14.29%" in text and "2 of 7 images have an empty" in text
  corruption = {"clean": {"error": 0.25, "examples": 8}, "mce": 87.5,
                "corruptions": {"gaussian_noise": {"benchmark": True, "unnormalized_ce": 0.5},
                                "fog": {"benchmark": True, "unnormalized_ce": 0.7},
                                "speckle_noise": {"benchmark": False, "unnormalized_ce": 0.1}}}
  text = ood.markdown(results, corruption)
  assert "| ImageNet val (clean) | validation | 1000 classes | 8 | 75.00 | 25.00 | |" in text
  assert ("| ImageNet-C (2 corruptions x 5 severities) | validation | 1000 classes | 8 | 40.00 "
          "| 60.00 | 87.5 |") in text
  assert "| ImageNet-Sketch | test | 1000 classes | 4 | 50.00 | 50.00 | |" in text


def test_plot_writes_a_png(results, tmp_path):
  paths = ood.plot(results, tmp_path)
  assert [p.name for p in paths] == ["ood_accuracy.png"]
  assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_sees_torchvision_resize_crop_of_the_stored_images(tmp_path):
  """Real photos (one grayscale) through imagenet_v2/topimages: the model's input must equal
  torchvision's Resize(256) + CenterCrop(224) of the PIL-decoded stored JPEG, pixel for pixel."""
  import io
  import jax.numpy as jnp
  from PIL import Image
  from conftest import import_torchvision, photo
  from planted_model import fingerprint
  tv = import_torchvision()
  crop = tv.transforms.Compose([tv.transforms.Resize(256), tv.transforms.CenterCrop(224)])
  files, fps, labels = {}, [], []
  for label, name in ((3, "chelsea"), (4, "coffee"), (5, "rocket"), (6, "astronaut")):
    image = Image.fromarray(photo(name))
    if name == "astronaut":
      image = image.convert("L")
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    files[f"imagenetv2-top-images-format-val/{label}/{name}.jpeg"] = buf.getvalue()
    expected = np.asarray(crop(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
    fps.append(int(fingerprint(expected)))
    labels.append(label)
  standin.build("imagenet_v2/topimages", tmp_path / "data",
                extract=standin.write_folder(tmp_path / "src", files))

  def exact_match(variables, images):
    fp = fingerprint(jnp.round(images * 255.0))
    match = fp[:, None] == variables["fps"][None, :]
    label = jnp.max(jnp.where(match, variables["labels"][None, :], -1), axis=1)
    return jax.nn.one_hot(label, 1000)          # no match: all zeros, argmax 0 (wrong)

  variables = {"fps": jnp.array(fps, jnp.int32), "labels": jnp.array(labels, jnp.int32)}
  out = ood.evaluate_ood(exact_match, variables, datasets=["imagenet_v2/topimages"],
                         data_dir=tmp_path / "data", batch_size=4, log=lambda _: None)
  assert out["datasets"]["imagenet_v2/topimages"]["correct"] == 4


def test_label_outside_the_200_classes_is_refused(tmp_path, variables):
  outside = wnids()[0]                      # n01440764 (tench) is not an ImageNet-A class
  files = {f"imagenet-a/{outside}/x.jpg": standin.jpeg(1)}
  standin.build("imagenet_a", tmp_path / "data",
                extract=standin.write_folder(tmp_path / "src", files))
  with pytest.raises(ValueError, match="x.jpg is labelled 0, outside the dataset's 200 classes"):
    ood.evaluate_ood(standin.planted_apply, variables, datasets=["imagenet_a"],
                     data_dir=tmp_path / "data", log=lambda _: None)


def test_nan_logits_and_wrong_class_count_are_refused(data_dir, variables):
  def nan_where_top1_is_13(v, x):           # one ImageNet-A image (code 6)
    logits = standin.planted_apply(v, x)
    return jax.numpy.where((jax.numpy.argmax(logits, -1) == 13)[:, None], jax.numpy.nan, logits)

  with pytest.raises(ValueError, match="NaN logits for 1 images"):
    ood.evaluate_ood(nan_where_top1_is_13, variables, datasets=["imagenet_a"], data_dir=data_dir,
                     batch_size=4, log=lambda _: None)
  with pytest.raises(ValueError, match="returned 10 logits per image"):
    ood.evaluate_ood(lambda v, x: standin.planted_apply(v, x)[:, :10], variables,
                     datasets=["imagenet_v2"], data_dir=data_dir, log=lambda _: None)


def cli_classifier():
  """``--model=test_ood:cli_classifier``: the planted classifier as a user model."""
  return standin.planted_apply, planted_variables()


def _run_cli(*args, cwd):
  repo = pathlib.Path(__file__).resolve().parents[1]
  env = {**os.environ, "PYTHONPATH": f"{repo}:{repo / 'tests'}"}
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=600)


def test_cli_ood_suite_writes_results_report_csv_and_plot(data_dir, results, tmp_path):
  out = tmp_path / "out"
  proc = _run_cli("--suite=ood", "--model=test_ood:cli_classifier", f"--ood_data_dir={data_dir}",
                  "--ood_datasets=imagenet_a,imagenet2012_real", "--batch_size=4",
                  "--noprogress", f"--output_dir={out}", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  saved = json.loads((out / "results.json").read_text())
  assert set(saved["ood"]["datasets"]) == {"imagenet_a", "imagenet2012_real"}
  for name in ("imagenet_a", "imagenet2012_real"):
    assert (comparable(saved["ood"])["datasets"][name]
            == comparable(results)["datasets"][name])
  assert saved["run"]["warning"] is None and "DEMO" not in proc.stdout
  report = (out / "report.md").read_text()
  assert "## Natural robustness" in report and "ImageNet-A" in report
  rows = [r.split(",") for r in (out / "results.csv").read_text().splitlines()]
  assert [r[1] for r in rows if r[0] == "ood"] == ["imagenet_a", "imagenet2012_real",
                                                  "imagenet2012_real"]
  assert (out / "ood_accuracy.png").is_file()


def test_cli_refuses_a_missing_ood_dataset_before_any_work(data_dir, tmp_path):
  proc = _run_cli("--suite=all", "--model=test_ood:cli_classifier", f"--ood_data_dir={data_dir}",
                  "--ood_datasets=imagenet_a,imagenet_v2/topimages", "--noprogress",
                  f"--output_dir={tmp_path / 'out'}", cwd=tmp_path)
  assert proc.returncode == 2
  assert "imagenet_v2/topimages" in proc.stderr and "tfds build" in proc.stderr
  assert not (tmp_path / "out").exists()
  # A zoo model with --suite=ood needs neither ImageNet nor the demo photos: the error is the
  # missing OOD dataset, not "no ImageNet".
  proc = _run_cli("--suite=ood", "--model=resnet50", f"--ood_data_dir={tmp_path / 'empty'}",
                  "--ood_datasets=imagenet_r", cwd=tmp_path)
  assert proc.returncode == 2 and "imagenet_r" in proc.stderr and "tfds build" in proc.stderr
  assert "ImageNet validation" not in proc.stderr


def test_public_metrics_evaluate_ood_gives_the_same_results(data_dir, variables, results):
  from imagenet_cp import metrics
  again = metrics.evaluate_ood(standin.planted_apply, variables, datasets=["imagenet_r"],
                               data_dir=data_dir, batch_size=3, chunk_size=3, log=lambda _: None)
  assert (comparable(again)["datasets"]["imagenet_r"]
          == comparable(results)["datasets"]["imagenet_r"])
