"""``pano360 saliency``: predict where people look in a panorama or a 360-degree video."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from .._core import ImageIOError, ShapeError, ValueRangeError, check_choice, read_model_card
from ..geometry import resize_erp
from ..io import VideoWriter, iter_video_frames, video_info, write_atomic, write_images
from ..models import create_model, list_models, model_info
from ..saliency import predict_saliency
from ..viz import overlay_saliency
from ._options import Overwrite, Quiet, read_erp
from ._outputs import prepare_out_dir, prepare_outputs, progress, say_done, written

__all__ = ["VIDEO_SUFFIXES", "saliency_command"]

#: Input extensions read as videos (anything else is read as an image).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts")


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _outputs(src: Path, out_dir: Path, video: bool) -> dict[str, Path]:
    stem = src.stem
    names = {
        "map": out_dir / f"{stem}_saliency.png",
        "npy": out_dir / f"{stem}_saliency.npy",
        "overlay": out_dir / f"{stem}_overlay.jpg",
    }
    if video:
        names["overlay_video"] = out_dir / f"{stem}_overlay.mp4"
    return names


def _npy_writer(shape: tuple[int, ...], raw) -> Callable:
    """Write a float32 .npy of ``shape`` whose data are the bytes of the open file ``raw``."""

    def write(f) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        raw.seek(0)
        shutil.copyfileobj(raw, f)

    return write


def _commit(steps: list[tuple[list[Path], Callable[[], None]]]) -> None:
    """Run writers in order; if one fails, remove the files the earlier ones created (files they
    replaced under --overwrite cannot be restored)."""
    created: list[Path] = []
    try:
        for paths, step in steps:
            new = [p for p in paths if not p.exists()]
            step()
            created.extend(new)
    except BaseException:
        for p in created:
            with contextlib.suppress(OSError):
                p.unlink()
        raise


def _saliency_model(model: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """--model as a function frame (1, 3, H, W) -> map (1, 1, H, W) summing to 1: a registered
    model by name, or an exported model (a path; ``pano360 train`` writes them), run at the size
    it was trained at and fed its own previous output when it takes an earlier-frame map."""
    if model in list_models(task="saliency") or not (
        model.endswith((".json", ".safetensors")) or os.sep in model or Path(model).exists()
    ):
        check_choice(model, "--model", list_models(task="saliency"))
        return lambda erp: predict_saliency(erp, model)
    card = read_model_card(model)
    if card.get("task") != "saliency":
        raise ValueRangeError(f"--model '{model}' is a {card.get('task')!r} model, not saliency")
    net = create_model(model)
    hw = card.get("input", {}).get("trained_hw")
    scale = float(card.get("input", {}).get("target_scale", 10.0))
    takes_prior = getattr(net, "prior", "none") != "none"
    previous: list[torch.Tensor] = []

    def run(erp: torch.Tensor) -> torch.Tensor:
        x = resize_erp(erp, hw) if hw else erp
        if takes_prior:
            prior = previous[-1] if previous else x.new_zeros(x.shape[0], 1, *x.shape[-2:])
            out = net(x, prior=prior).clamp_min(0)
            previous[:] = [out / scale]  # the earlier map goes in on the targets' scale
        else:
            out = net(x).clamp_min(0)
        out = resize_erp(out, erp.shape[-2:]).clamp_min(0)
        total = out.sum(dim=(-2, -1), keepdim=True)
        uniform = torch.full_like(out, 1.0 / out[0, 0].numel())
        return torch.where(total > 0, out / total.clamp_min(1e-30), uniform)

    return run


def _run_image(
    erp: torch.Tensor, outputs: dict[str, Path], model: Callable, overwrite: bool
) -> None:
    with torch.inference_mode():
        sal = model(erp)
    peak = sal.amax()
    arr = sal[0, 0].numpy().astype("<f4")
    _commit(
        [
            (
                [outputs["map"], outputs["overlay"]],
                lambda: write_images(
                    {
                        outputs["map"]: sal[0] / peak if peak > 0 else sal[0],
                        outputs["overlay"]: overlay_saliency(erp, sal),
                    },
                    overwrite=overwrite,
                ),
            ),
            (
                [outputs["npy"]],
                lambda: write_atomic(
                    outputs["npy"], lambda f: np.save(f, arr, allow_pickle=False), overwrite
                ),
            ),
        ]
    )


def _run_video(
    src: Path,
    outputs: dict[str, Path],
    model: Callable,
    fps: float | None,
    max_frames: int | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    info = video_info(src)
    h, w = info.hw
    if w != 2 * h:
        raise ShapeError(
            f"IN '{src}' must be an equirectangular video with width = 2 x height, got {w}x{h}"
        )
    out_fps = fps if fps is not None else info.fps
    total = None
    if fps is not None and info.duration_s:
        total = math.ceil(info.duration_s * fps - 1e-6)
    elif info.num_frames:
        total = info.num_frames
    if total is not None and max_frames is not None:
        total = min(total, max_frames)
    out_dir = outputs["npy"].parent
    writer = VideoWriter(outputs["overlay_video"], out_fps, overwrite=overwrite)
    mean = torch.zeros(1, 1, h, w, dtype=torch.float64)
    first = None
    count = 0
    frames = iter_video_frames(src, fps=fps, max_frames=max_frames)
    bar = progress(frames, quiet=quiet, total=total, unit="frame", desc=src.name)
    with tempfile.TemporaryFile(dir=out_dir) as raw:
        try:
            for _, frame in bar:
                with torch.inference_mode():
                    sal = model(frame)
                raw.write(sal[0, 0].numpy().astype("<f4").tobytes())
                writer.write(overlay_saliency(frame, sal))
                mean += sal.double()
                first = frame if first is None else first
                count += 1
            if count == 0:
                raise ImageIOError(f"cannot read video '{src}': it has no frames")
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        finally:
            bar.close()
        mean = (mean / count).float()
        peak = mean.amax()
        try:
            _commit(
                [
                    (
                        [outputs["map"], outputs["overlay"]],
                        lambda: write_images(
                            {
                                outputs["map"]: mean[0] / peak if peak > 0 else mean[0],
                                outputs["overlay"]: overlay_saliency(first, mean),
                            },
                            overwrite=overwrite,
                        ),
                    ),
                    (
                        [outputs["npy"]],
                        lambda: write_atomic(
                            outputs["npy"], _npy_writer((count, h, w), raw), overwrite
                        ),
                    ),
                    ([outputs["overlay_video"]], writer.close),
                ]
            )
        finally:
            writer.abort()  # removes the temporary video if it was not moved into place


def saliency_command(
    src: Annotated[
        Path,
        typer.Argument(
            metavar="IN",
            help="Equirectangular panorama (image, width = 2 x height) or 360-degree video "
            f"({' '.join(VIDEO_SUFFIXES)}).",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            metavar="NAME|PATH",
            help="Saliency model: "
            + "; ".join(f"{n}: {model_info(n).description}" for n in list_models(task="saliency"))
            + "; or PATH, a model exported by 'pano360 train' (its .json card or .safetensors).",
        ),
    ] = "spectral",
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help="Folder for the outputs; created if missing."),
    ] = Path("."),
    fps: Annotated[
        float | None,
        typer.Option(
            "--fps",
            metavar="F",
            help="Videos: sample the video at F frames per second.  [default: every frame]",
            show_default=False,
        ),
    ] = None,
    max_frames: Annotated[
        int | None,
        typer.Option(
            "--max-frames",
            metavar="N",
            help="Videos: stop after N frames.  [default: all]",
            show_default=False,
        ),
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Predict where people look in a 360-degree image or video.

    Writes, in --out, for IN named NAME.ext:

    \b
      NAME_saliency.png   the saliency map, scaled so its peak is white
      NAME_saliency.npy   float32 map(s) summing to 1 over the pixels: (H, W) for an
                          image, (T, H, W) for a video (one per frame)
      NAME_overlay.jpg    the map in colour over the image (videos: mean map, first frame)
      NAME_overlay.mp4    videos only: the overlay of every frame

    The default model, spectral, needs no weights: spectral-residual saliency on 14 views of
    the sphere, merged on the sphere and weighted towards the horizon. Models are run frame by
    frame on videos. Outputs appear only when everything succeeded.

    \b
    Examples:
      pano360 saliency pano.jpg --out results
      pano360 saliency tour.mp4 --fps 5 --out results
      pano360 saliency pano.jpg --model equator
    """
    predict = _saliency_model(model)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueRangeError(f"--fps must be a positive number of frames per second, got {fps:g}")
    if max_frames is not None and max_frames < 1:
        raise ValueRangeError(f"--max-frames must be a positive number of frames, got {max_frames}")
    video = _is_video(src)
    if not video and (fps is not None or max_frames is not None):
        raise ValueRangeError("--fps and --max-frames apply to videos only; IN is an image")
    if not src.is_file():
        what = "it is a directory" if src.is_dir() else "no such file"
        raise ImageIOError(f"cannot read IN '{src}': {what}")
    prepare_out_dir(out)
    outputs = _outputs(src, out, video)
    prepare_outputs(
        [("output", path, path.suffix in (".png", ".jpg")) for path in outputs.values()],
        [src],
        overwrite=overwrite,
    )
    if video:
        _run_video(src, outputs, predict, fps, max_frames, overwrite, quiet)
    else:
        _run_image(read_erp(src), outputs, predict, overwrite)
    say_done(f"{model} saliency of {src}: wrote {written(outputs.values())}", quiet=quiet)
