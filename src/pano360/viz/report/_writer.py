"""Writing a report folder: the page, its viewer, the media and the results, all or nothing."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from ... import __version__
from ...errors import ImageIOError, OutputExistsError, ShapeError, ValueRangeError
from ...geometry import box_corners, box_outline, sph_box_mask
from ...io import (
    IMAGE_EXTENSIONS,
    VideoWriter,
    iter_video_frames,
    read_image,
    video_info,
    write_image,
)
from .. import blur_regions_on_sphere, overlay_saliency
from ._inputs import ReportBoxes

__all__ = [
    "EMBED_LIMIT_BYTES",
    "REPORT_FORMAT",
    "ReportSummary",
    "saliency_colormap",
    "viewer_bundle",
    "write_report",
]

#: The ``format`` field of a report's results.json.
REPORT_FORMAT = "pano360-report"
_VERSION = 1

#: Media and maps are embedded (base64, in media.js) for file:// pages up to this total size.
EMBED_LIMIT_BYTES = 64 * 2**20

# Browsers show these as they are; other images are converted to PNG, other videos to MP4.
_WEB_IMAGES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
_WEB_VIDEOS = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm"}
# Overlay textures are at most this wide (WebGL textures have limits; maps are smooth anyway).
_BLUR_MAX_WIDTH = 4096
_SALIENCY_MAX_WIDTH = {"image": 2048, "video": 512}
# Points per box edge in results.json's outlines (box_outline). The page draws the corners
# joined by straight lines: a box's edges are great circles, which pinhole views show straight.
_OUTLINE_POINTS_PER_EDGE = 16
# Fixations shown on a video: those that started at most this long before the current time.
_FIXATION_WINDOW_S = 0.5

_CONVENTION = (
    "degrees. lon right (east) in [-180, 180), lat up in [-90, 90] (pano360.geometry.conventions); "
    "rbfov = [lon, lat, fov_x, fov_y, roll]: the pinhole view aimed at (lon, lat), fovs edge to "
    "edge, roll clockwise; outline: the box's great-circle edges as [lon, lat] points from the "
    "top-left corner, clockwise (pano360.geometry.box_outline). The viewer's yaw and pitch are lon "
    "and lat."
)

# The CommonJS builds of the vendored viewer, wrapped into one classic script (ES modules do not
# load from file://). Order matters only for readability: modules are evaluated when required.
_VENDOR_MODULES = (
    ("three", "three/three.cjs"),
    ("@photo-sphere-viewer/core", "psv-core/index.cjs"),
    ("@photo-sphere-viewer/markers-plugin", "psv-markers-plugin/index.cjs"),
    ("@photo-sphere-viewer/video-plugin", "psv-video-plugin/index.cjs"),
    (
        "@photo-sphere-viewer/equirectangular-video-adapter",
        "psv-equirectangular-video-adapter/index.cjs",
    ),
)
_VENDOR_CSS = ("psv-core/index.css", "psv-markers-plugin/index.css", "psv-video-plugin/index.css")
_BUNDLE_HEAD = """\
/* Photo Sphere Viewer and three.js (MIT; licences in licenses/), as published on npm, wrapped
   by pano360 into one classic script so the report opens from file://. */
