"""Results that can be trusted (issue 16): a run's identity, saved-task checks, the folder lock,
the checkpoint reader's limits and the small checks around them.

Every test here reproduces one way the evaluation used to give silently wrong or mixed results
(or crash unclearly); the CLI's error messages are in test_reliability_cli.py and the killed-run
test in test_fault_injection.py.
"""
import errno
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tracemalloc

import jax.numpy as jnp
import numpy as np
import pytest

import adversarial_models as am
import attack_models
import planted_model as pm
import imagenet_cp
from imagenet_cp import sources
from imagenet_cp.metrics import stability
from imagenet_cp.suites import adversarial, common
from imagenet_cp.suites import corruption as ev
from imagenet_standin import make_val_folder, make_val_tar, standin_jpegs

REPO = pathlib.Path(__file__).resolve().parents[1]


def tiny(seed: int = 0):
  """A cheap deterministic classifier on 224 crops (8x8 pooling, then linear)."""
  rng = np.random.default_rng(seed)
  return am.pooled_apply, {"w": jnp.asarray(rng.standard_normal((192, 1000)), jnp.float32),
                           "b": jnp.zeros(1000, jnp.float32)}


def run(output_dir, variables=None, lines=None, **kwargs):
  apply_fn, default = tiny()
  settings = dict(source="demo", max_images=2, corruptions=(), perturbations=(), batch_size=4,
                  bootstrap=0, progress=False, log=(lines.append if lines is not None else
                                                    lambda _: None))
  settings.update(kwargs)
  return ev.evaluate(apply_fn, default if variables is None else variables,
                     output_dir=output_dir, **settings)


# ----------------------------------------------------------------------------------------------
# 1. The run's identity comes from the source, and the image cache is checked against it.


def test_changing_max_images_is_refused_not_mixed(tmp_path):
  first = run(tmp_path, max_images=2)
  assert first["run"]["images"] == 2
  with pytest.raises(ValueError, match=r"differs in: .*images.*images was 2, now 6"):
    run(tmp_path, max_images=None)


def test_a_cache_of_other_images_is_rebuilt(tmp_path):
  run(tmp_path, max_images=2)
  (tmp_path / "run.json").unlink()
  shutil.rmtree(tmp_path / "tasks")
  lines = []
  results = run(tmp_path, lines=lines, max_images=3)
  assert results["run"]["images"] == 3 and results["clean"]["examples"] == 3
  assert any("chunk_00000.npz" in line and "rebuilding" in line for line in lines), lines
  # A chunk file without its file names (or anything else it needs) is rebuilt too.
  chunk = tmp_path / "cache" / "chunk_00000.npz"
  with np.load(chunk) as data:
    np.savez(chunk, crops=data["crops"])
  lines.clear()
  again = run(tmp_path, lines=lines, max_images=3)
  assert any("chunk_00000.npz: lacks" in line for line in lines), lines
  assert again["clean"] == results["clean"]


def test_swapped_imagenet_folder_is_refused(tmp_path):
  folder = make_val_folder(tmp_path / "a", 2)
  out = tmp_path / "out"
  first = run(out, source="imagenet", imagenet_dir=folder, max_images=None)
  # The same path, as many images under the same names, other photos (other sizes).
  for (name, _), (_, data) in zip(standin_jpegs(2), standin_jpegs(4)[2:]):
    (folder / name).write_bytes(data)
  with pytest.raises(ValueError, match="differs in: source_sha256"):
    run(out, source="imagenet", imagenet_dir=folder, max_images=None)
  # Another --imagenet_dir holding as many (other) images.
  other = tmp_path / "b" / "val"
  other.mkdir(parents=True)
  for (name, _), (_, data) in zip(standin_jpegs(2), standin_jpegs(4)[::-3]):
    (other / name).write_bytes(data)
  with pytest.raises(ValueError, match="differs in: source_sha256"):
    run(out, source="imagenet", imagenet_dir=other, max_images=None)
  assert first["run"]["images"] == 2 and first["run"]["source_location"] == str(folder)


# ----------------------------------------------------------------------------------------------
# 2. The weights are part of the run's identity.


