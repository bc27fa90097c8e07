"""``pano360 faces``: find faces in a 360° panorama, draw them, blur them, list them as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._faces_folder import faces_folder
from ._faces_video import VIDEO_SUFFIXES, faces_video
from ._options import MAX_PIXELS_DEFAULT, MaxPixels, Overwrite, Quiet, read_erp
from ._outputs import prepare_out_dir, prepare_outputs, progress, say_done, written

__all__ = ["faces"]

# torch and the detection, geometry, io and viz modules are imported by the command: its help
# must not import them.

_SPHERE_STRATEGIES = ("direct", "cubemap", "multiview", "spherical", "distilled")


def faces(
    src: Annotated[
        Path,
        typer.Argument(
            metavar="IMAGE",
            help="Equirectangular panorama (width = 2 x height), a 360-degree video, or a "
            "folder of panoramas (every image under it, recursively).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Folder for the outputs; created if missing (default: the current folder; "
            "required for a folder, outside it).",
        ),
    ] = None,
    blur: Annotated[
        bool, typer.Option("--blur", help="Also write a copy with every face blurred (privacy).")
    ] = False,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            metavar="[" + "|".join(_SPHERE_STRATEGIES) + "]",
            help="How the perspective detector (MTCNN) runs on the panorama: 'spherical' (one "
            "pass with spherical convolutions, accurate at every latitude), 'direct' (on the ERP "
            "as it is: misses stretched faces near the poles and across the seam), 'cubemap' "
            "(six cube faces), 'multiview' (16 views of 45 degrees around the horizon) or "
            "'distilled' (with --students).",
        ),
    ] = "spherical",
    students: Annotated[
        Path | None,
        typer.Option(
            "--students",
            metavar="DIR",
            help="For --strategy distilled: a folder of 'pano360 distill --model mtcnn_pnet' "
            "runs, one per pyramid level (docs/transfer.md).",
        ),
    ] = None,
    min_face: Annotated[
        float,
        typer.Option("--min-face", metavar="DEG", help="Smallest face width to find, degrees."),
    ] = 8.0,
    max_face: Annotated[
        float,
        typer.Option("--max-face", metavar="DEG", help="Largest face width to find, degrees."),
    ] = 60.0,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            metavar="P",
            help="Final face probability threshold (O-Net), in [0, 1].",
        ),
    ] = 0.7,
    max_memory: Annotated[
        float | None,
        typer.Option(
            "--max-memory",
            metavar="GB",
            help="Most memory the command may use, in GB (default: what is available when it "
            "starts). A run estimated to need more is refused before detecting, with the "
            "estimate and the --min-face that fits.",
        ),
    ] = None,
    track: Annotated[
        bool,
        typer.Option(
            "--track/--no-track",
            help="Videos: follow faces across frames on the sphere and keep blurring them "
            "through missed frames (0.5 s) and 0.5 s before they are first found.",
        ),
    ] = True,
    detect_every: Annotated[
        int,
        typer.Option(
            "--detect-every",
            metavar="N",
            help="Videos, with --track: run the detector on one frame in N (faster; tracks "
            "cover the frames between).",
        ),
    ] = 1,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            metavar="[auto|cpu|cuda]",
            help="Videos and folders: where detection runs.",
        ),
    ] = "cpu",
    half: Annotated[
        bool,
        typer.Option(
            "--half",
            help="Videos and folders, on a GPU: run the detector's networks in float16 "
            "(autocast; boxes and blur stay float32). Refused with --device cpu.",
        ),
    ] = False,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            metavar="N",
            help="Folders: DataLoader worker processes decoding images ahead of the detector "
            "(0: decode in the main process).",
        ),
    ] = 0,
    devices: Annotated[
        int,
        typer.Option(
            "--devices",
            metavar="N",
            help="Folders: processes per node (GPUs with --device cuda), through Lightning's "
            "predict loop (DDP; needs pano360[train]); each process takes its share of the "
            "files.",
        ),
    ] = 1,
    num_nodes: Annotated[
        int,
        typer.Option(
            "--num-nodes",
            metavar="N",
            help="Folders: machines sharing the folders (Lightning's num_nodes; start the "
            "command on each with torchrun or srun, docs/cli.md).",
        ),
    ] = 1,
    overwrite: Overwrite = False,
    max_pixels: MaxPixels = MAX_PIXELS_DEFAULT,
    quiet: Quiet = False,
) -> None:
    """Find faces in an ERP panorama; write them outlined, optionally blurred, and as JSON.

    Outputs in --out DIR, named after IMAGE: NAME_faces.jpg (each face's box drawn as its true curve
    on the panorama), NAME_faces.json (boxes as BFoV [lon, lat, fov_x, fov_y] in degrees, scores
    and five landmarks as [lon, lat]) and, with --blur, NAME_blurred.jpg (each face blurred on
    the sphere, also across the seam and at the poles). Nothing is written if anything fails.

    A video (.mp4, .mkv, .mov, .webm, .avi, .m4v) needs --blur: it is streamed frame by frame
    and written as NAME_blurred.mp4 (H.264; .mkv and .mov keep their container) at its frame rate
    and size with its audio copied unchanged, and NAME_faces.json lists every frame's faces with
    their track ids (docs/cli.md).

    A folder (with --out DIR outside it) has every image under it (.jpg, .jpeg, .png, .tif,
    .tiff, .webp) processed, the layout mirrored in DIR: with --blur a blurred copy of the same
    name and format, and NAME.EXT.json with its faces. A second run skips the files done; a file
    that fails is reported in one line and the others go on (exit 1); DIR/faces_summary.csv and
    .json list every file (file, status, faces, seconds, error).

    \b
    Examples:
      pano360 faces pano.jpg --blur --out results/
      pano360 faces pano.jpg --strategy direct --min-face 12
      pano360 faces ride.mp4 --blur --out results/
      pano360 faces photos/ --blur --out blurred/ --jobs 2
    """
    import json
    import math

    import torch

    from .._core import ValueRangeError, check_choice
    from ..detection import detect_faces, face_detections
    from ..io import write_images
    from ..viz import blur_regions_on_sphere, draw_box_outlines

    check_choice(strategy, "--strategy", _SPHERE_STRATEGIES)
    if (strategy == "distilled") != (students is not None):
        raise ValueRangeError("--students goes with --strategy distilled, and only with it")
    if not 0 < min_face <= max_face < 180:
        raise ValueRangeError(
            f"--min-face and --max-face must satisfy 0 < min <= max < 180, got {min_face:g} "
            f"and {max_face:g}"
        )
    if not 0 <= threshold <= 1:
        raise ValueRangeError(f"--threshold must be in [0, 1], got {threshold:g}")
    if max_memory is not None and not max_memory > 0:
        raise ValueRangeError(f"--max-memory must be > 0 GB, got {max_memory:g}")
    if src.is_dir():
        code = faces_folder(
            src,
            out,
            blur,
            strategy=strategy,
            students=students,
            min_face=min_face,
            max_face=max_face,
            thresholds=(0.6, 0.7, threshold),
            device=device,
            half=half,
            jobs=jobs,
            devices=devices,
            num_nodes=num_nodes,
            overwrite=overwrite,
            max_pixels=max_pixels,
            max_memory=max_memory,
            quiet=quiet,
        )
        if code:
            raise typer.Exit(code)
        return
    folder_only = {"--jobs": jobs, "--devices": devices != 1}
    folder_only["--num-nodes"] = num_nodes != 1
    given = [name for name, value in folder_only.items() if value]
    if given:
        raise ValueRangeError(
            f"{', '.join(given)}: only for a folder of images, got the file '{src}'"
        )
    out = Path(".") if out is None else out
    if src.suffix.lower() in VIDEO_SUFFIXES:
        detector = {"strategy": strategy, "students": students, "thresholds": (0.6, 0.7, threshold)}
        detector.update(detect_every=detect_every, half=half, max_memory=max_memory)
        faces_video(src, out, blur, track, min_face, max_face, device, overwrite, quiet, **detector)
        return
    prepare_out_dir(out)
    stem = src.stem
    drawn, report = out / f"{stem}_faces.jpg", out / f"{stem}_faces.json"
    blurred = out / f"{stem}_blurred.jpg"
    outputs = [("the outlined image", drawn), ("the JSON report", report, False)]
    if blur:
        outputs.append(("the blurred image", blurred))
    prepare_outputs(outputs, [src], overwrite=overwrite)
    steps = ["read", f"detect ({strategy})", "outline"] + ["blur"] * blur + ["write"]
    bar = progress(total=len(steps), quiet=quiet, desc=src.name, unit="step", leave=False)
    shown = [0.0]  # steps done, with the share of the detection done while it runs

    def advance(to: float) -> None:
        bar.update(to - shown[0])
        shown[0] = to

    def step(done: str) -> None:
        # `done` finished; show the next step while it runs.
        advance(steps.index(done) + 1.0)
        bar.set_postfix_str(steps[steps.index(done) + 1], refresh=True)

    bar.set_postfix_str(steps[0], refresh=True)
    erp, info = read_erp(src, max_pixels=max_pixels, with_info=True)
    erp = erp[:, :3]
    if erp.shape[1] == 1:
        erp = erp.expand(-1, 3, -1, -1)
    h, w = erp.shape[-2:]
    # The image's own pixels, at any size: refused up front if that would not fit in memory.
    _check_memory((h, w), min_face, max_face, blur, max_memory)
    thresholds = (0.6, 0.7, threshold)
    step("read")
    with torch.inference_mode():
        (found,) = detect_faces(
            erp,
            strategy,
            min_face,
            max_face,
            thresholds,
            students=students,
            progress=lambda share: advance(1 + share),
        )
        boxes = found["boxes"].to(erp.dtype)
        faces = face_detections(found)
        step(steps[1])
        images = {drawn: draw_box_outlines(erp, boxes, width_px=max(2.0, w / 1024))}
        step("outline")
        if blur:
            images[blurred] = blur_regions_on_sphere(erp, boxes)
            step("blur")
    doc = {
        "image": str(src),
        "image_size": [w, h],
        "strategy": strategy,
        "convention": "degrees; bfov = [lon, lat, fov_x, fov_y]: a pinhole view aimed at the face "
        "centre (lon > 0 east/right, lat > 0 up); landmarks [lon, lat]: the eye on the image's "
        "left, the other eye, the nose, the mouth corners (see docs/conventions.md)",
        "faces": [f.to_dict() for f in faces],
    }
    images[report] = json.dumps(doc, indent=2) + "\n"
    # Both images are still ERPs of the input's scene: they keep its GPano XMP and EXIF.
    write_images(images, overwrite=overwrite, metadata=info)
    bar.close()
    lat = [abs(math.degrees(f.box[1])) for f in faces]
    where = f" (|lat| up to {max(lat):.0f} deg)" if lat else ""
    say_done(f"{len(faces)} face(s){where}; wrote {written(images)}", quiet=quiet)


def _check_memory(
    erp_hw: tuple[int, int],
    min_face: float,
    max_face: float,
    blur: bool,
    max_memory: float | None,
) -> None:
    """Refuse, before detecting, a run whose estimated peak memory exceeds ``--max-memory`` (GB)
    or, without it, what the system has available: one line with the estimate and a way out."""
    from ..detection import check_face_memory

    h, w = erp_hw
    # After detecting: the outlined and blurred copies and their encodings.
    outputs = 4 * 3 * h * w * (1 + blur) + 2 * 3 * h * w
    check_face_memory(erp_hw, min_face, max_face, output_bytes=outputs, max_memory_gb=max_memory)
