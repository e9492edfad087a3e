"""ImageNet-C noise corruptions."""
from imagenet_cp.corruptions.base import Corruption

CORRUPTIONS: dict[str, Corruption] = {}
