"""The command line: ``python -m metrics.run`` (same as ``python -m imagenet_cp.run`` and ``imagenet-cp run``)."""
import runpy

if __name__ == "__main__":
  runpy.run_module("imagenet_cp.run", run_name="__main__", alter_sys=True)
