"""torchvision as a test and benchmark oracle on a CPU-only torch (never used by the zoo itself).

PyPI's torchvision 0.28.0 wheel is the CUDA build; on the CPU torch 2.13.0 its C++ ops fail to
load and ``import torchvision`` then dies registering fake kernels for two ops that were never
defined.  Defining their schemas first makes the pure-Python models importable.
"""
_TV_LIB = None


def import_torchvision():
  """``import torchvision`` after defining the ``nms``/``qnms`` op schemas it expects."""
  global _TV_LIB
  import torch  # pylint: disable=g-import-not-at-top
  if _TV_LIB is None:
    try:
      _TV_LIB = torch.library.Library("torchvision", "DEF")
      _TV_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
      _TV_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    except RuntimeError:  # already defined in this process
      pass
  import torchvision  # pylint: disable=g-import-not-at-top
  return torchvision