def test_resuming_with_other_weights_is_refused(tmp_path):
  _, variables = tiny()
  kwargs = dict(corruptions=("contrast",), severities=(1,))
  run(tmp_path, variables, **kwargs)
  # The classifier's rows shifted by one: the same shapes, other weights.
  shifted = dict(variables, w=jnp.roll(variables["w"], 1, axis=1))
  with pytest.raises(ValueError, match="differs in: weights_sha256"):
    run(tmp_path, shifted, **kwargs)
  saved = json.loads((tmp_path / "run.json").read_text())
  assert saved["weights_sha256"] == common.variables_digest(variables)
  assert run(tmp_path, variables, **kwargs)["run"]["weights_sha256"] == saved["weights_sha256"]


def test_variables_digest_sees_every_leaf_and_not_the_container():
  _, variables = tiny()
  digest = common.variables_digest(variables)
  assert common.variables_digest({k: np.asarray(v) for k, v in variables.items()}) == digest
  bumped = dict(variables, b=variables["b"].at[999].add(1e-6))
  assert common.variables_digest(bumped) != digest
  renamed = {"w": variables["w"], "c": variables["b"]}
  assert common.variables_digest(renamed) != digest


# ----------------------------------------------------------------------------------------------
# 3. Two images with one file name: records are keyed by their ids.


def test_images_sharing_a_file_name_keep_their_own_predictions(tmp_path):
  folder = make_val_folder(tmp_path / "data", 1, by_wnid=True)
  name, _ = standin_jpegs(1)[0]
  other = folder / "n99999999"
  other.mkdir()
  (other / name).write_bytes(standin_jpegs(2)[1][1])   # another photo, the same file name
  examples = list(sources.imagenet_val_examples(folder))
  assert [e.file_name for e in examples] == [name, name]
  crops = np.stack([imagenet_cp.preprocess(sources.decode(e)) for e in examples])
  label = examples[0].label
  plan = pm.Plan()   # the first image right, the second wrong
  plan.plant(crops, [pm.logits_for(label, False), pm.logits_for((label + 1) % 1000, False)])
  results = ev.evaluate(pm.apply_fn, plan.variables(), source="imagenet", imagenet_dir=folder,
                        corruptions=(), perturbations=(), batch_size=4, bootstrap=0,
                        progress=False, output_dir=tmp_path / "out", log=lambda _: None)
  assert results["clean"] == {"error": 0.5, "examples": 2}
  assert len({e.id for e in examples}) == 2
  with np.load(tmp_path / "out" / "tasks" / "clean.npz") as saved:
    assert sorted(saved["ids"]) == sorted(e.id for e in examples)


# ----------------------------------------------------------------------------------------------
# 4. Saved task files are validated on load and recomputed when they fail.


def _rewrite(path: pathlib.Path, **changes) -> None:
  with np.load(path) as data:
    records = {k: data[k] for k in data.files}
  records.update(changes)
  np.savez(path, **records)


@pytest.fixture(scope="module")
def planted():
  """Variables of pm.apply_fn right on the first two demo photos, clean and at contrast/1."""
  examples, _, crops = pm.demo_inputs(2)
  names, labels = [e.file_name for e in examples], [e.label for e in examples]
  plan = pm.Plan()
  plan.plant(crops, [pm.logits_for(l, False) for l in labels])
  plan.plant(pm.corrupted(crops, names, "contrast", 1), [pm.logits_for(l, False) for l in labels])
  return plan.variables(), labels


