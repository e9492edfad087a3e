"""imagenet_cp.gallery: one photo's ImageNet-C grid and ImageNet-P GIFs, through the CLI."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import imagenet_cp
from imagenet_cp import gallery, perturbations, sources
from conftest import REPO, photo

GREY_TEXT = 128  # label pixels are drawn in black on white


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """The CLI on a real 300x451 JPEG, once for the module: (decoded photo, output folder, stdout)."""
  root = tmp_path_factory.mktemp("gallery")
  path = root / "cat.jpg"
  Image.fromarray(photo("chelsea")).save(path, quality=90)
  out = root / "out"
  assert gallery.main([str(path), str(out), "--frame_ms=80"]) == 0
  return np.asarray(Image.open(path).convert("RGB")), out


def test_grid_has_every_corruption_and_severity(run):
  image, out = run
  grid = np.asarray(Image.open(out / gallery.GRID_FILE))
  layout = gallery.layout()
  assert (grid.shape[1], grid.shape[0]) == layout.size
  assert (layout.rows, layout.cols) == (19, 6)
  tile = lambda row, col: grid[layout.box(row, col)[1]:layout.box(row, col)[3],  # noqa: E731
                               layout.box(row, col)[0]:layout.box(row, col)[2]]
  crop = imagenet_cp.preprocess(image)
  for row in range(layout.rows):
    np.testing.assert_array_equal(tile(row, 0), crop)  # the clean column
    left, top, _, bottom = layout.box(row, 0)
    assert grid[top:bottom, :left].min() < GREY_TEXT, f"row {row} has no label"
  for col in range(layout.cols):
    left, top, right, _ = layout.box(0, col)
    assert grid[:top, left:right].min() < GREY_TEXT, f"column {col} has no header"
  # tiles are corrupt() with the benchmark's keys for this file name, in CORRUPTIONS x 1..5 order
  for name, severity in (("contrast", 3), ("gaussian_noise", 5), ("saturate", 1)):
    row = imagenet_cp.CORRUPTIONS.index(name)
    want = imagenet_cp.corrupt(crop, name, severity, imagenet_cp.example_key(0, name, severity, "cat.jpg"))
    np.testing.assert_array_equal(tile(row, severity), np.asarray(want), err_msg=name)
  assert not np.array_equal(tile(0, 1), tile(0, 5))


def test_one_gif_per_sequence_with_every_frame(run):
  image, out = run
  assert sorted(p.name for p in out.iterdir()) == sorted(
      [gallery.GRID_FILE] + [f"{n}.gif" for n in imagenet_cp.PERTURBATIONS])
  for name in imagenet_cp.PERTURBATIONS:
    with Image.open(out / f"{name}.gif") as gif:
      assert gif.n_frames == perturbations.num_frames(name), name  # 31, translate 41
      assert gif.size == (224, 224 + gallery.CAPTION) and gif.info["duration"] == 80
  # the frames are perturb()'s, up to the GIF's 256-colour palettes
  frames = np.asarray(imagenet_cp.perturb(imagenet_cp.resize_short_side(image), "rotate",
                                          imagenet_cp.example_key(0, "rotate", 1, "cat.jpg")))
  with Image.open(out / "rotate.gif") as gif:
    for t in (0, 15, 30):
      gif.seek(t)
      got = np.asarray(gif.convert("RGB"))[:224].astype(np.float32)
      assert np.abs(got - frames[t]).mean() < 5, t  # dithered: ~3 levels
  assert np.abs(frames[30].astype(np.float32) - frames[0]).mean() > 10  # so the check can fail


def test_write_demo_uses_the_first_demo_photo_and_its_file_name(monkeypatch, tmp_path):
  calls = []
  monkeypatch.setattr(gallery, "write", lambda image, out_dir, **kw: calls.append((image, out_dir, kw)))
  gallery.write_demo(tmp_path, seed=3)
  (image, out_dir, kw), = calls
  first = sources.DEMO_PHOTOS[0]
  np.testing.assert_array_equal(image, sources.demo_photo(first.name))
  assert out_dir == tmp_path and kw["seed"] == 3
  assert kw["file_name"] == f"demo/{first.name}.png" == sources.demo_examples()[0].file_name


def test_missing_or_unreadable_image_is_a_clear_error(tmp_path, capsys):
  bad = tmp_path / "bad.jpg"
  bad.write_bytes(b"\xff\xd8 not a jpeg")
  assert gallery.main([str(bad), str(tmp_path / "out")]) == 2
  assert f"error: {bad}: cannot read the image" in capsys.readouterr().err
  assert not (tmp_path / "out").exists()
  blocked = tmp_path / "file"
  blocked.write_text("")
  Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
  assert gallery.main([str(tmp_path / "ok.png"), str(blocked / "out")]) == 2
  assert "cannot create the output folder" in capsys.readouterr().err
  # the module entry point, as a user runs it
  missing = tmp_path / "missing.jpg"
  proc = subprocess.run([sys.executable, "-m", "imagenet_cp.gallery", str(missing), str(tmp_path)],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == f"error: {missing}: no such image file"
