"""ImageNet-C weather corruptions: snow, frost, fog, spatter.

Each follows ``make_imagenet_c.py`` (hendrycks/robustness) step by step; the docstrings give the
original's formula, and the comments the places where the original's dtypes or libraries decide
the numbers.  Severity is a traced int32 index in every corruption here (one compile for all five
severities): per-severity constants are picked from arrays; where a *shape* depends on the
severity, the widest case is built and indexed (spatter's zero-padded Gaussian kernels, snow's
stacked zoom tables, the motion blur's taps up to radius 12), and spatter's two modes are one
``lax.cond``.  docs/fidelity/weather.md has the measured fidelity, speed and compile cost.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from imagenet_cp import assets
from imagenet_cp.corruptions.base import Corruption
from imagenet_cp.ops import color, fusion, motion_blur, plasma, rng, zoom
from imagenet_cp.ops import spatter as spatter_ops

SIZE = 224


def _pick(table, severity, dtype=jnp.float32) -> jax.Array:
  """Row ``severity - 1`` of a per-severity constant table (severity may be traced)."""
  return jnp.asarray(np.asarray(table), dtype)[jnp.asarray(severity, jnp.int32) - 1]


def _to_uint8(x: jax.Array) -> jax.Array:
  """``np.uint8`` of a float image already clipped to [0, 255]: truncation."""
  return jnp.floor(x).astype(jnp.uint8)


# --------------------------------------------------------------------------------------------
# fog

FOG = ((1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))  # (strength, wibbledecay)


def fog_draw(key: jax.Array, severity) -> jax.Array:
  """The plasma fractal's 65,535 uniforms, float32 in [0, 1) (the original's call order)."""
  del severity
  return plasma.draw_uniforms(key)


def fog_apply(image: jax.Array, uniforms: jax.Array, severity) -> jax.Array:
  """``clip((x + c0 * plasma[:224, :224]) * max(x) / (max(x) + c0), 0, 1) * 255``, x = image/255.

  ``max(x)`` is the global maximum of the clean image (taken before the fog is added); the fog
  is one grey layer added to all three channels.
  """
  strength, decay = _pick(FOG, severity)
  x = image.astype(jnp.float32) / 255.0
  max_val = jnp.max(x)
  fog = plasma.plasma_fractal(uniforms, decay)[:SIZE, :SIZE, None]
  out = (x + strength * fog) * max_val / (max_val + strength)
  return _to_uint8(jnp.clip(out, 0, 1) * 255)


# --------------------------------------------------------------------------------------------
# snow

# (loc, scale, zoom, threshold, blur radius, blur sigma, image weight)
SNOW = ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
        (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
        (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))
SNOW_ANGLE = (-135.0, -45.0)


@functools.lru_cache(maxsize=1)
def _snow_zoom_tables():
  return zoom.clipped_zoom_tables(SIZE, [row[2] for row in SNOW])


def snow_draw(key: jax.Array, severity) -> dict:
  """{'z': standard normals float32 [224, 224], 'u': uniform float32 scalar in [0, 1)}.

  The original draws ``normal(size=(224, 224), loc, scale)`` (= ``loc + scale * z``), then
  ``uniform(-135, -45)`` (= ``-135 + 90 u``) for the motion-blur angle.
  """
  del severity
  k_z, k_u = jax.random.split(key)
  return {"z": rng.normal(k_z, (SIZE, SIZE)),
          "u": jax.random.uniform(k_u, (), jnp.float32)}


def snow_layer_u8(z: jax.Array, severity) -> jax.Array:
  """The snow layer the original writes as an 8-bit 'L' PNG: uint8 [224, 224].

  ``clipped_zoom(loc + scale * z, zoom)``, values below the threshold set to 0, then
  ``(clip(., 0, 1) * 255).astype(uint8)``.
  """
  loc, scale, _, threshold = (_pick(SNOW, severity)[i] for i in range(4))
  layer = zoom.clipped_zoom_indexed(
      loc + scale * z, _snow_zoom_tables(), jnp.asarray(severity, jnp.int32) - 1)
  layer = jnp.where(layer < threshold, jnp.float32(0), layer)
  return jnp.floor(jnp.clip(layer, 0, 1) * 255).astype(jnp.uint8)


def _snow_blur(layer, radius, sigma, angle) -> jax.Array:
  """ImageMagick's motion blur of the uint8 snow layer (``ops.motion_blur``): uint8 [224, 224]."""
  return motion_blur.motion_blur_uint8(
      layer, radius, sigma, angle, max_radius=max(row[4] for row in SNOW))


