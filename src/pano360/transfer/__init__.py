"""Transfer of perspective CNNs to ERP images: exact per-location targets, SphConv distillation.

``exact_outputs`` computes what a perspective conv stack gives on the tangent patch around every
location of the sphere (SphConv's "Exact"); distillation (``DistillConfig``, run on Lightning by
:func:`pano360.training.distill`) trains row-untied spherical layers (``build_student``) to
reproduce it layer by layer, ``load_student`` reads the result, and ``layer_rmse`` measures how
close a spherical network (the student, or the zero-shot ``build_spherical``) comes to it.
"""

from ._apply import STRATEGIES, TransferredModel, apply, default_rig
from ._builders import build_spherical, build_student
from ._distillation import DistillConfig
from ._evaluate import LAT_BANDS, layer_rmse
from ._exact import exact_outputs, receptive_field
from ._run_folder import load_student
from ._stacks import distillable_models, model_stack

__all__ = [
    "LAT_BANDS",
    "STRATEGIES",
    "DistillConfig",
    "TransferredModel",
    "apply",
    "build_spherical",
    "build_student",
    "default_rig",
    "distillable_models",
    "exact_outputs",
    "layer_rmse",
    "load_student",
    "model_stack",
    "receptive_field",
]
