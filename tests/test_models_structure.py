"""Every torchvision CNN of the zoo has torchvision's state-dict keys and shapes (meta device).

The numeric parity files (test_models_parity*.py, _efficientnet, _convnext, _regnet) run one or
two members of each family through a real ``.pth`` and ``models.load`` (1e-4 relative logits);
the other members differ from those only in hyper-parameters that this file pins down: widths,
depths, group widths, SE layers and, through torchvision's layer indices in the keys, where the
pools and activations sit (VGG's ``features.N``).  torchvision builds each model on torch's meta
device (no weights are made) exactly as the zoo's weights expect it
(``oracles.torchvision_shim.torchvision_model``: MNASNet 0.5's version-1 stem; GoogLeNet and
Inception V3 without the auxiliary heads the zoo skips).  What shapes cannot show is covered
elsewhere: BatchNorm eps per EfficientNet family (B0-B4 1e-5, B5-B7 and V2 1e-3) numerically on
B0, B5 and V2-S; MobileNet V3's per-block activations on both sizes numerically.
"""
import pytest

from imagenet_cp import models
from imagenet_cp.models import torchvision_weights
from torchvision_parity import flax_state_shapes, torch_state_shapes

# Their own structural tests: the Transformers (test_models_parity_transformers.py) and the
# RegNets (test_models_regnet.py: every design's stage widths, depths, group widths and SE ratio
# against torchvision's BlockParams; torchvision's RegNet init cannot run on the meta device).
_ELSEWHERE = ("vit_", "swin_", "maxvit_", "regnet_")
# One name per architecture (weight tags such as .v2 share their model's).
CNNS = sorted({w.model for name, w in torchvision_weights.WEIGHTS.items()
               if name in models.names(ported_only=True) and not w.model.startswith(_ELSEWHERE)})


def test_every_ported_torchvision_cnn_is_checked():
  assert len(CNNS) >= 50 and {"alexnet", "vgg13", "efficientnet_b7", "wide_resnet101_2",
                              "shufflenet_v2_x2_0", "mnasnet0_5", "inception_v3"} <= set(CNNS)


@pytest.mark.parametrize("name", CNNS)
def test_variables_have_torchvision_keys_and_shapes(name):
  torch = pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import torchvision_model
  with torch.device("meta"):
    want = torch_state_shapes(torchvision_model(name, aux=False))
  got = flax_state_shapes(models.build(name), models.spec(name).crop)
  assert sorted(set(want) ^ set(got)) == []
  assert {k: (v, want[k]) for k, v in got.items() if want[k] != v} == {}


def test_vgg_configurations_are_torchvisions():
  from imagenet_cp.models import vgg
  from imagenet_cp.oracles.torchvision_shim import import_torchvision
  cfgs = import_torchvision().models.vgg.cfgs
  assert [tuple(cfgs[k]) for k in "ABDE"] == [vgg.CFG_A, vgg.CFG_B, vgg.CFG_D, vgg.CFG_E]
