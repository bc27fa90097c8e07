"""``pano360 saliency``: saliency maps of a panorama or a 360-degree video, from a training-free
model or a trained one."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import typer

from .._core import (
    ImageIOError,
    OutputExistsError,
    ShapeError,
    ValueRangeError,
    check_choice,
    read_model_card,
)
from ..geometry import resize_erp
from ..io import (
    SALIENCY_MAP_FORMATS,
    SaliencyMapWriter,
    VideoWriter,
    iter_video_frames,
    saliency_map_path,
    transcode_video,
    video_info,
    write_atomic,
    write_images,
)
from ..models import create_model, list_models, model_info, raw_to_saliency
from ..saliency import predict_saliency
from ..viz import overlay_saliency
from ._options import Overwrite, Quiet, parse_size, read_erp
from ._outputs import prepare_out_dir, prepare_outputs, progress, say_done, written

__all__ = ["VIDEO_SUFFIXES", "saliency_command"]

#: Input extensions read as videos (anything else is read as an image).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts")


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _maps_stem(src: Path, out_dir: Path) -> Path:
    """The maps' output without its suffix (pano360.io.saliency_map_path adds it)."""
    return out_dir / f"{src.stem}_saliency"


def _outputs(src: Path, out_dir: Path, video: bool, map_format: str) -> dict[str, Path]:
    stem = src.stem
    names = {
        "map": out_dir / f"{stem}_saliency.png",
        "maps": saliency_map_path(_maps_stem(src, out_dir), map_format),
        "overlay": out_dir / f"{stem}_overlay.jpg",
    }
    if video:
        names["overlay_video"] = out_dir / f"{stem}_overlay.mp4"
    return names


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
            if p.is_dir():  # a folder of PNG frames
                shutil.rmtree(p, ignore_errors=True)
            with contextlib.suppress(OSError):
                p.unlink()
        raise


def _map_and_overlay(
    outputs: dict[str, Path], sal: torch.Tensor, erp: torch.Tensor, overwrite: bool
) -> tuple[list[Path], Callable[[], None]]:
    """The :func:`_commit` step writing the map (scaled to peak 1) and its overlay on ``erp``."""
    peak = sal.amax()
    images = {
        outputs["map"]: sal[0] / peak if peak > 0 else sal[0],
        outputs["overlay"]: overlay_saliency(erp, sal),
    }
    return [outputs["map"], outputs["overlay"]], lambda: write_images(images, overwrite=overwrite)


def _saliency_model(
    model: str,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], tuple[int, int] | None]:
    """--model as (a function frame (1, 3, H, W) -> map (1, 1, H, W) summing to 1, the model's
    working resolution (H, W) or None when it has none): a registered model by name, or an
    exported model (a path; ``pano360 train`` writes them), run at the size it was trained at
    and fed its own previous output when it takes an earlier-frame map."""
    if model in list_models(task="saliency") or not (
        model.endswith((".json", ".safetensors")) or os.sep in model or Path(model).exists()
    ):
        check_choice(model, "--model", list_models(task="saliency"))
        # A training-free model that works at a fixed height (spectral's work_height) has no
        # more detail than that; the others (equator, uniform) are smooth at any size.
        config = getattr(create_model(model), "config", None) or {}
        height = config.get("work_height")
        working = (int(height), 2 * int(height)) if height else None
        return (lambda erp: predict_saliency(erp, model)), working
    card = read_model_card(model)
    if card.get("task") != "saliency":
        raise ValueRangeError(f"--model '{model}' is a {card.get('task')!r} model, not saliency")
    net = create_model(model)
    hw = card.get("input", {}).get("trained_hw")
    scale = float(card.get("input", {}).get("target_scale", 10.0))
    share = float(card.get("input", {}).get("uniform_share", 0.0))
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
        # The card's readout: densities mixed with its uniform share (SaliencyTask).
        return raw_to_saliency(resize_erp(out, erp.shape[-2:]), True, share)

    return run, (tuple(hw) if hw else None)


