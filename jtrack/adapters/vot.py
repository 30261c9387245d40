"""VOT integration script: jtrack under vot-toolkit (trax protocol, rectangle).

Register it in the workspace's ``trackers.ini``::

    [jtrack]
    label = jtrack
    protocol = traxpython
    command = jtrack.adapters.vot_run
    paths = /path/to/jtrack
    # optional TrackerConfig fields, as "field=value" words:
    env_JTRACK_VOT_CONFIG = iters_update=10 backbone=vggm

``traxpython`` imports the ``command`` module, and importing
:mod:`jtrack.adapters.vot_run` runs :func:`main`. vot-toolkit provides the
``vot`` module (the trax client; pip ``vot-toolkit`` / ``vot-trax``); :func:`main`
imports it, asks for a ``rectangle`` region and runs :func:`run_sequence`.
Everything else is a pure loop over a *handle* with ``region()``,
``frame()`` and ``report(region, confidence)``, so it can be driven (and
tested) without the toolkit.

Regions: jtrack's VOT reader treats ``groundtruth.txt`` as 1-based, and
the start rectangle is assumed to arrive in the file's convention, so it is
converted to jtrack's 0-based pixels and the reported ones back
(``one_based=False`` skips this; the difference is one pixel). Nothing is printed: with trax over
stdin/stdout, stray output would break the protocol.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from jtrack.data.frames import load_frame
from jtrack.stateful import StatefulTracker


def _region_xywh(region) -> np.ndarray:
    """A ``vot.Rectangle``-like (x, y, width, height attributes), or 4
    numbers, or a polygon's points -> (4,) float32 xywh (polygons: their
    axis-aligned bounding box)."""
    if all(hasattr(region, a) for a in ("x", "y", "width", "height")):
        return np.asarray([region.x, region.y, region.width, region.height], np.float32)
    points = getattr(region, "points", None)
    if points is not None:  # vot.Polygon: list of Point(x, y)
        xy = np.asarray([(p.x, p.y) for p in points], np.float32)
        lo, hi = xy.min(0), xy.max(0)
        return np.concatenate([lo, hi - lo]).astype(np.float32)
    b = np.asarray(region, np.float32).reshape(-1)
    if b.shape != (4,):
        raise ValueError(f"VOT region must be a rectangle (x, y, w, h); got {region!r}")
    return b


def _frame_path(item) -> str | None:
    """``handle.frame()`` gives a path, a list of channel paths (color
    first) or None at the end of the sequence."""
    if isinstance(item, (list, tuple)):
        item = item[0] if item else None
    return None if item is None or item == "" else os.fspath(item)


def run_sequence(handle, make_region: Callable[[float, float, float, float], object],
                 tracker: StatefulTracker | None = None, one_based: bool = True,
                 load: Callable[[str], np.ndarray] = load_frame) -> int:
    """Track one VOT sequence through ``handle``; returns the frames reported.

    Args:
      handle: ``region()`` -> start region, ``frame()`` -> image path or None
        when done, ``report(region, confidence)`` after each later frame.
      make_region: ``(x, y, w, h) -> region`` object for ``report``
        (``vot.Rectangle``).
      tracker: a :class:`StatefulTracker` (default: default config, seed 0).
    """
    tracker = StatefulTracker() if tracker is None else tracker
    offset = np.asarray([1, 1, 0, 0], np.float32) if one_based else np.zeros(4, np.float32)
    start = _region_xywh(handle.region())
    first = _frame_path(handle.frame())
    if first is None:
        return 0
    tracker.init(load(first), start - offset)
    n = 0
    while True:
        path = _frame_path(handle.frame())
        if path is None:
            return n
        box = tracker.update(load(path)) + offset
        handle.report(make_region(*(float(v) for v in box)), float(tracker.score))
        n += 1


def config_from_env(text: str | None = None):
    """TrackerConfig from ``field=value`` words (``$JTRACK_VOT_CONFIG``)."""
    import jtrack

    text = os.environ.get("JTRACK_VOT_CONFIG", "") if text is None else text
    words = text.split()
    if not words:
        return jtrack.TrackerConfig()
    from jtrack.cli import build_config

    return build_config(None, words)


def main() -> None:
    """Entry point for vot-toolkit (needs its ``vot`` module importable)."""
    try:
        import vot  # vot-toolkit's trax client module
    except ImportError as e:
        raise ImportError("jtrack.adapters.vot.main runs under vot-toolkit, which provides "
                          "the 'vot' module (pip install vot-toolkit, or its vot.py)") from e
    handle = vot.VOT("rectangle")
    run_sequence(handle, vot.Rectangle, StatefulTracker(config_from_env()))
    quit_ = getattr(handle, "quit", None)
    if quit_ is not None:
        quit_()


if __name__ == "__main__":
    main()
