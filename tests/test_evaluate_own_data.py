"""metrics.evaluate on the user's own data: arrays, batches and a TFDS dataset."""
import inspect
import sys
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import imagenet_cp
import planted_model as pm
from distributed_worker import tiny_classifier
from imagenet_cp import metrics, sources
from imagenet_cp.suites import corruption as ev

FAST = dict(batch_size=4, progress=False, log=lambda line: None)
C_ONLY = dict(corruptions=("contrast", "brightness"), severities=(1,), perturbations=())


def pooled_linear(classes: int, seed: int = 3):
  """A plain JAX classifier with ``classes`` logits: 8x8 average-pooled pixels -> linear map."""
  w = jax.random.normal(jax.random.key(seed), (8 * 8 * 3, classes))

  def apply_fn(variables, images):
    n = images.shape[0]
    pooled = images.reshape(n, 8, 28, 8, 28, 3).mean(axis=(2, 4)).reshape(n, -1)
    return jnp.dot(pooled, variables["w"], precision=jax.lax.Precision.HIGHEST)

  return apply_fn, {"w": w}


def never_called(variables, images):
  raise AssertionError("the model was traced before the inputs were checked")


@pytest.fixture(scope="module")
def demo3():
  """The demo source's first 3 photos: (ids, labels, 224 crops as the runner makes them)."""
  examples, _, crops = pm.demo_inputs(3)
  return [e.id for e in examples], np.array([e.label for e in examples]), crops


def _predictions(output_dir):
  out = {}
  for path in sorted((output_dir / "tasks").glob("*.npz")):
    with np.load(path) as data:
      out[path.stem] = data["predictions"]
  return out


@pytest.mark.parametrize("name,module", [
    ("evaluate", "imagenet_cp.suites.corruption"),
    ("evaluate_adversarial", "imagenet_cp.suites.adversarial"),
    ("evaluate_ood", "imagenet_cp.suites.ood")])
def test_public_entry_points_are_the_typed_suites(name, module):
  """``metrics.evaluate*`` are the suites' functions themselves (imported on first use): explicit
  keyword arguments, every one annotated, no ``**kwargs``."""
  import importlib
  suite_fn = getattr(importlib.import_module(module), name)
  assert getattr(metrics, name) is suite_fn
  params = inspect.signature(suite_fn).parameters
  assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params.values())
  hints = typing.get_type_hints(suite_fn)
  assert set(params) <= set(hints), set(params) - set(hints)


def test_arrays_and_batches_equal_the_demo_source(demo3, tmp_path):
  ids, labels, crops = demo3
  apply_fn, variables = tiny_classifier()
  kw = dict(FAST, **C_ONLY, bootstrap=20)
  demo = ev.evaluate(apply_fn, variables, source="demo", max_images=3,
                     output_dir=tmp_path / "demo", **kw)
  arrays = metrics.evaluate(apply_fn, variables, images=crops, labels=labels,
                            output_dir=tmp_path / "arrays", **kw)
  # Batches of 2 (the last ragged), as JAX arrays: the same digest, so the same ids.
  batches = [(jnp.asarray(crops[i:i + 2]), jnp.asarray(labels[i:i + 2])) for i in (0, 2)]
  streamed = metrics.evaluate(apply_fn, variables, batches=iter(batches),
                              output_dir=tmp_path / "batches", **kw)
  for key in ("clean", "corruptions", "mce", "relative_mce", "perturbations",
              "confidence_intervals", "baseline"):
    assert arrays[key] == demo[key] == streamed[key], key
  expected = _predictions(tmp_path / "demo")
  assert sorted(expected) == ["clean", "corruption__brightness__1", "corruption__contrast__1"]
  for got in (_predictions(tmp_path / "arrays"), _predictions(tmp_path / "batches")):
    assert got.keys() == expected.keys()
    for task in expected:
      np.testing.assert_array_equal(got[task], expected[task], err_msg=task)
  assert arrays["run"]["source"] == "arrays" and streamed["run"]["source"] == "batches"
  assert arrays["run"]["data_sha256"] == streamed["run"]["data_sha256"]
  assert not arrays["run"]["demo"] and "warning" not in arrays["run"]
  with np.load(tmp_path / "arrays" / "tasks" / "clean.npz") as data:
    assert list(data["ids"]) == [f"{arrays['run']['data_sha256'][:16]}/{i}" for i in range(3)]


