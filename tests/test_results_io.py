"""Result files: conventions, round trips, atomic writes."""

import os

import numpy as np
import pytest

from jtrack.data import results


def test_boxes_round_trip_one_based(tmp_path):
    boxes = np.array([[0, 1, 2, 3], [np.nan] * 4, [4.5, 5.25, 6, 7]])
    path = str(tmp_path / "Seq.txt")
    results.write_boxes(path, boxes, one_based=True)
    first = open(path).readline().strip()
    assert first == "1.0000,2.0000,2.0000,3.0000"  # OTB GT convention
    np.testing.assert_allclose(results.read_boxes(path, one_based=True), boxes)
    results.write_times(str(tmp_path / "t.txt"), [0.5, 0.25])
    np.testing.assert_allclose(results.read_times(str(tmp_path / "t.txt")), [0.5, 0.25])


def test_atomic_write_replaces_whole_file_with_fsync(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "a.txt"
    results.atomic_write_text(str(path), "new\n")
    assert path.read_text() == "new\n" and synced
    assert os.listdir(tmp_path) == ["a.txt"]


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("old\n")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write_text(str(path), "new\n" * 1000)
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["a.txt"]  # temp file cleaned up
