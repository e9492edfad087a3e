"""ImageNet-C weather corruptions: snow, frost, fog, spatter.

Each follows ``make_imagenet_c.py`` (hendrycks/robustness) step by step; the docstrings give the
original's formula, and the comments the places where the original's dtypes or libraries decide
the numbers.  Severity is a traced int32 index in every corruption here (one compile for all five
severities): per-severity constants are picked from arrays; where a *shape* depends on the
severity, the widest case is built and indexed (spatter's zero-padded Gaussian kernels, snow's
stacked zoom tables, the motion blur's taps up to radius 12), and spatter's two modes are one
``lax.cond``.  The constants, fog's map size and frost's texture scale come from the image size's
set (``corruptions.sizes``: 32, 64, 224, 299).  docs/fidelity/weather.md has the measured
fidelity, speed and compile cost (other sizes: docs/fidelity/sizes.md).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp import assets
from imagenet_cp.corruptions import sizes
from imagenet_cp.corruptions.base import CROP, Corruption, pick
from imagenet_cp.ops import color, filters, fusion, motion_blur, plasma, rng, zoom
from imagenet_cp.ops import spatter as spatter_ops
from imagenet_cp.ops.convert import uint8_clipped, uint8_from_unit


# --------------------------------------------------------------------------------------------
# fog

FOG = sizes.IMAGENET.fog  # (strength, wibbledecay); every size's: sizes.constants(size).fog


def fog_draw(key: jax.Array, severity, size: int = CROP) -> jax.Array:
  """The plasma fractal's uniforms, float32 in [0, 1) (the original's call order): 65,535 for
  the 224 set's 256 map (the map is 32, 64, 256 or 512 for the 32, 64, 224, 299 sets)."""
  del severity
  return plasma.draw_uniforms(key, sizes.constants(size).plasma_mapsize)


def fog_apply(image: jax.Array, uniforms: jax.Array, severity) -> jax.Array:
  """``clip((x + c0 * plasma[:S, :S]) * max(x) / (max(x) + c0), 0, 1) * 255``, x = image / 255.

  ``max(x)`` is the global maximum of the clean image (taken before the fog is added); the fog
  is one grey layer added to all three channels.
  """
  table = sizes.of(image)
  strength, decay = pick(table.fog, severity)
  x = image.astype(jnp.float32) / 255.0
  max_val = jnp.max(x)
  size = table.size
  fog = plasma.plasma_fractal(uniforms, decay, table.plasma_mapsize)[:size, :size, None]
  out = (x + strength * fog) * max_val / (max_val + strength)
  return uint8_from_unit(out)


# --------------------------------------------------------------------------------------------
# snow

# (loc, scale, zoom, threshold, blur radius, blur sigma, image weight)
SNOW = sizes.IMAGENET.snow
SNOW_ANGLE = (-135.0, -45.0)


@functools.lru_cache(maxsize=None)
def _snow_zoom_tables(size: int = CROP):
  return zoom.clipped_zoom_tables(size, [row[2] for row in sizes.constants(size).snow])


def snow_draw(key: jax.Array, severity, size: int = CROP) -> dict:
  """{'z': standard normals float32 [S, S], 'u': uniform float32 scalar in [0, 1)}.

  The original draws ``normal(size=(S, S), loc, scale)`` (= ``loc + scale * z``), then
  ``uniform(-135, -45)`` (= ``-135 + 90 u``) for the motion-blur angle.
  """
  del severity
  k_z, k_u = jax.random.split(key)
  return {"z": rng.normal(k_z, (size, size)),
          "u": jax.random.uniform(k_u, (), jnp.float32)}


def snow_layer_u8(z: jax.Array, severity) -> jax.Array:
  """The snow layer the original writes as an 8-bit 'L' PNG: uint8 [S, S] (z's shape).

  ``clipped_zoom(loc + scale * z, zoom)``, values below the threshold set to 0, then
  ``(clip(., 0, 1) * 255).astype(uint8)``.
  """
  size = z.shape[0]
  loc, scale, _, threshold = (pick(sizes.constants(size).snow, severity)[i] for i in range(4))
  layer = zoom.clipped_zoom_indexed(
      loc + scale * z, _snow_zoom_tables(size), jnp.asarray(severity, jnp.int32) - 1)
  layer = jnp.where(layer < threshold, jnp.float32(0), layer)
  return uint8_from_unit(layer)


