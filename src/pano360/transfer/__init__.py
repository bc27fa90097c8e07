"""Transfer of perspective CNNs to ERP images: exact per-location targets, SphConv distillation.

``exact_outputs`` computes what a perspective conv stack gives on the tangent patch around every
location of the sphere (SphConv's "Exact"); distillation (``DistillConfig``, run on Lightning by
:func:`pano360.training.distill`) trains row-untied spherical layers (``build_student``) to
reproduce it layer by layer, ``load_student`` reads the result, and ``layer_rmse`` measures how
close a spherical network (the student, or the zero-shot ``build_spherical``) comes to it.

For a deep backbone (``pano360.models.backbones``), ``exact_features`` computes the exact
output of a stage (the network up to it on the tangent view around every output location,
cached on disk), and ``evaluate_backbone`` compares every strategy of :func:`apply` with it: per
stage and latitude band, by classification of pasted photos (``object_scenes``), and by speed.
"""

from ._apply import STRATEGIES, TransferredModel, apply, default_rig
from ._builders import build_spherical, build_student
from ._deep_distill import (
    BackboneDistillConfig,
    BackboneStudent,
    default_untied_blocks,
    distill_backbone,
    load_backbone_student,
)
from ._deep_eval import (
    BACKBONE_STRATEGIES,
    BackboneTransferResult,
    backbone_runners,
    evaluate_backbone,
    object_scenes,
)
from ._distillation import DistillConfig
from ._evaluate import LAT_BANDS, band_rmse, layer_rmse
from ._exact import exact_outputs, receptive_field
from ._exact_features import (
    exact_features,
    stage_grid,
    stage_patch_size,
    stage_receptive_field,
    weights_fingerprint,
)
from ._run_folder import load_student
from ._stacks import distillable_models, model_stack

__all__ = [
    "BACKBONE_STRATEGIES",
    "LAT_BANDS",
    "STRATEGIES",
    "BackboneDistillConfig",
    "BackboneStudent",
    "BackboneTransferResult",
    "DistillConfig",
    "TransferredModel",
    "apply",
    "backbone_runners",
    "band_rmse",
    "build_spherical",
    "build_student",
    "default_rig",
    "default_untied_blocks",
    "distill_backbone",
    "distillable_models",
    "evaluate_backbone",
    "exact_features",
    "exact_outputs",
    "layer_rmse",
    "load_backbone_student",
    "load_student",
    "model_stack",
    "object_scenes",
    "receptive_field",
    "stage_grid",
    "stage_patch_size",
    "stage_receptive_field",
    "weights_fingerprint",
]
