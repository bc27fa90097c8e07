"""Training on Lightning (optional extra ``train``): a LightningModule per task (saliency,
SphConv distillation), a LightningDataModule over the dataset readers, the ``pano360 train``
command, face blurring of folders on many GPUs and nodes through Lightning's predict loop
(:func:`blur_faces_in_folder_ddp`), :func:`distill` (``pano360 distill``) and the export of
trained models (safetensors plus a JSON model card).

The Trainer is Lightning's, so devices, DDP on many GPUs and nodes (torchrun, SLURM), mixed
precision, gradient accumulation and checkpoints are Lightning's; nothing here is distributed
code of our own. See docs/training.md.
"""

from ._cli import ConfigError, train_saliency
from ._curves import plot_learning_curve, read_epoch_metrics
from ._data import SaliencyDataModule, split_by_video
from ._distill import DistillTask, distill
from ._export import export_model
from ._faces_folder import FaceFolderPredictTask, blur_faces_in_folder_ddp
from ._saliency_task import PRIORS, SaliencyTask

__all__ = [
    "PRIORS",
    "ConfigError",
    "DistillTask",
    "FaceFolderPredictTask",
    "SaliencyDataModule",
    "SaliencyTask",
    "blur_faces_in_folder_ddp",
    "distill",
    "export_model",
    "plot_learning_curve",
    "read_epoch_metrics",
    "split_by_video",
    "train_saliency",
]
