"""``pano360 distill``: distil a perspective CNN (a conv stack such as P-Net, or a deep backbone
such as MobileNetV2) into spherical layers (SphConv), trained on Lightning by
:func:`pano360.training.distill` (extra ``train``; imported when the command runs)."""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated

import torch
import typer

from .. import transfer
from .._core import (
    ImageIOError,
    OutputExistsError,
    Pano360Error,
    ShapeError,
    ValueRangeError,
    check_choice,
)
from ..geometry import resize_erp
from ..io import IMAGE_EXTENSIONS, read_image, write_atomic
from ..models import create_model, list_models
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


_CONFIGS = (transfer.DistillConfig, transfer.BackboneDistillConfig)
#: --erp-size when not given: a stack's (P-Net's 12 x 12 window) and a backbone's (ImageNet's
#: 224 x 224 input, as rows of a 2:1 panorama).
_ERP_SIZE = {"stack": "256x128", "backbone": "448x224"}


def _backbones() -> list[str]:
    """Backbones that ship pretrained weights: the ones ``--model`` can distil."""
    return list_models(task="backbone", pretrained=True)


def _default(field: str) -> str:
    """The defaults of a config field as help text: a stack's and a backbone's."""
    shown = []
    for cls, who in zip(_CONFIGS, ("stacks", "backbones"), strict=True):
        default = {f.name: f.default for f in fields(cls)}.get(field, MISSING)
        if default is not MISSING:
            shown.append(f"{default:g} for {who}")  # ints and floats
    return "[default: " + ", ".join(shown) + "]"


def _config(cls, **values):
    """A DistillConfig or BackboneDistillConfig from the options given (None: the config's
    default), with errors naming the command-line options."""
    try:
        return cls(**{k: v for k, v in values.items() if v is not None})
    except ValueRangeError as e:
        # Every field name, as a whole word, becomes its option (longest first: epochs is
        # part of finetune_epochs).
        message = str(e)
        for name in sorted((f.name for f in fields(cls)), key=len)[::-1]:
            option = f"--{name.replace('_', '-')}"
            message = re.sub(rf"(?<![\w-]){name}(?![\w-])", option, message)
        raise ValueRangeError(message) from None


def _as_options(message: str) -> str:
    """A library message about out_dir and config fields, in command-line terms."""
    message = message.replace("out_dir '", "--out '").replace("another out_dir", "another --out")
    message = message.replace("pass resume=True", "drop --no-resume")
    for f in {f.name for cls in _CONFIGS for f in fields(cls)}:
        message = message.replace(f"config {f}:", f"--{f.replace('_', '-')}:")
    return message


def _band_label(band: tuple[float, float]) -> str:
    return f"{math.degrees(band[0]):.0f}-{math.degrees(band[1]):.0f}"


def _write_evaluation(out: Path, rows: list[dict], images: int, title: str) -> str:
    """Write ``out/evaluation.json`` and return the table. ``rows``: ``{"label"`` (the table's),
    ``"zero_shot"``, ``"distilled"`` (band -> RMSE each), and the keys to record as they are}``.
    """
    bands = list(transfer.LAT_BANDS)
    record = {
        "images": images,
        "bands_deg": [[round(math.degrees(v), 9) for v in band] for band in bands],
        "layers": [
            {
                **{k: v for k, v in r.items() if k != "label"},
                "zero_shot": [r["zero_shot"][b] for b in bands],
                "distilled": [r["distilled"][b] for b in bands],
            }
            for r in rows
        ],
    }
    data = (json.dumps(record, indent=1) + "\n").encode()
    write_atomic(out / _EVALUATION_FILE, lambda f: f.write(data), overwrite=True)
    labels = " ".join(f"{_band_label(b):>7}" for b in bands)
    width = max(len(r["label"]) for r in rows) + 2
    lines = [title, f"{'layer':<{width}} zero-shot {labels}   distilled {labels}"]
    for r in rows:
        left = " ".join(f"{r['zero_shot'][b]:7.4f}" for b in bands)
        right = " ".join(f"{r['distilled'][b]:7.4f}" for b in bands)
        lines.append(f"{r['label']:<{width}}           {left}             {right}")
    return "\n".join(lines)


