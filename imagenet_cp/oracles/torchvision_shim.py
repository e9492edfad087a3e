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


def torchvision_model(name: str, aux: bool = True):
  """torchvision's model for zoo name ``name`` (``resnet50``, ``resnet50.v2``, ``googlenet`` ...)
  with random weights, in eval mode, built the way torchvision builds it for those weights:
  GoogLeNet / Inception V3 with ``transform_input=True`` (and, with ``aux``, the training-only
  auxiliary heads that their released files hold), MNASNet 0.5 with the version-1 stem of its
  released file, a SWAG-E2E ViT at its ``image_size``."""
  import warnings  # pylint: disable=g-import-not-at-top
  from imagenet_cp.models import torchvision_weights  # pylint: disable=g-import-not-at-top
  tv = import_torchvision()
  weight = torchvision_weights.WEIGHTS[name]
  kwargs = {}
  if weight.model in ("googlenet", "inception_v3"):
    kwargs = {"transform_input": True, "init_weights": True, "aux_logits": aux}
  elif weight.model.startswith("vit_"):
    kwargs = {"image_size": weight.crop}
  model = getattr(tv.models, weight.model)(weights=None, **kwargs)
  if name == "mnasnet0_5":
    # torchvision's loader swaps in the version-1 stem when it reads a version-1 file; an empty
    # version-1 state dict triggers just that swap (the new layers keep torch's default init).
    with warnings.catch_warnings():  # its "checkpoint saved using the previous version" notice
      warnings.simplefilter("ignore", UserWarning)
      model._load_from_state_dict(  # pylint: disable=protected-access
          {}, "", {"version": 1}, False, [], [], [])
  return model.eval()
