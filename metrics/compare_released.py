"""``python -m metrics.compare_released``: released vs regenerated ImageNet-C / CIFAR-C errors
(same as ``python -m imagenet_cp.compare_released_cli``)."""
import runpy

if __name__ == "__main__":
  runpy.run_module("imagenet_cp.compare_released_cli", run_name="__main__", alter_sys=True)
