"""The scripts in examples/ run (tiny sizes) and do what they say."""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
  spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module  # dataclasses (Flax modules) look their module up there
  spec.loader.exec_module(module)
  return module


def test_every_example_is_tested():
  tested = {"train_augmented", "sharded_corruptions", "evaluate_own_model"}
  assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_train_augmented_on_fake_data():
  losses = _load("train_augmented").main(
      ["--fake_data", "--steps=3", "--batch_size=8", "--p=1", "--choices=contrast,shot_noise"])
  assert len(losses) == 3 and all(np.isfinite(losses))


def test_train_augmented_corrupts_as_random_corrupt():
  import jax
  import imagenet_cp
  example = _load("train_augmented")
  images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
  key = jax.random.key(1)
  got = example.augment(images, key, 1.0, ("contrast", "fog"))
  corrupt_key, _ = jax.random.split(key)
  want = imagenet_cp.random_corrupt(images, jax.random.split(corrupt_key, 4),
                                    choices=("contrast", "fog"))
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  np.testing.assert_array_equal(np.asarray(example.augment(images, key, 0.0, ("fog",))), images)


SHARDED_CHECK = """
import json, sys, numpy as np, jax
sys.path.insert(0, sys.argv[1])
import imagenet_cp, sharded_corruptions as ex
out = ex.main(["--per_device=2"])
keys, images = out["keys"], out["images"]
single = {
    "foggy": imagenet_cp.corrupt(images, "fog", 3, keys),
    "mixed": imagenet_cp.random_corrupt(images, keys, choices=("fog", "contrast", "shot_noise")),
}
print(json.dumps({
    "devices": jax.device_count(),
    "shards": {k: len(out[k].sharding.device_set) for k in single},
    "equal": {k: bool((np.asarray(out[k]) == np.asarray(v)).all()) for k, v in single.items()},
}))
"""


def test_sharded_corruptions_on_four_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-c", SHARDED_CHECK, str(EXAMPLES)], env=env,
                        capture_output=True, text=True, timeout=600, check=True)
  report = json.loads(done.stdout.strip().splitlines()[-1])
  assert report == {"devices": 4, "shards": {"foggy": 4, "mixed": 4},
                    "equal": {"foggy": True, "mixed": True}}, report


def test_evaluate_own_model_demo_and_arrays_agree():
  """The demo photos through the demo source and as the user's own arrays: the same clean error
  and, for a corruption without random draws (contrast; the keys differ with the ids), the same
  errors."""
  out = _load("evaluate_own_model").main(["--corruptions=contrast", "--severities=2,5",
                                          "--sequences="])
  demo, own = out["demo"], out["own"]
  assert demo["clean"] == own["clean"]
  assert demo["corruptions"]["contrast"]["severities"] == own["corruptions"]["contrast"]["severities"]
