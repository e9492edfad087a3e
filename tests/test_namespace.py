"""The library inside a research repository that has its own ``models/`` and ``metrics.py``.

From such a folder ``import models`` / ``import metrics`` give the researcher's modules; the
library's ``imagenet_cp.*`` paths and the ``imagenet-cp`` console script must still work.
"""
import json
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    import metrics, models                      # the researcher's own
    assert metrics.MINE and models.MINE
    import imagenet_cp
    from imagenet_cp import metrics as icp_metrics, models as icp_models, attacks
    crop = np.zeros((224, 224, 3), np.uint8) + 128
    keys = imagenet_cp.example_keys(0, "fog", 3, ["a.png"])
    foggy = imagenet_cp.corrupt(crop[None], "fog", 3, keys)
    assert foggy.shape == (1, 224, 224, 3)
    assert "resnet50" in icp_models.names()
    assert callable(attacks.pgd)

    def apply_fn(variables, images):             # a constant classifier: predicts class 281
      return jnp.zeros((images.shape[0], 1000)).at[:, 281].set(variables["w"])

    results = icp_metrics.evaluate(apply_fn, {"w": jnp.float32(1.0)}, source="demo",
                                   max_images=2, corruptions=("fog",), severities=(1,),
                                   perturbations=(), batch_size=4, bootstrap=0, progress=False)
    print(json.dumps({"clean": results["clean"], "fog": results["corruptions"]["fog"]}))
""")


@pytest.fixture()
def research_repo(tmp_path):
  (tmp_path / "models").mkdir()
  (tmp_path / "models" / "__init__.py").write_text("MINE = True\n")
  (tmp_path / "metrics.py").write_text("MINE = True\n")
  (tmp_path / "my_eval.py").write_text(SCRIPT)
  return tmp_path


def test_library_works_beside_a_researchers_models_and_metrics(research_repo):
  out = subprocess.run([sys.executable, "my_eval.py"], cwd=research_repo, capture_output=True,
                       text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["clean"]["examples"] == 2
  assert result["fog"]["severities"]["1"]["examples"] == 2


def test_console_script_runs_from_a_researchers_folder(research_repo):
  script = shutil.which("imagenet-cp", path=str(pathlib.Path(sys.executable).parent))
  assert script, "the imagenet-cp console script is not installed next to this Python"
  out = subprocess.run([script, "run", "--help"], cwd=research_repo, capture_output=True,
                       text=True, timeout=300)
  # absl prints the help and exits 1; an import failure would print a traceback instead.
  assert "Traceback" not in out.stderr, out.stderr[-3000:]
  assert "--model" in out.stdout and "--output_dir" in out.stdout
  bad = subprocess.run([script, "nonsense"], cwd=research_repo, capture_output=True, text=True)
  assert bad.returncode == 2 and "usage: imagenet-cp" in bad.stderr


ENTRY_POINTS = ("imagenet_cp.run", "imagenet_cp.bench", "imagenet_cp.gallery",
                "imagenet_cp.suites.bench", "imagenet_cp.suites.bench_attacks",
                "imagenet_cp.models.bench", "imagenet_cp.perturbations.bench",
                "launch.build_datasets", "launch.device_bench", "launch.bench_build",
                "launch.measure_sizes", "launch.export_release")


def test_every_entry_point_imports_beside_the_others():
  # absl flags are global: two modules defining --suite at import broke `import imagenet_cp.run`
  # in any process that had imported the benchmark first (a test, a notebook).
  code = "import importlib, sys\nfor m in sys.argv[1:]:\n  importlib.import_module(m)\n"
  for order in (ENTRY_POINTS, ENTRY_POINTS[::-1]):
    subprocess.run([sys.executable, "-c", code, *order], check=True, cwd=pathlib.Path(__file__).parents[1],
                   timeout=300)


def test_public_functions_are_fully_annotated():
  """Every parameter of the top-level API has a type hint that resolves (IDEs, type checkers;
  the package ships py.typed)."""
  import inspect
  import typing
  import imagenet_cp
  for name in imagenet_cp.__all__:
    fn = getattr(imagenet_cp, name)
    if not inspect.isfunction(fn):
      continue
    hints = typing.get_type_hints(fn)
    missing = set(inspect.signature(fn).parameters) - set(hints)
    assert not missing, (name, missing)
