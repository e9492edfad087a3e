"""``python -m attacks.bench``: our PGD against PyTorch's (``imagenet_cp.suites.bench_attacks``)."""
import runpy

if __name__ == "__main__":
  runpy.run_module("imagenet_cp.suites.bench_attacks", run_name="__main__", alter_sys=True)
