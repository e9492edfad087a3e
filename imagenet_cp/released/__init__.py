"""The datasets as Hendrycks & Dietterich released them, read directly (no TensorFlow).

* ``imagenet_c``: ImageNet-C, the five tars (``noise.tar`` ...) or their extracted tree
  ``<corruption>/<severity>/<wnid>/<file>.JPEG``; 224x224 JPEGs used as they are (no resize or
  crop: RobustBench#59), decoded once with PIL.
* ``videos``: ImageNet-P and Tiny-ImageNet-P, ``<perturbation>[_2|_3]/<wnid>/<file>.mp4``
  (H.264), decoded with PyAV to uint8 RGB frames exactly as the decoder returns them; and
  ``write_video``, the original's encoder settings (for stand-ins).
* ``cifar``: CIFAR-10/100-C (``<corruption>.npy`` + ``labels.npy``, severity-major) and
  CIFAR-10/100-P (``<perturbation>.npy`` [N, T, 32, 32, 3]).
* ``tiny_imagenet``: Tiny-ImageNet-C (64x64 tree; the frost folder's 1,000 classes,
  hendrycks/robustness#60, are cut to the 200) and Tiny-ImageNet-P (the video tree at 64).

Every reader lists its files before reading any, checks the layout (clear ``ValueError``s: a
missing folder, an unknown corruption folder, a tar that does not match) and gives an
``identity()`` (layout, the containers' and files' names and sizes as a digest) that a run
records and compares on resume.
"""
from imagenet_cp.released.common import ReleasedError

__all__ = ["ReleasedError"]
