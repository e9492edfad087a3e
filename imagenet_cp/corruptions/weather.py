"""ImageNet-C weather corruptions."""
from imagenet_cp.corruptions.base import Corruption

CORRUPTIONS: dict[str, Corruption] = {}
