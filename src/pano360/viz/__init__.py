"""Visualisation on ERP images: spherical box outlines, privacy blur, saliency overlays.

Everything follows the sphere convention of :mod:`pano360.geometry.conventions`: what is drawn or
blurred is the box's region on the sphere, seam- and pole-safe.
"""

from ._draw import blur_regions_on_sphere, draw_box_outlines
from ._overlay import overlay_saliency

__all__ = ["blur_regions_on_sphere", "draw_box_outlines", "overlay_saliency"]
