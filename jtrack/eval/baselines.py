"""Reference trackers behind the :class:`Tracker` interface: a trivial
"no motion" baseline and OpenCV's classic CSRT, KCF and MIL trackers, so
ablation tables and plots show where jtrack stands."""

from __future__ import annotations

from collections.abc import Callable

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


OPENCV_KINDS = ("CSRT", "KCF", "MIL")


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("the OpenCV baselines need opencv-contrib-python-headless: "
                          "pip install 'jtrack[baselines]' (or pip install "
                          "opencv-contrib-python-headless)") from e
    return cv2


def opencv_factory(kind: str) -> Callable[[], object]:
    """``cv2.Tracker<kind>_create`` wherever this OpenCV version keeps it:
    the main namespace (OpenCV >= 4.5.1 for CSRT/KCF/MIL, with the contrib
    package) or ``cv2.legacy`` (contrib builds that moved them), else an
    error naming the package."""
    if kind not in OPENCV_KINDS:
        raise ValueError(f"unknown OpenCV tracker {kind!r}; expected one of {OPENCV_KINDS}")
    cv2 = _cv2()
    name = f"Tracker{kind}_create"
    for ns in (cv2, getattr(cv2, "legacy", None)):
        if ns is not None and hasattr(ns, name):
            return getattr(ns, name)
    raise ImportError(f"this OpenCV ({cv2.__version__}) has no {name}, neither in cv2 nor "
                      "cv2.legacy: install opencv-contrib-python-headless (the contrib "
                      "build) instead of opencv-python")


def _int_rect(box) -> tuple[int, int, int, int]:
    # OpenCV's Rect is integer; round the corners, keep at least 1 px.
    x0, y0 = np.floor(box[:2]).astype(int)
    x1, y1 = np.ceil(np.asarray(box[:2]) + box[2:]).astype(int)
    return int(x0), int(y0), max(1, int(x1 - x0)), max(1, int(y1 - y0))


def opencv_tracker(kind: str) -> Tracker:
    """OpenCV's ``kind`` tracker (CSRT, KCF or MIL) with default parameters.

    Frames arrive RGB and are handed to OpenCV as BGR. When OpenCV reports a
    failure the previous box is repeated with score 0 (OpenCV returns no
    box), so outputs stay valid boxes. ``seed`` is unused: these trackers are
    deterministic given the frames.
    """
    create = opencv_factory(kind)
    cv2 = _cv2()

    def init(frame, box, seed):
        del seed
        t = create()
        bgr = cv2.cvtColor(np.ascontiguousarray(frame, np.uint8), cv2.COLOR_RGB2BGR)
        t.init(bgr, _int_rect(np.asarray(box, np.float64)))
        return t, np.asarray(box, np.float64)

    def step(state, frame):
        t, last = state
        bgr = cv2.cvtColor(np.ascontiguousarray(frame, np.uint8), cv2.COLOR_RGB2BGR)
        ok, rect = t.update(bgr)
        rect = np.asarray(rect, np.float64)
        if not ok or rect.shape != (4,) or rect[2] <= 0 or rect[3] <= 0:
            return (t, last), last, 0.0
        return (t, rect), rect, 1.0

    return Tracker(init=init, step=step, name=kind.lower(),
                   config={"kind": "opencv", "tracker": kind,
                           "opencv": getattr(cv2, "__version__", "?")})


BASELINES: dict[str, Callable[[], Tracker]] = {
    "static": static_tracker,
    "csrt": lambda: opencv_tracker("CSRT"),
    "kcf": lambda: opencv_tracker("KCF"),
    "mil": lambda: opencv_tracker("MIL"),
}
