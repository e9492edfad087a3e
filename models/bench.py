"""``python -m models.bench``: the zoo against PyTorch (``imagenet_cp.models.bench``)."""
import runpy

if __name__ == "__main__":
  runpy.run_module("imagenet_cp.models.bench", run_name="__main__", alter_sys=True)