def _snow_blur(layer, radius, sigma, angle) -> jax.Array:
  """ImageMagick's motion blur of the uint8 snow layer (``ops.motion_blur``): uint8 [S, S]."""
  table = sizes.constants(layer.shape[0]).snow
  return motion_blur.motion_blur_uint8(
      layer, radius, sigma, angle, max_radius=max(row[4] for row in table))


def snow_apply(image: jax.Array, draws: dict, severity) -> jax.Array:
  """``clip(x' + s + rot180(s), 0, 1) * 255`` with ``x' = c6 x + (1 - c6) max(x, 1.5 gray + .5)``.

  ``s`` is the snow layer after ImageMagick's motion blur (radius c4, sigma c5, angle
  ``-135 + 90 u``, Q16 then 8-bit PNG: ``imagenet_cp.ops.motion_blur``) / 255; gray is
  ``cv2.cvtColor(x, RGB2GRAY)`` on the float image x = image / 255.
  """
  table = sizes.of(image).snow
  params = pick(table, severity)
  radius, sigma, weight = params[4], params[5], params[6]
  # 1 - c6 in float64 as the original's Python floats, then float32: float32(1 - 0.6) = 0.4,
  # 1 - float32(0.6) = 0.39999998 (black pixels at the 64 set's s5 then truncate one lower).
  rest = pick([1 - row[6] for row in table], severity)
  angle = SNOW_ANGLE[0] + (SNOW_ANGLE[1] - SNOW_ANGLE[0]) * draws["u"]
  layer = snow_layer_u8(draws["z"], severity)
  # Computed apart: fused into the output, the blur's last steps (Q16 rounding, 8-bit) ran
  # again for s and rot180(s) in every channel.
  blurred = fusion.computed_apart(_snow_blur, severity, layer, radius, sigma, angle)
  s = (blurred.astype(jnp.float32) / jnp.float32(255))[..., None]
  x = image.astype(jnp.float32) / jnp.float32(255)
  gray = color.rgb2gray(x)[..., None]
  x = weight * x + rest * jnp.maximum(x, gray * jnp.float32(1.5) + jnp.float32(0.5))
  return uint8_from_unit(x + s + s[::-1, ::-1])


# --------------------------------------------------------------------------------------------
# frost

FROST = sizes.IMAGENET.frost  # (image, frost) weights; every size's: sizes.constants(size).frost
# (H, W) of frost1..frost5: the original's ``randint(5)`` never picks frost6.  Checked against the
# decoded files in ``frost_stack``.
FROST_SHAPES = ((600, 900), (315, 560), (315, 560), (350, 527), (495, 660))


@functools.lru_cache(maxsize=None)
def frost_shapes(size: int = CROP) -> tuple[tuple[int, int], ...]:
  """(H, W) of frost1..frost5 as a size's script crops them: ``FROST_SHAPES``, or the shapes
  ``cv2.resize(frost, (0, 0), fx=scale, fy=scale)`` gives (CIFAR 0.2, 64 0.3)."""
  import cv2
  scale = sizes.constants(size).frost_scale
  if scale is None:
    return FROST_SHAPES
  return tuple(cv2.resize(np.zeros(shape, np.uint8), (0, 0), fx=scale, fy=scale).shape[:2]
               for shape in FROST_SHAPES)


def frost_draw(key: jax.Array, severity, size: int = CROP) -> dict:
  """``idx = randint(5)``, then ``randint(0, H_idx - S)`` (row), ``randint(0, W_idx - S)``
  (H, W: ``frost_shapes(S)``).

  Returns int32 scalars {'index', 'row', 'col'} (the original's three draws, in order).
  """
  del severity
  k_idx, k_row, k_col = jax.random.split(key, 3)
  table = frost_shapes(size)
  index = jax.random.randint(k_idx, (), 0, len(table))
  shapes = jnp.asarray(table, jnp.int32)[index]
  row = jax.random.randint(k_row, (), 0, shapes[0] - size)
  col = jax.random.randint(k_col, (), 0, shapes[1] - size)
  return {"index": index, "row": row, "col": col}


