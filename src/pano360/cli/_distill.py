"""``pano360 distill``: distil a perspective CNN into spherical layers (SphConv), trained on
Lightning by :func:`pano360.training.distill` (extra ``train``; imported when the command runs)."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import torch
import typer

from .. import transfer
from .._core import ImageIOError, OutputExistsError, Pano360Error, ShapeError, ValueRangeError
from ..geometry import resize_erp
from ..io import IMAGE_EXTENSIONS, read_image, write_atomic
from ._options import Quiet, parse_size
from ._outputs import prepare_out_dir, say_done

__all__ = ["distill_command", "read_erp_folder"]

_EVALUATION_FILE = "evaluation.json"


def read_erp_folder(folder: Path, erp_hw: tuple[int, int], channels: int) -> torch.Tensor:
    """Every image of ``folder`` (sorted by name, not recursive) as a (N, C, H, W) ERP batch.

    Each file must be 2:1 (an equirectangular panorama); it is resized to ``erp_hw`` (bilinear,
    antialiased when shrinking, which keeps the pixel-centre rule of the conventions). Alpha is
    dropped and grayscale repeated to reach ``channels``.

    Raises:
        ImageIOError: ``folder`` is not a folder or an image cannot be read.
        ValueRangeError: no image in ``folder``.
        ShapeError: an image is not 2:1, or its channels cannot become ``channels``.
    """
    if not folder.is_dir():
        raise ImageIOError(f"--images '{folder}' is not a folder")
    paths = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not paths:
        raise ValueRangeError(f"--images '{folder}' holds no image ({' '.join(IMAGE_EXTENSIONS)})")
    images = []
    for path in paths:
        img = read_image(path)
        h, w = img.shape[-2:]
        if w != 2 * h:
            raise ShapeError(
                f"'{path}' must be an equirectangular panorama (width = 2 x height), got {w}x{h}"
            )
        c = img.shape[1]
        if c == 4 and channels == 3:
            img = img[:, :3]
        elif c == 1 and channels != 1:
            img = img.expand(-1, channels, -1, -1)
        elif c != channels:
            raise ShapeError(f"'{path}' has {c} channels, the model reads {channels}")
        if (h, w) != erp_hw:
            img = resize_erp(img, erp_hw).clamp(0, 1)
        images.append(img[0])
    return torch.stack(images)


def _config(**values) -> transfer.DistillConfig:
    """DistillConfig with errors naming the command-line options."""
    try:
        return transfer.DistillConfig(**values)
    except ValueRangeError as e:
        # Every field name, as a whole word, becomes its option (longest first: epochs is
        # part of finetune_epochs).
        message = str(e)
        for name in sorted((f.name for f in fields(transfer.DistillConfig)), key=len)[::-1]:
            option = f"--{name.replace('_', '-')}"
            message = re.sub(rf"(?<![\w-]){name}(?![\w-])", option, message)
        raise ValueRangeError(message) from None


def _as_options(message: str) -> str:
    """A library message about out_dir and config fields, in command-line terms."""
    message = message.replace("out_dir '", "--out '").replace("another out_dir", "another --out")
    message = message.replace("pass resume=True", "drop --no-resume")
    for f in fields(transfer.DistillConfig):
        message = message.replace(f"config {f.name}:", f"--{f.name.replace('_', '-')}:")
    return message


def _band_label(band: tuple[float, float]) -> str:
    return f"{math.degrees(band[0]):.0f}-{math.degrees(band[1]):.0f}"


def _evaluate(stack, student, config, images: torch.Tensor, out: Path) -> str:
    """Per-layer RMSE of zero-shot and distilled against exact; a table, saved as JSON too."""
    erp_hw = tuple(images.shape[-2:])
    zero_shot = transfer.build_spherical(stack, erp_hw, config.tap_spacing)
    opts = {"tap_spacing": config.tap_spacing, "chunk": config.chunk}
    before = transfer.layer_rmse(zero_shot, stack, images, **opts)
    after = transfer.layer_rmse(student, stack, images, **opts)
    names = [name for name, _ in stack.named_children()]
    bands = list(transfer.LAT_BANDS)
    record = {
        "images": images.shape[0],
        "bands_deg": [[round(math.degrees(v), 9) for v in band] for band in bands],
        "layers": [
            {
                "index": i,
                "name": names[i],
                "type": type(stack[i]).__name__,
                "zero_shot": [before[i][b] for b in bands],
                "distilled": [after[i][b] for b in bands],
            }
            for i in before
        ],
    }
    data = (json.dumps(record, indent=1) + "\n").encode()
    write_atomic(out / _EVALUATION_FILE, lambda f: f.write(data), overwrite=True)
    labels = " ".join(f"{_band_label(b):>7}" for b in bands)
    width = max(len(n) for n in names) + 12
    lines = [
        f"per-layer RMSE against exact on {images.shape[0]} image(s), by |latitude| band in "
        "degrees:",
        f"{'layer':<{width}} zero-shot {labels}   distilled {labels}",
    ]
    for i in before:
        left = " ".join(f"{before[i][b]:7.4f}" for b in bands)
        right = " ".join(f"{after[i][b]:7.4f}" for b in bands)
        label = f"{names[i]} ({type(stack[i]).__name__})"
        lines.append(f"{label:<{width}}           {left}             {right}")
    return "\n".join(lines)


def distill_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            metavar="NAME",
            help="Registered model whose conv stack is distilled (pretrained weights); "
            "available: " + ", ".join(transfer.distillable_models()) + ".",
        ),
    ],
    images: Annotated[
        Path,
        typer.Option(
            "--images",
            metavar="DIR",
            help="Folder of unlabelled equirectangular panoramas (2:1; .png .jpg .tif .webp), "
            "read in name order and resized to --erp-size.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for checkpoints and the result; created if missing. A folder holding "
            "this run is resumed; one holding anything else is refused.",
        ),
    ],
    erp_size: Annotated[
        str,
        typer.Option(
            "--erp-size", metavar="WxH", help="Size the panoramas are resized to; must be 2:1."
        ),
    ] = "256x128",
    epochs: Annotated[
        int, typer.Option("--epochs", metavar="N", help="Layer-wise epochs (passes over DIR).")
    ] = 10,
    finetune_epochs: Annotated[
        int,
        typer.Option(
            "--finetune-epochs", metavar="N", help="End-to-end fine-tuning epochs afterwards."
        ),
    ] = 0,
    rows_per_image: Annotated[
        int,
        typer.Option(
            "--rows-per-image",
            metavar="N",
            help="Output rows per image, layer and step, one per latitude stratum.",
        ),
    ] = 8,
    batch_size: Annotated[
        int, typer.Option("--batch-size", metavar="N", help="Images per step.")
    ] = 1,
    lr: Annotated[
        float, typer.Option("--lr", metavar="X", help="Adam learning rate, layer-wise epochs.")
    ] = 1e-3,
    finetune_lr: Annotated[
        float,
        typer.Option("--finetune-lr", metavar="X", help="Adam learning rate, fine-tuning."),
    ] = 1e-4,
    row_group_size: Annotated[
        int,
        typer.Option(
            "--row-group-size",
            metavar="N",
            help="Output rows sharing one kernel (1: every row its own, as in SphConv).",
        ),
    ] = 1,
    area_weighted: Annotated[
        bool,
        typer.Option(
            "--area-weighted",
            help="Weight each row's error by its area on the sphere (default: rows weigh the "
            "same, which favours the poles).",
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the image order and rows.")
    ] = 0,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="Continue the run found in --out (the default), or refuse a folder that "
            "already holds it.",
        ),
    ] = True,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            "--checkpoint-every",
            metavar="N",
            help="Save --out/checkpoints/last.ckpt (Lightning's) every N optimizer steps; 0: at "
            "the end of every epoch.",
        ),
    ] = 50,
    eval_images: Annotated[
        int,
        typer.Option(
            "--eval-images",
            metavar="N",
            help="After training, compare zero-shot and distilled layers with exact on the "
            "first N images (0: skip); printed and written to --out/evaluation.json.",
        ),
    ] = 2,
    quiet: Quiet = False,
) -> None:
    """Distil a perspective CNN into row-untied spherical layers (SphConv), layer by layer.

    Each convolution of the model becomes a RowUntiedConv2d (a kernel per ERP row) trained on
    the panoramas of DIR, without labels, to reproduce the model's exact outputs: the model
    applied to the tangent-plane projection around every location. Training runs on Lightning
    (extra 'train'), which checkpoints it in --out/checkpoints/last.ckpt: a run stopped at any
    point (Ctrl-C, a kill) continues from its last checkpoint when the same command is run
    again, and ends with the same weights as an uninterrupted run. The result is
    --out/student.safetensors (pano360 faces --strategy distilled --students; in Python
    pano360.transfer.load_student).

    \b
    Examples:
      pano360 distill --model mtcnn_pnet --images panoramas/ --out pnet_sphconv/
      pano360 distill --model mtcnn_pnet --images panoramas/ --out run2/ --epochs 20 \\
          --finetune-epochs 5 --erp-size 512x256 --seed 1
    """
    erp_hw = parse_size(erp_size, "--erp-size", erp=True)
    config = _config(
        epochs=epochs,
        finetune_epochs=finetune_epochs,
        rows_per_image=rows_per_image,
        batch_size=batch_size,
        lr=lr,
        finetune_lr=finetune_lr,
        row_group_size=row_group_size,
        area_weighted=area_weighted,
        seed=seed,
    )
    if eval_images < 0:
        raise ValueRangeError(f"--eval-images must be 0 or more, got {eval_images}")
    if checkpoint_every < 0:
        raise ValueRangeError(f"--checkpoint-every must be 0 or more, got {checkpoint_every}")
    try:
        from ..training import distill
    except ImportError as exc:  # the optional extra is missing
        raise Pano360Error(
            f"distill trains with Lightning: it needs the 'train' extra (pip install "
            f"'pano360[train]'): {exc}"
        ) from None
    try:
        stack = transfer.model_stack(model)
    except ValueRangeError as e:
        raise ValueRangeError(f"--{e}") from None
    stride = transfer.receptive_field(stack)[1]
    if erp_hw[0] % stride:
        raise ShapeError(
            f"--erp-size height must be a multiple of {model}'s total stride {stride}, got "
            f"{erp_size}"
        )
    prepare_out_dir(out)
    channels = next(m.in_channels for m in stack if isinstance(m, torch.nn.Conv2d))
    batch = read_erp_folder(images, erp_hw, channels)
    try:
        student, history = distill(
            stack,
            batch,
            config,
            out,
            resume=resume,
            progress=not quiet and sys.stderr.isatty(),
            checkpoint_every_n_steps=checkpoint_every or None,
        )
    except OutputExistsError as e:
        raise OutputExistsError(_as_options(str(e))) from None
    last = history[-1] if history else None
    say_done(
        f"distilled {model} on {batch.shape[0]} image(s) of {erp_hw[1]}x{erp_hw[0]}: wrote "
        f"{out / 'student.safetensors'}",
        quiet=quiet,
    )
    if last is not None and last["mse"]:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in last["mse"].items())
        say_done(
            f"epoch {last['epoch']} ({last['phase']}) mean squared error: {losses}", quiet=quiet
        )
    if eval_images:
        with torch.no_grad():
            typer.echo(_evaluate(stack, student, config, batch[:eval_images], out))
