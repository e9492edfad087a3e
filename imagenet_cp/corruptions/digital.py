"""ImageNet-C digital corruptions."""
from imagenet_cp.corruptions.base import Corruption

CORRUPTIONS: dict[str, Corruption] = {}
