"""Trivial reference trackers: pipeline smoke tests and sanity baselines."""

from __future__ import annotations

import numpy as np

from jtrack.eval.trackers import Tracker


def static_tracker() -> Tracker:
    """Predicts the initial box on every frame (the "no motion" baseline;
    any real tracker must beat it)."""

    def init(frame, box, seed):
        return np.asarray(box, np.float64)

    def step(state, frame):
        return state, state, 1.0

    return Tracker(init=init, step=step, name="static", config={"kind": "static"})


BASELINES = {"static": static_tracker}
