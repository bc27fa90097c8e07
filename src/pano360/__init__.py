"""pano360: correct and fast computer vision on 360-degree (equirectangular) images and videos.

The sphere convention every function follows is written once, in
:mod:`pano360.geometry.conventions`.
"""

from . import errors, geometry, io
from .detection import detect_faces

__version__ = "0.1.0"

__all__ = ["__version__", "detect_faces", "errors", "geometry", "io"]
