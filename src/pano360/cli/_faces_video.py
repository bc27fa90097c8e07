"""``pano360 faces VIDEO --blur``: blur every face of a 360° video, tracked on the sphere."""

from __future__ import annotations

from pathlib import Path

from ._outputs import prepare_out_dir, prepare_outputs, progress, say_done, written

__all__ = ["DEVICES", "VIDEO_SUFFIXES", "faces_video", "resolve_device", "resolve_half"]

#: Inputs the ``faces`` command treats as videos (case-insensitive).
VIDEO_SUFFIXES = (".avi", ".m4v", ".mkv", ".mov", ".mp4", ".webm")
#: Values of ``--device``.
DEVICES = ("auto", "cpu", "cuda")
# Output container per input container: H.264 in MP4 unless the input is MKV or MOV.
_OUTPUT_SUFFIX = {".mkv": ".mkv", ".mov": ".mov"}


def resolve_device(device: str):
    import torch

    from .._core import ValueRangeError, check_choice

    check_choice(device, "--device", DEVICES)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueRangeError("--device cuda: no CUDA device is available (use cpu or auto)")
    return torch.device(device)


def resolve_half(half: bool, device: str, dev) -> bool:
    """``--half`` on the resolved device ``dev``: refused with ``--device cpu`` (float16 is for
    GPUs), ignored with a warning where ``auto`` found no GPU."""
    if not half or dev.type != "cpu":
        return half
    if device == "cpu":
        from .._core import ValueRangeError

        raise ValueRangeError(
            "--half runs the detector in float16, which is for GPUs (--device cuda or auto); "
            "on the CPU float16 is slower than float32"
        )
    import typer

    typer.echo("pano360: warning: --half ignored: no GPU, detecting in float32", err=True)
    return False


def faces_video(
    src: Path,
    out: Path,
    blur: bool,
    track: bool,
    min_face: float,
    max_face: float,
    device: str,
    overwrite: bool,
    quiet: bool,
    *,
    strategy: str,
    students: Path | None,
    thresholds: tuple[float, float, float],
    detect_every: int = 1,
    half: bool = False,
    max_memory: float | None = None,
) -> None:
    """Blur the faces of the video ``src`` into ``out``: NAME_blurred.EXT and NAME_faces.json."""
    from .._core import ValueRangeError
    from ..detection import blur_faces_in_video, check_face_memory
    from ..io import video_info

    if not blur:
        raise ValueRangeError(
            f"IMAGE '{src}' is a video: pass --blur (videos are blurred; the JSON lists every "
            "frame's faces)"
        )
    dev = resolve_device(device)
    half = resolve_half(half, device, dev)
    info = video_info(src)  # a missing or broken input fails before any output is prepared
    h, w = info.hw
    if w != 2 * h:
        from .._core import ShapeError

        raise ShapeError(
            f"video '{src}' must be equirectangular with width = 2 x height, got {w}x{h}"
        )
    # Held while a frame is detected: a batch of decoded frames, the blurred copy, the encoder's.
    frames = 4 * 3 * h * w * (4 + 2)
    check_face_memory((h, w), min_face, max_face, output_bytes=frames, max_memory_gb=max_memory)
    prepare_out_dir(out)
    stem = src.stem
    blurred = out / f"{stem}_blurred{_OUTPUT_SUFFIX.get(src.suffix.lower(), '.mp4')}"
    report = out / f"{stem}_faces.json"
    prepare_outputs(
        [("the blurred video", blurred, False), ("the JSON report", report, False)],
        [src],
        overwrite=overwrite,
    )
    bar = progress(total=info.num_frames, quiet=quiet, desc=src.name, unit="frame")
    summary = blur_faces_in_video(
        src,
        blurred,
        report=report,
        strategy=strategy,
        students=students,
        min_face_deg=min_face,
        max_face_deg=max_face,
        thresholds=thresholds,
        track=track,
        detect_every=detect_every,
        device=dev,
        half=half,
        overwrite=overwrite,
        progress=bar.update,
    )
    bar.close()
    _say_spherical(summary.spherical, src, blurred)
    tracked = f" in {summary.tracks} track(s)" if track else ""
    say_done(
        f"{summary.frames} frames, {summary.detections} face detection(s){tracked}, "
        f"{summary.blurred} blurred region(s); wrote {written([blurred, report])}",
        quiet=quiet,
    )


_INJECTOR = (
    "restore it with Google's Spatial Media Metadata Injector (github.com/google/spatial-media: "
    "python spatialmedia -i {out} {out_360})"
)


def _say_spherical(state: str, src: Path, out: Path) -> None:
    """One line when the output may lack the input's 360° metadata, and how to restore it."""
    import typer

    if state == "lost":
        why = f"'{out.name}' lacks the input's spherical-video metadata (not writable there)"
    elif state == "unknown":
        why = (
            f"spherical-video metadata is copied only between MP4/MOV files, so '{out.name}' has "
            f"none; if '{src.name}' had it (players showed it as 360 degrees)"
        )
    else:
        return
    out_360 = out.with_name(f"{out.stem}_360{out.suffix}")
    typer.echo(f"pano360: warning: {why}, {_INJECTOR.format(out=out, out_360=out_360)}", err=True)
