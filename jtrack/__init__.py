"""jtrack: online MDNet-family visual object tracking as pure JAX functions."""

from jtrack import boxes
from jtrack.config import TrackerConfig
from jtrack.nets import Backbone, get_backbone, register_backbone
from jtrack import backbones  # noqa: F401  registers efficientnet_lite0 (weights load lazily)

__version__ = "0.1.0"