def _evaluate(stack, student, config, images: torch.Tensor, out: Path) -> str:
    """Per-layer RMSE of zero-shot and distilled against exact; a table, saved as JSON too."""
    erp_hw = tuple(images.shape[-2:])
    zero_shot = transfer.build_spherical(stack, erp_hw, config.tap_spacing)
    opts = {"tap_spacing": config.tap_spacing, "chunk": config.chunk}
    before = transfer.layer_rmse(zero_shot, stack, images, **opts)
    after = transfer.layer_rmse(student, stack, images, **opts)
    names = [name for name, _ in stack.named_children()]
    rows = [
        {
            "index": i,
            "name": names[i],
            "type": type(stack[i]).__name__,
            "label": f"{names[i]} ({type(stack[i]).__name__})",
            "zero_shot": before[i],
            "distilled": after[i],
        }
        for i in before
    ]
    title = (
        f"per-layer RMSE against exact on {images.shape[0]} image(s), by |latitude| band in "
        "degrees:"
    )
    return _write_evaluation(out, rows, images.shape[0], title)


def _evaluate_backbone(model, student, config, images: torch.Tensor, out: Path) -> str:
    """Per-stage RMSE over exact's standard deviation of zero-shot and distilled, for the
    trained stages (exact read from the run's cache); a table, saved as JSON too."""
    rows = []
    for stage in config.stages:
        exact = transfer.exact_features(model, images, stage, cache_dir=out / "exact")
        zero_shot = transfer.backbone_runners(model, stage, ("spherical",))["spherical"]
        rows.append(
            {
                "name": stage,
                "label": stage,
                "zero_shot": transfer.band_rmse(zero_shot(images), exact, relative=True),
                "distilled": transfer.band_rmse(student.stage(stage)(images), exact, relative=True),
            }
        )
    title = (
        f"per-stage RMSE against exact over exact's standard deviation on {images.shape[0]} "
        "image(s), by |latitude| band in degrees:"
    )
    return _write_evaluation(out, rows, images.shape[0], title)


def _stage_list(text: str, model, name: str) -> tuple[str, ...]:
    """``--stages``: comma-separated stages of ``model``, in its order."""
    stages = tuple(s.strip() for s in text.split(",") if s.strip())
    if not stages:
        raise ValueRangeError(f"--stages must name at least one stage of {name}, got {text!r}")
    order = list(model.stages)
    for stage in stages:
        check_choice(stage, "--stages", tuple(order))
    indices = [order.index(s) for s in stages]
    if indices != sorted(set(indices)):
        raise ValueRangeError(
            f"--stages must be in {name}'s order ({', '.join(order)}), each once, got {text}"
        )
    return stages


