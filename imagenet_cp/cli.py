"""``imagenet-cp COMMAND [flags]``: the console script, usable from any folder.

  imagenet-cp run --model=resnet50 --imagenet_dir=/data/imagenet   # = python -m imagenet_cp.run
  imagenet-cp gallery photo.jpg out/                                # = python -m imagenet_cp.gallery

Each command is a module run as ``__main__`` with the remaining arguments, so the flags and
help are the module's own.
"""
from __future__ import annotations

import runpy
import sys

COMMANDS = {
    "run": "imagenet_cp.run",
    "gallery": "imagenet_cp.gallery",
    "bench": "imagenet_cp.bench",
}


def main(argv: list[str] | None = None) -> int:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] not in COMMANDS:
    print(f"usage: imagenet-cp {{{','.join(COMMANDS)}}} [flags]  (--help after a command)",
          file=sys.stderr)
    return 2
  module = COMMANDS[argv[1]]
  sys.argv = [f"imagenet-cp {argv[1]}", *argv[2:]]
  runpy.run_module(module, run_name="__main__", alter_sys=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
