"""pano360.viz.report without a browser: inputs, the folder written, its errors, the server."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import math
import re
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from pano360.detection import FaceDetection
from pano360.errors import (
    DatasetFormatError,
    ImageIOError,
    OutputExistsError,
    ShapeError,
    ValueRangeError,
)
from pano360.geometry import box_corners, box_outline, sph_box_mask
from pano360.io import VideoWriter, read_image, write_image
from pano360.viz import blur_regions_on_sphere, overlay_saliency
from pano360.viz.report import (
    REPORT_FORMAT,
    ReportBoxes,
    read_boxes_json,
    read_saliency_maps,
    saliency_colormap,
    serve_report,
    viewer_bundle,
    write_report,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "src" / "pano360" / "viz" / "report" / "data"


@pytest.fixture
def pano(tmp_path):
    path = tmp_path / "pano.png"
    write_image(path, torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(0)))
    return path


def faces_across_the_seam():
    return ReportBoxes.from_boxes(
        torch.tensor([[math.pi, 0.2, 0.5, 0.6], [-1.0, math.radians(70), 0.4, 0.5]]), [0.9, None]
    )


# --- boxes ---------------------------------------------------------------------------------------


def test_read_boxes_json_reads_what_pano360_faces_writes(tmp_path):
    found = [
        FaceDetection((math.pi - 0.01, 0.3, 0.2, 0.25), 0.97, ((0.1, 0.2),) * 5),
        FaceDetection((-0.5, -1.2, 0.1, 0.12), 0.81, ((0.0, 0.0),) * 5),
    ]
    doc = {"image": "x.jpg", "strategy": "spherical", "faces": [f.to_dict() for f in found]}
    (tmp_path / "f.json").write_text(json.dumps(doc))
    boxes = read_boxes_json(tmp_path / "f.json")
    expected = torch.tensor([[*f.box, 0.0] for f in found], dtype=torch.float64)
    torch.testing.assert_close(boxes.boxes, expected, atol=1e-6, rtol=0)
    assert boxes.scores == (0.97, 0.81) and boxes.labels == ("face", "face")


def test_read_boxes_json_rbfov_labels_and_missing_scores(tmp_path):
    doc = {"detections": [{"rbfov": [10, 20, 30, 40, -5], "label": "cat"}, {"bfov": [1, 2, 3, 4]}]}
    (tmp_path / "d.json").write_text(json.dumps(doc))
    boxes = read_boxes_json(tmp_path / "d.json", "detections")
    torch.testing.assert_close(
        boxes.boxes[0], torch.tensor([10.0, 20, 30, 40, -5]).double().deg2rad()
    )
    assert boxes.scores == (None, None) and boxes.labels == ("cat", "detection")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"boxes": []}', "a list 'faces'"),
        ("[1, 2]", "a list 'faces'"),
        ('{"faces": [3]}', r"faces\[0\] must be an object"),
        ('{"faces": [{"score": 1}]}', "exactly one of 'bfov'"),
        ('{"faces": [{"bfov": [1, 2, 3]}]}', r"faces\[0\].bfov must be a list of 4"),
        ('{"faces": [{"bfov": [1, 95, 3, 4]}]}', "lat must be in"),
        ('{"faces": [{"bfov": [1, 2, 180, 4]}]}', "fov_x must be in"),
        ('{"faces": [{"bfov": [1, 2, 3, "4"]}]}', "must be a finite number"),
        ('{"faces": [{"bfov": [1, 2, 3, 4], "score": "high"}]}', "score must be a finite"),
        ('{"faces": [{"bfov": [1, 2, 3, 4], "label": 7}]}', "label must be text"),
    ],
)
def test_read_boxes_json_names_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=message):
        read_boxes_json(path)


def test_read_boxes_json_other_errors(tmp_path):
    with pytest.raises(ImageIOError, match="cannot read"):
        read_boxes_json(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="key must be one of"):
        read_boxes_json(tmp_path / "missing.json", "boxes")


def test_report_boxes_shapes():
    b = ReportBoxes.from_boxes(torch.zeros(3, 4) + 0.5, labels=["a", "b", "c"])
    assert b.boxes.shape == (3, 5) and b.scores == (None,) * 3
    with pytest.raises(ShapeError, match=r"\(N, 4\) BFoV or \(N, 5\)"):
        ReportBoxes.from_boxes(torch.zeros(3, 3))
    with pytest.raises(ShapeError, match="one entry per box"):
        ReportBoxes(torch.zeros(2, 5), (None,), ("a", "b"))
    with pytest.raises(ShapeError, match=r"\(N, 5\) RBFoV"):
        ReportBoxes(torch.zeros(2, 4), (None, None), ("a", "b"))


# --- saliency maps -------------------------------------------------------------------------------


def test_the_report_reads_saliency_maps_with_the_io_reader(tmp_path):
    # One home: the report takes every format ``pano360 saliency`` writes, through
    # pano360.io.read_saliency_maps (its own tests cover the formats and errors).
    import pano360.io

    assert read_saliency_maps is pano360.io.read_saliency_maps
    m = torch.rand(3, 1, 8, 16)
    np.save(tmp_path / "m.npy", m[:, 0].numpy())
    torch.testing.assert_close(read_saliency_maps(tmp_path / "m.npy"), m)
    write_image(tmp_path / "square.png", torch.rand(1, 1, 8, 8))
    with pytest.raises(ShapeError, match=r"must be 2:1 \(W == 2H\), got 8x8"):
        read_saliency_maps(tmp_path / "square.png")


def test_colormap_reproduces_overlay_saliency():
    """A page blending the colour map's colours reproduces pano360.viz.overlay_saliency."""
    lut = torch.tensor(saliency_colormap(), dtype=torch.float64) / 255
    image = torch.rand(1, 3, 8, 16, dtype=torch.float64)
    value = torch.rand(1, 1, 8, 16, dtype=torch.float64)
    value[..., 0, 0] = 1.0  # the peak
    k = (value.sqrt() * 255).round().long()[0, 0]  # what a report's PNG holds
    rgba = lut[k].permute(2, 0, 1)[None]
    page = image * (1 - rgba[:, 3:]) + rgba[:, :3] * rgba[:, 3:]
    torch.testing.assert_close(page, overlay_saliency(image, value), atol=0.02, rtol=0)


