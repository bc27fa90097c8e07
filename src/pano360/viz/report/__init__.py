"""Interactive 360° reports: a folder with a page where one looks around a panorama and its results.

:func:`write_report` turns an ERP image or video and what pano360 found in it (face and detection
boxes, saliency maps, fixations) into a self-contained folder: open its ``index.html`` in a
browser, from disk or served (:func:`serve_report`, or ``pano360 report ... --serve``). The page
uses a vendored 360° viewer (Photo Sphere Viewer 5 and three.js, MIT, shipped with their
licences in ``data/vendor/``); nothing is loaded from the network. Layers can be toggled: box
outlines (the boxes' true great-circle edges), a saliency heat map on the sphere, fixations as
points, a "blur faces" view; the list of boxes turns the view to each.

Convention: see :mod:`pano360.geometry.conventions`. The viewer's yaw and pitch are the library's
lon and lat: a point at (lon, lat) is at the centre of the screen when the view is turned to
yaw = lon, pitch = lat (yaw right, pitch up). Seam and poles need no care: the page works with
directions on the sphere.
"""

from ...io import read_saliency_maps  # the one reader of saliency map files, re-exported
from ._inputs import BOX_LISTS, ReportBoxes, read_boxes_json
from ._serve import serve_report
from ._writer import (
    EMBED_LIMIT_BYTES,
    REPORT_FORMAT,
    ReportSummary,
    saliency_colormap,
    viewer_bundle,
    write_report,
)

__all__ = [
    "BOX_LISTS",
    "EMBED_LIMIT_BYTES",
    "REPORT_FORMAT",
    "ReportBoxes",
    "ReportSummary",
    "read_boxes_json",
    "read_saliency_maps",
    "saliency_colormap",
    "serve_report",
    "viewer_bundle",
    "write_report",
]
