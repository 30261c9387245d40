"""jtrack: online MDNet-family visual object tracking as pure JAX functions.

Box convention everywhere inside the library: (4,) float32 xywh, 0-based
pixels (see :mod:`jtrack.boxes`).
"""

import gc as _gc

# Importing jax builds a large object graph in which a cyclic collection
# finds nothing to free: the collector pauses meanwhile (a faster start),
# and is restored as it was: importing jtrack changes no setting.
_collecting = _gc.isenabled()
_gc.disable()
try:
    from jtrack import boxes
    from jtrack.cache import enable_compilation_cache
    from jtrack.config import TrackerConfig
    from jtrack.nets import Backbone, get_backbone, register_backbone
    from jtrack.tracker import (TrackerState, TrackOutput, feature_dim, init,
                                init_params, score_candidates, step)
    from jtrack.multi import (MultiTrackerState, active_slots, add_target, init_many,
                              remove_target, stack_states, step_many, unstack_states)
    from jtrack.stateful import StatefulTracker
    from jtrack import backbones  # noqa: F401  registers efficientnet_lite0 (weights load lazily)
finally:
    if _collecting:
        _gc.enable()
    del _gc, _collecting

__version__ = "0.1.0"