# --- the folder ----------------------------------------------------------------------------------


def test_write_report_writes_a_self_contained_folder(tmp_path, pano):
    faces = faces_across_the_seam()
    saliency = torch.rand(1, 1, 16, 32)
    fixations = torch.tensor([[0.1, 0.2], [math.pi, -0.3]], dtype=torch.float64)
    s = write_report(
        tmp_path / "r", pano, faces=faces, saliency=saliency, fixations=fixations, title="T<1>"
    )
    r = tmp_path / "r"
    assert s.index == r / "index.html" and s.embedded
    assert s.counts == {"faces": 2, "detections": 0, "saliency": 1, "fixations": 2}
    names = sorted(p.relative_to(r).as_posix() for p in r.rglob("*") if p.is_file())
    assert names == [
        "index.html", "media.js", "media/pano.png", "media/pano_blurred_faces.png",
        "results.js", "results.json", "saliency/000000.png",
        "viewer/licenses/VENDOR.md", "viewer/licenses/psv-core.LICENSE",
        "viewer/licenses/psv-equirectangular-video-adapter.LICENSE",
        "viewer/licenses/psv-markers-plugin.LICENSE", "viewer/licenses/psv-video-plugin.LICENSE",
        "viewer/licenses/three.LICENSE", "viewer/report.css", "viewer/report.js",
        "viewer/viewer.css", "viewer/viewer.js",
    ]  # fmt: skip
    assert (r / "media" / "pano.png").read_bytes() == pano.read_bytes()
    page = (r / "index.html").read_text()
    assert "<title>T&lt;1&gt; · pano360 report</title>" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from the network
    res = json.loads((r / "results.json").read_text())
    assert res["format"] == REPORT_FORMAT and res["embedded"]
    script = (r / "results.js").read_text()
    assert script == f"window.PANO360_RESULTS = {json.dumps(res, indent=1)};\n"
    # Boxes in degrees, lon in [-180, 180), with pano360's outline and corners.
    b0 = res["boxes"][0]
    assert b0["rbfov"][0] == -180.0 and b0["score"] == 0.9 and b0["label"] == "face"
    outline = torch.tensor(b0["outline"], dtype=torch.float64).deg2rad()
    torch.testing.assert_close(outline, box_outline(faces.boxes[:1], 16)[0], atol=1e-5, rtol=0)
    corners = torch.tensor(b0["corners"], dtype=torch.float64).deg2rad()
    torch.testing.assert_close(corners, box_corners(faces.boxes[:1])[0], atol=1e-5, rtol=0)
    assert res["boxes"][1]["score"] is None
    # Fixations in degrees, wrapped.
    assert res["fixations"]["points"] == [
        [round(math.degrees(0.1), 4), round(math.degrees(0.2), 4)],
        [-180.0, round(math.degrees(-0.3), 4)],
    ]
    # Saliency: sqrt(map / peak) in 8 bits.
    png = read_image(r / "saliency" / "000000.png")
    torch.testing.assert_close(png, (saliency / saliency.max()).sqrt(), atol=1 / 255, rtol=0)
    # media.js holds the files as they are.
    text = (r / "media.js").read_text()
    media = json.loads(text[text.index("{") : text.rindex("}") + 1].replace(",\n}", "\n}"))
    for name, entry in media.items():
        assert base64.b64decode(entry["base64"]) == (r / name).read_bytes()