@functools.lru_cache(maxsize=None)
def frost_stack(size: int = CROP) -> np.ndarray:
  """frost1..frost5 as uint8 RGB [5, H, W, 3], each zero-padded to frost1's size (at 224:
  [5, 600, 900, 3]; resized first where the size's script resizes them).

  Loaded on the host once (``imagenet_cp.assets`` with its default lookup, so
  ``$IMAGENET_CP_FROST_DIR`` selects a folder; verified sha256, decoded as ``cv2.imread``, BGR ->
  RGB, alpha dropped) and handed to XLA as a constant of the compiled program.  The padding
  is never read: crops stay inside each texture's own ``frost_shapes``.  The resize is the
  original's ``cv2.resize`` (bilinear) itself, per channel, so RGB order does not matter.
  """
  import cv2
  textures = assets.frost_textures()[:len(FROST_SHAPES)]
  scale = sizes.constants(size).frost_scale
  shapes = frost_shapes(size)
  stack = np.zeros((len(shapes),) + shapes[0] + (3,), np.uint8)
  for i, (tex, original, shape) in enumerate(zip(textures, FROST_SHAPES, shapes)):
    if tex.shape[:2] != original:
      raise ValueError(f"frost{i + 1} decoded to {tex.shape}, expected {original}")
    if scale is not None:
      tex = cv2.resize(np.ascontiguousarray(tex), (0, 0), fx=scale, fy=scale)
    stack[i, :shape[0], :shape[1]] = tex
  return stack


@functools.lru_cache(maxsize=None)
def frost_blend_table(size: int = CROP) -> np.ndarray:
  """uint8 [5, 256, 256]: ``np.uint8(clip(c0 * x + c1 * f, 0, 255))`` for pixel x, frost f.

  The original blends uint8 pixels in float64; tabulating that exact arithmetic on the host makes
  the result bit-identical (no float32 rounding at integer boundaries before the truncation).
  """
  v = np.arange(256, dtype=np.uint8)
  rows = [np.uint8(np.clip(c0 * v[:, None] + c1 * v[None, :], 0, 255))
          for c0, c1 in sizes.constants(size).frost]
  return np.stack(rows)


def frost_apply(image: jax.Array, draws: dict, severity) -> jax.Array:
  """``clip(c0 * x + c1 * frost[row:row+S, col:col+S], 0, 255)`` on the 0..255 scale."""
  size = sizes.of(image).size
  stack = jnp.asarray(frost_stack(size))
  crop = jax.lax.dynamic_slice(
      stack, (draws["index"], draws["row"], draws["col"], 0), (1, size, size, 3))[0]
  table = jnp.asarray(frost_blend_table(size)).reshape(-1)
  sev = jnp.asarray(severity, jnp.int32) - 1
  flat = sev * 65536 + image.astype(jnp.int32) * 256 + crop.astype(jnp.int32)
  return table[flat]


# --------------------------------------------------------------------------------------------
# spatter

# (loc, scale, sigma, threshold, intensity or mud sigma, mode): mode 0 water (s1-3), 1 mud (s4-5).
SPATTER = sizes.IMAGENET.spatter  # every size's: sizes.constants(size).spatter


def spatter_draw(key: jax.Array, severity, size: int = CROP) -> jax.Array:
  """Standard normals float32 [S, S]; the original's ``normal(size, loc, scale)`` is
  ``loc + scale * z`` of these."""
  del severity
  return rng.normal(key, (size, size))


@functools.lru_cache(maxsize=None)
def _spatter_layer_constants(size: int = CROP) -> dict:
  """Per-severity constants of ``spatter_layers``, derived in float64 on the host."""
  table = sizes.constants(size).spatter
  loc, scale, threshold = (np.array([row[i] for row in table], np.float64) for i in (0, 1, 3))
  level = 255 * loc  # 255 * liquid = 255 loc + 255 scale G(z)
  return {"g_threshold": np.float32((threshold - loc) / scale),
          "level_int": np.floor(level).astype(np.int32),
          "level_frac": np.float32(level - np.floor(level)),
          "slope": np.float32(255 * scale)}


