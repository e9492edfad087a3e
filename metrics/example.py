"""``python -m metrics.example``: the metrics on the paper's published numbers (``imagenet_cp.metrics.example``)."""
import runpy

if __name__ == "__main__":
  runpy.run_module("imagenet_cp.metrics.example", run_name="__main__", alter_sys=True)
