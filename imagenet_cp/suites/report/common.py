"""Formatting shared by the report sections: numbers in table cells, titles, saving a figure."""
from __future__ import annotations

import pathlib

import numpy as np

from imagenet_cp.suites.common import atomic_write


def fmt(value, digits: int = 0) -> str:
  return "–" if value is None else f"{value:.{digits}f}"


def pct(value, digits: int = 1) -> str:
  """A fraction as a percentage cell ('–' for none)."""
  return "–" if value is None else f"{100 * value:.{digits}f}"


def num(value, digits: int = 2) -> str:
  return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def title(name: str) -> str:
  return name.replace("_", " ").title().replace("Jpeg", "JPEG")


def pyplot():
  """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save(fig, path: pathlib.Path) -> pathlib.Path:
  """The figure as a PNG at ``path``, written atomically (a full disk leaves no partial plot)."""
  fig.tight_layout()
  try:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"), suffix=".png")
  finally:
    pyplot().close(fig)
  return path
