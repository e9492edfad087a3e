"""ConvNeXt T/S/B/L against torchvision 0.28 (random weights through a real .pth).

LayerNorm affines, the zero-initialised biases and the 1e-6 layer scales get random values, so
that every branch shows in the logits.  One full-size case; 70 px leaves remainders that the
4x4/4 stem and the 2x2/2 downsampling convs drop (floor), as torch does.  S/B/L differ from T only in widths and depths: their keys and shapes are
torchvision's in tests/test_models_structure.py.
"""
import pytest

from torchvision_parity import assert_logits_match

CASES = [
    ("convnext_tiny", 224),
    ("convnext_tiny", 70),
]


@pytest.mark.parametrize("name,size", CASES)
def test_logits_match_torchvision(name, size, tmp_path):
  assert_logits_match(name, size, tmp_path)
