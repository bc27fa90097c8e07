"""Datasets and data generators: 360° saliency dataset readers, synthetic spherical scenes.

Image I/O lives in :mod:`pano360.io`; this package reads datasets built from such files.
"""

__all__: list[str] = []
