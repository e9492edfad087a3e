"""TFDS builders of imagenet_cp: importing this package registers them with TFDS.

  imagenet_c       ImageNet-C from the ImageNet validation set (manual download)
  imagenet_p       ImageNet-P from the ImageNet validation set (manual download)
  imagenet_c_demo  the same ImageNet-C configs on the packaged demo photos (not ImageNet)
  imagenet_p_demo  the same ImageNet-P configs on the packaged demo photos (not ImageNet)
  cifar10_c, cifar100_c  CIFAR-10-C / CIFAR-100-C from the CIFAR test sets (python tarballs)
  cifar10_p, cifar100_p  CIFAR-10-P / CIFAR-100-P from the same test sets
  tiny_imagenet_c, tiny_imagenet_p  Tiny-ImageNet-C/-P from the Tiny ImageNet validation set
                   (NOT the original's unpublished ImageNet crops) or crops you supply
  imagenet64_c, imagenet64_p  ImageNet 64x64-C/-P from the ImageNet validation set
  imagenet299_c    ImageNet-C at 299 px (the Inception set) from the ImageNet validation set

TFDS has no plugin discovery, so the ``tfds`` command needs ``--imports imagenet_cp.datasets``
(see docs/datasets.md); ``python -m launch.build_datasets`` imports this package itself.
"""
import importlib.util

# TFDS 4.9.10 imports importlib_resources (lazily, in DatasetBuilder.code_path) for every builder
# outside its own tree but declares it only for Python < 3.9; fail here with the fix, not later.
if importlib.util.find_spec("importlib_resources") is None:
  raise ImportError("the imagenet_cp TFDS builders need the 'importlib_resources' package "
                    "(tensorflow-datasets 4.9.10 uses it without declaring it): "
                    "pip install importlib_resources")

from imagenet_cp.datasets.imagenet_c import imagenet_c_dataset_builder  # noqa: E402
from imagenet_cp.datasets.imagenet_c_demo import imagenet_c_demo_dataset_builder  # noqa: E402
from imagenet_cp.datasets.imagenet_p import imagenet_p_dataset_builder  # noqa: E402
from imagenet_cp.datasets.imagenet_p_demo import imagenet_p_demo_dataset_builder  # noqa: E402
from imagenet_cp.datasets.cifar10_c import cifar10_c_dataset_builder  # noqa: E402
from imagenet_cp.datasets.cifar100_c import cifar100_c_dataset_builder  # noqa: E402
from imagenet_cp.datasets.cifar10_p import cifar10_p_dataset_builder  # noqa: E402
from imagenet_cp.datasets.cifar100_p import cifar100_p_dataset_builder  # noqa: E402
from imagenet_cp.datasets.tiny_imagenet_c import tiny_imagenet_c_dataset_builder  # noqa: E402
from imagenet_cp.datasets.tiny_imagenet_p import tiny_imagenet_p_dataset_builder  # noqa: E402
from imagenet_cp.datasets.imagenet64_c import imagenet64_c_dataset_builder  # noqa: E402
from imagenet_cp.datasets.imagenet64_p import imagenet64_p_dataset_builder  # noqa: E402
from imagenet_cp.datasets.imagenet299_c import imagenet299_c_dataset_builder  # noqa: E402

ImagenetC = imagenet_c_dataset_builder.Builder
ImagenetCDemo = imagenet_c_demo_dataset_builder.Builder
ImagenetP = imagenet_p_dataset_builder.Builder
ImagenetPDemo = imagenet_p_demo_dataset_builder.Builder
Cifar10C = cifar10_c_dataset_builder.Builder
Cifar100C = cifar100_c_dataset_builder.Builder
Cifar10P = cifar10_p_dataset_builder.Builder
Cifar100P = cifar100_p_dataset_builder.Builder
TinyImagenetC = tiny_imagenet_c_dataset_builder.Builder
TinyImagenetP = tiny_imagenet_p_dataset_builder.Builder
Imagenet64C = imagenet64_c_dataset_builder.Builder
Imagenet64P = imagenet64_p_dataset_builder.Builder
Imagenet299C = imagenet299_c_dataset_builder.Builder

__all__ = ["Cifar100C", "Cifar100P", "Cifar10C", "Cifar10P", "Imagenet299C", "Imagenet64C",
           "Imagenet64P", "ImagenetC", "ImagenetCDemo", "ImagenetP", "ImagenetPDemo",
           "TinyImagenetC", "TinyImagenetP"]
