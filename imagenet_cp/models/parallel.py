"""Data-parallel inference over all local devices: one jit, the batch sharded on a 1-D mesh.

Compiled with ``models.compiler_options(model_name)`` (the zoo's per-executable XLA:CPU
setting, see ``imagenet_cp/models/compiler.py``) and traced with the ``imagenet_cp.workarounds``
switches resolved, when it is built, for the devices' platform.  Variables are replicated
once; each batch is split along its leading axis over the mesh's ``batch`` axis.  Every call
uses the same global batch size, so one compiled program serves a whole evaluation: a ragged
last batch is padded (with copies of its last example, so the padding is finite) and a mask
marks the real rows -- padding is never dropped silently and never counted.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from imagenet_cp import models, workarounds

BATCH_AXIS = "batch"


class DataParallel:
  """``apply_fn(variables, images) -> logits`` run on a sharded batch.

  Args:
    apply_fn: e.g. from ``models.classifier``; images [N, H, W, 3] float32 -> logits [N, C].
    variables: the model's variables (replicated onto every device).
    batch_size: global batch per step; rounded up to a multiple of the device count.
    devices: defaults to ``jax.local_devices()``.
    model_name: picks the jit's ``models.compiler_options(model_name)`` for the devices'
      platform (a zoo model's own XLA:CPU setting; None or any other name: the general one).
  """

  def __init__(self, apply_fn: Callable, variables, batch_size: int,
               devices: Sequence[jax.Device] | None = None,
               model_name: str | None = None):
    if batch_size < 1:
      raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    devices = list(devices) if devices is not None else jax.local_devices()
    self.mesh = Mesh(np.asarray(devices), (BATCH_AXIS,))
    n = len(devices)
    self.batch_size = -(-batch_size // n) * n
    self._data = NamedSharding(self.mesh, PartitionSpec(BATCH_AXIS))
    replicated = NamedSharding(self.mesh, PartitionSpec())
    self.variables = jax.device_put(variables, replicated)
    platform = devices[0].platform
    options = models.compiler_options(model_name, platform)
    self.compiler_options = options  # for the jits that call apply_fn themselves (attacks)
    self.workarounds = workarounds.resolve(platform=platform)
    flags = dict(self.workarounds)

    def step(variables, images):
      with workarounds.override(**flags):  # traced here, where the images are tracers
        return apply_fn(variables, images)

    self._step = jax.jit(step, in_shardings=(replicated, self._data), out_shardings=self._data,
                         compiler_options=options)

  def apply_padded(self, images) -> tuple[jax.Array, jax.Array]:
    """One batch of N <= batch_size images -> (logits [batch_size, C], mask bool [batch_size]).

    Rows with mask False are padding; callers must weight them out (metrics count masks).
    """
    images = np.asarray(images, np.float32) if not isinstance(images, jax.Array) else images
    n = images.shape[0]
    if n == 0 or n > self.batch_size:
      raise ValueError(f"apply_padded takes 1..{self.batch_size} images, got {n}")
    if n < self.batch_size:
      fill = jnp.repeat(images[-1:], self.batch_size - n, axis=0)
      images = jnp.concatenate([jnp.asarray(images), fill], axis=0)
    mask = jnp.arange(self.batch_size) < n
    logits = self._step(self.variables, jax.device_put(images, self._data))
    return logits, mask

  def batches(self, images: Iterable) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Any-size image array (or iterable of batches) -> (logits, mask) per padded global batch."""
    if isinstance(images, (np.ndarray, jax.Array)):
      array = images
      images = (array[i:i + self.batch_size] for i in range(0, array.shape[0], self.batch_size))
    for batch in images:
      yield self.apply_padded(batch)

  def __call__(self, images) -> np.ndarray:
    """[N, H, W, 3] for any N -> logits [N, C] as NumPy (padding removed)."""
    if images.shape[0] == 0:
      raise ValueError("no images to classify")
    out = [np.asarray(logits)[np.asarray(mask)] for logits, mask in self.batches(images)]
    return np.concatenate(out, axis=0)