def test_example_keys_follow_the_ids(demo3):
  """Planted logits for exactly the images that ``example_key(seed, name, level, id)`` makes:
  any other key gives an unplanted image (NaN logits, an error).  Resize(256) arrays: a square
  256 crop of each photo; ImageNet-C takes their center 224, ImageNet-P them whole."""
  _, labels, _ = demo3
  examples = sources.demo_examples()[:2]
  squares = np.stack([imagenet_cp.preprocess(sources.decode(e), crop=256) for e in examples])
  crops = squares[:, 16:240, 16:240]
  ids = ["mine/0", "mine/1"]
  labels = labels[:2]
  plan = pm.Plan()
  plan.plant(crops, [pm.logits_for(l, False) for l in labels])
  plan.plant(pm.corrupted(crops, ids, "gaussian_noise", 1),
             [pm.logits_for(l, i == 1) for i, l in enumerate(labels)])
  for v, (image, name, label) in enumerate(zip(squares, ids, labels)):
    seq = np.asarray(pm.frames(image, name, "gaussian_noise", 1))
    plan.plant(seq, [pm.logits_for(label, v == 0 and t in (5, 6)) for t in range(len(seq))])
  results = metrics.evaluate(pm.apply_fn, plan.variables(), images=squares, labels=labels,
                             source_id="mine", corruptions=("gaussian_noise",), severities=(1,),
                             perturbations=("gaussian_noise",), bootstrap=0, **FAST)
  assert results["clean"] == {"error": 0.0, "examples": 2}
  assert results["corruptions"]["gaussian_noise"]["severities"]["1"] == {"error": 0.5,
                                                                         "examples": 2}
  gn = results["perturbations"]["gaussian_noise"]["1"]
  assert (gn["flip_probability"], gn["ut5d"], gn["pairs"]) == (2 / 60, 4 / 60, 60)
  assert results["run"]["source_id"] == "mine"


def test_resume_refuses_other_data(demo3, tmp_path):
  _, labels, crops = demo3
  apply_fn, variables = tiny_classifier()
  kw = dict(FAST, corruptions=(), perturbations=(), bootstrap=0, output_dir=tmp_path)
  first = metrics.evaluate(apply_fn, variables, images=crops, labels=labels, **kw)
  done = []
  original = ev.run_task
  ev.run_task = lambda task, *a, **k: (done.append(task.id), original(task, *a, **k))[1]
  try:
    again = metrics.evaluate(apply_fn, variables, images=crops, labels=labels, **kw)
  finally:
    ev.run_task = original
  assert done == [] and again["clean"] == first["clean"]
  other = crops.copy()
  other[0, 0, 0, 0] ^= 1
  with pytest.raises(ValueError, match="data_sha256") as err:
    metrics.evaluate(apply_fn, variables, images=other, labels=labels, **kw)
  assert first["run"]["data_sha256"][:20] in str(err.value)
  with pytest.raises(ValueError, match="source_id was null, now \"mine\""):
    metrics.evaluate(apply_fn, variables, images=crops, labels=labels, source_id="mine", **kw)


def test_batches_without_source_id_do_not_resume(demo3, tmp_path):
  _, labels, crops = demo3
  apply_fn, variables = tiny_classifier()
  kw = dict(FAST, corruptions=(), perturbations=(), bootstrap=0, output_dir=tmp_path)
  metrics.evaluate(apply_fn, variables, batches=[(crops, labels)], **kw)
  with pytest.raises(ValueError, match="without source_id cannot be checked"):
    metrics.evaluate(apply_fn, variables, batches=[(crops, labels)], **kw)
  named = tmp_path / "named"
  kw["output_dir"] = named
  metrics.evaluate(apply_fn, variables, batches=[(crops, labels)], source_id="mine", **kw)
  again = metrics.evaluate(apply_fn, variables, batches=[(crops, labels)], source_id="mine", **kw)
  assert again["run"]["tasks_done"] == 1


