"""``pano360 eval transfer``: the transfer strategies of a deep ImageNet backbone against its exact
outputs, per stage and latitude band, on synthetic "spherical ImageNet" scenes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ._options import Overwrite, Quiet, parse_size
from ._outputs import prepare_out_dir, prepare_outputs, say_done

__all__ = ["eval_transfer"]

# torch and the models, data and transfer modules are imported by the command: its help must
# not import them.


def eval_transfer(
    model_name: Annotated[
        str,
        typer.Option(
            "--model",
            metavar="NAME",
            help="A backbone: mobilenet_v2 (pretrained weights shipped), resnet50, vgg16, "
            "vgg16_bn (these need --weights).",
        ),
    ] = "mobilenet_v2",
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            metavar="FILE",
            help="A torchvision-format checkpoint of --model (.safetensors, or .pth read "
            "with weights_only=True).  [default: the shipped weights]",
            show_default=False,
        ),
    ] = None,
    stages: Annotated[
        str | None,
        typer.Option(
            "--stage",
            metavar="LIST",
            help="Comma-separated stages for the per-stage RMSE table (e.g. features.6,"
            "features.18).  [default: all four]",
            show_default=False,
        ),
    ] = None,
    scenes: Annotated[
        int,
        typer.Option(
            "--scenes", metavar="N", help="Synthetic scenes (six photos each, two per band)."
        ),
    ] = 8,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the scenes (scene i: (S, i)).")
    ] = 2027,
    size: Annotated[
        str,
        typer.Option("--size", metavar="WxH", help="Size of the scenes (2:1, H a multiple of 32)."),
    ] = "448x224",
    max_patch: Annotated[
        int,
        typer.Option(
            "--max-patch",
            metavar="PX",
            help="Largest exact patch side in pixels (0: the stage's whole receptive field, "
            "the network on the unbounded tangent plane; smaller is faster but a cropped view).",
        ),
    ] = 0,
    rmse_scenes: Annotated[
        int,
        typer.Option(
            "--rmse-scenes",
            metavar="N",
            help="Scenes in the per-stage RMSE table (the first N; exact costs most at the "
            "middle stages).",
        ),
    ] = 2,
    timing_scenes: Annotated[
        int,
        typer.Option(
            "--timing-scenes",
            metavar="N",
            help="Scenes on which exact is timed afresh (never from the cache; 0: not timed).",
        ),
    ] = 1,
    student: Annotated[
        Path | None,
        typer.Option(
            "--student",
            metavar="FILE",
            help="A distilled student of --model for --size (.safetensors written by "
            "pano360.transfer.distill_backbone's BackboneStudent.save): adds the row "
            "'distilled'.",
            show_default=False,
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            metavar="DIR",
            help="Folder caching exact outputs (safetensors, checked against the weights).",
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for transfer_eval.json and .md; created if missing.",
        ),
    ] = Path("."),
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Compare transfer strategies of a deep ImageNet backbone with its exact outputs.

    Exact (SphConv's reference): at every output location of a stage, the network on the
    tangent-plane view centred there. For direct, cubemap, multiview (views covering the whole
    sphere) and spherical (zero-shot), the table gives per stage the RMSE against exact divided
    by exact's standard deviation, for |lat| in 0-30, 30-60 and 60-85 degrees; then the
    classification of every pasted photo (its region of the last stage, averaged, through the
    classifier) against exact's (the network on the photo's own tangent-plane view): top-1
    agreement and top-5 overlap in percent; then seconds per image and their ratios.

    \b
    Examples:
      pano360 eval transfer --model mobilenet_v2 --stage features.18 --scenes 4
      pano360 eval transfer --student students/mobilenet_v2.safetensors --scenes 4
      pano360 eval transfer --scenes 8 --cache exact-cache/ --out results/
    """
    import json

    import torch

    from .._core import ValueRangeError, check_choice
    from ..models import create_model, list_models
    from ..transfer import (
        backbone_runners,
        evaluate_backbone,
        load_backbone_student,
        object_scenes,
    )

    check_choice(model_name, "--model", list_models(task="backbone"))
    for option, value, lo in (
        ("--scenes", scenes, 1), ("--seed", seed, 0), ("--max-patch", max_patch, 0),
        ("--rmse-scenes", rmse_scenes, 0), ("--timing-scenes", timing_scenes, 0),
    ):  # fmt: skip
        if value < lo:
            raise ValueRangeError(f"{option} must be >= {lo}, got {value}")
    for option, value in (("--rmse-scenes", rmse_scenes), ("--timing-scenes", timing_scenes)):
        if value > scenes:
            raise ValueRangeError(f"{option} must be at most --scenes ({scenes}), got {value}")
    hw = parse_size(size, erp=True)
    if hw[0] % 32:
        raise ValueRangeError(f"--size height must be a multiple of 32, got {hw[0]}")
    if weights is None and model_name not in list_models(pretrained=True):
        raise ValueRangeError(f"--model {model_name} ships no weights: pass --weights FILE")
    prepare_out_dir(out)
    json_path, md_path = out / "transfer_eval.json", out / "transfer_eval.md"
    prepare_outputs(
        [("--out", json_path, False), ("--out", md_path, False)],
        [weights] if weights is not None else [],
        overwrite=overwrite,
    )
    model = create_model(model_name, pretrained=weights is None, weights=weights).eval()
    names = None
    if stages is not None:
        names = [s.strip() for s in stages.split(",") if s.strip()]
        if not names:
            raise ValueRangeError("--stage is empty")
        for name in names:
            check_choice(name, "--stage", tuple(model.stages))

    runners = None
    if student is not None:
        distilled = load_backbone_student(model, student)
        if tuple(distilled.erp_hw) != tuple(hw):
            raise ValueRangeError(
                f"--student {student} was distilled for {distilled.erp_hw[1]}x"
                f"{distilled.erp_hw[0]} panoramas, not --size {size}"
            )
        final = list(model.stages)[-1]
        wanted = list(model.stages) if names is None else names
        runners = {s: backbone_runners(model, s) for s in dict.fromkeys([*wanted, final])}
        for stage, entry in runners.items():
            entry["distilled"] = distilled.stage(stage)

    data = object_scenes(scenes, seed, hw)
    erps = torch.stack([s.erp for s in data])
    result = evaluate_backbone(
        model,
        erps,
        [s.rbfov for s in data],
        names,
        rmse_images=rmse_scenes,
        timing_images=timing_scenes,
        max_patch=max_patch or None,
        cache_dir=cache,
        name=model_name,
        progress=not quiet and sys.stderr.isatty(),
        runners=runners,
    )
    report = result.to_markdown()
    typer.echo(report)
    doc = result.to_dict()
    doc["scenes"] = {"n": scenes, "seed": seed, "size": [hw[1], hw[0]]}
    doc["command"] = "pano360 eval transfer " + " ".join(sys.argv[3:] if len(sys.argv) > 3 else [])
    from ..io import write_images

    write_images(
        {json_path: json.dumps(doc, indent=2) + "\n", md_path: report + "\n"},
        overwrite=overwrite,
    )
    say_done(f"wrote {json_path} and {md_path}", quiet=quiet)