def test_saved_tasks_are_validated_and_recomputed(tmp_path, planted):
  variables, labels = planted
  kwargs = dict(corruptions=("contrast",), severities=(1,))
  evaluate = lambda out, **kw: ev.evaluate(pm.apply_fn, variables, source="demo", max_images=2,
                                           perturbations=(), batch_size=4, bootstrap=0,
                                           progress=False, output_dir=out, **kwargs, **kw)
  full = evaluate(tmp_path / "full", log=lambda _: None)
  assert full["clean"]["error"] == 0.0
  out = tmp_path / "out"
  evaluate(out, log=lambda _: None)
  tasks = out / "tasks"
  cases = [
      # A readable file with one record where the run has two (it used to be broadcast against
      # the labels: [label 1] vs [label 0, label 1] gave an error of 0.5).
      ("clean.npz", dict(predictions=np.array([labels[1]], np.int32),
                         ids=np.array(["demo/coffee.png"]),
                         file_names=np.array(["demo/coffee.png"])),
       "holds 1 examples, the run has 2"),
      ("corruption__contrast__1.npz", dict(predictions=np.array(labels, np.float32)),
       "predictions has dtype float32"),
      ("clean.npz", dict(predictions=np.array(labels[::-1], np.int32),
                         ids=np.array(["demo/coffee.png", "demo/chelsea.png"])),
       "holds other examples"),
      ("clean.npz", dict(run_sha256=np.array("0" * 64)), "written by another run"),
  ]
  for file, changes, reason in cases:
    _rewrite(tasks / file, **changes)
    lines = []
    resumed = evaluate(out, log=lines.append)
    assert resumed["clean"] == full["clean"] and resumed["corruptions"] == full["corruptions"]
    assert any(reason in line and "recomputing" in line for line in lines), (reason, lines)


def test_adversarial_store_checks_weights_and_saved_attacks(tmp_path):
  problem = attack_models.linear_problem(n=4, side=4, classes=2, seed=2)
  kwargs = dict(images=problem.images, labels=problem.labels,
                file_names=[f"x{i}" for i in range(4)], attack_names=("fgsm_linf",),
                budgets={"linf": (0.0, 1.0, 2.0)}, batch_size=4, output_dir=tmp_path,
                config=adversarial.Config(doubling_steps=3, bisection_steps=2))
  first = adversarial.evaluate_adversarial(attack_models.linear_apply, problem.variables,
                                           log=lambda _: None, **kwargs)
  other = {k: -v for k, v in problem.variables.items()}
  with pytest.raises(ValueError, match="differs in: weights_sha256"):
    adversarial.evaluate_adversarial(attack_models.linear_apply, other, log=lambda _: None,
                                     **kwargs)
  _rewrite(tmp_path / "adversarial" / "tasks" / "adversarial__fgsm_linf__0.npz",
           file_names=np.array(["x9", "x1", "x2", "x3"]))
  lines = []
  again = adversarial.evaluate_adversarial(attack_models.linear_apply, problem.variables,
                                           log=lines.append, **kwargs)
  assert any("holds other examples" in line and "recomputing adversarial/fgsm_linf" in line
             for line in lines), lines
  assert again["attacks"] == first["attacks"]


# ----------------------------------------------------------------------------------------------
# 5. One run at a time per output folder.

