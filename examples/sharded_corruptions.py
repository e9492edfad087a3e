r"""ImageNet-C corruptions on several devices: a sharded batch, and ``shard_map``.

  python examples/sharded_corruptions.py
  XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/sharded_corruptions.py
                                                             # 4 CPU devices (the tests)

1. ``imagenet_cp.corrupt`` on a batch split over a 1-D mesh of all devices along its leading
   axis: the output keeps the input's sharding (each device corrupts its own images).
2. ``imagenet_cp.random_corrupt`` inside ``shard_map``: each device draws and applies its images'
   corruptions on its shard only (the per-image keys travel with the images).
Both equal the single-device results: every image depends only on its own key.
"""
from __future__ import annotations

import argparse

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import imagenet_cp


def shard_map(fn, mesh, in_specs, out_specs):
  """``jax.shard_map`` (jax >= 0.6.x), or its older home in ``jax.experimental``."""
  if hasattr(jax, "shard_map"):
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs)
  from jax.experimental.shard_map import shard_map as experimental  # pylint: disable=g-import-not-at-top
  return experimental(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs)


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--per_device", type=int, default=2, help="images per device")
  parser.add_argument("--size", type=int, default=32, choices=(32, 64, 224, 299))
  args = parser.parse_args(argv)
  devices = jax.devices()
  mesh = Mesh(np.array(devices), ("data",))
  n = args.per_device * len(devices)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, args.size, args.size, 3), dtype=np.uint8)
  keys = jax.random.split(jax.random.key(0), n)
  batch = NamedSharding(mesh, P("data"))
  sharded_images, sharded_keys = jax.device_put(images, batch), jax.device_put(keys, batch)

  foggy = imagenet_cp.corrupt(sharded_images, "fog", 3, sharded_keys)
  print(f"{len(devices)} device(s); corrupt output sharding: {foggy.sharding.spec}")

  per_shard = shard_map(
      lambda x, k: imagenet_cp.random_corrupt(x, k, choices=("fog", "contrast", "shot_noise")),
      mesh, in_specs=(P("data"), P("data")), out_specs=P("data"))
  mixed = jax.jit(per_shard)(sharded_images, sharded_keys)
  print(f"random_corrupt under shard_map: {mixed.shape}, sharding {mixed.sharding.spec}")
  return {"foggy": foggy, "mixed": mixed, "images": images, "keys": keys}


if __name__ == "__main__":
  main()
