"""Benchmark data: one Sequence type, readers, dataset loaders, result files."""

from jtrack.data.datasets import (KINDS, default_data_root, detect_kind, load_dataset,
                                  read_sequence, sequence_kind)
from jtrack.data.frames import (BadFrame, iter_video, list_images, load_frame,
                                read_frame_or_bad, to_rgb_uint8)
from jtrack.data.readers import (from_image_folder, from_video, normalize_gt, read_got10k,
                                 read_lasot, read_otb, read_vot)
from jtrack.data.results import (atomic_write_text, read_boxes, read_times, write_boxes,
                                 write_times)
from jtrack.data.sequence import Sequence

__all__ = [
    "KINDS", "BadFrame", "Sequence", "atomic_write_text", "default_data_root", "detect_kind",
    "from_image_folder", "from_video", "iter_video", "list_images", "load_dataset",
    "load_frame", "normalize_gt", "read_boxes", "read_frame_or_bad", "read_got10k",
    "read_lasot", "read_otb", "read_sequence", "read_times", "read_vot", "sequence_kind", "to_rgb_uint8",
    "write_boxes", "write_times",
]
