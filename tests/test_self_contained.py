"""The project stands alone: no tracked file reaches outside the repository, and the library
never imports the top-level alias packages (a research repository's own ``models/`` or
``metrics.py`` would be picked up instead)."""
import pathlib
import re
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./" + "shared|" + r"\bshared/" + r"(reference|assets|seeds)")
BARE_IMPORT = re.compile(r"^\s*(from|import)\s+(models|metrics|attacks|launch)\b", re.M)


SKIP_DIRS = {".git", ".venv", "__pycache__", "demo_output", "out", ".pytest_cache"}
# No exemptions: CI checks for siblings generically, without naming any.
ALLOWED: set = set()


def _tracked() -> list[pathlib.Path]:
  """The repository's files: git's list in a checkout, else every file of the copy."""
  out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
  if out.returncode == 0 and out.stdout:
    files = [REPO / f for f in out.stdout.splitlines()]
  else:
    files = [p for p in REPO.rglob("*") if not SKIP_DIRS & set(p.relative_to(REPO).parts)]
  return [p for p in files if p.is_file() and str(p.relative_to(REPO)) not in ALLOWED]


def test_no_tracked_file_refers_outside_the_repository():
  offenders = []
  for path in _tracked():
    if path.suffix in {".png", ".jpg", ".jpeg", ".npz", ".npy", ".gz", ".tar", ".zip", ".pth"}:
      continue
    text = path.read_text(errors="ignore")
    offenders += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
  assert not offenders


def test_library_imports_no_bare_alias_package():
  offenders = []
  for path in (REPO / "imagenet_cp").rglob("*.py"):
    offenders += [f"{path.relative_to(REPO)}: {m.group(0).strip()}"
                  for m in BARE_IMPORT.finditer(path.read_text())]
  assert not offenders
