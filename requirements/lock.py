"""Writes requirements/lock.txt: the exact versions of what imagenet-cp[tfds,test] needs, read off
an installed environment (``make lock`` runs it with .venv's Python after a tested install).

Only the dependency closure of the project (plus the packages the Makefile installs with
--no-deps) goes in, so a stray package installed by hand never becomes part of the lock.
"""
from __future__ import annotations

import configparser
import importlib.metadata as md
import pathlib
import sys

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EXTRAS = ("tfds", "test")
# Installed with --no-deps by the Makefile: pinned, but their declared dependencies are not ours.
NO_DEPS = ("torchvision", "imagenet-c", "efficientnet-lite-pytorch", "robustbench",
           "torchattacks", "timm")
LOCK = pathlib.Path(__file__).with_name("lock.txt")
SETUP_CFG = pathlib.Path(__file__).parents[1] / "setup.cfg"
HEADER = """\
# The tested set: exact versions that `make` and CI install with `pip install -c` (constraints).
# Regenerate after a tested upgrade with `make lock` (requirements/lock.py reads .venv).
# Python 3.11, Linux x86_64. torch==2.13.0 resolves to the local CPU wheel (2.13.0+cpu) where
# one is on pip's find-links; torchvision, imagenet-c, efficientnet-lite-pytorch, robustbench,
# torchattacks, timm: --no-deps.
"""


def project_requirements(extras=EXTRAS) -> list[Requirement]:
  """install_requires plus the named extras, read from setup.cfg (not from installed metadata,
  which is as old as the last install)."""
  cfg = configparser.ConfigParser()
  cfg.read(SETUP_CFG)
  values = [cfg["options"]["install_requires"]]
  values += [cfg["options.extras_require"][e] for e in extras]
  return [Requirement(line.strip()) for value in values for line in value.splitlines()
          if line.strip() and not line.strip().startswith("#")]


def _closure() -> dict[str, str]:
  env = default_environment()
  found: dict[str, str] = {}
  seen: set[tuple[str, tuple[str, ...]]] = set()
  todo = [(r.name, tuple(sorted(r.extras))) for r in project_requirements()
          if r.marker is None or r.marker.evaluate(env)]
  todo += [(name, ()) for name in NO_DEPS]
  while todo:
    name, extras = todo.pop()
    key = canonicalize_name(name)
    if (key, extras) in seen:
      continue
    seen.add((key, extras))
    try:
      dist = md.distribution(name)
    except md.PackageNotFoundError:
      sys.exit(f"{name} is not installed in {sys.prefix}: install the project first (make venv)")
    found[key] = dist.version
    if key in NO_DEPS:
      continue
    for line in dist.requires or ():
      req = Requirement(line)
      wanted = [dict(env, extra=e) for e in ("", *extras)]
      if req.marker is None or any(req.marker.evaluate(w) for w in wanted):
        todo.append((req.name, tuple(sorted(req.extras))))
  return found


def main() -> None:
  found = _closure()
  outside = [f"{r.name} {found[canonicalize_name(r.name)]} is outside setup.cfg's {r}"
             for r in project_requirements()
             if not r.specifier.contains(found[canonicalize_name(r.name)], prereleases=True)]
  if outside:
    sys.exit("not locking a set setup.cfg does not admit:\n" + "\n".join(outside))
  lines = []
  for key, version in sorted(found.items()):
    # `torch==2.13.0` matches the local 2.13.0+cpu wheel too (PEP 440 ignores the local label).
    lines.append(f"{key}=={version.split('+')[0]}")
  LOCK.write_text(HEADER + "\n".join(lines) + "\n")
  print(f"wrote {len(lines)} pins to {LOCK}")


if __name__ == "__main__":
  main()
