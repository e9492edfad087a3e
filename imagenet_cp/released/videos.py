"""ImageNet-P and Tiny-ImageNet-P as released: ``<perturbation>[_2|_3]/<wnid>/<file>.mp4``.

The original (``make_imagenet_p.py``, ``make_tinyimagenet_p.py``) wrote each sequence's frames as
PNGs and ran ``ffmpeg -r 1 -framerate 1 -i img%01d.png -vcodec libx264 <opts> -preset veryslow``
with ``<opts>`` = ``-tune grain`` (default CRF) for the noise sequences and ``-crf 20`` for the
others, no ``-pix_fmt`` (so RGB PNGs give yuv444p, High 4:4:4 Predictive).  ``write_video`` does
the same through PyAV's encoder; ``read_video`` decodes with PyAV and returns the frames as uint8
RGB exactly as the decoder gives them (``VideoFrame.to_ndarray(format='rgb24')``).

Difficulty: the noise sequences' difficulties 2 and 3 are other videos (the ``_2`` / ``_3``
folders); for the others the difficulty is a stride the metrics apply to the one video.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Sequence

import numpy as np

from imagenet_cp.perturbations import NOISE_PERTURBATIONS, PERTURBATIONS
from imagenet_cp.released.common import WNID, ReleasedError, files_digest
from imagenet_cp.sources import SourceFile

SUFFIX = ".mp4"
# The original's ffmpeg options (see the module docstring).
NOISE_OPTIONS = {"tune": "grain", "preset": "veryslow"}
OTHER_OPTIONS = {"crf": "20", "preset": "veryslow"}


def _av():
  try:
    import av  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise ReleasedError("reading the released MP4s needs PyAV: pip install 'imagenet-cp[released]'"
                        f" (or pip install av) ({err})") from err
  return av


def folder_name(name: str, difficulty: int) -> str:
  """The released folder of a sequence at a difficulty: ``<noise>_2`` / ``_3``, else ``name``."""
  return f"{name}_{difficulty}" if name in NOISE_PERTURBATIONS and difficulty > 1 else name


def write_video(frames: np.ndarray, path, noise: bool) -> None:
  """uint8 [T, H, W, 3] RGB -> an H.264 MP4 at 1 fps, as the original's ffmpeg call wrote it."""
  av = _av()
  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f"write_video takes uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  with av.open(str(path), "w", format="mp4") as container:
    stream = container.add_stream("libx264", rate=1,
                                  options=dict(NOISE_OPTIONS if noise else OTHER_OPTIONS))
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = "yuv444p"  # what ffmpeg picks for RGB PNG input without -pix_fmt
    for t, frame in enumerate(frames):
      video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
      video_frame.pts = t
      container.mux(stream.encode(video_frame))
    container.mux(stream.encode())


def read_video(path, size: int | None = None) -> np.ndarray:
  """uint8 [T, H, W, 3]: every frame as PyAV decodes it to RGB; ReleasedError for an unreadable
  file or (with ``size``) frames that are not ``size`` x ``size``."""
  av = _av()
  try:
    with av.open(str(path)) as container:
      frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
  except (av.error.FFmpegError, OSError, IndexError) as err:
    raise ReleasedError(f"{path}: cannot decode the video ({err})") from err
  if not frames:
    raise ReleasedError(f"{path}: the video holds no frame")
  video = np.stack(frames)
  if size is not None and video.shape[1:3] != (size, size):
    raise ReleasedError(f"{path}: frames are {video.shape[2]}x{video.shape[1]}, the released "
                        f"ones {size}x{size}")
  return video


@dataclasses.dataclass
class VideoTree:
  """A released P set under ``root``; ``names``: its sequences; ``size``: the frames' side."""
  root: pathlib.Path
  names: tuple[str, ...]
  size: int

  def __post_init__(self):
    self.root = pathlib.Path(self.root).expanduser()
    if not self.root.is_dir():
      raise ReleasedError(f"{self.root} is not a folder (the released video tree)")
    known = {folder_name(n, d) for n in self.names for d in (1, 2, 3)}
    unknown = [p.name for p in self.root.iterdir() if p.is_dir() and p.name not in known
               and not p.name.startswith(".")]
    if unknown:
      raise ReleasedError(f"{self.root} holds unknown perturbation folder(s) {sorted(unknown)}; "
                          f"expected <name>[_2|_3] with name one of {', '.join(self.names)}")

  def available(self) -> list[str]:
    return [n for n in self.names if (self.root / n).is_dir()]

  def files(self, name: str, difficulty: int) -> tuple[SourceFile, ...]:
    """The videos of ``name`` at ``difficulty`` (its folder), sorted by ``<wnid>/<file>``."""
    if name not in self.names:
      raise ReleasedError(f"unknown perturbation {name!r}; expected one of {', '.join(self.names)}")
    folder = self.root / folder_name(name, difficulty)
    if not folder.is_dir():
      raise ReleasedError(f"{folder} is missing (expected <perturbation>[_2|_3]/<wnid>/"
                          f"<file>{SUFFIX} under {self.root})")
    files = []
    for wnid in sorted(os.listdir(folder)):
      sub = folder / wnid
      if sub.is_dir():
        if not WNID.match(wnid):
          raise ReleasedError(f"{sub} is not a wnid folder (n########): not the released layout")
        files += [SourceFile(f"{wnid}/{f}", f, -1, (sub / f).stat().st_size, str(sub / f))
                  for f in sorted(os.listdir(sub)) if f.endswith(SUFFIX)]
    if not files:
      raise ReleasedError(f"{folder} holds no <wnid>/*{SUFFIX} video")
    return tuple(files)

  def identity(self, cells: Sequence[tuple[str, Sequence[SourceFile]]]) -> dict:
    return {"layout": "tree", "files_sha256": files_digest(cells)}

  def read(self, files: Sequence[SourceFile]) -> np.ndarray:
    """uint8 [n, T, size, size, 3]; ReleasedError when the videos differ in length."""
    videos = [read_video(f.path, self.size) for f in files]
    lengths = {v.shape[0] for v in videos}
    if len(lengths) > 1:
      raise ReleasedError(f"videos of one sequence differ in length ({sorted(lengths)} frames; "
                          f"first: {files[0].path}): a file is cut short or of another set")
    return np.stack(videos)


def imagenet_p(root) -> VideoTree:
  """ImageNet-P (224) in ``root``: the tree, or a folder holding ``ImageNet-P/``."""
  root = pathlib.Path(root).expanduser()
  if (root / "ImageNet-P").is_dir():
    root = root / "ImageNet-P"
  return VideoTree(root, tuple(PERTURBATIONS), 224)
