"""``pano360 faces DIR --blur --out DIR2``: every panorama under a folder, resumable, on one
process or (``--devices``, ``--num-nodes``) on many through Lightning's predict loop."""

from __future__ import annotations

from pathlib import Path

from ._outputs import check_out_dir, make_folders, progress, say_done

__all__ = ["faces_folder"]


def faces_folder(
    src: Path,
    out: Path | None,
    blur: bool,
    *,
    strategy: str,
    students: Path | None,
    min_face: float,
    max_face: float,
    thresholds: tuple[float, float, float],
    device: str,
    half: bool,
    jobs: int,
    devices: int,
    num_nodes: int,
    overwrite: bool,
    max_pixels: int,
    max_memory: float | None,
    quiet: bool,
) -> int:
    """Find (and blur) the faces of every image under ``src`` into ``out``; return the exit
    status: 0, or 1 if a file failed (its line was printed and the summary names it)."""
    import sys

    from .._core import ValueRangeError, check_int
    from ..detection import FaceFolderJob
    from ._faces_video import resolve_device, resolve_half

    if out is None:
        raise ValueRangeError(
            f"IMAGE '{src}' is a folder: pass --out DIR for the outputs (a folder outside it; "
            "the layout of the input folder is mirrored there)"
        )
    check_int(jobs, "--jobs", lo=0)
    check_int(devices, "--devices", lo=1)
    check_int(num_nodes, "--num-nodes", lo=1)
    distributed = devices * num_nodes > 1
    dev = resolve_device(device)
    half = resolve_half(half, device, dev)
    check_out_dir(out)
    job = FaceFolderJob(
        src,
        out,
        blur=blur,
        strategy=strategy,
        min_face_deg=min_face,
        max_face_deg=max_face,
        thresholds=thresholds,
        students=students,
        half=half,
        overwrite=overwrite,
        max_pixels=max_pixels,
        max_memory_gb=max_memory,
    )
    make_folders(out)
    if distributed:
        results = _run_lightning(job, device, devices, num_nodes, jobs, quiet)
        if results is None:  # not global rank 0: its files are in the summary rank 0 wrote
            return 0
    else:
        bar = progress(total=len(job.files), quiet=quiet, desc=src.name, unit="image")

        def on_result(result) -> None:
            _report(result, lambda line: bar.write(line, file=sys.stderr))
            bar.update()
            bar.set_postfix_str(f"{result.faces or 0} face(s)", refresh=False)

        from ..detection import blur_faces_in_folder

        results = blur_faces_in_folder(job, jobs=jobs, device=dev, on_result=on_result)
        bar.close()
    return _finish(job, results, quiet)


def _report(result, echo) -> None:
    """One line on stderr for a file that failed."""
    if result.status == "failed":
        echo(f"pano360: error: {result.error}")


def _run_lightning(job, device: str, devices: int, num_nodes: int, jobs: int, quiet: bool):
    from .._core import ValueRangeError

    try:
        from ..training import blur_faces_in_folder_ddp
    except ImportError as e:
        raise ValueRangeError(
            f"--devices and --num-nodes run on Lightning, which is not installed ({e}); "
            "pip install 'pano360[train]'"
        ) from None
    import sys

    import typer

    def on_result(result) -> None:
        _report(result, lambda line: typer.echo(line, err=True))

    accelerator = {"cpu": "cpu", "cuda": "gpu", "auto": "auto"}[device]
    return blur_faces_in_folder_ddp(
        job,
        devices=devices,
        num_nodes=num_nodes,
        accelerator=accelerator,
        jobs=jobs,
        progress=not quiet and sys.stderr.isatty(),
        on_result=on_result,
    )


def _finish(job, results, quiet: bool) -> int:
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    faces = sum(r.faces or 0 for r in results)
    csv_path, _ = job.summary_paths()
    skipped = f", {counts['skipped']} already done" if counts["skipped"] else ""
    failed = f", {counts['failed']} failed" if counts["failed"] else ""
    say_done(
        f"{len(results)} image(s): {counts['done']} processed{skipped}{failed}; {faces} face(s); "
        f"wrote {job.dst} (summary {csv_path}, {csv_path.with_suffix('.json').name})",
        quiet=quiet,
    )
    return 1 if counts["failed"] else 0
