"""EfficientNet B0-B7 and V2 S/M/L against torchvision 0.28 (random weights through a real .pth).

One full-size case; the rest at small and odd sides (every stride-2 layer then sees odd inputs,
where torch's symmetric padding and TF's "SAME" would differ), the largest variants smallest.
B5-B7 and V2 use BatchNorm eps 1e-3, B0-B4 1e-5: a wrong eps shows in the logits of B0, B5 and
V2-S (one per eps and block family); every variant's keys and shapes (widths, depths) are
torchvision's in tests/test_models_structure.py.
"""
import pytest

from imagenet_cp import models
from imagenet_cp.models import torchvision_weights
from torchvision_parity import assert_logits_match

CASES = [
    ("efficientnet_b0", 224),
    ("efficientnet_b0", 33),
    ("efficientnet_b5", 57),
    ("efficientnet_v2_s", 64),
]


@pytest.mark.parametrize("name,size", CASES)
def test_logits_match_torchvision(name, size, tmp_path):
  assert_logits_match(name, size, tmp_path)


def test_every_efficientnet_weight_is_registered_with_its_architecture():
  """Every torchvision EfficientNet weight (efficientnet_b1.v2 too) is a zoo name that builds
  its model's architecture, and the B variants differ (scaling, eps)."""
  weights = [w for w in torchvision_weights.WEIGHTS.values()
             if w.model.startswith("efficientnet_")]
  assert len(weights) == 12
  for w in weights:
    assert models.build(w.name) == models.build(w.model), w.name
  builds = [models.build(f"efficientnet_b{i}") for i in range(8)]
  assert all(a != b for i, a in enumerate(builds) for b in builds[i + 1:])
