"""Face detection: on 360° images with any transfer strategy (:func:`detect_faces`), and the
planar MTCNN pipeline in separable stages with its box operations.

Boxes are (N, 4) ``(x1, y1, x2, y2)`` in continuous pixel coordinates with pixel centres at
integers (the convention of :mod:`pano360.geometry.conventions`); see :mod:`._ops`.
"""

from ._evaluate import (
    LAT_BANDS_DEG,
    FaceEvaluation,
    average_precision,
    evaluate_faces,
)
from ._faces360 import (
    FaceDetection,
    detect_faces,
    distilled_pnet_on_erp,
    erp_pyramid_levels,
    load_pnet_students,
    pnet_on_erp,
    tangent_crops,
    view_boxes_to_bfov,
)
from ._mtcnn import (
    FaceCandidates,
    FaceDetections,
    MTCNNFaceDetector,
    PNetWindows,
    crop_candidates,
    detect_faces_planar,
    mtcnn_pyramid_scales,
    mtcnn_stage1,
    mtcnn_stage2,
    mtcnn_stage3,
    pnet_map_to_boxes,
)
from ._ops import (
    IOU_DENOMINATORS,
    apply_box_deltas,
    box_area,
    box_iou,
    crop_boxes,
    nms,
    square_boxes,
)

__all__ = [
    "IOU_DENOMINATORS",
    "LAT_BANDS_DEG",
    "FaceCandidates",
    "FaceDetection",
    "FaceDetections",
    "FaceEvaluation",
    "MTCNNFaceDetector",
    "PNetWindows",
    "apply_box_deltas",
    "average_precision",
    "box_area",
    "box_iou",
    "crop_boxes",
    "crop_candidates",
    "detect_faces",
    "detect_faces_planar",
    "distilled_pnet_on_erp",
    "erp_pyramid_levels",
    "evaluate_faces",
    "load_pnet_students",
    "mtcnn_pyramid_scales",
    "mtcnn_stage1",
    "mtcnn_stage2",
    "mtcnn_stage3",
    "nms",
    "pnet_map_to_boxes",
    "pnet_on_erp",
    "square_boxes",
    "tangent_crops",
    "view_boxes_to_bfov",
]
