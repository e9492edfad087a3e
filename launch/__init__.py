"""Running at scale: Beam runners for dataset builds, multi-host evaluation."""