def test_blur_overlay_is_the_library_blur_inside_the_boxes(tmp_path, pano):
    faces = faces_across_the_seam()
    write_report(tmp_path / "r", pano, faces=faces)
    overlay = read_image(tmp_path / "r" / "media" / "pano_blurred_faces.png")
    erp = read_image(pano)
    mask = sph_box_mask(faces.boxes, (32, 64)).any(0)
    torch.testing.assert_close(overlay[:, 3], mask[None].float())
    expected = blur_regions_on_sphere(erp, faces.boxes.float(), fmt="rbfov") * mask
    torch.testing.assert_close(overlay[:, :3], expected, atol=1 / 255, rtol=0)
    assert bool(mask[:, 0].any() and mask[:, -1].any())  # across the seam


def test_vendored_viewer_is_unchanged_and_licensed():
    vendor = DATA / "vendor"
    manifest = (vendor / "VENDOR.md").read_text()
    sums = re.findall(r"^([0-9a-f]{64})  (\S+)$", manifest, flags=re.M)
    files = sorted(p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file())
    assert sorted(name for _, name in sums) == [f for f in files if f != "VENDOR.md"]
    for digest, name in sums:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    for package in {Path(n).parts[0] for _, n in sums}:
        assert "MIT License" in (vendor / package / "LICENSE").read_text()
    assert "three@0.185" in manifest and "@photo-sphere-viewer/core@5." in manifest
    bundle = viewer_bundle()
    three = (vendor / "three" / "three.cjs").read_text()
    assert three.replace("\n//# sourceMappingURL=three.cjs.map", "").rstrip() in bundle


def test_package_data_ships_every_report_file():
    line = re.search(
        r'^"pano360.viz.report" = \[(.*)\]$', (ROOT / "pyproject.toml").read_text(), re.M
    )
    patterns = json.loads(f"[{line[1]}]")
    for path in DATA.rglob("*"):
        if path.is_file():
            rel = path.relative_to(DATA.parent).as_posix()
            assert any(fnmatch.fnmatch(rel, p) for p in patterns), rel


def test_other_formats_become_web_formats_and_large_media_are_not_embedded(tmp_path):
    write_image(tmp_path / "pano.tif", torch.rand(1, 3, 16, 32))
    s = write_report(tmp_path / "r", tmp_path / "pano.tif", embed_limit_bytes=0)
    assert not s.embedded and not (tmp_path / "r" / "media.js").exists()
    torch.testing.assert_close(
        read_image(tmp_path / "r" / "media" / "pano.png"), read_image(tmp_path / "pano.tif")
    )
    with VideoWriter(tmp_path / "clip.avi", fps=5) as out:
        for _ in range(3):
            out.write(torch.rand(1, 3, 16, 32))
    write_report(tmp_path / "v", tmp_path / "clip.avi")
    res = json.loads((tmp_path / "v" / "results.json").read_text())
    assert res["media"]["file"] == "media/clip.mp4" and res["media"]["kind"] == "video"
    assert res["media"]["fps"] == 5


