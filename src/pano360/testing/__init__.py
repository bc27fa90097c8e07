"""Oracles and assertions for testing spherical code, ours and yours.

These helpers are public so users can check their own layers the way we check ours: smooth test
panoramas that are continuous across the seam and the poles, PSNR, yaw-equivariance and
seam-continuity checks, slow loop-based oracles that fast ops are compared with, and the
command line run in-process.
"""

from ._boxes import box_iou_oracle, nms_oracle, sph_iou_sampled
from ._cli import file_listing, run_cli
from ._conv import exact_conv2d
from ._images import (
    assert_psnr_at_least,
    assert_seam_continuous,
    assert_yaw_equivariant,
    psnr,
    smooth_erp,
)
from ._saliency import (
    auc_borji_oracle,
    auc_judd_oracle,
    auc_shuffled_oracle,
    binary_fixation_map_oracle,
    cc_oracle,
    compute_metrics_oracle,
    information_gain_oracle,
    kld_oracle,
    nss_oracle,
    sim_oracle,
)
from ._video import audio_packets, write_video_with_tone

__all__ = [
    "assert_psnr_at_least",
    "assert_seam_continuous",
    "assert_yaw_equivariant",
    "auc_borji_oracle",
    "auc_judd_oracle",
    "auc_shuffled_oracle",
    "audio_packets",
    "binary_fixation_map_oracle",
    "box_iou_oracle",
    "cc_oracle",
    "compute_metrics_oracle",
    "exact_conv2d",
    "file_listing",
    "information_gain_oracle",
    "kld_oracle",
    "nms_oracle",
    "nss_oracle",
    "psnr",
    "run_cli",
    "sim_oracle",
    "smooth_erp",
    "sph_iou_sampled",
    "write_video_with_tone",
]
