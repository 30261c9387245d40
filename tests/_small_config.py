"""The small TrackerConfig of docs/api.md's Setup, shared by the tests of
the tools around the tracker (CLI, adapters, docs): the plumbing is under
test, and one small config compiles once per test process instead of once
per file (EfficientNet takes a minute to compile on a small CPU)."""

import jtrack

OVERRIDES = dict(backbone="small_cnn", hidden=64, iters_init=5, n_neg_init=500, n_bbreg=200,
                 iters_update=3, long_interval=4)
CONFIG = jtrack.TrackerConfig(**OVERRIDES)
