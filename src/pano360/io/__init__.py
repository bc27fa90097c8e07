"""Image files in and out: float tensors in [0, 1] inside, 8-bit or 16-bit files outside.

:func:`read_image` gives (1, C, H, W) float32 tensors and, with ``with_info=True``, an
:class:`ImageInfo` (bit depth, EXIF, XMP such as GPano 360° tags, ICC profile); :func:`write_image`
writes PNG, JPEG, TIFF or WebP atomically (a temporary file renamed into place), at 8 or 16 bits,
with that metadata when asked. Like ``open(path, "w")`` it replaces an existing file unless given
``overwrite=False`` (the command line refuses without ``--overwrite``). Pixels are read and
written as stored: no EXIF rotation, no colour management. Saliency maps, one per frame, are
written by :class:`SaliencyMapWriter` (float32 or float16 ``.npy``, a compressed ``.npz``, or a
folder of 8- or 16-bit PNGs: :data:`SALIENCY_MAP_FORMATS`) and read by :func:`read_saliency_maps`.
"""

from ._image import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    check_output_path,
    read_image,
    write_atomic,
    write_image,
    write_images,
)
from ._metadata import ImageInfo, rotate_metadata
from ._saliency_maps import (
    SALIENCY_MAP_FORMATS,
    SaliencyMapWriter,
    read_saliency_maps,
    saliency_map_path,
)
from ._video import (
    SPHERICAL_VIDEO_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoIOError,
    VideoWriter,
    iter_video_frames,
    read_video,
    transcode_video,
    video_info,
    write_video,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "SALIENCY_MAP_FORMATS",
    "SPHERICAL_VIDEO_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ImageInfo",
    "SaliencyMapWriter",
    "VideoIOError",
    "VideoInfo",
    "VideoWriter",
    "check_output_path",
    "iter_video_frames",
    "read_image",
    "read_saliency_maps",
    "read_video",
    "rotate_metadata",
    "saliency_map_path",
    "transcode_video",
    "video_info",
    "write_atomic",
    "write_image",
    "write_images",
    "write_video",
]
