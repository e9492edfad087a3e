"""The rest of torchvision's CNNs against torchvision 0.28 (weights=None, randomized BatchNorm).

As tests/test_models_parity.py: the torch model's state dict goes through a real ``.pth`` file
and ``models.load(name, checkpoint=path)``; max |logit diff| <= 1e-4 * max |logit|.  The torch
model is built the way torchvision builds it for the zoo's weights
(``oracles.torchvision_shim.torchvision_model``: GoogLeNet / Inception V3 with
``transform_input=True`` and their auxiliary heads in the file, MNASNet 0.5 with its file's
version-1 stem).  Small and odd inputs where the architecture allows, one native-size case per
new family.  One or two members per family (with MNASNet 0.5's stem); the others' keys and shapes
are torchvision's in tests/test_models_structure.py.
"""
import jax
import numpy as np
import pytest

from imagenet_cp import models
from torchvision_parity import assert_logits_match, randomize_batch_norm

CASES = [
    ("wide_resnet50_2", 64),
    ("googlenet", 67),
    ("inception_v3", 75),
    ("shufflenet_v2_x0_5", 65),
    ("mobilenet_v2", 63),
    ("mobilenet_v3_large", 64),
    ("mobilenet_v3_small", 65),
    ("mnasnet0_5", 64),
    ("mnasnet1_0", 64),
]


@pytest.mark.parametrize("name,size", CASES)
def test_logits_match_torchvision(name, size, tmp_path):
  assert_logits_match(name, size, tmp_path)


def test_aux_head_keys_are_skipped_but_a_missing_key_is_refused(tmp_path):
  """The zoo skips the released GoogLeNet file's training-only ``aux1``/``aux2`` keys, but
  nothing else: a file that lacks a real key is refused, naming it."""
  torch = pytest.importorskip("torch")
  from imagenet_cp.oracles.torchvision_shim import torchvision_model
  state_dict = torchvision_model("googlenet").state_dict()
  assert any(k.startswith("aux1.") for k in state_dict)
  del state_dict["inception4a.branch1.bn.running_var"]
  path = tmp_path / "googlenet.pth"
  torch.save(state_dict, path)
  with pytest.raises(models.CheckpointError, match="inception4a.branch1.bn.running_var"):
    models.load("googlenet", checkpoint=path)
