"""Units in detection, as a user meets them: radians in Python (results, FaceDetection),
degrees in JSON (FaceDetection.to_dict) and in parameters named *_deg."""

import inspect
import math

import pytest
import torch

from pano360.detection import (
    FaceDetection,
    detect_faces,
    erp_pyramid_levels,
    view_boxes_to_bfov,
)
from pano360.errors import AngleUnitWarning
from pano360.geometry import rotation_matrix


def test_a_view_fov_in_degrees_warns():
    boxes = torch.tensor([[1.5, 1.5, 5.5, 5.5]])  # centred: pixel centres at integers
    rot = rotation_matrix(0.0)[None]
    with pytest.warns(AngleUnitWarning, match=r"^fov = 90 \(largest magnitude\) is larger"):
        view_boxes_to_bfov(boxes, (8, 8), torch.tensor([90.0]), rot)
    bfov = view_boxes_to_bfov(boxes, (8, 8), torch.tensor([math.pi / 2]), rot)
    assert bfov[0, :2].abs().max() < 1e-6  # a centred box looks along the view's axis


def test_face_sizes_are_the_only_degree_parameters_and_say_so():
    for fn in (detect_faces, erp_pyramid_levels):
        names = list(inspect.signature(fn).parameters)
        assert "min_face_deg" in names and "max_face_deg" in names


def test_face_detection_is_radians_and_its_dict_degrees():
    face = FaceDetection((math.pi / 2, -math.pi / 4, 0.2, 0.3), 0.9, ((1.0, 0.5),) * 5)
    assert face.box[0] == math.pi / 2
    d = face.to_dict()
    assert d["bfov"][:2] == [90.0, -45.0]
    assert d["landmarks"][0] == [round(math.degrees(1.0), 4), round(math.degrees(0.5), 4)]