def snow_apply(image: jax.Array, draws: dict, severity) -> jax.Array:
  """``clip(x' + s + rot180(s), 0, 1) * 255`` with ``x' = c6 x + (1 - c6) max(x, 1.5 gray + .5)``.

  ``s`` is the snow layer after ImageMagick's motion blur (radius c4, sigma c5, angle
  ``-135 + 90 u``, Q16 then 8-bit PNG: ``imagenet_cp.ops.motion_blur``) / 255; gray is
  ``cv2.cvtColor(x, RGB2GRAY)`` on the float image x = image / 255.
  """
  params = _pick(SNOW, severity)
  radius, sigma, weight = params[4], params[5], params[6]
  angle = SNOW_ANGLE[0] + (SNOW_ANGLE[1] - SNOW_ANGLE[0]) * draws["u"]
  layer = snow_layer_u8(draws["z"], severity)
  # Computed apart: fused into the output, the blur's last steps (Q16 rounding, 8-bit) ran
  # again for s and rot180(s) in every channel (~8% of snow's CPU).
  blurred = fusion.computed_apart(_snow_blur, severity, layer, radius, sigma, angle)
  s = (blurred.astype(jnp.float32) / jnp.float32(255))[..., None]
  x = image.astype(jnp.float32) / jnp.float32(255)
  gray = color.rgb2gray(x)[..., None]
  x = weight * x + (1 - weight) * jnp.maximum(x, gray * jnp.float32(1.5) + jnp.float32(0.5))
  out = jnp.clip(x + s + s[::-1, ::-1], 0, 1) * 255
  return _to_uint8(out)


# --------------------------------------------------------------------------------------------
# frost

FROST = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))  # (image, frost) weights
# (H, W) of frost1..frost5: the original's ``randint(5)`` never picks frost6.  Checked against the
# decoded files in ``frost_stack``.
FROST_SHAPES = ((600, 900), (315, 560), (315, 560), (350, 527), (495, 660))


def frost_draw(key: jax.Array, severity) -> dict:
  """``idx = randint(5)``, then ``randint(0, H_idx - 224)`` (row), ``randint(0, W_idx - 224)``.

  Returns int32 scalars {'index', 'row', 'col'} (the original's three draws, in order).
  """
  del severity
  k_idx, k_row, k_col = jax.random.split(key, 3)
  index = jax.random.randint(k_idx, (), 0, len(FROST_SHAPES))
  shapes = jnp.asarray(FROST_SHAPES, jnp.int32)[index]
  row = jax.random.randint(k_row, (), 0, shapes[0] - SIZE)
  col = jax.random.randint(k_col, (), 0, shapes[1] - SIZE)
  return {"index": index, "row": row, "col": col}


@functools.lru_cache(maxsize=1)
def frost_stack() -> np.ndarray:
  """frost1..frost5 as uint8 RGB [5, 600, 900, 3], each zero-padded to frost1's size.

  Loaded on the host once (``imagenet_cp.assets`` with its default lookup, so
  ``$IMAGENET_CP_FROST_DIR`` selects a folder; verified sha256, decoded as ``cv2.imread``, BGR ->
  RGB, alpha dropped) and handed to XLA as a constant of the compiled program.  The padding
  is never read: crops stay inside each texture's own ``FROST_SHAPES``.
  """
  textures = assets.frost_textures()[:len(FROST_SHAPES)]
  stack = np.zeros((len(FROST_SHAPES),) + FROST_SHAPES[0] + (3,), np.uint8)
  for i, (tex, shape) in enumerate(zip(textures, FROST_SHAPES)):
    if tex.shape[:2] != shape:
      raise ValueError(f"frost{i + 1} decoded to {tex.shape}, expected {shape}")
    stack[i, :shape[0], :shape[1]] = tex
  return stack


@functools.lru_cache(maxsize=1)
def frost_blend_table() -> np.ndarray:
  """uint8 [5, 256, 256]: ``np.uint8(clip(c0 * x + c1 * f, 0, 255))`` for pixel x, frost f.

  The original blends uint8 pixels in float64; tabulating that exact arithmetic on the host makes
  the result bit-identical (no float32 rounding at integer boundaries before the truncation).
  """
  v = np.arange(256, dtype=np.uint8)
  rows = [np.uint8(np.clip(c0 * v[:, None] + c1 * v[None, :], 0, 255)) for c0, c1 in FROST]
  return np.stack(rows)


def frost_apply(image: jax.Array, draws: dict, severity) -> jax.Array:
  """``clip(c0 * x + c1 * frost[row:row+224, col:col+224], 0, 255)`` on the 0..255 scale."""
  stack = jnp.asarray(frost_stack())
  crop = jax.lax.dynamic_slice(
      stack, (draws["index"], draws["row"], draws["col"], 0), (1, SIZE, SIZE, 3))[0]
  table = jnp.asarray(frost_blend_table()).reshape(-1)
  sev = jnp.asarray(severity, jnp.int32) - 1
  flat = sev * 65536 + image.astype(jnp.int32) * 256 + crop.astype(jnp.int32)
  return table[flat]


