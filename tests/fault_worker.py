"""One small corruption-suite run into ``sys.argv[1]``, for test_fault_injection.py to kill.

The demo photos (2), a tiny fixed classifier, 6 tasks, cache chunks of one image: a run takes
seconds past start-up and writes a cache chunk, a task file and results.json several times.
"""
import json
import sys

import jax

jax.config.update("jax_compilation_cache_dir", sys.argv[2])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import adversarial_models  # noqa: E402
from imagenet_cp.suites import corruption  # noqa: E402

SETTINGS = dict(source="demo", max_images=2, corruptions=("contrast", "brightness"),
                severities=(1, 2), perturbations=("translate",), batch_size=2, bootstrap=20,
                chunk_size=1, progress=False)


def variables():
  rng = np.random.default_rng(7)
  return {"w": jnp.asarray(rng.standard_normal((192, 1000)), jnp.float32),
          "b": jnp.asarray(rng.standard_normal(1000), jnp.float32)}


if __name__ == "__main__":
  results = corruption.evaluate(adversarial_models.pooled_apply, variables(),
                                output_dir=sys.argv[1], **SETTINGS)
  print("RESULTS " + json.dumps(results["run"]["tasks_done"]), flush=True)
