"""``python -m metrics.leaderboard out/*/results.json``: several runs as one leaderboard table
(same as ``python -m imagenet_cp.leaderboard``)."""
import runpy

if __name__ == "__main__":
  runpy.run_module("imagenet_cp.leaderboard", run_name="__main__", alter_sys=True)