def test_ten_class_model_reports_errors_without_normalisation(demo3):
  _, _, crops = demo3
  apply_fn, variables = pooled_linear(10)
  labels = np.array([3, 7, 9])
  squares = np.stack([imagenet_cp.preprocess(sources.decode(e), crop=256)
                      for e in sources.demo_examples()[:3]])
  kw = dict(FAST, corruptions=("contrast",), severities=(1, 2, 3, 4, 5),
            perturbations=("brightness",), bootstrap=10)
  results = metrics.evaluate(apply_fn, variables, images=squares, labels=labels, **kw)
  assert results["clean"]["examples"] == 3 and 0 <= results["clean"]["error"] <= 1
  contrast = results["corruptions"]["contrast"]
  assert contrast["ce"] is None and "10-class model" in contrast["ce_unavailable"]
  assert contrast["relative_ce"] is None and contrast["unnormalized_ce"] is not None
  assert results["mce"] is None
  bright = results["perturbations"]["brightness"]["1"]
  assert bright["fr"] is None and bright["t5d"] is None and bright["videos"] == 3
  assert 0 <= bright["flip_probability"] <= 1 and bright["ut5d"] is not None
  assert "ce/contrast" not in results["confidence_intervals"]
  assert "clean_error" in results["confidence_intervals"]
  assert results["baseline"]["name"].startswith("none")
  # With a baseline the user measured, CE and FR come back.
  mine = metrics.Baseline(name="mine", errors={("contrast", s): 0.5 for s in range(1, 6)},
                          clean_error=0.2, flip_probability={("brightness", 1): 0.1},
                          top5_distance={("brightness", 1): 0.5})
  measured = metrics.evaluate(apply_fn, variables, images=squares, labels=labels,
                              baseline=mine, **dict(kw, bootstrap=0))
  errors = [measured["corruptions"]["contrast"]["severities"][str(s)]["error"] for s in range(1, 6)]
  assert measured["corruptions"]["contrast"]["ce"] == pytest.approx(100 * sum(errors) / 2.5)
  assert measured["perturbations"]["brightness"]["1"]["fr"] == pytest.approx(
      100 * measured["perturbations"]["brightness"]["1"]["flip_probability"] / 0.1)
  with pytest.raises(ValueError, match="labels go up to 10 but the model returns 10 logits"):
    metrics.evaluate(apply_fn, variables, images=crops, labels=np.array([0, 1, 10]),
                     **dict(FAST, **C_ONLY))


@pytest.mark.parametrize("images, labels, message", [
    (np.zeros((2, 224, 224, 3), np.float32), [0, 1], "uint8 pixels 0..255, got dtype float32"),
    (np.zeros((2, 224, 224), np.uint8), [0, 1],
     r"shape \[N, H, W, 3\] \(RGB\), got \(2, 224, 224\)"),
    (np.zeros((2, 200, 200, 3), np.uint8), [0, 1], "224x224 crops or Resize.256. images"),
    (np.zeros((2, 224, 224, 3), np.uint8), [0, 1, 2], r"shape \[2\], got \(3,\)"),
    (np.zeros((2, 224, 224, 3), np.uint8), [0.0, 1.0], "integer class indices, got dtype float64"),
    (np.zeros((2, 224, 224, 3), np.uint8), [0, -1], "class indices >= 0"),
    (np.zeros((2, 224, 224, 3), np.uint8), None, "images= needs labels="),
])
def test_bad_arrays_are_refused_before_tracing(images, labels, message):
  with pytest.raises(ValueError, match=message):
    metrics.evaluate(never_called, {}, images=images, labels=labels, **dict(FAST, **C_ONLY))


def test_bad_usage_is_refused_before_tracing():
  crops, labels = np.zeros((2, 224, 224, 3), np.uint8), np.array([0, 1])
  # 224 crops cannot make ImageNet-P's sequences: an explicit error, not a silent change.
  with pytest.raises(ValueError, match="ImageNet-P's sequences start from the Resize.256. image"):
    metrics.evaluate(never_called, {}, images=crops, labels=labels, **FAST)
  with pytest.raises(ValueError, match="give one source of your own data, not images and batches"):
    metrics.evaluate(never_called, {}, images=crops, labels=labels, batches=[], **FAST)
  with pytest.raises(ValueError, match="source='imagenet' with your own data"):
    metrics.evaluate(never_called, {}, images=crops, labels=labels, source="imagenet",
                     **dict(FAST, **C_ONLY))
  bad = [(crops, labels), (crops.astype(np.int32), labels)]
  with pytest.raises(ValueError, match="batch 1's images must be uint8"):
    metrics.evaluate(never_called, {}, batches=bad, **dict(FAST, **C_ONLY))
  mixed = [(crops, labels), (np.zeros((1, 256, 256, 3), np.uint8), [0])]
  with pytest.raises(ValueError, match="every batch must have one image size"):
    metrics.evaluate(never_called, {}, batches=mixed, **dict(FAST, **C_ONLY))
  with pytest.raises(ValueError, match="batches yielded no image"):
    metrics.evaluate(never_called, {}, batches=iter([]), **dict(FAST, **C_ONLY))
  with pytest.raises(ValueError, match="needs tfds_split="):
    metrics.evaluate(never_called, {}, tfds_name="imagenet_v2", **dict(FAST, **C_ONLY))


