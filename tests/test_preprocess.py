"""imagenet_cp.preprocess equals torchvision's Resize(256) + CenterCrop(224) on PIL images."""
import numpy as np
import pytest
from PIL import Image

from conftest import import_torchvision, photo
from imagenet_cp.preprocess import preprocess, resize_short_side


def _torchvision_reference(pil):
  tv = import_torchvision()
  t = tv.transforms.Compose([tv.transforms.Resize(256), tv.transforms.CenterCrop(224)])
  return np.asarray(t(pil.convert("RGB")))


def _inputs():
  rng = np.random.default_rng(0)
  yield "chelsea", Image.fromarray(photo("chelsea"))
  yield "coffee_400x600", Image.fromarray(photo("coffee"))
  yield "rocket_427x640", Image.fromarray(photo("rocket"))
  yield "portrait_601x301", Image.fromarray(rng.integers(0, 256, (601, 301, 3), dtype=np.uint8))
  yield "small_upscaled_150x97", Image.fromarray(rng.integers(0, 256, (150, 97, 3), dtype=np.uint8))
  yield "grayscale", Image.fromarray(photo("chelsea")[..., 0])
  rgba = np.concatenate([photo("coffee"), np.full(photo("coffee").shape[:2] + (1,), 128, np.uint8)], -1)
  yield "rgba", Image.fromarray(rgba)
  yield "palette", Image.fromarray(photo("rocket")).convert("P", palette=Image.ADAPTIVE)


@pytest.mark.parametrize("name,pil", list(_inputs()), ids=[n for n, _ in _inputs()])
def test_bit_exact_to_torchvision(name, pil):
  ours = preprocess(pil)
  assert ours.shape == (224, 224, 3) and ours.dtype == np.uint8
  np.testing.assert_array_equal(ours, _torchvision_reference(pil), err_msg=name)


def test_ndarray_input_equals_pil_input():
  np.testing.assert_array_equal(preprocess(photo("coffee")), preprocess(Image.fromarray(photo("coffee"))))


def test_resize_short_side_keeps_aspect():
  assert resize_short_side(photo("coffee")).shape == (256, 384, 3)   # 400x600 -> 256x384
  assert resize_short_side(photo("rocket")).shape == (256, 383, 3)   # int(256 * 640 / 427)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), "shape"),
    (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
])
def test_bad_input(bad, match):
  with pytest.raises(ValueError, match=match):
    preprocess(bad)


@pytest.mark.parametrize("shape", [None, (300, 451), (224, 224), (256, 300), (250, 260),
                                   (600, 256), (1000, 230)])
def test_preprocess_on_device_equals_the_pil_path(shape):
  """Bit for bit with ``preprocess`` (PIL) on real photos of several shapes: both shorter-side
  orientations, a side already 256 (one pass skipped), upsampling (224, 230) and downsampling."""
  import jax
  from imagenet_cp.preprocess_device import preprocess_on_device
  image = photo("astronaut") if shape is None else np.asarray(
      Image.fromarray(photo("coffee")).resize(shape[::-1], Image.BICUBIC))
  got = jax.jit(preprocess_on_device)(image)
  np.testing.assert_array_equal(np.asarray(got), preprocess(image))
  batch = np.stack([image, image[::-1]])
  np.testing.assert_array_equal(np.asarray(preprocess_on_device(batch))[1],
                                preprocess(np.ascontiguousarray(image[::-1])))


def test_preprocess_on_device_refuses_bad_input():
  from imagenet_cp.preprocess_device import preprocess_on_device
  with pytest.raises(ValueError, match="uint8 RGB"):
    preprocess_on_device(np.zeros((300, 300, 3), np.float32))
  with pytest.raises(ValueError, match="at least 224x224"):
    preprocess_on_device(np.zeros((100, 100, 3), np.uint8), resize_to=100)
