"""``python -m metrics.bench``: the end-to-end evaluation benchmark (``imagenet_cp.suites.bench``)."""
import runpy

if __name__ == "__main__":
  runpy.run_module("imagenet_cp.suites.bench", run_name="__main__", alter_sys=True)
