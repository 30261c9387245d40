"""orbax checkpoints of the pretraining state: :class:`jtrack.checkpoint.Checkpoints`."""

from jtrack.checkpoint import Checkpoints

__all__ = ["Checkpoints"]
