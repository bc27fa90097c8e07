"""``pano360 eval faces``: compare the strategies of 360° face detection on synthetic scenes."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._options import Overwrite, Quiet, parse_size
from ._outputs import prepare_out_dir, prepare_outputs, progress, say_done

__all__ = ["eval_faces"]

# torch and the detection, data and transfer modules are imported by the command: its help
# must not import them.

_FACE_STRATEGIES = ("direct", "cubemap", "multiview", "exact", "spherical")


def eval_faces(
    scenes: Annotated[
        int, typer.Option("--scenes", metavar="N", help="Number of synthetic scenes.")
    ] = 20,
    seed: Annotated[
        int, typer.Option("--seed", metavar="S", help="Seed of the scenes (scene i: (S, i)).")
    ] = 0,
    strategies: Annotated[
        str,
        typer.Option(
            "--strategies",
            metavar="LIST",
            help="Comma-separated strategies to compare: " + ", ".join(_FACE_STRATEGIES) + ".",
        ),
    ] = ",".join(_FACE_STRATEGIES),
    size: Annotated[
        str, typer.Option("--size", metavar="WxH", help="Size of the scenes (2:1).")
    ] = "1024x512",
    students: Annotated[
        Path | None,
        typer.Option(
            "--students",
            metavar="DIR",
            help="A folder of finished 'pano360 distill --model mtcnn_pnet' runs, one per "
            "pyramid level: adds the 'distilled' strategy, and the per-layer RMSE of the "
            "student trained at --rmse-size next to the zero-shot spherical P-Net's.",
        ),
    ] = None,
    rmse_size: Annotated[
        str | None,
        typer.Option(
            "--rmse-size",
            metavar="WxH",
            help="ERP size for the per-layer RMSE of P-Net (with --students: a student's "
            "size).  [default: 256x128, with --students the student's size nearest to it]",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for faces_eval.json and .md; created if missing.",
        ),
    ] = Path("."),
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Compare the strategies of 360° face detection on synthetic scenes, per latitude band.

    Scenes (pano360.data.synthetic) hold faces 8-25 degrees wide at every latitude up to 85
    degrees, with known spherical boxes. For each strategy the table gives recall (R),
    precision (P) and average precision (AP) at spherical IoU 0.5, in percent, for |lat| in
    0-30, 30-60 and 60-85 degrees, and the median seconds per image. A second table gives the
    per-layer RMSE of P-Net run on the sphere against its exact (tangent-plane) outputs.

    \b
    Examples:
      pano360 eval faces --scenes 50 --seed 7
      pano360 eval faces --strategies direct,spherical --students runs/ --out results/
    """
    import json

    import torch

    from .._core import ValueRangeError, check_choice
    from ..data import SceneConfig, SyntheticFaceScenes
    from ..detection import detect_faces, evaluate_faces, load_pnet_students
    from ..geometry import resize_erp
    from ..io import write_images
    from ..transfer import LAT_BANDS, build_spherical, layer_rmse, model_stack

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    for name in names:
        check_choice(name, "--strategies", _FACE_STRATEGIES)
    if not names:
        raise ValueRangeError("--strategies is empty")
    if scenes < 1:
        raise ValueRangeError(f"--scenes must be >= 1, got {scenes}")
    if seed < 0:
        raise ValueRangeError(f"--seed must be >= 0, got {seed}")
    hw = parse_size(size, erp=True)
    rmse_hw = parse_size(rmse_size, "--rmse-size", erp=True) if rmse_size else (128, 256)
    prepare_out_dir(out)
    json_path, md_path = out / "faces_eval.json", out / "faces_eval.md"
    prepare_outputs(
        [("--out", json_path, False), ("--out", md_path, False)], [], overwrite=overwrite
    )
    stack = model_stack("mtcnn_pnet")
    trained = load_pnet_students(students) if students is not None else {}
    if students is not None:
        names.append("distilled")
        if rmse_size is None:
            rmse_hw = min(trained, key=lambda hw: abs(hw[0] - 128))
        if rmse_hw not in trained:
            sizes = ", ".join(f"{w}x{h}" for h, w in sorted(trained))
            raise ValueRangeError(f"--rmse-size must be the size of a student ({sizes})")

    data = SyntheticFaceScenes(scenes, seed=seed, config=SceneConfig(erp_hw=hw))
    detectors = {
        name: (lambda erp, s=name: detect_faces(erp, s, students=trained or None)[0])
        for name in names
    }

    def bar(scenes_iter):
        return progress(scenes_iter, quiet=quiet, total=scenes, desc="eval faces", unit="scene")

    with torch.inference_mode():
        result = evaluate_faces(((s.erp, s.face_bfov) for s in data), detectors, progress=bar)
        erps = torch.stack([resize_erp(data[i].erp[None], rmse_hw)[0] for i in range(scenes)])
        models = {"spherical (zero-shot)": build_spherical(stack, rmse_hw)}
        if trained:
            models["distilled"] = trained[rmse_hw]
        rmse = {name: layer_rmse(m, stack, erps) for name, m in models.items()}
    table = result.to_markdown()
    layer_names = [n for n, _ in stack.named_children()]
    rmse_lines = [
        f"Per-layer RMSE against exact at {rmse_hw[1]}x{rmse_hw[0]}, by |lat| band (degrees):",
        "",
        "| model | layer | "
        + " | ".join(f"{math.degrees(lo):.0f}-{math.degrees(hi):.0f}" for lo, hi in LAT_BANDS)
        + " |",
        "|---|---" + "|---:" * len(LAT_BANDS) + "|",
    ]
    for name, per_layer in rmse.items():
        for layer, bands in per_layer.items():
            cells = " | ".join(f"{v:.4f}" for v in bands.values())
            rmse_lines.append(f"| {name} | {layer_names[layer]} | {cells} |")
    report = "\n".join([table, "", *rmse_lines])
    typer.echo(report)
    doc = result.to_dict()
    doc.update(
        {
            "scenes": {"n": scenes, "seed": seed, "size": [hw[1], hw[0]]},
            "command": "pano360 eval faces " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else []),
            "layer_rmse": {
                "erp_size": [rmse_hw[1], rmse_hw[0]],
                "bands_deg": [[math.degrees(lo), math.degrees(hi)] for lo, hi in LAT_BANDS],
                "models": {
                    name: {layer_names[k]: list(v.values()) for k, v in per_layer.items()}
                    for name, per_layer in rmse.items()
                },
            },
        }
    )
    write_images(
        {json_path: json.dumps(doc, indent=2) + "\n", md_path: report + "\n"},
        overwrite=overwrite,
    )
    say_done(f"wrote {json_path} and {md_path}", quiet=quiet)