_HOLDER = """
import sys, time
from imagenet_cp.suites.common import DirectoryLock
DirectoryLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_folder_in_use_is_refused_naming_the_holder(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ValueError, match=rf"in use by another run \(pid {holder.pid} on .*since"):
      run(tmp_path)
  finally:
    holder.kill()
    holder.wait()
  # The holder was killed (-9): the kernel released its lock, nothing stale is left.
  assert run(tmp_path)["clean"]["examples"] == 2


def test_lock_is_reentrant_within_a_process_and_released(tmp_path):
  with common.DirectoryLock(tmp_path):
    assert run(tmp_path)["clean"]["examples"] == 2   # run_suites / Store lock it again
  note = json.loads((tmp_path / "lock").read_text())
  assert note["pid"] == os.getpid()


# ----------------------------------------------------------------------------------------------
# 7/8. Errors that say what to do, and files as the user expects them.


def test_a_full_disk_leaves_no_temporary_file_and_says_so(tmp_path, monkeypatch):
  run(tmp_path)

  def full(path, **arrays):
    pathlib.Path(path).write_bytes(b"PK\x03\x04")   # a partial write, then the disk is full
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(np, "savez", full)
  with pytest.raises(ValueError, match=r"cannot write .*corruption__contrast__1.npz: No space "
                                       r"left on device \(the disk is full"):
    run(tmp_path, corruptions=("contrast",), severities=(1,))
  left = [p.name for p in tmp_path.rglob("tmp*")]
  assert not left, left


def test_a_full_disk_leaves_no_partial_report_or_plot(tmp_path, monkeypatch):
  from matplotlib.figure import Figure
  from imagenet_cp.suites import report
  results = run(tmp_path / "run", corruptions=("contrast",), severities=(1, 2))
  written = report.write_all(results, tmp_path / "ok", "tiny")
  assert any(p.suffix == ".png" for p in written)

  def full(self, path, **kwargs):
    pathlib.Path(path).write_bytes(b"\x89PNG")   # a partial plot, then the disk is full
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(Figure, "savefig", full)
  with pytest.raises(ValueError, match=r"cannot write .*\.png: No space left on device"):
    report.write_all(results, tmp_path / "full", "tiny")
  left = sorted(p.name for p in (tmp_path / "full").iterdir())
  assert all(not name.endswith(".png") and not name.startswith("tmp") for name in left), left


def test_outputs_get_the_usual_file_mode(tmp_path):
  run(tmp_path)
  mask = os.umask(0o022)
  os.umask(mask)
  for path in (tmp_path / "results.json", tmp_path / "run.json", tmp_path / "tasks" / "clean.npz",
               tmp_path / "cache" / "chunk_00000.npz"):
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path


def test_example_keys_check_their_inputs():
  keys = imagenet_cp.example_keys(0, "contrast", 1, ["a.JPEG", np.str_("b.JPEG")])
  assert keys.shape == (2,)
  with pytest.raises(TypeError, match="file_names must be a sequence of file names"):
    imagenet_cp.example_keys(0, "contrast", 1, "a.JPEG")
  with pytest.raises(TypeError, match="name must be a non-empty str"):
    imagenet_cp.example_keys(0, "", 1, ["a.JPEG"])
  with pytest.raises(TypeError, match="severity must be an int"):
    imagenet_cp.example_keys(0, "contrast", 1.5, ["a.JPEG"])
  with pytest.raises(TypeError, match="file_name must be a non-empty str"):
    imagenet_cp.example_keys(0, "contrast", 1, [b"a.JPEG"])


def test_too_few_frames_for_the_difficulty_is_a_clear_error():
  predictions = np.zeros((3, 31), np.int32)
  with pytest.raises(ValueError, match="a sequence of 2 frames has no pairs at difficulty 3"):
    stability.flip_probability(predictions[:, :2], noise=False, difficulty=3)
  assert stability.flip_probability(predictions[:, :4], noise=False, difficulty=3) == 0.0


def test_tar_link_members_are_reported_once(tmp_path):
  path = make_val_tar(tmp_path, 2)
  with tarfile.open(path, "a") as tar:
    for kind, name in ((tarfile.SYMTYPE, "ILSVRC2012_val_00000007.JPEG"),
                       (tarfile.LNKTYPE, "ILSVRC2012_val_00000008.JPEG")):
      info = tarfile.TarInfo(name)
      info.type, info.linkname = kind, "ILSVRC2012_val_00000001.JPEG"
      tar.addfile(info)
  with pytest.warns(sources.SourceWarning, match=r"skipped 2 symlink/hardlink member\(s\)"):
    examples = list(sources.imagenet_val_examples(tmp_path))
  assert [e.file_name for e in examples] == [name for name, _ in standin_jpegs(2)]


def test_results_carry_a_schema_version_documented_field_by_field(tmp_path):
  results = run(tmp_path, corruptions=("contrast",), severities=(1,),
                perturbations=("translate",), bootstrap=5)
  assert results["schema_version"] == common.SCHEMA_VERSION
  assert json.loads((tmp_path / "results.json").read_text())["schema_version"] == 1
  docs = (REPO / "docs" / "evaluation.md").read_text()
  section = docs[docs.index("### results.json, field by field"):]
  section = section[:section.index("\n## ")]
  fields = set(results) | {f"run.{k}" for k in results["run"]}
  fields |= {f"baseline.{k}" for k in results["baseline"]}
  missing = sorted(f for f in fields if f"`{f}`" not in section)
  assert not missing, f"docs/evaluation.md does not describe {missing}"