def test_video_saliency_rate(tmp_path):
    with VideoWriter(tmp_path / "clip.mp4", fps=10) as out:
        for _ in range(10):
            out.write(torch.rand(1, 3, 16, 32))
    cases = [(10, None, 10.0), (4, None, 4.0), (4, 2.5, 2.5)]  # per frame, spread, given
    for i, (t, given, rate) in enumerate(cases):
        write_report(
            tmp_path / f"r{i}", tmp_path / "clip.mp4", saliency=torch.rand(t, 1, 8, 16),
            saliency_fps=given,
        )  # fmt: skip
        res = json.loads((tmp_path / f"r{i}" / "results.json").read_text())
        assert len(res["saliency"]["frames"]) == t
        assert res["saliency"]["fps"] == pytest.approx(rate, rel=1e-3)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"saliency": torch.rand(2, 1, 8, 16)}, ShapeError, "one saliency map, got 2"),
        ({"saliency": torch.rand(1, 1, 8, 8)}, ShapeError, r"\(T, 1, H, W\) with W = 2H"),
        ({"saliency": -torch.ones(1, 1, 8, 16)}, ValueRangeError, "non-negative"),
        ({"saliency_fps": 0.0}, ValueRangeError, "saliency_fps must be a positive"),
        ({"fixations": torch.zeros(3)}, ShapeError, r"fixations must be \(N, 2\)"),
        (
            {"fixations": torch.zeros(3, 2), "fixation_times": torch.zeros(2)},
            ShapeError,
            "one time per fixation",
        ),
        ({"fixations": torch.full((1, 2), math.nan)}, ValueRangeError, "fixations must be finite"),
        (
            {"fixations": torch.zeros(1, 2), "fixation_times": torch.tensor([math.inf])},
            ValueRangeError,
            "finite seconds",
        ),
        ({"faces": torch.zeros(1, 4)}, TypeError, "faces must be ReportBoxes"),
    ],
)
def test_write_report_errors_leave_nothing(tmp_path, pano, kwargs, error, message):
    with pytest.raises(error, match=message):
        write_report(tmp_path / "r", pano, **kwargs)
    assert leftovers(tmp_path) == ["pano.png"]


def test_media_errors(tmp_path):
    with pytest.raises(ImageIOError, match=r"cannot read media .*no such file"):
        write_report(tmp_path / "r", tmp_path / "missing.jpg")
    write_image(tmp_path / "square.png", torch.rand(1, 3, 16, 16))
    with pytest.raises(ShapeError, match="width = 2 x height, got 16x16"):
        write_report(tmp_path / "r", tmp_path / "square.png")
    with VideoWriter(tmp_path / "clip.mp4", fps=5) as out:
        out.write(torch.rand(1, 3, 16, 32))
    with pytest.raises(ValueRangeError, match="go with images"):
        write_report(tmp_path / "r", tmp_path / "clip.mp4", faces=faces_across_the_seam())
    assert not (tmp_path / "r").exists()


def test_a_failure_while_writing_leaves_no_folder(tmp_path, pano, monkeypatch):
    import pano360.viz.report._writer as writer

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writer, "viewer_bundle", broken)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path / "r", pano)
    assert leftovers(tmp_path) == ["pano.png"]


def test_overwrite_replaces_reports_only(tmp_path, pano):
    write_report(tmp_path / "r", pano)
    with pytest.raises(OutputExistsError, match="already exists; pass --overwrite"):
        write_report(tmp_path / "r", pano, faces=faces_across_the_seam())
    assert json.loads((tmp_path / "r" / "results.json").read_text())["boxes"] == []
    write_report(tmp_path / "r", pano, faces=faces_across_the_seam(), overwrite=True)
    assert len(json.loads((tmp_path / "r" / "results.json").read_text())["boxes"]) == 2
    assert leftovers(tmp_path) == ["pano.png", "r"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="not a pano360 report"):
        write_report(tmp_path / "mine", pano, overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ImageIOError, match="is not a folder"):
        write_report(tmp_path / "file", pano)
    (tmp_path / "empty").mkdir()
    write_report(tmp_path / "empty", pano)  # an empty folder is used as it is
    assert (tmp_path / "empty" / "index.html").is_file()


def test_serve_report_serves_files_and_byte_ranges(tmp_path, pano):
    write_report(tmp_path / "r", pano)
    server = serve_report(tmp_path / "r")
    assert server.server_address[0] == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with urllib.request.urlopen(url + "results.json") as r:
            assert json.loads(r.read())["format"] == REPORT_FORMAT
        request = urllib.request.Request(url + "media/pano.png", headers={"Range": "bytes=4-9"})
        with urllib.request.urlopen(request) as r:
            assert r.status == 206 and r.headers["Content-Range"].endswith(
                f"/{pano.stat().st_size}"
            )
            assert r.read() == pano.read_bytes()[4:10]
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ImageIOError, match=r"no index\.html"):
        serve_report(tmp_path)