def distill_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            metavar="NAME",
            help="Registered model distilled (pretrained weights): a conv stack ("
            + ", ".join(transfer.distillable_models())
            + ") or a deep backbone ("
            + ", ".join(_backbones())
            + ").",
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
    images: Annotated[
        Path | None,
        typer.Option(
            "--images",
            metavar="DIR",
            help="Folder of unlabelled equirectangular panoramas (2:1; .png .jpg .tif .webp), "
            "read in name order and resized to --erp-size. Or --synthetic.",
            show_default=False,
        ),
    ] = None,
    synthetic: Annotated[
        int,
        typer.Option(
            "--synthetic",
            metavar="N",
            help="Instead of --images: N synthetic scenes of seed --seed (photos pasted at "
            "every latitude on a sky, pano360.transfer.object_scenes). Use another seed than "
            "the scenes you evaluate on (pano360 eval transfer --seed, 2027 by default).",
        ),
    ] = 0,
    erp_size: Annotated[
        str | None,
        typer.Option(
            "--erp-size",
            metavar="WxH",
            help="Size the panoramas are resized to; must be 2:1, the height a multiple of "
            "the model's total stride.  [default: "
            + f"{_ERP_SIZE['stack']} for stacks, {_ERP_SIZE['backbone']} for backbones]",
            show_default=False,
        ),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option(
            "--stages",
            metavar="LIST",
            help="Backbones: comma-separated stages trained against exact, in order (later "
            "stages stay zero-shot; exact costs most at the later stages).  [default: "
            + ",".join(transfer.BackboneDistillConfig().stages)
            + "]",
            show_default=False,
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            metavar="N",
            help="Layer-wise epochs (passes over the images).  " + _default("epochs"),
            show_default=False,
        ),
    ] = None,
    finetune_epochs: Annotated[
        int | None,
        typer.Option(
            "--finetune-epochs",
            metavar="N",
            help="End-to-end fine-tuning epochs afterwards.  " + _default("finetune_epochs"),
            show_default=False,
        ),
    ] = None,
    rows_per_image: Annotated[
        int | None,
        typer.Option(
            "--rows-per-image",
            metavar="N",
            help="Stacks: output rows per image, layer and step, one per latitude stratum.  "
            + _default("rows_per_image"),
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            metavar="N",
            help="Stacks: images per step (backbones: 1).  " + _default("batch_size"),
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr",
            metavar="X",
            help="Adam learning rate, layer-wise epochs.  " + _default("lr"),
            show_default=False,
        ),
    ] = None,
    finetune_lr: Annotated[
        float | None,
        typer.Option(
            "--finetune-lr",
            metavar="X",
            help="Adam learning rate, fine-tuning.  " + _default("finetune_lr"),
            show_default=False,
        ),
    ] = None,
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
            help="Stacks: weight each row's error by its area on the sphere (default: rows "
            "weigh the same, which favours the poles).",
        ),
    ] = False,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", metavar="S", help="Seed of the image order and rows (and of --synthetic)."
        ),
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
            help="After training, compare zero-shot and distilled layers (backbones: trained "
            "stages) with exact on the first N images (0: skip); printed and written to "
            "--out/evaluation.json.",
        ),
    ] = 2,
    quiet: Quiet = False,
) -> None:
    """Distil a perspective CNN into row-untied spherical layers (SphConv), layer by layer.

    A conv stack (P-Net): each convolution becomes a RowUntiedConv2d (a kernel per ERP row)
    trained on the panoramas, without labels, to reproduce the model's exact outputs: the
    model applied to the tangent-plane projection around every location. A deep backbone
    (MobileNetV2): the zero-shot spherical network whose 3x3 convolutions in the strided
    blocks get a kernel per row, trained against the exact outputs of --stages, segment by
    segment, then end to end; exact targets are costly (a network pass per location) and
    cached in --out/exact.

    Training runs on Lightning (extra 'train'), which checkpoints it in
    --out/checkpoints/last.ckpt: a run stopped at any point (Ctrl-C, a kill) continues from its
    last checkpoint when the same command is run again, and ends with the same weights as an
    uninterrupted run. The result is --out/student.safetensors: for a stack, pano360 faces
    --strategy distilled --students (in Python pano360.transfer.load_student); for a backbone,
    pano360 eval transfer --student (pano360.transfer.load_backbone_student).

    \b
    Examples:
      pano360 distill --model mtcnn_pnet --images panoramas/ --out pnet_sphconv/
      pano360 distill --model mtcnn_pnet --images panoramas/ --out run2/ --epochs 20 \\
          --finetune-epochs 5 --erp-size 512x256 --seed 1
      pano360 distill --model mobilenet_v2 --synthetic 4 --seed 1000 --out mnv2/ \\
          --stages features.3,features.6 --epochs 15 --finetune-epochs 15
      pano360 eval transfer --model mobilenet_v2 --student mnv2/student.safetensors
    """
    backbone = model in _backbones()
    if not backbone and model not in transfer.distillable_models():
        raise ValueRangeError(
            f"--model must be one of {', '.join(transfer.distillable_models())} (conv stacks) "
            f"or {', '.join(_backbones())} (backbones), got {model!r}"
        )
    kind = "backbone" if backbone else "stack"
    erp_hw = parse_size(erp_size or _ERP_SIZE[kind], "--erp-size", erp=True)
    for option, value in (
        ("--rows-per-image", rows_per_image), ("--batch-size", batch_size),
        ("--area-weighted", area_weighted or None),
    ):  # fmt: skip
        if backbone and value is not None:
            raise ValueRangeError(f"{option} is for conv stacks, not the backbone {model}")
    if not backbone and stages is not None:
        raise ValueRangeError(f"--stages is for backbones, not the conv stack {model}")
    if synthetic < 0:
        raise ValueRangeError(f"--synthetic must be 0 or more, got {synthetic}")
    if (images is None) == (synthetic == 0):
        raise ValueRangeError(
            "pass either --images DIR or --synthetic N (the panoramas to train on)"
            if images is None
            else "--images and --synthetic exclude each other: pass one"
        )
    if eval_images < 0:
        raise ValueRangeError(f"--eval-images must be 0 or more, got {eval_images}")
    if checkpoint_every < 0:
        raise ValueRangeError(f"--checkpoint-every must be 0 or more, got {checkpoint_every}")
    common = {
        "epochs": epochs, "finetune_epochs": finetune_epochs, "lr": lr, "finetune_lr": finetune_lr,
        "row_group_size": row_group_size, "seed": seed,
    }  # fmt: skip
    if backbone:
        source = create_model(model, pretrained=True).eval()
        stride = list(source.stages.values())[-1]
        picked = None if stages is None else _stage_list(stages, source, model)
        config = _config(transfer.BackboneDistillConfig, stages=picked, **common)
    else:
        config = _config(
            transfer.DistillConfig, rows_per_image=rows_per_image, batch_size=batch_size,
            area_weighted=area_weighted, **common,
        )  # fmt: skip
    try:
        from ..training import distill
    except ImportError as exc:  # the optional extra is missing
        raise Pano360Error(
            f"distill trains with Lightning: it needs the 'train' extra (pip install "
            f"'pano360[train]'): {exc}"
        ) from None
    if not backbone:
        try:
            source = transfer.model_stack(model)
        except ValueRangeError as e:
            raise ValueRangeError(f"--{e}") from None
        stride = transfer.receptive_field(source)[1]
    if erp_hw[0] % stride:
        raise ShapeError(
            f"--erp-size height must be a multiple of {model}'s total stride {stride}, got "
            f"{erp_size}"
        )
    prepare_out_dir(out)
    if images is not None:
        channels = 3 if backbone else next(
            m.in_channels for m in source if isinstance(m, torch.nn.Conv2d)
        )  # fmt: skip
        batch = read_erp_folder(images, erp_hw, channels)
    else:
        batch = torch.stack(
            [scene.erp for scene in transfer.object_scenes(synthetic, seed, erp_hw)]
        )
    progress = not quiet and sys.stderr.isatty()
    try:
        student, history = distill(
            source,
            batch,
            config,
            out,
            resume=resume,
            progress=progress,
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
        what = "normalised mean squared error" if backbone else "mean squared error"
        losses = ", ".join(f"{k} {v:.4g}" for k, v in last["mse"].items())
        say_done(f"epoch {last['epoch']} ({last['phase']}) {what}: {losses}", quiet=quiet)
    if eval_images:
        evaluate = _evaluate_backbone if backbone else _evaluate
        with torch.no_grad():
            typer.echo(evaluate(source, student, config, batch[:eval_images], out))
