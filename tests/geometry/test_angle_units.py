"""One unit rule: radians in Python, degrees only in parameters named ``*_deg``; an angle in
radians beyond 2 pi (``yaw=90``) warns with AngleUnitWarning, pointing at the user's line."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
import torch

import pano360.data
import pano360.detection
import pano360.geometry
import pano360.saliency
import pano360.transfer
import pano360.viz
from pano360.errors import AngleUnitWarning, Pano360Warning
from pano360.geometry import (
    ViewRig,
    cap_footprint,
    caps_apart,
    erp_to_perspective,
    perspective_to_erp,
    rotate_erp,
    rotation_matrix,
    window_cap,
)

ERP = torch.rand(1, 3, 8, 16)
WINDOW = torch.tensor([-0.5, -0.5, 0.5, 0.5])
CENTRES, RADII = torch.zeros(1, 2), torch.full((1,), 0.1)

# Each public function that takes angles, called with one of them in degrees by mistake.
DEGREES_BY_MISTAKE = {
    "erp_to_perspective yaw": lambda: erp_to_perspective(ERP, 1.0, (4, 4), yaw=90),
    "erp_to_perspective pitch (tensor)": lambda: erp_to_perspective(
        ERP, 1.0, (4, 4), pitch=torch.tensor([0.1, 30.0])
    ),
    "perspective_to_erp roll": lambda: perspective_to_erp(ERP[..., :4], 1.0, (8, 16), roll=-45),
    "rotation_matrix yaw": lambda: rotation_matrix(180),
    "rotate_erp yaw": lambda: rotate_erp(ERP, yaw=90),
    "window_cap pitch": lambda: window_cap(WINDOW, pitch=45.0),
    "ViewRig yaw": lambda: ViewRig.from_views([0.0, 90.0], [0.0, 0.0], 1.0),
    "cap_footprint radius": lambda: cap_footprint((0.0, 0.0), 10.0, (8, 16)),
    "cap_footprint centre lon": lambda: cap_footprint((170.0, 0.0), 0.1, (8, 16)),
    "caps_apart gap": lambda: caps_apart(CENTRES, RADII, CENTRES, RADII, gap=7.0),
    "caps_apart radii": lambda: caps_apart(CENTRES, RADII * 100, CENTRES, RADII),
}


@pytest.mark.parametrize("case", sorted(DEGREES_BY_MISTAKE))
def test_an_angle_beyond_2pi_warns_naming_the_parameter_at_the_callers_line(case):
    name = case.split()[1]
    with pytest.warns(AngleUnitWarning, match=rf"^{name}.* is larger than 2 pi: angles are "
                      r"radians in pano360 \(math\.radians\("):  # fmt: skip
        DEGREES_BY_MISTAKE[case]()


def test_the_warning_points_at_the_users_line_not_inside_pano360():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        erp_to_perspective(ERP, 1.0, (4, 4), yaw=90)
    (warning,) = [w for w in caught if w.category is AngleUnitWarning]
    assert warning.filename == __file__
    assert "yaw = 90 is larger than 2 pi" in str(warning.message)
    assert "math.radians(90) = 1.5708" in str(warning.message)


def test_angles_in_radians_do_not_warn_even_at_2pi():
    with warnings.catch_warnings():
        warnings.simplefilter("error", AngleUnitWarning)
        erp_to_perspective(ERP, 1.0, (4, 4), yaw=2 * math.pi, pitch=-math.pi / 2, roll=-math.pi)
        rotate_erp(ERP, yaw=-2 * math.pi)
        rotation_matrix(torch.tensor([math.pi, -6.0]))
        ViewRig.sphere_cover(math.radians(30))
        ViewRig.ring(pitches=(-1.0, 0.0, 1.0))
        caps_apart(CENTRES, RADII, CENTRES, RADII, gap=-0.1)


def test_the_warning_is_a_pano360_user_warning_that_can_become_an_error():
    assert issubclass(AngleUnitWarning, Pano360Warning)
    assert issubclass(Pano360Warning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AngleUnitWarning)
        with pytest.raises(AngleUnitWarning):
            rotation_matrix(yaw=90)


def test_fields_of_view_in_degrees_are_already_errors():
    """fov has a range, (0, pi): degrees there are refused, not only warned about."""
    with pytest.raises(ValueError, match=r"fov must be in \(0, pi\) radians"):
        erp_to_perspective(ERP, 90, (4, 4))


# Parameters whose value is an angle, in any public function of these packages: each either
# takes radians or says degrees in its name.
ANGLE_WORDS = ("yaw", "pitch", "roll", "fov", "lon", "lat", "angle", "sigma", "gap", "radius")
PACKAGES = [
    pano360.geometry,
    pano360.detection,
    pano360.saliency,
    pano360.transfer,
    pano360.data,
    pano360.viz,
]


def _public_callables():
    for package in PACKAGES:
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if callable(getattr(member, "__func__", member)) and (
                        attr == "__init__" or not attr.startswith("_")
                    ):
                        yield f"{package.__name__}.{name}.{attr}", getattr(obj, attr)
            elif callable(obj):
                yield f"{package.__name__}.{name}", obj


def _degree_defaults() -> list[str]:
    """Angle parameters not named *_deg whose default is a number beyond 2 pi (a degree
    default in a radian parameter)."""
    found = []
    for where, fn in _public_callables():
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            continue
        for p in params:
            angle = any(w in p.name.lower() for w in ANGLE_WORDS)
            default = p.default
            if (
                isinstance(default, (tuple, list))
                and default
                and all(isinstance(v, (int, float)) for v in np.ravel(default))
            ):
                default = max(abs(float(v)) for v in np.ravel(default))
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
            if angle and not p.name.endswith("_deg") and numeric and abs(default) > 2 * math.pi:
                found.append(f"{where}({p.name}={p.default!r})")
    return found


def test_no_public_angle_parameter_takes_degrees_unless_named_deg():
    assert _degree_defaults() == []