def test_missing_tensorflow_datasets_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)
  with pytest.raises(ValueError, match="needs tensorflow_datasets"):
    metrics.evaluate(never_called, {}, tfds_name="imagenet_v2/matched-frequency",
                     tfds_split="test", **dict(FAST, **C_ONLY))


# ----------------------------------------------------------------------------------------------
# A tiny TFDS image classification dataset, built for real (array_record).

TFDS_SIZES = ((300, 260), (256, 400), (90, 120))  # non-square, and one smaller than 224


def _tfds_images():
  rng = np.random.default_rng(5)
  return [(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), i * 4) for i, (h, w) in
          enumerate(TFDS_SIZES)]


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
  tfds = pytest.importorskip("tensorflow_datasets")

  class TinyOwnData(tfds.core.GeneratorBasedBuilder):  # registered as tiny_own_data
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self, supervised_keys=("picture", "class"),
          features=tfds.features.FeaturesDict({
              "picture": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
              "class": tfds.features.ClassLabel(num_classes=10)}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"test": self._generate_examples()}

    def _generate_examples(self):
      for i, (image, label) in enumerate(_tfds_images()):
        yield i, {"picture": image, "class": label}

  data_dir = tmp_path_factory.mktemp("tfds")
  tfds.builder("tiny_own_data", data_dir=str(data_dir),
               file_format="array_record").download_and_prepare()
  return str(data_dir)


def test_tfds_builds_that_cannot_be_read_by_index_are_explained(tiny_tfds, tmp_path):
  import tensorflow_datasets as tfds
  pytest.importorskip("tensorflow")   # writing tfrecord needs it
  tfds.builder("tiny_own_data", data_dir=str(tmp_path), file_format="tfrecord").download_and_prepare()
  kw = dict(FAST, **C_ONLY, tfds_name="tiny_own_data", tfds_split="test")
  with pytest.raises(ValueError, match="as tfrecord, which cannot be read by index"):
    metrics.evaluate(never_called, {}, tfds_dir=tmp_path, **kw)
  with pytest.raises(ValueError, match="is not prepared in"):
    metrics.evaluate(never_called, {}, tfds_dir=tmp_path / "empty", **kw)
  with pytest.raises(ValueError, match="no_such_dataset_xyz cannot be opened"):
    metrics.evaluate(never_called, {}, **dict(kw, tfds_name="no_such_dataset_xyz"))


def test_tfds_dataset_is_decoded_and_preprocessed_like_photos(tiny_tfds):
  import tensorflow_datasets as tfds
  source = tfds.data_source("tiny_own_data", split="test", data_dir=tiny_tfds, download=False)
  stored = [source[i] for i in range(len(source))]   # TFDS's on-disk order
  crops = np.stack([imagenet_cp.preprocess(r["picture"]) for r in stored])
  labels = np.array([r["class"] for r in stored])
  apply_fn, variables = pooled_linear(10)
  kw = dict(FAST, corruptions=("contrast",), severities=(1,), bootstrap=0)
  from_tfds = metrics.evaluate(apply_fn, variables, tfds_name="tiny_own_data", tfds_split="test",
                               tfds_dir=tiny_tfds, perturbations=("brightness",), **kw)
  from_arrays = metrics.evaluate(apply_fn, variables, images=crops, labels=labels,
                                 perturbations=(), **kw)
  assert from_tfds["clean"] == from_arrays["clean"]
  assert from_tfds["corruptions"] == from_arrays["corruptions"]
  assert from_tfds["perturbations"]["brightness"]["1"]["videos"] == 3
  run = from_tfds["run"]
  assert (run["source"], run["tfds_name"], run["tfds_split"], run["tfds_version"]) == (
      "tfds", "tiny_own_data", "test", "1.0.0")
  with pytest.raises(ValueError, match="cannot read split 'train'"):
    metrics.evaluate(apply_fn, variables, tfds_name="tiny_own_data", tfds_split="train",
                     tfds_dir=tiny_tfds, **dict(kw, perturbations=()))
