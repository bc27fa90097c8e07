"""``pano360 faces``: find faces in a 360° panorama, draw them, blur them, list them as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._faces_video import VIDEO_SUFFIXES, faces_video
from ._options import MAX_PIXELS_DEFAULT, MaxPixels, Overwrite, Quiet, read_erp
from ._outputs import prepare_out_dir, prepare_outputs, progress, say_done, written

__all__ = ["faces"]

# torch and the detection, geometry, io and viz modules are imported by the command: its help
# must not import them.

# Detection runs on a copy at most this wide: the P-Net pyramid's sizes come from the face sizes
# in degrees, and only the crops of stages 2 and 3 read the full image.
DETECT_MAX_WIDTH = 4096
_SPHERE_STRATEGIES = ("direct", "cubemap", "multiview", "spherical", "distilled")


def faces(
    src: Annotated[
        Path,
        typer.Argument(metavar="IMAGE", help="Equirectangular panorama (width = 2 x height)."),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Folder for the outputs; created if missing."),
    ] = Path("."),
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
        typer.Option("--device", metavar="[auto|cpu|cuda]", help="Videos: where detection runs."),
    ] = "cpu",
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

    \b
    Examples:
      pano360 faces pano.jpg --blur --out results/
      pano360 faces pano.jpg --strategy direct --min-face 12
      pano360 faces ride.mp4 --blur --out results/
    """
    import json
    import math

    import torch

    from .._core import ValueRangeError, check_choice
    from ..detection import detect_faces, face_detections
    from ..geometry import resize_erp
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
    if src.suffix.lower() in VIDEO_SUFFIXES:
        detector = {"strategy": strategy, "students": students, "thresholds": (0.6, 0.7, threshold)}
        detector["detect_every"] = detect_every
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

    def step(done: str) -> None:
        # `done` finished; show the next step while it runs.
        bar.update()
        bar.set_postfix_str(steps[steps.index(done) + 1], refresh=True)

    bar.set_postfix_str(steps[0], refresh=True)
    erp, info = read_erp(src, max_pixels=max_pixels, with_info=True)
    erp = erp[:, :3]
    if erp.shape[1] == 1:
        erp = erp.expand(-1, 3, -1, -1)
    h, w = erp.shape[-2:]
    small = erp
    if w > DETECT_MAX_WIDTH:
        typer.echo(
            f"pano360: warning: IMAGE is {w}x{h}; detecting faces on a {DETECT_MAX_WIDTH}x"
            f"{DETECT_MAX_WIDTH // 2} copy (outputs keep the full size)",
            err=True,
        )
        small = resize_erp(erp, (DETECT_MAX_WIDTH // 2, DETECT_MAX_WIDTH))
    thresholds = (0.6, 0.7, threshold)
    step("read")
    with torch.inference_mode():
        (found,) = detect_faces(small, strategy, min_face, max_face, thresholds, students=students)
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
