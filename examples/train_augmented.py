r"""Train a small Flax classifier with ImageNet-C corruptions as augmentation (CIFAR-10 sizes).

  python examples/train_augmented.py                       # CIFAR-10 from TFDS (needs the
                                                            # tfds extra; downloads cifar10)
  python examples/train_augmented.py --fake_data --steps=3  # random pixels, seconds (the tests)

Inside the jitted train step each image of the batch gets, with probability ``--p``, its own
corruption and severity (``imagenet_cp.random_corrupt``: drawn from its key; the image size, 32
px, selects CIFAR-10-C's constants).  Keys: one per image and step, split from the step's key.
"""
from __future__ import annotations

import argparse
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import imagenet_cp


class SmallCNN(nn.Module):
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    for features in (32, 64):
      x = nn.relu(nn.Conv(features, (3, 3))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


def batches(fake: bool, batch_size: int, seed: int):
  """Endless (uint8 [B, 32, 32, 3], int32 [B]) batches: TFDS cifar10 train, or random pixels."""
  if fake:
    rng = np.random.default_rng(seed)
    while True:
      yield (rng.integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8),
             rng.integers(0, 10, batch_size, dtype=np.int32))
  import tensorflow_datasets as tfds  # the tfds extra
  data = tfds.load("cifar10", split="train", as_supervised=True).repeat().shuffle(10_000, seed=seed)
  for images, labels in tfds.as_numpy(data.batch(batch_size, drop_remainder=True)):
    yield images, labels.astype(np.int32)


def augment(images, key, p: float, choices):
  """Each image: with probability p a random corruption and severity, else unchanged."""
  corrupt_key, coin_key = jax.random.split(key)
  corrupted = imagenet_cp.random_corrupt(
      images, jax.random.split(corrupt_key, images.shape[0]), choices=choices)
  chosen = jax.random.bernoulli(coin_key, p, (images.shape[0], 1, 1, 1))
  return jnp.where(chosen, corrupted, images)


@functools.partial(jax.jit, static_argnames=("model", "optimizer", "p", "choices"))
def train_step(params, opt_state, images, labels, key, *, model, optimizer, p, choices):
  x = augment(images, key, p, choices).astype(jnp.float32) / 255.0

  def loss_fn(params):
    logits = model.apply({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  loss, grads = jax.value_and_grad(loss_fn)(params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state, loss


def main(argv=None) -> list[float]:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--fake_data", action="store_true", help="random pixels instead of TFDS")
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--p", type=float, default=0.5, help="share of images corrupted")
  parser.add_argument("--choices", default=",".join(imagenet_cp.CORRUPTIONS),
                      help="comma-separated corruptions to draw from")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  model, optimizer = SmallCNN(), optax.adam(1e-3)
  key = jax.random.key(args.seed)
  params = model.init(key, jnp.zeros((1, 32, 32, 3)))["params"]
  opt_state = optimizer.init(params)
  choices = tuple(args.choices.split(","))
  losses = []
  for step, (images, labels) in zip(range(args.steps), batches(args.fake_data, args.batch_size,
                                                               args.seed)):
    params, opt_state, loss = train_step(
        params, opt_state, images, labels, jax.random.fold_in(key, step), model=model,
        optimizer=optimizer, p=args.p, choices=choices)
    losses.append(float(loss))
    if step % 100 == 0 or step == args.steps - 1:
      print(f"step {step}: loss {losses[-1]:.4f}")
  return losses


if __name__ == "__main__":
  main()
