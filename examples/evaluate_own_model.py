r"""Evaluate your own Flax model on ImageNet-C: the demo photos, then your own arrays.

  python examples/evaluate_own_model.py                    # all 19 corruptions x 5 severities
  python examples/evaluate_own_model.py --corruptions=fog,contrast --severities=3 --sequences=
                                                            # a small run (the tests)

The model here is an untrained stand-in with 1000 outputs; put yours in its place: any
``apply_fn(variables, images float32 [N, 224, 224, 3] in [0, 1]) -> logits [N, C]``.  The demo
is six packaged photos (not ImageNet: its numbers are not comparable with the paper); with
``source="imagenet", imagenet_dir=...`` the same call evaluates on the validation set.
"""
from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import imagenet_cp
from imagenet_cp import metrics


class TinyNet(nn.Module):
  num_classes: int = 1000

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(16, (7, 7), strides=(4, 4))(x))
    return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


def _print(label: str, results: dict) -> None:
  errors = {name: {s: round(cell["error"], 3) for s, cell in c["severities"].items()}
            for name, c in results["corruptions"].items()}
  print(f"{label}: clean error {results['clean']['error']:.3f}, errors per severity "
        f"{errors}, mCE {results['mce']} (None unless all 15 benchmark corruptions ran)")


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--corruptions", default=",".join(imagenet_cp.CORRUPTIONS))
  parser.add_argument("--severities", default="1,2,3,4,5")
  parser.add_argument("--sequences", default=",".join(imagenet_cp.PERTURBATIONS),
                      help="ImageNet-P sequences for the demo run (empty: none)")
  parser.add_argument("--output_dir", default=None, help="resumable records and results.json")
  args = parser.parse_args(argv)
  corruptions = tuple(c for c in args.corruptions.split(",") if c)
  severities = tuple(int(s) for s in args.severities.split(","))
  sequences = tuple(s for s in args.sequences.split(",") if s)

  model = TinyNet()
  variables = model.init(jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
  apply_fn = jax.jit(model.apply)

  demo = metrics.evaluate(apply_fn, variables, source="demo", corruptions=corruptions,
                          severities=severities, perturbations=sequences, bootstrap=0,
                          output_dir=args.output_dir, progress=False, log=lambda _: None)
  _print("demo", demo)

  # Your own images: clean uint8 224x224 crops and their labels, here the demo photos through
  # the on-device preprocessing (bit for bit the PIL path). No file round trip: these pixels
  # are what the corruptions see.
  from imagenet_cp import sources  # pylint: disable=g-import-not-at-top
  photos = [(sources.demo_photo(p.name), p.label) for p in sources.DEMO_PHOTOS]
  crops = np.stack([np.asarray(imagenet_cp.preprocess_on_device(p)) for p, _ in photos])
  labels = np.array([label for _, label in photos])
  own = metrics.evaluate(apply_fn, variables, images=crops, labels=labels,
                         corruptions=corruptions, severities=severities, perturbations=(),
                         bootstrap=0, progress=False, log=lambda _: None)
  _print("own arrays", own)
  return {"demo": demo, "own": own}


if __name__ == "__main__":
  main()
