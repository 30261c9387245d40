"""``experiments.pretrain`` with the tiny test backbone registered: a child
process for tests (not a test module). Takes experiments.pretrain's flags."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tiny_tracker  # noqa: E402,F401  (registers tiny_tracker.NAME)
from absl import app  # noqa: E402

from experiments import pretrain  # noqa: E402

if __name__ == "__main__":
    app.run(pretrain.main)
