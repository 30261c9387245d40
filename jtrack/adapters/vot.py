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
:mod:`jtrack.adapters.vot_run` runs :func:`main`: a trax server from
``vot-trax`` (:class:`TraxHandle`) asking for rectangle regions and image
paths, driving :func:`run_sequence`.
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


class TraxHandle:
    """:func:`run_sequence`'s handle over a trax server (pip ``vot-trax``),
    the protocol vot-toolkit's ``traxpython`` trackers speak: rectangle
    regions, image paths, the confidence as a per-object property. Nothing
    to copy from the VOT integration repository.

    A reset-based experiment re-initialises the tracker on the same
    connection: :meth:`frame` then ends the current run (None) and
    :meth:`restart` starts the next one."""

    def __init__(self, server=None):
        import trax

        self._trax = trax
        self.server = server or trax.Server([trax.Region.RECTANGLE], [trax.Image.PATH],
                                            tracker_name="jtrack")
        request = self.server.wait()
        if request.type != trax.TraxStatus.INITIALIZE:
            raise RuntimeError(f"trax: expected an initialize request, got {request.type!r}")
        self._begin(request)
        self._next = None  # an initialize request that ended the current run

    def _begin(self, request) -> None:
        self._start = request.objects[0][0]
        self._image = request.image
        self._answer_start = True  # initialize is answered with the start region

    def region(self) -> tuple:
        return self._start.bounds()

    def frame(self) -> str | None:
        if self._image is None:
            if self._answer_start:
                self.server.status([(self._start, {})])
                self._answer_start = False
            request = self.server.wait()
            if request.type == self._trax.TraxStatus.QUIT:
                return None
            if request.type == self._trax.TraxStatus.INITIALIZE:
                self._next = request
                return None
            if request.type != self._trax.TraxStatus.FRAME:
                raise RuntimeError(f"trax: expected a frame request, got {request.type!r}")
            self._image = request.image
        image, self._image = self._image, None
        return next(iter(image.values())).path()  # the colour channel

    def report(self, region, confidence: float) -> None:
        self.server.status([(region, {"confidence": confidence})])

    def restart(self) -> bool:
        """After a run ended: whether the toolkit re-initialised (a reset);
        if so the handle now serves that run from its start region."""
        if self._next is None:
            return False
        self._begin(self._next)
        self._next = None
        return True

    def quit(self) -> None:
        self.server.quit()


def main() -> None:
    """Entry point for vot-toolkit (``traxpython``): a trax server on the
    connection the toolkit opened."""
    try:
        import trax
    except ImportError as e:
        raise ImportError("jtrack.adapters.vot.main speaks the trax protocol of vot-toolkit: "
                          "pip install 'jtrack[vot]' (vot-trax)") from e
    from jtrack.cache import enable_compilation_cache

    enable_compilation_cache()  # a program: later sequences load init/step instead of compiling
    handle = TraxHandle()
    tracker = StatefulTracker(config_from_env())
    run_sequence(handle, trax.Rectangle.create, tracker)
    while handle.restart():  # resets reuse the compiled tracker
        run_sequence(handle, trax.Rectangle.create, tracker)
    handle.quit()


if __name__ == "__main__":
    main()
