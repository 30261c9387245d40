"""Backbones beyond VGG-M (which lives in jtrack.nets)."""
from jtrack.backbones import efficientnet  # noqa: F401  (registers efficientnet_lite0*)
from jtrack.backbones import small  # noqa: F401  (registers small_cnn)