(function () {
  "use strict";
  var defs = {}, cache = {};
  function require(name) {
    if (!cache[name]) {
      var module = { exports: {} };
      cache[name] = module;
      defs[name].call(module.exports, module, module.exports, require);
    }
    return cache[name].exports;
  }
"""
_BUNDLE_TAIL = """\
  window.PANO360_VIEWER = {
    THREE: require("three"),
    core: require("@photo-sphere-viewer/core"),
    markers: require("@photo-sphere-viewer/markers-plugin"),
    video: require("@photo-sphere-viewer/video-plugin"),
    videoAdapter: require("@photo-sphere-viewer/equirectangular-video-adapter"),
  };
})();
"""


@dataclass(frozen=True)
class ReportSummary:
    """What :func:`write_report` wrote.

    Attributes:
        index: the page, ``DIR/index.html``.
        embedded: whether the media are embedded so that the page works from file:// (False
            when they exceed ``embed_limit_bytes``: serve the folder over HTTP then).
        counts: number of faces, detections, saliency maps and fixations shown.
    """

    index: Path
    embedded: bool
    counts: dict[str, int]


def _data() -> resources.abc.Traversable:
    return resources.files(__package__) / "data"


def viewer_bundle() -> str:
    """The vendored viewer as one classic script (what a report's ``viewer/viewer.js`` holds)."""
    vendor = _data() / "vendor"
    parts = [_BUNDLE_HEAD]
    for name, rel in _VENDOR_MODULES:
        source = (vendor / rel).read_text(encoding="utf-8")
        # Source maps are not shipped; drop the comment so tools do not look for them.
        lines = [ln for ln in source.splitlines() if not ln.startswith("//# sourceMappingURL=")]
        body = "\n".join(lines)
        parts.append(
            f"  defs[{json.dumps(name)}] = function (module, exports, require) {{\n{body}\n}};\n"
        )
    parts.append(_BUNDLE_TAIL)
    return "".join(parts)


def _round(values, digits: int = 4) -> list:
    if isinstance(values, list):
        return [_round(v, digits) for v in values]
    return round(float(values), digits)


def _check_out(out: Path, overwrite: bool) -> None:
    """Fail early if ``out`` cannot become the report folder."""
    if out.exists() and not out.is_dir():
        raise ImageIOError(f"--out '{out}' exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise OutputExistsError(f"--out '{out}' already exists; pass --overwrite to replace it")
    try:
        fmt = json.loads((out / "results.json").read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = None
    if fmt != REPORT_FORMAT:
        raise OutputExistsError(
            f"--out '{out}' is a folder that is not a pano360 report; --overwrite replaces only "
            f"reports, choose another folder"
        )


def _check_boxes(boxes: ReportBoxes | None, name: str) -> None:
    if boxes is not None and not isinstance(boxes, ReportBoxes):
        raise TypeError(f"{name} must be ReportBoxes, got {type(boxes).__name__}")


def _media_kind(media: Path) -> str:
    if not media.is_file():
        what = "it is a folder" if media.is_dir() else "no such file"
        raise ImageIOError(f"cannot read media '{media}': {what}")
    return "image" if media.suffix.lower() in IMAGE_EXTENSIONS else "video"


def _saliency_png(maps: torch.Tensor, width: int) -> list[torch.Tensor]:
    """(T, 1, H, W) maps -> T (1, h, w) images sqrt(map / peak) in [0, 1], w <= width.

    The square root spends the 8 bits of a PNG where the eye needs them: faint values, which
    :func:`pano360.viz.overlay_saliency` shows with opacity ~ sqrt(value), do not end in a step.
    """
    w = maps.shape[-1]
    if w > width:
        maps = F.interpolate(maps, size=(width // 2, width), mode="area")
    peak = maps.amax(dim=(-2, -1), keepdim=True)
    maps = maps / torch.where(peak > 0, peak, torch.ones_like(peak))
    return list(maps.sqrt())


def saliency_colormap() -> list[list[int]]:
    """The colours :func:`pano360.viz.overlay_saliency` gives the map value ``(k / 255) ** 2``.

    Returns:
        256 [r, g, b, a] in 0..255 (straight alpha), indexed by the 8-bit values of a report's
        saliency PNGs (which hold sqrt(map / peak)): ``overlay_saliency`` blends the colour
        [r, g, b] over the image with opacity a, so the page shows what the library draws.

    Example:
        >>> lut = saliency_colormap()
        >>> len(lut), lut[0][3], lut[255]  # transparent at 0, opaque white-hot at the peak
        (256, 0, [255, 255, 255, 178])
    """
    ramp = torch.linspace(0, 1, 256, dtype=torch.float64).square().view(1, 1, 1, 256)
    on_black = overlay_saliency(torch.zeros(1, 3, 1, 256, dtype=torch.float64), ramp)
    on_white = overlay_saliency(torch.ones(1, 3, 1, 256, dtype=torch.float64), ramp)
    alpha = (1 - (on_white - on_black)[0, 0, 0]).clamp(0, 1)  # out = image (1 - a) + colour a
    colour = on_black[0, :, 0] / alpha.clamp_min(1e-12)
    rgba = torch.cat((colour.clamp(0, 1), alpha[None]), 0).T
    return (rgba * 255).round().int().tolist()


def _blur_overlay(erp: torch.Tensor, faces: ReportBoxes) -> torch.Tensor:
    """(1, 4, h, w): the faces blurred on the sphere (RGB, premultiplied) and where (alpha)."""
    w = erp.shape[-1]
    if w > _BLUR_MAX_WIDTH:
        erp = F.interpolate(erp, size=(_BLUR_MAX_WIDTH // 2, _BLUR_MAX_WIDTH), mode="area")
    boxes = faces.boxes.to(erp.dtype)
    blurred = blur_regions_on_sphere(erp, boxes, fmt="rbfov")
    mask = sph_box_mask(boxes, erp.shape[-2:]).any(0)[None, None].to(erp.dtype)
    return torch.cat((blurred * mask, mask), 1)


def _box_entries(boxes: ReportBoxes, layer: str) -> list[dict]:
    outlines = box_outline(boxes.boxes, _OUTLINE_POINTS_PER_EDGE).tolist()
    all_corners = box_corners(boxes.boxes).tolist()
    entries = []
    for i, (box, corners, outline) in enumerate(
        zip(boxes.boxes.tolist(), all_corners, outlines, strict=True)
    ):
        deg = [math.degrees(v) for v in box]
        deg[0] = (deg[0] + 180) % 360 - 180
        entries.append(
            {
                "id": f"{layer}-{i + 1}",
                "layer": layer,
                "label": boxes.labels[i],
                "score": boxes.scores[i],
                "rbfov": _round(deg),
                "corners": _round([[math.degrees(a), math.degrees(b)] for a, b in corners]),
                "outline": _round([[math.degrees(a), math.degrees(b)] for a, b in outline]),
            }
        )
    return entries


def _copy_media(media: Path, kind: str, folder: Path) -> tuple[Path, str]:
    """Put the media in ``folder`` in a form browsers show; return (file, MIME type)."""
    suffix = media.suffix.lower()
    if kind == "image":
        if suffix in _WEB_IMAGES:
            target = folder / f"{media.stem}{suffix}"
            shutil.copyfile(media, target)
            return target, _WEB_IMAGES[suffix]
        target = folder / f"{media.stem}.png"
        write_image(target, read_image(media))
        return target, "image/png"
    if suffix in _WEB_VIDEOS:
        target = folder / f"{media.stem}{suffix}"
        shutil.copyfile(media, target)
        return target, _WEB_VIDEOS[suffix]
    target = folder / f"{media.stem}.mp4"  # H.264, which browsers play
    with VideoWriter(target, fps=video_info(media).fps) as out:
        for _, frame in iter_video_frames(media):
            out.write(frame)
    return target, "video/mp4"


def _page(title: str) -> str:
    template = (_data() / "index.html").read_text(encoding="utf-8")
    return template.replace("{{title}}", html.escape(title))


def _check_layers(kind, faces, detections, saliency, saliency_fps, fixations, times) -> None:
    """Fail before any work if a layer cannot go with the media or has a wrong shape or value."""
    if kind == "video" and (faces is not None or detections is not None):
        raise ValueRangeError(
            "faces and detections go with images: one set of boxes cannot follow a video"
        )
    if saliency is not None:
        if (
            saliency.ndim != 4
            or saliency.shape[1] != 1
            or saliency.shape[-1] != 2 * saliency.shape[-2]
        ):
            raise ShapeError(
                f"saliency must be (T, 1, H, W) with W = 2H, got {tuple(saliency.shape)}"
            )
        if kind == "image" and len(saliency) != 1:
            raise ShapeError(f"an image takes one saliency map, got {len(saliency)}")
        if not torch.isfinite(saliency).all() or (saliency < 0).any():
            raise ValueRangeError("saliency maps must be finite and non-negative")
    if saliency_fps is not None and not (math.isfinite(saliency_fps) and saliency_fps > 0):
        raise ValueRangeError(f"saliency_fps must be a positive number, got {saliency_fps:g}")
    if fixations is not None:
        if fixations.ndim != 2 or fixations.shape[1] != 2:
            raise ShapeError(f"fixations must be (N, 2) (lon, lat), got {tuple(fixations.shape)}")
        if not torch.isfinite(fixations).all():
            raise ValueRangeError("fixations must be finite (lon, lat) in radians")
    if times is not None:
        if fixations is None or times.shape != (len(fixations),):
            raise ShapeError("fixation_times must be (N,), one time per fixation")
        if not torch.isfinite(times).all():
            raise ValueRangeError("fixation_times must be finite seconds")


def write_report(
    out: str | os.PathLike[str],
    media: str | os.PathLike[str],
    *,
    faces: ReportBoxes | None = None,
    detections: ReportBoxes | None = None,
    saliency: torch.Tensor | None = None,
    saliency_fps: float | None = None,
    fixations: torch.Tensor | None = None,
    fixation_times: torch.Tensor | None = None,
    title: str | None = None,
    overwrite: bool = False,
    embed_limit_bytes: int = EMBED_LIMIT_BYTES,
) -> ReportSummary:
    """Write an interactive 360° report: a folder with a page to look around a panorama.

    The folder holds ``index.html`` (open it in a browser, from disk or served), the media in
    ``media/``, the results as ``results.json`` (and ``results.js``, the same for the page),
    saliency maps as 8-bit PNGs in ``saliency/``, the viewer (Photo Sphere Viewer and three.js,
    MIT, with their licences) in ``viewer/`` and, when small enough, ``media.js``: the media
    and maps as base64, which a page opened from file:// needs (browsers refuse WebGL textures
    made from files next to such a page). Nothing is loaded from the network.

    Args:
        out: the report folder; created, or replaced when ``overwrite`` and it is a report.
        media: an ERP image (W == 2H; JPEG, PNG and WebP are copied, other formats converted to
            PNG) or an ERP video (MP4 and WebM are copied, others converted to H.264 MP4).
        faces: face boxes: outlined, listed, and blurred on the sphere by the "blur faces"
            toggle (:func:`pano360.viz.blur_regions_on_sphere`). Images only.
        detections: other boxes, outlined and listed. Images only.
        saliency: (T, 1, H', W') non-negative maps, W' == 2H': T == 1 for an image; for a video,
            map k shows from time k / ``saliency_fps``. Any 2:1 size (the page samples it on the
            sphere); each map is scaled to its peak and coloured as
            :func:`pano360.viz.overlay_saliency` colours it.
        saliency_fps: maps per second of video; default: the video's rate when there is one map
            per frame, else T / duration.
        fixations: (N, 2) (lon, lat) in radians, shown as points.
        fixation_times: (N,) start times in seconds; on a video a fixation shows for 0.5 s
            from its start.
        title: the page title (default: the media file name).
        overwrite: replace ``out`` if it is a report written before.
        embed_limit_bytes: embed the media (media.js) only up to this total size.

    Returns:
        A :class:`ReportSummary`.

    Raises:
        ImageIOError: missing or unreadable media; ``out`` not a folder or not writable.
        ShapeError: media or maps not 2:1, several maps for an image, or tensors of the wrong
            shape.
        ValueRangeError: boxes on a video, ``saliency_fps`` not positive, negative or non-finite
            maps, non-finite fixations or times.
        OutputExistsError: ``out`` exists (not empty) and ``overwrite`` is False, or it is not
            a report.

    Convention:
        Everything follows :mod:`pano360.geometry.conventions`: the page turns the viewer to
        yaw = lon, pitch = lat (yaw right, pitch up), and draws each box as its great-circle
        outline (:func:`pano360.geometry.box_outline`), the maps as equirectangular textures on
        the sphere (seam and poles continuous) and fixations at their (lon, lat). results.json
        holds degrees.

    Example:
        >>> import tempfile
        >>> from pano360.io import write_image
        >>> tmp = Path(tempfile.mkdtemp())
        >>> write_image(tmp / "pano.png", torch.rand(1, 3, 32, 64))
        >>> faces = ReportBoxes.from_boxes(torch.tensor([[math.pi, 0.2, 0.5, 0.6]]), [0.9])
        >>> s = write_report(tmp / "report", tmp / "pano.png", faces=faces)
        >>> s.index.name, s.embedded, s.counts["faces"]
        ('index.html', True, 1)
    """
    out, media = Path(out), Path(media)
    _check_boxes(faces, "faces")
    _check_boxes(detections, "detections")
    _check_out(out, overwrite)
    kind = _media_kind(media)
    fps = duration = frames = None
    if kind == "image":
        erp = read_image(media)[:, :3]
        h, w = erp.shape[-2:]
        if erp.shape[1] == 1:
            erp = erp.expand(-1, 3, -1, -1)
    else:
        info = video_info(media)
        h, w = info.hw
        fps, duration, frames = info.fps, info.duration_s, info.num_frames
        erp = None
    if w != 2 * h:
        raise ShapeError(
            f"media '{media}' must be equirectangular with width = 2 x height, got {w}x{h}"
        )
    _check_layers(kind, faces, detections, saliency, saliency_fps, fixations, fixation_times)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise ImageIOError(f"cannot write the report in '{out.parent}': {e.strerror}") from e
    try:
        summary = _fill(
            tmp,
            out,
            media,
            kind=kind,
            erp=erp,
            size=(w, h),
            timing=(fps, duration, frames),
            faces=faces,
            detections=detections,
            saliency=saliency,
            saliency_fps=saliency_fps,
            fixations=fixations,
            fixation_times=fixation_times,
            title=title or media.name,
            embed_limit_bytes=embed_limit_bytes,
        )
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _fill(
    tmp: Path,
    out: Path,
    media: Path,
    *,
    kind: str,
    erp: torch.Tensor | None,
    size: tuple[int, int],
    timing: tuple,
    faces: ReportBoxes | None,
    detections: ReportBoxes | None,
    saliency: torch.Tensor | None,
    saliency_fps: float | None,
    fixations: torch.Tensor | None,
    fixation_times: torch.Tensor | None,
    title: str,
    embed_limit_bytes: int,
) -> ReportSummary:
    """Write everything into the temporary folder ``tmp`` (renamed to ``out`` after)."""
    fps, duration, frames = timing
    (tmp / "media").mkdir()
    media_file, mime = _copy_media(media, kind, tmp / "media")
    embedded_files = {media_file: mime}
    results: dict = {
        "format": REPORT_FORMAT,
        "version": _VERSION,
        "made_by": f"pano360 {__version__}",
        "title": title,
        "convention": _CONVENTION,
        "media": {
            "kind": kind,
            "file": media_file.relative_to(tmp).as_posix(),
            "size": list(size),
            "fps": fps,
            "duration_s": duration,
            "frames": frames,
        },
        "boxes": [],
        "blur": None,
        "saliency": None,
        "fixations": None,
    }
    if faces is not None:
        results["boxes"] += _box_entries(faces, "faces")
        if len(faces.boxes):
            blur = tmp / "media" / f"{media.stem}_blurred_faces.png"
            write_image(blur, _blur_overlay(erp, faces))
            results["blur"] = {"file": blur.relative_to(tmp).as_posix()}
            embedded_files[blur] = "image/png"
    if detections is not None:
        results["boxes"] += _box_entries(detections, "detections")
    if saliency is not None:
        (tmp / "saliency").mkdir()
        names = []
        for k, m in enumerate(_saliency_png(saliency.float(), _SALIENCY_MAX_WIDTH[kind])):
            path = tmp / "saliency" / f"{k:06d}.png"
            write_image(path, m)
            names.append(path.relative_to(tmp).as_posix())
            embedded_files[path] = "image/png"
        rate = None
        if kind == "video":
            t = len(names)
            if saliency_fps is not None:
                rate = saliency_fps
            elif t == frames or not duration:
                rate = fps
            else:
                rate = t / duration
        results["saliency"] = {
            "frames": names,
            "encoding": "sqrt(map / peak of the map), 8 bits",
            "fps": rate,
            "colormap": saliency_colormap(),
        }
    if fixations is not None:
        pts = [[math.degrees(a), math.degrees(b)] for a, b in fixations.double().tolist()]
        for p in pts:
            p[0] = (p[0] + 180) % 360 - 180
        if fixation_times is not None:
            for p, t in zip(pts, fixation_times.double().tolist(), strict=True):
                p.append(t)
        results["fixations"] = {"points": _round(pts), "window_s": _FIXATION_WINDOW_S}
    total = sum(p.stat().st_size for p in embedded_files)
    results["embedded"] = total <= embed_limit_bytes
    doc = json.dumps(results, indent=1)
    (tmp / "results.json").write_text(doc + "\n", encoding="utf-8")
    (tmp / "results.js").write_text(f"window.PANO360_RESULTS = {doc};\n", encoding="utf-8")
    if results["embedded"]:
        with open(tmp / "media.js", "w", encoding="ascii") as f:
            f.write("window.PANO360_MEDIA = {\n")
            for path, type_ in embedded_files.items():
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                name = json.dumps(path.relative_to(tmp).as_posix())
                f.write(f'{name}: {{"mime": "{type_}", "base64": "{data}"}},\n')
            f.write("};\n")
    _write_viewer(tmp / "viewer")
    (tmp / "index.html").write_text(_page(title), encoding="utf-8")
    counts = {
        "faces": len(faces.boxes) if faces is not None else 0,
        "detections": len(detections.boxes) if detections is not None else 0,
        "saliency": len(saliency) if saliency is not None else 0,
        "fixations": len(fixations) if fixations is not None else 0,
    }
    return ReportSummary(out / "index.html", results["embedded"], counts)


def _write_viewer(folder: Path) -> None:
    """viewer/: the wrapped viewer, its CSS, the page's script and style, the licences."""
    folder.mkdir()
    (folder / "viewer.js").write_text(viewer_bundle(), encoding="utf-8")
    vendor = _data() / "vendor"
    css = [(vendor / rel).read_text(encoding="utf-8") for rel in _VENDOR_CSS]
    css = [
        "\n".join(ln for ln in c.splitlines() if not ln.startswith("/*# sourceMappingURL="))
        for c in css
    ]
    (folder / "viewer.css").write_text("\n".join(css) + "\n", encoding="utf-8")
    for name in ("report.js", "report.css"):
        (folder / name).write_text((_data() / name).read_text(encoding="utf-8"), encoding="utf-8")
    licenses = folder / "licenses"
    licenses.mkdir()
    (licenses / "VENDOR.md").write_text((vendor / "VENDOR.md").read_text(encoding="utf-8"))
    for package in vendor.iterdir():
        if package.is_dir():
            text = (package / "LICENSE").read_text(encoding="utf-8")
            (licenses / f"{package.name}.LICENSE").write_text(text, encoding="utf-8")


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder to ``out``; an old report there is removed only after."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        old.rmdir()
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError as e:
        if old is not None:
            old.rename(out)
        raise ImageIOError(f"cannot write the report '{out}': {e.strerror}") from e
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.chmod(out, 0o755)  # mkdtemp makes 0700 folders
