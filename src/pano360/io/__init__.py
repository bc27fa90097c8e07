"""Image files in and out: float tensors in [0, 1] inside, 8-bit (or 16-bit) files outside.

:func:`read_image` gives (1, C, H, W) float32 tensors; :func:`write_image` writes PNG, JPEG, TIFF
or WebP atomically (a temporary file renamed into place) and never overwrites a file unless
asked. Pixels are read and written as stored: no EXIF rotation, no colour management.
"""

from ._image import (
    IMAGE_EXTENSIONS,
    check_output_path,
    read_image,
    write_atomic,
    write_image,
    write_images,
)
from ._video import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoIOError,
    VideoWriter,
    iter_video_frames,
    read_video,
    video_info,
    write_video,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "VideoIOError",
    "VideoInfo",
    "VideoWriter",
    "check_output_path",
    "iter_video_frames",
    "read_image",
    "read_video",
    "video_info",
    "write_atomic",
    "write_image",
    "write_images",
    "write_video",
]