def _resized_density(density: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """A density map (1, 1, H, W) at size ``hw``, still summing to 1 (resampling can undershoot
    below 0 and changes the sum)."""
    if tuple(density.shape[-2:]) == tuple(hw):
        return density
    return raw_to_saliency(resize_erp(density, hw), normalize=True)


def _map_hw(
    choice: str | None, working: tuple[int, int] | None, in_hw: tuple[int, int], video: bool
) -> tuple[int, int]:
    """The size of the written maps: --map-size WxH, 'input', 'model' (the working resolution,
    never above IN's), or by default 'model' for videos and 'input' for images."""
    choice = choice if choice is not None else ("model" if video else "input")
    if choice == "input":
        return in_hw
    if choice == "model":
        return working if working is not None and working[0] < in_hw[0] else in_hw
    return parse_size(choice, "--map-size", erp=True)


def _run_image(
    src: Path,
    erp: torch.Tensor,
    outputs: dict[str, Path],
    model: Callable,
    map_hw: tuple[int, int],
    map_format: str,
    overwrite: bool,
) -> None:
    with torch.inference_mode():
        sal = model(erp)
    small = _resized_density(sal, map_hw)
    arr = small[0, 0].numpy().astype("<f4")
    if map_format != "npy":  # the other formats hold frames (T, H, W), one here
        writer = SaliencyMapWriter(
            _maps_stem(src, outputs["maps"].parent), map_format, overwrite=overwrite
        )
        try:
            writer.write(small)
        except BaseException:
            writer.abort()
            raise
        write_maps = writer.close
    else:

        def write_maps() -> None:
            write_atomic(outputs["maps"], lambda f: np.save(f, arr, allow_pickle=False), overwrite)

    _commit(
        [
            _map_and_overlay(outputs, sal, erp, overwrite),
            ([outputs["maps"]], write_maps),
        ]
    )


def _staged(path: Path) -> Path:
    """A hidden name next to ``path`` for an output kept aside until every output is done."""
    return path.with_name(f".{path.stem}.{os.getpid()}.staged{path.suffix}")


def _move_into_place(staged: Path, path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputExistsError(f"output '{path}' already exists; pass --overwrite to replace it")
    os.replace(staged, path)


def _run_video(
    src: Path,
    outputs: dict[str, Path],
    model: Callable,
    working: tuple[int, int] | None,
    map_size: str | None,
    map_format: str,
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
    map_hw = _map_hw(map_size, working, (h, w), video=True)
    out_fps = fps if fps is not None else info.fps
    total = None
    if fps is not None and info.duration_s:
        total = math.ceil(info.duration_s * fps - 1e-6)
    elif info.num_frames:
        total = info.num_frames
    if total is not None and max_frames is not None:
        total = min(total, max_frames)
    maps_path, overlay_path = outputs["maps"], outputs["overlay_video"]
    # Every frame at the video's rate: re-encoded by transcode_video, which copies the audio
    # bit for bit (and 360-degree metadata between MP4 files). Resampled (--fps) or cut
    # (--max-frames), the overlay would no longer match the sound: it is written without.
    keep_audio = fps is None and max_frames is None
    staged = _staged(overlay_path)
    writer = None if keep_audio else VideoWriter(overlay_path, out_fps, overwrite=overwrite)
    maps = SaliencyMapWriter(_maps_stem(src, maps_path.parent), map_format, overwrite=overwrite)
    state = {"mean": torch.zeros(1, 1, h, w, dtype=torch.float64), "first": None, "count": 0}

    def overlays(frames):
        bar = progress(frames, quiet=quiet, total=total, unit="frame", desc=src.name)
        try:
            for _, frame in bar:
                with torch.inference_mode():
                    sal = model(frame)
                small = _resized_density(sal, map_hw)
                maps.write(small)
                state["mean"] += sal.double()
                state["first"] = frame if state["first"] is None else state["first"]
                state["count"] += 1
                yield overlay_saliency(frame, sal)
        finally:
            bar.close()

    try:
        if keep_audio:
            transcode_video(src, staged, overlays, overwrite=True)
            place_overlay = partial(_move_into_place, staged, overlay_path, overwrite)
        else:
            for image in overlays(iter_video_frames(src, fps=fps, max_frames=max_frames)):
                writer.write(image)
            place_overlay = writer.close
        if state["count"] == 0:
            raise ImageIOError(f"cannot read video '{src}': it has no frames")
        if writer is not None:
            writer.finish()
        mean = (state["mean"] / state["count"]).float()
        _commit(
            [
                _map_and_overlay(outputs, mean, state["first"], overwrite),
                ([maps_path], maps.close),
                ([overlay_path], place_overlay),
            ]
        )
    finally:
        # Remove what was not put in place (temporary files; after close(), nothing).
        if writer is not None:
            writer.abort()
        maps.abort()
        with contextlib.suppress(OSError):
            staged.unlink()


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
            help="Saliency model. "
            + " ".join(
                f"{n}: {model_info(n).description.rstrip('.').replace('``', chr(39))}."
                for n in list_models(task="saliency")
            )
            + " Learned models run from PATH, a model exported by 'pano360 train' (its .json "
            "card or .safetensors; its card says what it was trained on). pano360 ships no "
            "learned saliency weights.",
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
    map_size: Annotated[
        str | None,
        typer.Option(
            "--map-size",
            metavar="WxH|model|input",
            help="Size of the written maps: WxH (2:1), 'model' (the model's working resolution, "
            "all the detail it has; IN's size if it has none or IN is smaller) or 'input'.  "
            "[default: model for videos, input for images]",
            show_default=False,
        ),
    ] = None,
    map_format: Annotated[
        str,
        typer.Option(
            "--map-format",
            metavar="[" + "|".join(SALIENCY_MAP_FORMATS) + "]",
            help="How the maps are stored: "
            + "; ".join(f"{k}: {v}" for k, v in SALIENCY_MAP_FORMATS.items())
            + ". 'pano360 eval saliency' reads them all.",
        ),
    ] = "npy",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Saliency maps of a 360-degree image or video: where a model puts the attention.

    Writes, in --out, for IN named NAME.ext:

    \b
      NAME_saliency.png   the saliency map, scaled so its peak is white (videos: mean map)
      NAME_saliency.npy   the map(s), --map-format npy (the default): float32 summing to 1
                          over the pixels, (H, W) for an image, (T, H, W) for a video;
                          npy16: float16 (T, H, W); npz: NAME_saliency.npz, compressed;
                          png8, png16: the folder NAME_saliency/ of one PNG per frame
      NAME_overlay.jpg    the map in colour over the image (videos: mean map, first frame)
      NAME_overlay.mp4    videos only: the overlay of every frame, with IN's audio copied
                          unchanged (not with --fps or --max-frames: then without sound)

    What the maps mean depends on the model: the default, spectral, is training-free (image
    statistics: spectral residual on 14 views of the sphere, times an equator prior), not
    learned from where people look; equator and uniform are baselines; a model trained on
    gaze data (--model PATH) predicts what its data taught it. Videos are streamed frame by
    frame (a model that takes an earlier frame's map gets its own previous prediction), and
    their maps are written at the model's working resolution unless --map-size says
    otherwise. Outputs appear only when everything succeeded.

    \b
    Examples:
      pano360 saliency pano.jpg --out results
      pano360 saliency tour.mp4 --fps 5 --out results
      pano360 saliency tour.mp4 --map-format npz --map-size 256x128 --out results
      pano360 saliency pano.jpg --model equator
    """
    predict, working = _saliency_model(model)
    check_choice(map_format, "--map-format", tuple(SALIENCY_MAP_FORMATS))
    if map_size is not None and map_size not in ("model", "input"):
        parse_size(map_size, "--map-size", erp=True)
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
    outputs = _outputs(src, out, video, map_format)
    folder = map_format.startswith("png")  # a PNG sequence: a folder, checked here
    prepare_outputs(
        [
            ("output", path, path.suffix in (".png", ".jpg"))
            for path in outputs.values()
            if not (folder and path == outputs["maps"])
        ],
        [src],
        overwrite=overwrite,
    )
    if folder and outputs["maps"].exists() and not overwrite:
        raise OutputExistsError(
            f"output '{outputs['maps']}' already exists; pass --overwrite to replace it"
        )
    if video:
        _run_video(
            src, outputs, predict, working, map_size, map_format, fps, max_frames, overwrite, quiet
        )
    else:
        erp = read_erp(src)
        map_hw = _map_hw(map_size, working, tuple(erp.shape[-2:]), video=False)
        _run_image(src, erp, outputs, predict, map_hw, map_format, overwrite)
    say_done(f"{model} saliency of {src}: wrote {written(outputs.values())}", quiet=quiet)
