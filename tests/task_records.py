"""A run's per-task records (``OUTPUT_DIR/tasks/*.npz``), read and compared by the tests."""
import pathlib

import numpy as np

# Each run's identity digest: differs by design between runs of other sources.
IDENTITY = ("run_sha256",)


def read(output_dir, *, drop=()) -> dict:
  """{task file stem: {field: array}}, without the fields in ``drop``."""
  out = {}
  for path in sorted((pathlib.Path(output_dir) / "tasks").glob("*.npz")):
    with np.load(path) as data:
      out[path.stem] = {k: data[k] for k in data.files if k not in drop}
  return out


def assert_same(a: dict, b: dict) -> None:
  """The same tasks, the same fields, equal arrays."""
  assert a.keys() == b.keys()
  for task in a:
    assert a[task].keys() == b[task].keys(), task
    for key in a[task]:
      np.testing.assert_array_equal(a[task][key], b[task][key], err_msg=f"{task}/{key}")
