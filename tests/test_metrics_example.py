"""`python -m metrics.example` (what `make demo` runs until the demo exists)."""
import re
import subprocess
import sys

from imagenet_cp.metrics import example


def test_report_reproduces_published_numbers():
  text = example.report()
  assert "No model is run" in text
  # Table 2 cells recomputed from Table 1: ResNet-50 Gaussian noise and SqueezeNet JPEG.
  assert re.search(r"ResNet-50\s+gaussian_noise\s+80\s+23\.9%\s+104\.1\s+104\b", text)
  assert re.search(r"SqueezeNet\s+jpeg_compression\s+134\s+41\.8%\s+230\.2\s+229\b", text)
  # Every appendix C example: computed d equals the printed one.
  pairs = re.findall(r"d =\s*(\d+)\s+\(appendix C: (\d+)\)", text)
  assert len(pairs) == 8 and all(a == b for a, b in pairs)
  assert "H.264" in text


def test_module_runs_as_a_script():
  out = subprocess.run([sys.executable, "-m", "metrics.example"], capture_output=True, text=True,
                       check=True, timeout=120)
  assert out.stdout.startswith("Worked example")
