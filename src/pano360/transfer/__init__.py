"""Transfer of perspective CNNs to ERP images: exact per-location targets, SphConv distillation.

``exact_outputs`` computes what a perspective conv stack gives on the tangent patch around every
location of the sphere (SphConv's "Exact"); the :mod:`pano360.transfer.distill` module trains
row-untied spherical layers to reproduce it layer by layer (``distill.distill``).
"""

from . import distill
from ._apply import STRATEGIES, TransferredModel, apply, default_rig
from ._exact import exact_outputs, receptive_field
from .distill import (
    LAT_BANDS,
    DistillConfig,
    build_spherical,
    build_student,
    distillable_models,
    layer_rmse,
    load_student,
    model_stack,
)

__all__ = [
    "LAT_BANDS",
    "STRATEGIES",
    "DistillConfig",
    "TransferredModel",
    "apply",
    "build_spherical",
    "build_student",
    "default_rig",
    "distill",
    "distillable_models",
    "exact_outputs",
    "layer_rmse",
    "load_student",
    "model_stack",
    "receptive_field",
]
