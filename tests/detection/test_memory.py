"""Refusing a face search that would not fit in memory: the estimate, the limit, the way out."""

from __future__ import annotations

import pytest

from pano360.detection import _memory, check_face_memory
from pano360.errors import ShapeError, ValueRangeError

HW = (512, 1024)


@pytest.fixture
def estimate(monkeypatch):
    """An estimate of 1 TB below 2 degrees, nothing from 2 degrees up; nothing held yet."""
    monkeypatch.setattr(
        _memory, "face_detection_memory", lambda hw, deg, *a: 2**40 if deg < 2 else 0
    )
    monkeypatch.setattr(_memory, "_held_bytes", lambda: 0)


def test_a_search_within_the_limit_passes(estimate):
    assert check_face_memory(HW, 2.0, max_memory_gb=1) is None
    assert check_face_memory(HW, 8.0, output_bytes=2**29, max_memory_gb=1) is None


def test_the_refusal_gives_the_estimate_and_the_smallest_min_face_that_fits(estimate):
    with pytest.raises(ValueRangeError) as info:
        check_face_memory(HW, 0.5, max_memory_gb=4)
    assert str(info.value) == (
        "finding faces of --min-face 0.5 degrees in this 1024x512 panorama needs about "
        "1024.0 GB of memory, more than the 4.0 GB --max-memory; pass --min-face 2 or larger "
        "(about 0.0 GB), or raise --max-memory"
    )
    # The caller's own outputs count too: no minimum face fits then.
    with pytest.raises(ValueRangeError, match="use a smaller panorama, or raise --max-memory"):
        check_face_memory(HW, 8.0, output_bytes=8 * 2**30, max_memory_gb=4)


def test_without_a_limit_the_memory_available_is_the_limit(estimate, monkeypatch):
    monkeypatch.setattr(_memory, "_available_bytes", lambda: 2**30)
    with pytest.raises(ValueRangeError, match=r"1\.0 GB available; .* or free memory"):
        check_face_memory(HW, 1.0)
    monkeypatch.setattr(_memory, "_available_bytes", lambda: None)  # unknown: no check
    assert check_face_memory(HW, 1.0) is None


def test_the_process_peak_so_far_counts():
    # Whatever this process holds, a limit below it refuses even the cheapest search.
    assert _memory._held_bytes() > 2**20
    with pytest.raises(ValueRangeError, match="needs about"):
        check_face_memory((64, 128), 32.0, max_memory_gb=2**20 / 2**30)


def test_arguments_are_checked():
    with pytest.raises(ShapeError, match="erp_hw"):
        check_face_memory((100, 100), 8.0, max_memory_gb=1)
    with pytest.raises(ValueRangeError, match="max_memory_gb"):
        check_face_memory(HW, 8.0, max_memory_gb=0)
    with pytest.raises(ValueRangeError, match="output_bytes"):
        check_face_memory(HW, 8.0, output_bytes=-1, max_memory_gb=1)
    with pytest.raises(ValueRangeError, match="min_face_deg"):
        check_face_memory(HW, 0.0, max_memory_gb=1)