def spatter_layers(z: jax.Array, severity) -> tuple[jax.Array, jax.Array]:
  """The thresholded liquid layer as the original uses it: (kept bool, L8 uint8), [S, S].

  The original computes ``liquid = gaussian(loc + scale z, sigma)`` in float64, zeroes values
  ``< c3`` and casts ``(liquid * 255).astype(uint8)`` (truncation, modulo 256 above 255).  The
  Gaussian is linear with weights summing to 1, so ``liquid = loc + scale G(z)``; here ``G(z)`` is
  computed in float32 and the threshold ``(c3 - loc) / scale`` and the level ``255 loc`` are
  float64 constants, which puts the float32 rounding on the small ``G(z)`` instead of on values
  near 0.7: about 20x closer to the original at the threshold and at the integer steps of L8.
  """
  size = z.shape[0]
  c = _spatter_layer_constants(size)
  i = jnp.asarray(severity, jnp.int32) - 1
  sigmas = [float(row[2]) for row in sizes.constants(size).spatter]
  g = filters.gaussian_filter_taps(z, sigmas, i)
  g_threshold = jnp.asarray(c["g_threshold"])[i]
  kept = g >= g_threshold  # not (liquid < c3)
  level = (jnp.asarray(c["level_int"])[i]
           + jnp.floor(jnp.asarray(c["level_frac"])[i] + jnp.asarray(c["slope"])[i] * g)
           .astype(jnp.int32))
  l8 = jnp.where(kept, level & 255, 0).astype(jnp.uint8)
  return g > g_threshold, l8  # mud's ``liquid > c3``; water's uint8 layer


def _spatter_water_mask(above, l8, severity):
  """Water (s1-3): ``m = L8 * dist / max(L8 * dist) * intensity`` (``ops.spatter.water_mask``)."""
  del above
  return spatter_ops.water_mask(l8, pick(sizes.constants(l8.shape[0]).spatter, severity)[4])


def _spatter_mud_mask(above, l8, severity):
  """Mud (s4-5): ``m = gaussian((liquid > c3).astype(float32), c4); m[m < 0.8] = 0``."""
  del l8
  table = sizes.constants(above.shape[0]).spatter
  first = min(i for i, row in enumerate(table) if row[5] == 1)
  sigmas = [float(row[4]) for row in table[first:]]  # the mud rows (all sets: s4, s5)
  m = filters.gaussian_filter_taps(above.astype(jnp.float32), sigmas,
                                   jnp.asarray(severity, jnp.int32) - 1 - first)
  return jnp.where(m < 0.8, jnp.float32(0), m)


def spatter_apply(image: jax.Array, z: jax.Array, severity) -> jax.Array:
  """Water drops (s1-3) or mud (s4-5), truncated to uint8.

  water: ``clip(x + m * (175, 238, 238) / 255, 0, 1) * 255`` (as ``ops.spatter.render_water``);
  mud: ``clip(x * (1 - m) + m * (63, 42, 20) / 255, 0, 1) * 255``.
  Only the [S, S] mask ``m`` comes out of the ``lax.cond`` on the severity (a scalar shared by
  the batch, so under ``vmap`` only the chosen branch runs); both blends are the original's
  float32 arithmetic, in one expression.
  """
  x01 = image.astype(jnp.float32) / jnp.float32(255)
  above, l8 = spatter_layers(z, severity)
  sev = jnp.asarray(severity, jnp.int32)
  mud = pick([row[5] for row in sizes.of(image).spatter], sev, jnp.int32) == 1
  m = jax.lax.cond(mud, _spatter_mud_mask, _spatter_water_mask, above, l8, sev)[..., None]
  colors = np.float32(np.array([spatter_ops.WATER_COLOR, spatter_ops.MUD_COLOR]) / 255.0)
  color = jnp.asarray(colors)[mud.astype(jnp.int32)]
  kept = jnp.where(mud, 1 - m, jnp.float32(1))  # water: x * 1 is x exactly
  out = jnp.clip(x01 * kept + m * color, 0, 1) * jnp.float32(255)
  # An empty water layer gives 0/0 (NaN) in the original, and np.uint8(NaN) is 0 on x86.
  return uint8_clipped(jnp.where(jnp.isnan(out), jnp.float32(0), out))


REGISTRY: dict[str, Corruption] = {
    "snow": Corruption("snow", snow_apply, snow_draw, chunk=2),
    "frost": Corruption("frost", frost_apply, frost_draw),
    "fog": Corruption("fog", fog_apply, fog_draw),
    "spatter": Corruption("spatter", spatter_apply, spatter_draw, chunk=2),
}
