"""``pano360 report``: an interactive 360° page of a panorama or video and its results.

The data and viz modules (and torch) are imported by the command: its help must not import them.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from ._options import Overwrite, Quiet
from ._outputs import check_out_dir, make_folders, say_done

__all__ = ["report_command"]


def report_command(
    media: Annotated[
        Path,
        typer.Argument(
            metavar="IMAGE|VIDEO",
            help="Equirectangular panorama or 360-degree video (width = 2 x height).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="The report folder to write (created; with --overwrite an old report there is "
            "replaced).",
        ),
    ],
    faces: Annotated[
        Path | None,
        typer.Option(
            "--faces",
            metavar="JSON",
            help="Faces to outline, list and blur: the JSON 'pano360 faces' writes (a list "
            "'faces' of {bfov or rbfov in degrees, score}). Images only.",
        ),
    ] = None,
    detections: Annotated[
        Path | None,
        typer.Option(
            "--detections",
            metavar="JSON",
            help="Other boxes to outline and list: a JSON list 'detections' of {bfov or rbfov "
            "in degrees, score, label}. Images only.",
        ),
    ] = None,
    saliency: Annotated[
        Path | None,
        typer.Option(
            "--saliency",
            metavar="MAP|DIR",
            help="Saliency heat map: an image or .npy (as 'pano360 saliency' writes; (T, H, W) "
            "for a video), or a folder of one map per video frame, in name order. Any 2:1 size.",
        ),
    ] = None,
    saliency_fps: Annotated[
        float | None,
        typer.Option(
            "--saliency-fps",
            metavar="F",
            help="Videos: saliency maps per second (map k shows from k / F seconds).  "
            "[default: the video's rate with one map per frame, else maps / duration]",
            show_default=False,
        ),
    ] = None,
    fixations: Annotated[
        Path | None,
        typer.Option(
            "--fixations",
            metavar="CSV",
            help="Fixations to show as points: a CSV 'lon,lat' or 'lon,lat,t' in degrees "
            "(t in seconds; on a video each shows for 0.5 s from t).",
        ),
    ] = None,
    title: Annotated[
        str | None,
        typer.Option("--title", help="Page title.  [default: the media's file name]"),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="After writing, serve the folder on http://127.0.0.1 at a free port (printed) "
            "until Ctrl+C. Opens nothing by itself.",
        ),
    ] = False,
    port: Annotated[
        int,
        typer.Option("--port", metavar="N", help="With --serve: the port (0: a free one)."),
    ] = 0,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Write an interactive 360-degree report: a page where you look around IMAGE|VIDEO.

    DIR gets index.html (open it in a browser, from disk or with --serve), the media, the
    results as results.json, the saliency maps and the viewer (Photo Sphere Viewer and
    three.js, MIT, licences included). Nothing is loaded from the network. Layers can be
    toggled: face and detection outlines (their true curves on the sphere; labels and scores
    on hover), the saliency heat map (in sync with a video), fixations, and a "blur faces"
    view; clicking a box in the list turns the view to it. The viewer's yaw and pitch are
    pano360's longitude and latitude. Nothing is written if anything fails.

    \b
    Examples:
      pano360 faces pano.jpg --out results
      pano360 saliency pano.jpg --out results
      pano360 report pano.jpg --faces results/pano_faces.json \\
          --saliency results/pano_saliency.npy --out report
      pano360 report tour.mp4 --saliency results/tour_saliency.npy --out tour_report --serve
    """
    from .._core import ValueRangeError
    from ..data import read_fixations_csv
    from ..io import read_saliency_maps
    from ..viz.report import EMBED_LIMIT_BYTES, read_boxes_json, serve_report, write_report

    if saliency_fps is not None and not (math.isfinite(saliency_fps) and saliency_fps > 0):
        raise ValueRangeError(
            f"--saliency-fps must be a positive number of maps per second, got {saliency_fps:g}"
        )
    if not 0 <= port <= 65535:
        raise ValueRangeError(f"--port must be in [0, 65535], got {port}")
    if port and not serve:
        raise ValueRangeError("--port goes with --serve")
    # The report folder itself is created by write_report (it renames a finished temporary
    # folder into place); its parent is created here, like every --out.
    check_out_dir(out)
    make_folders(out.parent)
    face_boxes = read_boxes_json(faces, "faces") if faces is not None else None
    other_boxes = read_boxes_json(detections, "detections") if detections is not None else None
    maps = read_saliency_maps(saliency) if saliency is not None else None
    points = times = None
    if fixations is not None:
        points, times = read_fixations_csv(fixations)
    summary = write_report(
        out,
        media,
        faces=face_boxes,
        detections=other_boxes,
        saliency=maps,
        saliency_fps=saliency_fps,
        fixations=points,
        fixation_times=times,
        title=title,
        overwrite=overwrite,
    )
    nouns = {"faces": "face", "detections": "detection", "saliency": "saliency map"}
    nouns["fixations"] = "fixation"
    shown = [f"{n} {nouns[k]}(s)" for k, n in summary.counts.items() if n]
    what = f" ({', '.join(shown)})" if shown else ""
    index = summary.index.resolve()
    say_done(f"wrote {summary.index}{what}; open {index.as_uri()} in a browser", quiet=quiet)
    if not summary.embedded:
        typer.echo(
            f"pano360: warning: the media exceed {EMBED_LIMIT_BYTES // 2**20} MiB and are not "
            "embedded; the page works when served (--serve), not from disk",
            err=True,
        )
    if serve:
        server = serve_report(out, port=port)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        print(f"serving {out} at {url} (Ctrl+C to stop)", file=sys.stdout, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
