"""Evaluation: benchmark protocols and metrics, scoring, the experiment runner."""

from jtrack.eval import geometry, got10k, otb, research, scoring, vot
from jtrack.eval.trackers import Tracker, jtrack_tracker

__all__ = ["Tracker", "geometry", "got10k", "jtrack_tracker", "otb", "research",
           "scoring", "vot"]
