"""Detection: the result contract every detector returns, box operations and NMS, face
detection on 360° images with any transfer strategy (:func:`detect_faces`), and the planar MTCNN
pipeline in separable stages; tracking on the sphere and face blurring in 360° videos and in
folders of panoramas (:func:`blur_faces_in_folder`, resumable, decoded in DataLoader workers).

- The detection result (``_result``): per image a dict of tensors ``{"boxes": (N, 4) BFoV or
  (N, 5) RBFoV radians, "scores": (N,), "labels": (N,) int64, "keypoints": (N, K, 2) lon/lat
  radians or absent}`` (:data:`Detections`, :func:`check_detections`); :class:`FaceDetection`
  is a view of one row (:func:`face_detections`).
- NMS (``_nms``): one greedy NMS for planar and spherical boxes, with class groups
  (:func:`nms`, :func:`batched_nms`, :func:`sph_nms`, :func:`batched_sph_nms`).
- Planar box operations (``_ops``): boxes are (N, 4) ``(x1, y1, x2, y2)`` in continuous pixel
  coordinates with pixel centres at integers (the convention of
  :mod:`pano360.geometry.conventions`).
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
    face_detection_memory,
    face_detections,
    load_pnet_students,
    pnet_on_erp,
    tangent_crops,
    view_boxes_to_bfov,
)
from ._folders import (
    FOLDER_SUMMARY_FIELDS,
    FaceFolderJob,
    FolderFaceResult,
    FolderImages,
    blur_faces_in_folder,
    list_images,
)
from ._memory import check_face_memory
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
from ._nms import SPH_NMS_METHODS, batched_nms, batched_sph_nms, nms, sph_nms
from ._ops import (
    IOU_DENOMINATORS,
    apply_box_deltas,
    box_area,
    box_iou,
    crop_boxes,
    square_boxes,
)
from ._result import (
    DETECTION_KEYS,
    Detections,
    cat_detections,
    check_detections,
    empty_detections,
    select_detections,
)
from ._tracking import SphereTracker, TrackedBoxes, frames_for_seconds
from ._video import VideoBlurSummary, blur_faces_in_video, widen_boxes

__all__ = [
    "DETECTION_KEYS",
    "FOLDER_SUMMARY_FIELDS",
    "IOU_DENOMINATORS",
    "LAT_BANDS_DEG",
    "SPH_NMS_METHODS",
    "Detections",
    "FaceCandidates",
    "FaceDetection",
    "FaceDetections",
    "FaceEvaluation",
    "FaceFolderJob",
    "FolderFaceResult",
    "FolderImages",
    "MTCNNFaceDetector",
    "PNetWindows",
    "SphereTracker",
    "TrackedBoxes",
    "VideoBlurSummary",
    "apply_box_deltas",
    "average_precision",
    "batched_nms",
    "batched_sph_nms",
    "blur_faces_in_folder",
    "blur_faces_in_video",
    "box_area",
    "box_iou",
    "cat_detections",
    "check_detections",
    "check_face_memory",
    "crop_boxes",
    "crop_candidates",
    "detect_faces",
    "detect_faces_planar",
    "distilled_pnet_on_erp",
    "empty_detections",
    "erp_pyramid_levels",
    "evaluate_faces",
    "face_detection_memory",
    "face_detections",
    "frames_for_seconds",
    "list_images",
    "load_pnet_students",
    "mtcnn_pyramid_scales",
    "mtcnn_stage1",
    "mtcnn_stage2",
    "mtcnn_stage3",
    "nms",
    "pnet_map_to_boxes",
    "pnet_on_erp",
    "select_detections",
    "sph_nms",
    "square_boxes",
    "tangent_crops",
    "view_boxes_to_bfov",
    "widen_boxes",
]
