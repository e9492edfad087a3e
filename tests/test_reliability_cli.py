"""`python -m metrics.run` says `error: <message>` and exits 2 for what the user can fix (a
traceback only with --debug), and records and checks --checkpoint (issue 16, cases 2 and 7)."""
import hashlib
import json
import os
import pathlib
import resource
import subprocess
import sys

import pytest

from imagenet_standin import make_val_folder

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--model=adversarial_models:demo_classifier", "--suite=corruption", "--source=demo",
        "--corruptions=none", "--perturbations=none", "--bootstrap=0", "--noprogress",
        "--batch_size=4"]


def cli(*args, cwd, limit_file_size=None):
  def limit():
    if limit_file_size is not None:
      resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))
  return subprocess.run([sys.executable, "-m", "metrics.run", *args], cwd=cwd, text=True,
                        capture_output=True, timeout=600, preexec_fn=limit,
                        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})


def user_error(proc, *fragments):
  """The run failed with one `error:` line naming every fragment, and no traceback."""
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
  assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
  line = [l for l in proc.stderr.splitlines() if l.startswith("error: ")]
  assert line, proc.stderr[-3000:]
  for fragment in fragments:
    assert fragment in proc.stderr, (fragment, proc.stderr[-3000:])


def test_user_errors_are_one_line_and_exit_2(tmp_path):
  out = tmp_path / "out"
  assert cli(*TINY, "--max_images=2", f"--output_dir={out}", cwd=tmp_path).returncode == 0
  # The run-identity refusal; --debug shows its traceback.
  user_error(cli(*TINY, "--max_images=2", "--seed=1", f"--output_dir={out}", cwd=tmp_path),
             "differs in: seed")
  debug = cli(*TINY, "--max_images=2", "--seed=1", "--debug", f"--output_dir={out}", cwd=tmp_path)
  assert debug.returncode == 1 and "Traceback" in debug.stderr and "StoreError" in debug.stderr
  # A corrupt task file is recomputed, saying so.
  (out / "tasks" / "clean.npz").write_bytes(b"PK\x03\x04 cut short")
  again = cli(*TINY, "--max_images=2", f"--output_dir={out}", cwd=tmp_path)
  assert again.returncode == 0 and "clean.npz: unreadable" in again.stdout, again.stderr[-3000:]
  # A bad output folder.
  (tmp_path / "afile").write_text("x")
  user_error(cli(*TINY, "--max_images=2", f"--output_dir={tmp_path / 'afile' / 'sub'}",
                 cwd=tmp_path), "cannot use", "afile/sub")
  # A full disk (here: a file size limit the writes run into).
  full = tmp_path / "full"
  user_error(cli(*TINY, "--max_images=2", f"--output_dir={full}", cwd=tmp_path,
                 limit_file_size=100_000), "cannot write", "File too large")
  assert not list(full.rglob("tmp*")), list(full.rglob("*"))
  # A corrupt JPEG among the ImageNet images.
  folder = make_val_folder(tmp_path / "imagenet", 2)
  (folder / "ILSVRC2012_val_00000002.JPEG").write_bytes(b"\xff\xd8 not a jpeg")
  user_error(cli(*TINY[:2], "--source=imagenet", f"--imagenet_dir={folder}", *TINY[3:],
                 f"--output_dir={tmp_path / 'jpeg'}", cwd=tmp_path),
             "ILSVRC2012_val_00000002.JPEG: cannot decode the image")
  # Flags.
  user_error(cli(*TINY, "--corruptions=contrast", "--severities=6", cwd=tmp_path),
             "severity must be in 1..5, got 6")
  for value in ("0", "-1"):
    user_error(cli(*TINY, f"--max_images={value}", cwd=tmp_path),
               f"max_images must be a whole number >= 1 (or None for all), got {value}")
  (tmp_path / "list.json").write_text("[1, 2]")
  user_error(cli(*TINY, f"--baseline={tmp_path / 'list.json'}", cwd=tmp_path),
             "holds a JSON list, not the object of a results.json")


def test_checkpoint_is_recorded_and_a_changed_one_refused(tmp_path):
  torch = pytest.importorskip("torch")
  from conftest import import_torchvision
  tv = import_torchvision()
  torch.manual_seed(1)
  sd = tv.models.squeezenet1_1(weights=None).eval().state_dict()
  first = tmp_path / "squeeze.pth"
  torch.save(sd, first)
  args = ["--model=squeezenet1_1", "--source=demo", "--suite=corruption", "--corruptions=none",
          "--perturbations=none", "--max_images=2", "--bootstrap=0", "--noprogress",
          "--batch_size=2", f"--output_dir={tmp_path / 'out'}"]
  proc = cli(*args, f"--checkpoint={first}", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  run = json.loads((tmp_path / "out" / "results.json").read_text())["run"]
  assert run["checkpoint_sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
  assert run["weights_file"] == str(first.resolve())
  # The classifier's rows shifted by one: same shapes, other weights.
  shifted = dict(sd)
  shifted["classifier.1.weight"] = torch.roll(sd["classifier.1.weight"], 1, dims=0)
  shifted["classifier.1.bias"] = torch.roll(sd["classifier.1.bias"], 1, dims=0)
  second = tmp_path / "squeeze_shifted.pth"
  torch.save(shifted, second)
  user_error(cli(*args, f"--checkpoint={second}", cwd=tmp_path),
             "differs in: checkpoint_sha256, weights_sha256")
  # Not a checkpoint at all: the file is named.
  odd = tmp_path / "odd.pth"
  odd.write_bytes(b"\x80\x23 not a pickle")
  user_error(cli(*args, f"--checkpoint={odd}", cwd=tmp_path), "odd.pth", "unsupported pickle")
