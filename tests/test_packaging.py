"""Packaging and CI: setup.cfg declares ranges, requirements/lock.txt pins a set inside them,
requirements/oldest.txt is exactly the claimed lower bounds, and .ci/run runs `make test` in a
lone copy of the repository (no sibling folders, no ignored files) that fails when pytest
collects nothing."""
import configparser
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = pathlib.Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
OLDEST = REPO / "requirements" / "oldest.txt"
NO_DEPS = ("torchvision", "imagenet-c", "efficientnet-lite-pytorch", "robustbench")  # Makefile's


def _requirements(*extras):
  cfg = configparser.ConfigParser()
  cfg.read(REPO / "setup.cfg")
  values = [cfg["options"]["install_requires"]] if not extras else []
  values += [cfg["options.extras_require"][e] for e in extras]
  return [Requirement(line.strip()) for value in values for line in value.splitlines()
          if line.strip() and not line.strip().startswith("#")]


def _pins(path):
  pins = {}
  for line in path.read_text().splitlines():
    line = line.split("#")[0].strip()
    if line:
      name, version = line.split("==")
      pins[canonicalize_name(name)] = Version(version)
  return pins


def _lower_bound(req):
  bounds = [Version(s.version) for s in req.specifier if s.operator == ">="]
  assert len(bounds) == 1, f"{req}: one '>=' lower bound (the oldest tested release)"
  return bounds[0]


def test_install_requires_declare_ranges_not_pins():
  for req in _requirements():
    assert not {"==", "==="} & {s.operator for s in req.specifier}, req
    _lower_bound(req)
  assert "numpy" in {r.name for r in _requirements()}


def test_lock_pins_every_requirement_inside_its_range():
  lock = _pins(LOCK)
  for req in _requirements() + _requirements("tfds", "test"):
    name = canonicalize_name(req.name)
    assert name in lock, f"{req.name} is not in {LOCK.name}: run `make lock`"
    assert req.specifier.contains(lock[name]), f"lock {req.name}=={lock[name]} outside {req}"
  for name in NO_DEPS:
    assert name in lock, f"{name} (installed with --no-deps) needs a pin in {LOCK.name}"


def test_oldest_set_is_the_claimed_lower_bounds():
  oldest = _pins(OLDEST)
  for req in _requirements():
    name = canonicalize_name(req.name)
    assert oldest.get(name) == _lower_bound(req), (
        f"setup.cfg claims {req}; requirements/oldest.txt must test exactly that release")
  for req in _requirements("test"):
    name = canonicalize_name(req.name)
    assert name not in oldest or req.specifier.contains(oldest[name]), req


needs_git_and_make = pytest.mark.skipif(
    not (shutil.which("git") and shutil.which("make")), reason="needs git and make")


def _checkout(tmp_path, recipe, files=None):
  """A git checkout holding the real .ci/run, a Makefile whose `test` runs ``recipe``, an ignored
  .venv, an untracked file, and a `sibling` folder beside it (as CI lays it out)."""
  (tmp_path / "sibling").mkdir(parents=True)
  root = tmp_path / "checkout"
  (root / ".ci").mkdir(parents=True)
  shutil.copy(REPO / ".ci" / "run", root / ".ci" / "run")
  (root / "Makefile").write_text(f"test:\n\t{recipe}\n")
  (root / ".gitignore").write_text(".venv/\n")
  (root / ".venv").mkdir()
  (root / ".venv" / "python").write_text("a build output\n")
  for name, text in (files or {}).items():
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)
  subprocess.run(["git", "init", "-q"], cwd=root, check=True)
  subprocess.run(["git", "add", "Makefile", ".ci", ".gitignore"], cwd=root, check=True)
  (root / "untracked.txt").write_text("not ignored, so copied\n")
  return root


def _ci(root, **env):
  return subprocess.run(["bash", ".ci/run"], cwd=root, capture_output=True, text=True,
                        timeout=120, check=False, stdin=subprocess.DEVNULL,
                        env=dict(os.environ, CI="true", **env))


@needs_git_and_make
def test_ci_runs_make_test_in_a_lone_copy(tmp_path):
  seen = tmp_path / "seen.txt"
  root = _checkout(tmp_path, f"pwd > {seen}; ls -A .. >> {seen}; test ! -e ../sibling && "
                             "test ! -e .venv && test -f untracked.txt && test -f Makefile")
  assert (root / ".." / "sibling").is_dir() and (root / ".venv").is_dir()
  result = _ci(root)
  assert result.returncode == 0, result.stdout + result.stderr
  copy, *beside = seen.read_text().split()
  assert beside == ["repo"] and pathlib.Path(copy).name == "repo"
  assert not pathlib.Path(copy).exists()  # removed afterwards
  dry = _ci(root, CI_DRY_RUN="1")
  assert dry.returncode == 0 and "pwd >" in dry.stdout, dry.stdout + dry.stderr


@needs_git_and_make
def test_ci_fails_on_a_sibling_reference_and_on_no_tests(tmp_path):
  root = _checkout(tmp_path / "a", "cat ../sibling/DESIGN.md")
  (tmp_path / "a" / "sibling" / "DESIGN.md").write_text("beside the checkout\n")
  assert _ci(root).returncode != 0
  empty = textwrap.dedent("""\
      def helper():
        return 1
      """)
  root = _checkout(tmp_path / "b", f"{sys.executable} -m pytest -q -p no:cacheprovider tests",
                   files={"tests/test_nothing.py": empty})
  subprocess.run(["git", "add", "tests"], cwd=root, check=True)
  result = _ci(root)
  assert result.returncode != 0 and "no tests ran" in result.stdout, result.stdout + result.stderr
