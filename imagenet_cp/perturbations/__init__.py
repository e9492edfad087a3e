"""The 14 ImageNet-P perturbation sequences behind one entry point, ``perturb``."""
from __future__ import annotations

# The paper's 10 test sequences (Table 3 order), then the 4 validation sequences.
TEST_PERTURBATIONS = (
    "gaussian_noise", "shot_noise", "motion_blur", "zoom_blur", "snow",
    "brightness", "translate", "rotate", "tilt", "scale",
)
VALIDATION_PERTURBATIONS = ("speckle_noise", "gaussian_blur", "spatter", "shear")
PERTURBATIONS = TEST_PERTURBATIONS + VALIDATION_PERTURBATIONS


def perturb(image, name: str, key, difficulty: int = 1):
  """Resize(256) uint8 image [256, W, 3] or [H, 256, 3] -> uint8 [T, 224, 224, 3]."""
  raise NotImplementedError("ImageNet-P perturbations are not implemented yet")
