"""jtrack as a ``got10k.trackers.Tracker`` (GOT-10k toolkit, pip ``got10k``).

    from got10k.experiments import ExperimentOTB
    from jtrack.adapters.got10k import JTrackGot10k

    ExperimentOTB("data/OTB", version=2015).run(JTrackGot10k())

got10k hands ``init(image, box)`` a PIL image and the box exactly as its
annotation file holds it (x, y, w, h) and scores ``update(image)``'s boxes
against the same file, so by default boxes pass through unchanged (a
1-based file only shifts where the tracker looks by one pixel, and its
output is shifted back the same way). ``one_based=True`` converts to
jtrack's 0-based pixels and back.
"""

from __future__ import annotations

import numpy as np

try:
    from got10k.trackers import Tracker as _Got10kTracker
except ImportError as e:  # optional dependency
    raise ImportError("jtrack.adapters.got10k needs the GOT-10k toolkit: "
                      "pip install 'jtrack[got10k]'  (got10k and six)") from e

from jtrack.boxes import from_one_based, to_one_based
from jtrack.data.frames import to_rgb_uint8
from jtrack.stateful import StatefulTracker


class JTrackGot10k(_Got10kTracker):
    """``init(image, box)``, ``update(image) -> (4,) box`` over
    :class:`jtrack.StatefulTracker`.

    Args:
      config, params, seed: as :class:`jtrack.StatefulTracker` (params are
        made once and reused for every sequence).
      name: the tracker name got10k files results under.
      one_based: boxes from/to got10k are 1-based (convert at the edge).
    """

    def __init__(self, config=None, params=None, seed: int = 0, name: str = "jtrack",
                 one_based: bool = False):
        # Same seed, same boxes: got10k runs a deterministic tracker once
        # per sequence in its VOT experiment instead of repeating it.
        super().__init__(name=name, is_deterministic=True)
        self.tracker = StatefulTracker(config, params, seed)
        self.one_based = one_based

    def init(self, image, box) -> None:
        box = np.asarray(box, np.float32).reshape(4)
        if self.one_based:
            box = np.asarray(from_one_based(box))
        self.tracker.init(to_rgb_uint8(np.asarray(image), "got10k image"), box)

    def update(self, image) -> np.ndarray:
        box = self.tracker.update(to_rgb_uint8(np.asarray(image), "got10k image"))
        box = np.asarray(to_one_based(box)) if self.one_based else box
        return np.asarray(box, np.float64)
