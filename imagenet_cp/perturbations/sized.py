"""The 14 sequences of the other -P sets (imagenet299, tiny_imagenet, imagenet64, cifar).

Each sequence is one function of a set's constant table (``perturbations.sets``) and the
contract of ``perturbations.base`` (``draw(key, difficulty)``, ``apply(canvas, height, width,
draws, difficulty)``), so one implementation serves every size; the building blocks are the
ImageNet-P ones (ImageMagick motion blur, torchvision 0.2.x affine through PIL, OpenCV's
warpPerspective, the spatter rendering, the keyed noise words).  ImageNet-P itself (224) keeps
its own tuned registry (``blur``, ``noise``, ...), built on the same table.

What differs from ImageNet-P besides the constants (all from the scripts):

- the set input and its crop: tiny_imagenet crops its Resize(64) image like ImageNet-P's
  Resize(256) / CenterCrop(224); imagenet64 (64x64), cifar (32x32) and imagenet299 (299x299)
  take the frame-sized image itself;
- sequences that start from the source photo (``SequenceSet.source_sequences``): imagenet299's
  translate, rotate, tilt and shear warp the photo and then take its ``resized_center_crop``;
  tiny_imagenet's and imagenet64's motion_blur blurs the photo and ``Resize(64)``s each frame
  (shorter side 64, uncropped: frames are [64, W'] for a landscape photo).  Their input has the
  photo's own (static) shape: ``canvas`` is the photo, ``height``/``width`` are ignored, and
  ``perturb_batch`` refuses them;
- PIL's bilinear resize of those two paths is done in JAX, bit for bit (its fixed-point
  two-pass algorithm, ``ops.resize.pil_bilinear_resize``).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp.ops import border, color, filters, fusion, geometry, resize, rng, sampling, zoom
from imagenet_cp.ops import spatter as spatter_ops
from imagenet_cp.ops.convert import uint8_clipped, uint8_from_unit
from imagenet_cp.perturbations import base, blur, digital, noise, weather
from imagenet_cp.perturbations.sets import NUM_FRAMES, SETS, SOURCE, SequenceSet
from imagenet_cp.preprocess import short_side_size

# ---------------------------------------------------------------------------------------------
# The source photo's sizes


def crop_box(h: int, w: int, scale: float = 0.875) -> tuple[int, int, int, int]:
  """The 299 script's ``center_crop(img, scale)``: (top, left, th, tw) with ``th = int(h *
  scale)`` at ``int(round((h - th) / 2.))``."""
  th, tw = int(h * scale), int(w * scale)
  return int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw


# ---------------------------------------------------------------------------------------------
# Draws


def frame_bits(frame_key: jax.Array, shape) -> jax.Array:
  """uint32 ``shape``: ``noise.hash_words`` of the frame key's data over the values' indices (HWC
  order); ``noise.frame_bits`` for any frame size."""
  k0, k1 = jax.random.key_data(frame_key)
  counters = jnp.arange(int(np.prod(shape)), dtype=jnp.uint32)
  return jnp.reshape(noise.hash_words(k0, k1, counters), shape)


def _frame_shape(s: SequenceSet) -> tuple[int, int, int]:
  return (s.size, s.size, 3)


def normal_draws(s: SequenceSet, key: jax.Array, difficulty) -> jax.Array:
  """Standard normals of frames 1..30, float32 [30, S, S, 3]; frame t from ``fold_in(key, t)``."""
  del difficulty
  return jax.vmap(lambda k: noise.bits_to_normal(frame_bits(k, _frame_shape(s))))(
      base.frame_keys(key, noise.NOISY_FRAMES))


def uniform_draws(s: SequenceSet, key: jax.Array, difficulty) -> jax.Array:
  """Uniforms in [0, 1) of frames 1..30, float32 [30, S, S, 3] (shot noise's inverse CDF)."""
  del difficulty
  return jax.vmap(lambda k: rng.uniform_from_bits(frame_bits(k, _frame_shape(s))))(
      base.frame_keys(key, noise.NOISY_FRAMES))


def layer_draw(s: SequenceSet, key: jax.Array, difficulty) -> jax.Array:
  """The one standard-normal layer of snow and spatter, float32 [S, S] (from ``key`` itself)."""
  del difficulty
  return jax.random.normal(key, (s.size, s.size), jnp.float32)


# ---------------------------------------------------------------------------------------------
# Noise


def _crop(s: SequenceSet, canvas, height, width) -> jax.Array:
  return base.center_crop(canvas, height, width, s.size)


def gaussian_noise(s: SequenceSet, canvas, height, width, normals, difficulty) -> jax.Array:
  """``ToPILImage(clamp(x + sigma * randn_like(x), 0, 1))`` (truncation), frame 0 ``ToPILImage(x)``
  (cifar: the image itself, the same bytes)."""
  x = base.to_unit(_crop(s, canvas, height, width))
  noisy = jnp.clip(x[None] + base.pick(s.gaussian_sigma, difficulty) * normals, 0.0, 1.0)
  return uint8_clipped(jnp.concatenate([x[None], noisy]) * 255.0)


def speckle_noise(s: SequenceSet, canvas, height, width, normals, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(x + x * normal(scale=sigma), 0, 1))``; frame 0 the clean image."""
  crop = _crop(s, canvas, height, width)
  x = base.to_unit(crop)
  noisy = jnp.clip(x[None] + x[None] * (base.pick(s.speckle_sigma, difficulty) * normals), 0, 1)
  return base.with_clean_frame(crop, uint8_clipped(255.0 * noisy))


def shot_counts(s: SequenceSet, canvas, height, width, uniforms, difficulty) -> jax.Array:
  """The Poisson counts int32 [30, S, S, 3] of the clean image's rates (``noise.poisson_counts``
  at the set's rates)."""
  return noise.poisson_counts(uniforms, _crop(s, canvas, height, width), difficulty,
                              tuple(s.shot_lambda))


def shot_noise(s: SequenceSet, canvas, height, width, uniforms, difficulty) -> jax.Array:
  """``np.uint8(255 * clip(poisson(x * lambda) / lambda, 0, 1))``; frame 0 the clean image."""
  counts = shot_counts(s, canvas, height, width, uniforms, difficulty)
  table = jnp.asarray(noise.shot_frame_bytes(tuple(s.shot_lambda)))[jnp.clip(difficulty, 1, 3) - 1]
  return base.with_clean_frame(_crop(s, canvas, height, width), table[counts])


# ---------------------------------------------------------------------------------------------
# Blur


def motion_blur(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """ImageMagick ``motion_blur(radius, sigma, angle)`` of the image at every frame's angle.

  tiny_imagenet / imagenet64 (``motion_resize_short_side``): of the source photo (``canvas``
  is the photo), each frame then ``Resize(64)``d: uint8 [31, 64, W', 3].
  """
  del draws, difficulty
  if s.inputs("motion_blur") != SOURCE:
    return blur.magick_motion_blur_frames(_crop(s, canvas, height, width), s.motion_radius,
                                          s.motion_sigma, s.motion_angles)
  frames = blur.magick_motion_blur_frames(canvas, s.motion_radius, s.motion_sigma,
                                          s.motion_angles)
  size = short_side_size(canvas.shape[0], canvas.shape[1], s.motion_resize_short_side)
  return jax.vmap(lambda f: resize.pil_bilinear_resize(f, size))(frames)


def _affine_params(angles=None, scales=None, shears=None):
  """(inverse linear parts float32 [T, 4], translations float32 [T, 2]) of torchvision 0.2.x
  ``affine`` frames without translation; a None field is its identity value."""
  n = len(next(v for v in (angles, scales, shears) if v is not None))
  angles = angles if angles is not None else (0.0,) * n
  scales = scales if scales is not None else (1.0,) * n
  shears = shears if shears is not None else (0.0,) * n
  linear = np.stack([geometry.tv02_inverse_linear(float(a), float(sc), float(sh))
                     for a, sc, sh in zip(angles, scales, shears)])
  return linear.astype(np.float32), np.zeros((n, 2), np.float32)


def pil_inside_masks(size: int, scales) -> tuple[np.ndarray, np.ndarray]:
  """PIL's inside test of scale-only affine frames of a ``size x size`` image, in float64 as PIL
  and torchvision 0.2.x compute it: bool [T, size] per output column (``0 <= a0 (x + .5) + a2 <
  size``) and per row.

  A scale-only frame maps a column to one source column, and where the shrunk image's edge
  falls exactly on a pixel (e.g. imagenet299's scale 0.45: ``(x - 149.5) / 0.45 + 150 = 0`` at
  x = 82) the last bit of PIL's double arithmetic puts the whole column inside or outside; a
  float32 coordinate decides it the other way about half the time (a black column or row
  instead of an edge one).  The host computes the test exactly as PIL does instead.
  """
  cols, rows = [], []
  centre = np.arange(size, dtype=np.float64) + 0.5
  for sc in scales:
    a0, a1, a2, a3, a4, a5 = geometry.tv02_affine_matrix(size, size, 0.0, (0, 0), float(sc), 0.0)
    assert a1 == 0 and a3 == 0, "only scale-only frames are separable"
    xin, yin = a0 * centre + a2, a4 * centre + a5
    cols.append((xin >= 0) & (xin < size))
    rows.append((yin >= 0) & (yin < size))
  return np.stack(cols), np.stack(rows)


def _affine_frames(s: SequenceSet, canvas, height, width, params, bilinear: bool,
                   scales=None) -> jax.Array:
  """``[CenterCrop(S)(affine(img, *p)) for p in params]`` of the set input: uint8 [T, S, S, 3].

  ``scales``: the frames are scale-only with these scales; on a fixed-size set input the
  inside test then follows PIL's float64 one exactly (``pil_inside_masks``): where it says
  inside the float32 coordinate is clipped into the image, elsewhere moved outside (only
  coordinates on the knife edge change).
  """
  linear, translate = params
  exact = scales is not None and s.fixed_input()
  masks = pil_inside_masks(s.size, scales) if exact else (np.zeros(len(linear)),) * 2
  below = np.nextafter(np.float32(s.size), np.float32(0))

  def frame(lin, tr, col_in, row_in):
    if not exact:
      return geometry.tv02_affine_crop(canvas, height, width, lin, tr, bilinear=bilinear,
                                       size=s.size)
    xin, yin = geometry.pil_affine_source(s.size, s.size, lin, tr, s.size)
    xin = jnp.where(col_in[None, :], jnp.clip(xin, 0.0, below), -1.0)
    yin = jnp.where(row_in[:, None], jnp.clip(yin, 0.0, below), -1.0)
    sample = geometry.pil_sample_bilinear if bilinear else geometry.pil_sample_nearest
    return sample(canvas, s.size, s.size, xin, yin)

  return jax.vmap(frame)(jnp.asarray(linear), jnp.asarray(translate), jnp.asarray(masks[0]),
                         jnp.asarray(masks[1]))


def zoom_blur(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """Running average of the zoomed frames (``ToPILImage(avg / (i + 1))``), frame 0 the clean
  crop; built frame on frame in float32 as ``avg += ToTensor(z)``."""
  del draws, difficulty
  crop = _crop(s, canvas, height, width)
  zoomed = _affine_frames(s, canvas, height, width, _affine_params(scales=s.zoom_scales), True,
                          scales=s.zoom_scales)

  def step(t, total):
    total = total + base.to_unit(zoomed[t])
    return total, uint8_clipped((total / (t + 2).astype(jnp.float32)) * 255.0)

  return base.frames_after_clean(crop, len(s.zoom_scales), step, base.to_unit(crop))


def gaussian_blur(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """``np.uint8(255 * gaussian(x, sigma_i, multichannel=True, truncate))`` (SciPy: mode
  'nearest', rows then columns, each kernel's symmetric taps added in pairs)."""
  del draws, difficulty
  x = base.to_unit(_crop(s, canvas, height, width))
  table = filters.gaussian_kernel_table(s.blur_sigmas, s.blur_truncate)
  radius = (table.shape[1] - 1) // 2
  padded = border.pad_spatial(x, radius, "nearest")

  def frame(kernel):
    rows = filters.correlate_windows(padded, kernel, 0, s.size, pairs=True)
    return uint8_clipped(255.0 * filters.correlate_windows(rows, kernel, 1, s.size, pairs=True))

  return jnp.stack([frame(kernel) for kernel in table])


# ---------------------------------------------------------------------------------------------
# Weather and digital


def snow(s: SequenceSet, canvas, height, width, normals, difficulty) -> jax.Array:
  """One snow layer (``normal(loc, scale)`` -> ``clipped_zoom`` -> threshold -> 'L' PNG) motion-
  blurred at every frame's angle, added with its 180-degree rotation to the whitened scene."""
  del difficulty
  scene = weather.snow_scene(_crop(s, canvas, height, width))
  layer = s.snow_loc + s.snow_scale * normals
  layer = zoom.clipped_zoom(layer[..., None], s.snow_zoom)[..., 0]
  layer = uint8_from_unit(jnp.where(layer < s.snow_threshold, 0.0, layer))
  layers = blur.magick_motion_blur_frames(layer, s.snow_radius, s.snow_sigma, s.snow_angles)

  def frame(blurred):
    flakes = base.to_unit(blurred)[..., None]
    return uint8_from_unit(scene + flakes + jnp.rot90(flakes, 2))

  return jax.vmap(frame)(layers)


def drift(layer, weights) -> jax.Array:
  """``np.apply_along_axis(np.convolve(col, weights, mode='same'), axis=0)`` (zero outside):
  ``out[r] = sum_k weights[k] * layer[r + (M - 1) // 2 - k]`` for M weights."""
  h = layer.shape[0]
  m = len(weights)
  after = (m - 1) // 2
  padded = jnp.pad(layer, ((m - 1 - after, after), (0, 0)))
  out = None
  for k, wk in enumerate(weights):
    term = np.float32(wk) * padded[m - 1 - k:m - 1 - k + h]
    out = term if out is None else out + term
  return out


def spatter(s: SequenceSet, canvas, height, width, normals, difficulty) -> jax.Array:
  """Water drops of one liquid layer (``gaussian(normal(loc, scale), sigma)``, thresholded),
  rendered, then drifted down (``drift``), frame on frame."""
  del difficulty
  x = base.to_unit(_crop(s, canvas, height, width))
  layer = filters.gaussian_filter(s.spatter_loc + s.spatter_scale * normals, s.spatter_sigma,
                                  mode="nearest", truncate=4.0)
  layer = jnp.where(layer < s.spatter_threshold, 0.0, layer)

  def step(liquid, _):
    frame = uint8_clipped(spatter_ops.render_water(x, liquid, s.spatter_intensity))
    return drift(liquid, s.spatter_drift), frame

  return jax.lax.scan(step, layer, None, length=NUM_FRAMES)[1]


def brightness(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """skimage HSV: ``V = clip(V + c_i, 0, 1)``, ``np.uint8(hsv2rgb * 255)``."""
  del draws, difficulty
  hsv = color.rgb2hsv(base.to_unit(_crop(s, canvas, height, width)))
  factors = digital.hsv_channel_factors(hsv)
  value = hsv[..., 2:3]
  return jax.lax.map(lambda c: uint8_clipped((jnp.clip(value + c, 0.0, 1.0) * factors) * 255.0),
                     jnp.asarray(s.brightness_offsets, jnp.float32))


# ---------------------------------------------------------------------------------------------
# Geometric: the set input


def translate(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """``CenterCrop(S)(affine(img, 0, (tx, 0), 1, 0))`` (NEAREST, integer shifts: a window of the
  zero-padded image; imagenet299: of the source photo, then its ``resized_center_crop``)."""
  del draws
  shift = max(abs(int(t)) for t in s.translate_shifts)
  if s.inputs("translate") == SOURCE:
    return _source_frames(s, canvas, [("shift", int(t)) for t in s.translate_shifts], difficulty)
  padded = jnp.pad(geometry.zero_outside(canvas, height, width), ((0, 0), (shift, shift), (0, 0)))
  top, left = geometry.center_crop_offsets(height, width, s.size)
  band = jax.lax.dynamic_slice(padded, (top, left, 0), (s.size, s.size + 2 * shift, 3))
  return jnp.stack([band[:, shift - int(t):shift - int(t) + s.size] for t in s.translate_shifts])


def _bilinear_affine(s: SequenceSet, name: str, params, canvas, height, width,
                     difficulty) -> jax.Array:
  """Bilinear torchvision 0.2.x ``affine`` frames (``_affine_params``) then the set's crop; of
  the source photo, then its ``resized_center_crop``, where ``name`` starts from it."""
  if s.inputs(name) == SOURCE:
    return _source_frames(s, canvas, [("affine", lin, tr) for lin, tr in zip(*params)],
                          difficulty)
  return _affine_frames(s, canvas, height, width, params, True)


def rotate(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """``affine(img, angle_i, (0, 0), 1., 0, BILINEAR)`` then the set's crop."""
  del draws
  return _bilinear_affine(s, "rotate", _affine_params(angles=s.rotate_angles), canvas, height,
                          width, difficulty)


def shear(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """``affine(img, 0, (0, 0), 1., shear_i, BILINEAR)`` (torchvision 0.2.x's x-shear), cropped."""
  del draws
  return _bilinear_affine(s, "shear", _affine_params(shears=s.shear_angles), canvas, height,
                          width, difficulty)


def scale(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """``CenterCrop(S)(affine(img, 0, (0, 0), scale_i, 0, BILINEAR))`` (black where the shrunk
  image leaves no source)."""
  del draws, difficulty
  return _affine_frames(s, canvas, height, width, _affine_params(scales=s.scale_factors), True,
                        scales=s.scale_factors)


def _tilt_sample(image, map_x, map_y) -> jax.Array:
  """cv2.warpPerspective's sampling as the original's OpenCV 3.4 did it: source coordinates
  rounded to 1/32 pixel, 15-bit weights, black border (``sampling.cv2_remap_fixed_black``)."""
  return sampling.cv2_remap_fixed_black(image, sampling.cv2_quantize(map_x),
                                        sampling.cv2_quantize(map_y))


def _tilt_rotations(s: SequenceSet) -> np.ndarray:
  return np.stack([geometry.tilt_rotation(float(d)) for d in s.tilt_degrees]).astype(np.float32)


def tilt(s: SequenceSet, canvas, height, width, draws, difficulty) -> jax.Array:
  """``CenterCrop(S)(cv2.warpPerspective(x, P2 T RX RY P1, (w, h)))``, OpenCV 3.4's 1/32-pixel
  INTER_LINEAR with a black border (as ImageNet-P's tilt, ``geometric.tilt``)."""
  del draws
  if s.inputs("tilt") == SOURCE:
    return _source_frames(s, canvas, [("tilt", r) for r in _tilt_rotations(s)], difficulty)
  image = geometry.zero_outside(canvas, height, width)

  def frame(rotation):
    return _tilt_sample(image, *geometry.tilt_source(height, width, rotation, s.size))

  return jax.vmap(frame)(jnp.asarray(_tilt_rotations(s)))


# ---------------------------------------------------------------------------------------------
# Geometric: the source photo, then imagenet299's resized_center_crop


def _region(grid, h: int, w: int, top: int, left: int, th: int, tw: int):
  """Rows [top, top + th) and columns [left, left + tw) of a coordinate grid that ``geometry``
  computed for the centred square of side ``max(th, tw)``."""
  side = max(th, tw)
  top_s, left_s = geometry.center_crop_offsets(h, w, side)
  return grid[top - top_s:top - top_s + th, left - left_s:left - left_s + tw]


def _source_frames(s: SequenceSet, photo, frames, difficulty) -> jax.Array:
  """``resized_center_crop(warp_i(photo))`` for every frame: only the 0.875 crop of each warped
  photo is computed, then PIL's bilinear resize to S x S.  ``frames``: static per-frame warps,
  ("shift", tx) (NEAREST translate), ("affine", linear, translate) (bilinear torchvision 0.2.x
  affine) or ("tilt", rotation).  ``difficulty`` (traced, >= 1) is only the trip count of
  ``fusion.computed_apart``: fused into the resize, XLA:CPU recomputed each warped pixel for
  every resize tap that reads it (rotate 1.9 s -> see docs/fidelity/perturbations.md#speed)."""
  if frames[0][0] == "shift":  # windows of the photo: nothing to recompute
    regions = _source_regions(photo, frames)
  else:
    regions = fusion.computed_apart(lambda p: _source_regions(p, frames), difficulty, photo)
  return jax.vmap(lambda r: resize.pil_bilinear_resize(r, (s.size, s.size)))(regions)


def _source_regions(photo, frames) -> jax.Array:
  """The 0.875 crop of every warped photo (``_source_frames``): uint8 [T, th, tw, 3]."""
  h, w = photo.shape[:2]
  top, left, th, tw = crop_box(h, w)
  side = max(th, tw)
  kind = frames[0][0]
  if kind == "shift":
    shift = max(abs(t) for _, t in frames)
    padded = jnp.pad(photo, ((0, 0), (shift, shift), (0, 0)))
    return jnp.stack([padded[top:top + th, left + shift - t:left + shift - t + tw]
                      for _, t in frames])
  if kind == "affine":
    linear = jnp.asarray(np.stack([f[1] for f in frames]))
    translate = jnp.asarray(np.stack([f[2] for f in frames]))
    padded = geometry.pil_edge_padded(photo, h, w)

    def affine_region(lin, tr):
      xin, yin = geometry.pil_affine_source(h, w, lin, tr, side)
      xin, yin = (_region(g, h, w, top, left, th, tw) for g in (xin, yin))
      tap, dx, dy = geometry.pil_bilinear_taps(photo.shape, h, w, xin, yin)
      return geometry.pil_interpolate(padded, photo.shape, tap, dx, dy)

    return jax.vmap(affine_region)(linear, translate)

  def tilt_region(rotation):
    map_x, map_y = geometry.tilt_source(h, w, rotation, side)
    return _tilt_sample(photo, *(_region(g, h, w, top, left, th, tw) for g in (map_x, map_y)))

  return jax.vmap(tilt_region)(jnp.asarray(np.stack([f[1] for f in frames])))


# ---------------------------------------------------------------------------------------------
# Registries


_SEQUENCES = {
    "gaussian_noise": (gaussian_noise, normal_draws), "shot_noise": (shot_noise, uniform_draws),
    "motion_blur": (motion_blur, None), "zoom_blur": (zoom_blur, None), "snow": (snow, layer_draw),
    "brightness": (brightness, None), "translate": (translate, None), "rotate": (rotate, None),
    "tilt": (tilt, None), "scale": (scale, None), "speckle_noise": (speckle_noise, normal_draws),
    "gaussian_blur": (gaussian_blur, None), "spatter": (spatter, layer_draw),
    "shear": (shear, None),
}


def registry(s: SequenceSet) -> dict[str, base.Perturbation]:
  """The 14 sequences of set ``s`` as ``base.Perturbation``s (apply and draw bound to ``s``)."""
  out = {}
  for name, (fn, draw) in _SEQUENCES.items():
    kwargs = {} if draw is None else {"draw": functools.partial(draw, s)}
    out[name] = base.Perturbation(name, s.num_frames(name), functools.partial(fn, s), **kwargs)
  return out


REGISTRIES = {b: registry(s) for b, s in SETS.items() if b != "imagenet"}
