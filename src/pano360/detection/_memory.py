"""Refusing, before detecting, a face search that would not fit in memory.

:func:`~pano360.detection.face_detection_memory` estimates what a search adds to a panorama;
:func:`check_face_memory` sets it against a limit (given, or what the system has available)
and, when it does not fit, raises with the estimate and a way out: the smallest minimum face
that fits. The CLI runs it on an image, on a video's frame size and on every file of a folder,
so that an out-of-memory risk ends in one clear line, never in the kernel killing the process.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .._core import ValueRangeError, check_hw, check_number
from ._faces360 import face_detection_memory

__all__ = ["check_face_memory"]

#: The minimum face sizes, in degrees, a refusal may suggest, smallest first.
MIN_FACE_STEPS = (0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32)
_GB = 2**30


def _available_bytes() -> int | None:
    """Memory the system can still give (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _held_bytes() -> int:
    """The process's peak resident memory so far (Python, torch, what it has read), 0 where
    the platform cannot say."""
    try:
        import resource
    except ImportError:  # not on Unix
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, kilobytes elsewhere


def check_face_memory(
    erp_hw: Sequence[int],
    min_face_deg: float,
    max_face_deg: float = 60.0,
    *,
    output_bytes: int = 0,
    max_memory_gb: float | None = None,
) -> None:
    """Refuse a face search whose estimated peak memory exceeds the limit.

    The estimate is what the process holds already (its peak so far) plus the larger of
    :func:`~pano360.detection.face_detection_memory` and ``output_bytes`` (what the caller
    holds after detecting: blurred and outlined copies, their encodings).

    Args:
        erp_hw: (H, W) of the panorama (or of a video's frames), W == 2H.
        min_face_deg, max_face_deg: the search's face sizes, degrees.
        output_bytes: the caller's own peak after detection, bytes (>= 0).
        max_memory_gb: the limit, GB (> 0); None: what the system has available now (no
            check where the platform cannot say).

    Raises:
        ValueRangeError: the estimate exceeds the limit (the message gives the estimate, the
            limit, and the smallest minimum face that fits, if any); settings out of range.
        ShapeError: ``erp_hw`` is not a 2:1 size.

    Example:
        >>> check_face_memory((4096, 8192), 8.0, max_memory_gb=64)  # fits: returns None
        >>> check_face_memory((4096, 8192), 1.0, max_memory_gb=1)
        Traceback (most recent call last):
            ...
        pano360._core.errors.ValueRangeError: finding faces of --min-face 1 degrees in this \
8192x4096 panorama needs about ... GB of memory, more than the 1.0 GB --max-memory; ..., or \
raise --max-memory
    """
    h, w = check_hw(erp_hw, "erp_hw", erp=True)
    check_number(output_bytes, "output_bytes", lo=0)
    check_number(max_memory_gb, "max_memory_gb", lo=0.0, lo_open=True, optional=True)
    held = _held_bytes()

    def need(deg: float) -> int:
        return held + max(face_detection_memory((h, w), deg, max(deg, max_face_deg)), output_bytes)

    if max_memory_gb is not None:
        limit, source = max_memory_gb * _GB, "--max-memory"
    else:
        free = _available_bytes()
        if free is None:
            return
        limit, source = held + free, "available"
    if need(min_face_deg) <= limit:
        return
    steps = (d for d in MIN_FACE_STEPS if min_face_deg < d <= max_face_deg)
    fits = next((d for d in steps if need(d) <= limit), None)
    way_out = (
        f"pass --min-face {fits:g} or larger (about {need(fits) / _GB:.1f} GB)"
        if fits is not None
        else "use a smaller panorama"
    )
    more = "free memory (or set --max-memory)" if max_memory_gb is None else "raise --max-memory"
    raise ValueRangeError(
        f"finding faces of --min-face {min_face_deg:g} degrees in this {w}x{h} panorama needs "
        f"about {need(min_face_deg) / _GB:.1f} GB of memory, more than the {limit / _GB:.1f} GB "
        f"{source}; {way_out}, or {more}"
    )