# --------------------------------------------------------------------------------------------
# spatter

# (loc, scale, sigma, threshold, intensity or mud sigma, mode): mode 0 water (s1-3), 1 mud (s4-5).
SPATTER = ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
           (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))
MUD_SIGMA = 1.5  # c[4] of both mud severities


def spatter_draw(key: jax.Array, severity) -> jax.Array:
  """Standard normals float32 [224, 224]; the original's ``normal(size, loc, scale)`` is
  ``loc + scale * z`` of these."""
  del severity
  return rng.normal(key, (SIZE, SIZE))


@functools.lru_cache(maxsize=1)
def _spatter_layer_constants() -> dict:
  """Per-severity constants of ``spatter_layers``, derived in float64 on the host."""
  loc, scale, threshold = (np.array([row[i] for row in SPATTER], np.float64) for i in (0, 1, 3))
  level = 255 * loc  # 255 * liquid = 255 loc + 255 scale G(z)
  return {"g_threshold": np.float32((threshold - loc) / scale),
          "level_int": np.floor(level).astype(np.int32),
          "level_frac": np.float32(level - np.floor(level)),
          "slope": np.float32(255 * scale)}


def spatter_layers(z: jax.Array, severity) -> tuple[jax.Array, jax.Array]:
  """The thresholded liquid layer as the original uses it: (kept bool, L8 uint8), [224, 224].

  The original computes ``liquid = gaussian(loc + scale z, sigma)`` in float64, zeroes values
  ``< c3`` and casts ``(liquid * 255).astype(uint8)`` (truncation, modulo 256 above 255).  The
  Gaussian is linear with weights summing to 1, so ``liquid = loc + scale G(z)``; here ``G(z)`` is
  computed in float32 and the threshold ``(c3 - loc) / scale`` and the level ``255 loc`` are
  float64 constants, which puts the float32 rounding on the small ``G(z)`` instead of on values
  near 0.7: about 20x closer to the original at the threshold and at the integer steps of L8.
  """
  c = _spatter_layer_constants()
  i = jnp.asarray(severity, jnp.int32) - 1
  sigmas = [float(row[2]) for row in SPATTER]
  g = spatter_ops.gaussian_nearest_indexed(z, sigmas, i)
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
  return spatter_ops.water_mask(l8, _pick(SPATTER, severity)[4])


def _spatter_mud_mask(above, l8, severity):
  """Mud (s4-5): ``m = gaussian((liquid > c3).astype(float32), 1.5); m[m < 0.8] = 0``."""
  del l8
  m = spatter_ops.gaussian_nearest(above.astype(jnp.float32), MUD_SIGMA)
  return jnp.where(m < 0.8, jnp.float32(0), m)


def spatter_apply(image: jax.Array, z: jax.Array, severity) -> jax.Array:
  """Water drops (s1-3) or mud (s4-5), truncated to uint8.

  water: ``clip(x + m * (175, 238, 238) / 255, 0, 1) * 255`` (as ``ops.spatter.render_water``);
  mud: ``clip(x * (1 - m) + m * (63, 42, 20) / 255, 0, 1) * 255``.
  Only the [224, 224] mask ``m`` comes out of the ``lax.cond`` on the severity (a scalar shared by
  the batch, so under ``vmap`` only the chosen branch runs); both blends are the original's
  float32 arithmetic, in one expression.
  """
  x01 = image.astype(jnp.float32) / jnp.float32(255)
  above, l8 = spatter_layers(z, severity)
  sev = jnp.asarray(severity, jnp.int32)
  mud = sev >= 4
  m = jax.lax.cond(mud, _spatter_mud_mask, _spatter_water_mask, above, l8, sev)[..., None]
  colors = np.float32(np.array([spatter_ops.WATER_COLOR, spatter_ops.MUD_COLOR]) / 255.0)
  color = jnp.asarray(colors)[mud.astype(jnp.int32)]
  kept = jnp.where(mud, 1 - m, jnp.float32(1))  # water: x * 1 is x exactly
  out = jnp.clip(x01 * kept + m * color, 0, 1) * jnp.float32(255)
  # An empty water layer gives 0/0 (NaN) in the original, and np.uint8(NaN) is 0 on x86.
  return _to_uint8(jnp.where(jnp.isnan(out), jnp.float32(0), out))


CORRUPTIONS: dict[str, Corruption] = {
    "snow": Corruption("snow", snow_apply, snow_draw, chunk=2),
    "frost": Corruption("frost", frost_apply, frost_draw),
    "fog": Corruption("fog", fog_apply, fog_draw),
    "spatter": Corruption("spatter", spatter_apply, spatter_draw, chunk=2),
}
