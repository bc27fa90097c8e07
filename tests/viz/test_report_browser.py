"""``pano360 report`` pages in a real browser: headless Chromium (Debian's), driven by Playwright.

Every position is checked against the camera the page reports: a point at (lon, lat) must land on
the pixel a pinhole camera at the viewer's (yaw, pitch, fov) puts it on, computed here with
pano360.geometry. Screenshots go to out/report-tests/ for a person to look at.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pano360.geometry import (
    box_outline,
    erp_to_perspective,
    lonlat_to_xyz,
    rotation_matrix,
    view_pixel_coords,
)
from pano360.io import VideoWriter, read_image, write_image
from pano360.saliency import fixation_map
from pano360.viz.report import ReportBoxes, read_boxes_json, serve_report, write_report

#: Set (to 1) where a missing browser must fail these tests instead of skipping them (CI).
REQUIRE_BROWSER = "PANO360_REQUIRE_BROWSER"
# Debian's chromium, headless, with nothing that talks to the network; WebGL runs on SwiftShader.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_MISSING = "chromium (apt-get install chromium)" if CHROMIUM is None else None
if _MISSING is None and importlib.util.find_spec("playwright") is None:
    _MISSING = "playwright (pip install playwright; it drives the system's chromium)"
if _MISSING is not None:
    if os.environ.get(REQUIRE_BROWSER) == "1":
        raise RuntimeError(f"browser tests need {_MISSING}, and {REQUIRE_BROWSER}=1 requires them")
    pytest.skip(f"browser tests skipped: no {_MISSING}", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "panorama.jpg"
TRUTH = json.loads((ROOT / "examples" / "panorama.json").read_text())
SHOTS = ROOT / "out" / "report-tests"
DOCS_FIGURE = ROOT / "docs" / "figures" / "report.jpg"
VIEWPORT = {"width": 760, "height": 460}  # small: SwiftShader renders on the CPU
DOCS_VIEWPORT = {"width": 900, "height": 540}

FACES = {p["name"]: p["face"] for p in TRUTH["placements"] if "face" in p}
# The pasted photos of objects, as detections: the view of the camera that pasted each one.
OBJECT_LABELS = {"rocket": "rocket", "coffee": "cup", "chelsea": "cat"}
# Points that pin the convention: the seam from both sides, near and at the poles.
CONVENTION_POINTS = [
    (0, 0), (30, 10), (179.9, 20), (-180, -20), (90, 85), (-135, -85), (45, 90), (-60, -90),
]  # fmt: skip
SALIENCY_CENTRE = (-40.0, -45.0)  # degrees; a blob on the ground, south-west


def _objects() -> list[dict]:
    items = []
    for p in TRUTH["placements"]:
        if p["name"] not in OBJECT_LABELS:
            continue
        cam, (h, w) = p["camera"], p["photo_hw"]
        fov_y = math.degrees(2 * math.atan(math.tan(math.radians(cam["fov"]) / 2) * h / w))
        rbfov = [cam["yaw"], cam["pitch"], cam["fov"], fov_y, cam["roll"]]
        items.append({"rbfov": rbfov, "score": 0.87, "label": OBJECT_LABELS[p["name"]]})
    return items


# --- helpers ------------------------------------------------------------------------------------


def shot(page, name: str | None = None) -> np.ndarray:
    """(h, w, 3) uint8 screenshot of the viewer (saved under out/report-tests/ if named)."""
    png = page.screenshot(clip=page.locator("#viewer").bounding_box())
    if name:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / f"{name}.png").write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def only(page, *layers: str) -> None:
    """Show these layers and hide the others (resolves once the page has drawn them)."""
    page.evaluate(
        """(on) => Promise.all(pano360Report.layerNames().map(
            (n) => pano360Report.setLayer(n, on.includes(n))))""",
        list(layers),
    )


def turn(page, lon: float, lat: float, vfov: float) -> dict:
    page.evaluate("([a, b, f]) => pano360Report.turnTo(a, b, f)", [lon, lat, vfov])
    return page.evaluate("() => pano360Report.camera()")


def project(lonlat_deg, cam: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Screen pixels (u, v) of (K, 2) (lon, lat) in degrees for the viewer's camera, and which
    are in front and on the screen (pinhole, pixel centres at integers)."""
    pts = torch.as_tensor(lonlat_deg, dtype=torch.float64).reshape(-1, 2).deg2rad()
    rot = rotation_matrix(yaw=cam["yaw"], pitch=cam["pitch"], dtype=torch.float64)
    rays = lonlat_to_xyz(pts) @ rot  # world -> camera: R^T x, as rows
    tan = torch.tensor([math.tan(math.radians(cam["hFov"]) / 2)], dtype=torch.float64)
    uv, inside = view_pixel_coords(rays[None], (cam["height"], cam["width"]), tan)
    return uv[0], inside[0]


def changed(a: np.ndarray, b: np.ndarray, threshold: int = 40) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).max(-1) > threshold


def pixels(mask: np.ndarray) -> torch.Tensor:
    ys, xs = np.nonzero(mask)
    return torch.tensor(np.stack([xs, ys], -1), dtype=torch.float64)


def outline_points(rbfov_deg, cam: dict) -> torch.Tensor:
    """Dense points along boxes' true outlines, projected; only those on the screen."""
    boxes = torch.tensor(rbfov_deg, dtype=torch.float64).reshape(-1, 5).deg2rad()
    pts = box_outline(boxes, 300).rad2deg().reshape(-1, 2)
    uv, inside = project(pts, cam)
    return uv[inside]


def run_page(browser, url: str):
    """A page at ``url`` with its console, errors and requests recorded, once it is ready."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.log = {"console": [], "errors": [], "requests": []}
    page.on("console", lambda m: page.log["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: page.log["errors"].append(str(e)))
    page.on("request", lambda r: page.log["requests"].append(r.url))
    page.goto(url)
    return context, page


def assert_clean(page, allowed_origin: str) -> None:
    errors = [t for kind, t in page.log["console"] if kind == "error"] + page.log["errors"]
    assert errors == []
    outside = [
        u for u in page.log["requests"] if not u.startswith((allowed_origin, "data:", "blob:"))
    ]
    assert outside == []  # nothing from the network


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session: Playwright driving the system's chromium (it
    downloads no browser)."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


# --- the example's report -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_report(tmp_path_factory):
    """Report of the example: its true faces (in the JSON format of `pano360 faces`), its objects
    as detections, a saliency blob and the convention points as fixations."""
    d = tmp_path_factory.mktemp("report")
    faces = [{"rbfov": f["rbfov"], "score": 1.0} for f in FACES.values()]
    (d / "faces.json").write_text(json.dumps({"faces": faces}))
    (d / "detections.json").write_text(json.dumps({"detections": _objects()}))
    centre = torch.tensor([SALIENCY_CENTRE], dtype=torch.float64).deg2rad()
    saliency = fixation_map(centre, (256, 512), sigma_deg=3.0)
    fixations = torch.tensor(CONVENTION_POINTS, dtype=torch.float64).deg2rad()
    write_report(
        d / "report",
        EXAMPLE,
        faces=read_boxes_json(d / "faces.json", "faces"),
        detections=read_boxes_json(d / "detections.json", "detections"),
        saliency=saliency,
        fixations=fixations,
    )
    return d / "report"


@pytest.fixture(scope="module")
def page(browser, example_report):
    context, page = run_page(browser, (example_report / "index.html").as_uri())
    page.evaluate("() => pano360Report.ready")
    page.evaluate("() => pano360Report.chrome(false)")
    yield page
    context.close()


@pytest.fixture(scope="module")
def example_erp():
    return read_image(EXAMPLE).double()


def test_page_loads_from_file_without_errors_or_network(page):
    assert_clean(page, "file://")
    layers = page.evaluate("() => pano360Report.layerNames()")
    assert sorted(layers) == ["blur", "detections", "faces", "fixations", "saliency"]
    assert page.locator("#list li").count() == len(FACES) + len(OBJECT_LABELS)
    assert page.locator("#error").is_hidden()


@pytest.mark.parametrize("name", sorted(FACES))
def test_face_outline_lands_where_the_camera_puts_it_with_the_face_inside(page, example_erp, name):
    face = FACES[name]
    cam = turn(page, face["lon"], face["lat"], 40)
    only(page, "faces")
    on = shot(page, f"face_{name}")
    only(page)
    off = shot(page)
    assert on.shape == (cam["height"], cam["width"], 3)
    drawn = pixels(changed(on, off))
    expected = outline_points([f["rbfov"] for f in FACES.values()], cam)
    # Every drawn pixel is on a true outline (the stroke is 3 px wide)...
    assert len(drawn) > 100
    near = torch.cdist(drawn, expected).amin(1)
    assert (near <= 3.0).double().mean() > 0.99
    # ...and this face's outline is drawn all around.
    mine = outline_points([face["rbfov"]], cam)
    margin = (mine[:, 0] > 3) & (mine[:, 0] < cam["width"] - 4)
    margin &= (mine[:, 1] > 3) & (mine[:, 1] < cam["height"] - 4)
    covered = torch.cdist(mine[margin], drawn).amin(1)
    assert (covered <= 2.5).double().mean() > 0.98
    # The face (its true centre) is inside the drawn outline: outline pixels on all four sides.
    uv, _ = project([[face["lon"], face["lat"]]], cam)
    u, v = (round(float(c)) for c in uv[0])
    mask = changed(on, off)
    assert mask[v, :u].any() and mask[v, u + 1 :].any()
    assert mask[:v, u].any() and mask[v + 1 :, u].any()
    # What the viewer shows there is the panorama as pano360 renders it for that camera.
    render = erp_to_perspective(
        example_erp,
        math.radians(cam["hFov"]),
        (cam["height"], cam["width"]),
        yaw=cam["yaw"],
        pitch=cam["pitch"],
    )[0]
    seen = torch.from_numpy(off.astype(np.float64) / 255).permute(2, 0, 1)
    box = mine[margin]
    x0, x1 = int(box[:, 0].min()), int(box[:, 0].max())
    y0, y1 = int(box[:, 1].min()), int(box[:, 1].max())
    a = seen[:, y0:y1, x0:x1].mean(0).flatten()
    b = render[:, y0:y1, x0:x1].mean(0).flatten()
    assert float(torch.corrcoef(torch.stack((a, b)))[0, 1]) > 0.95


def test_convention_content_matches_pano360_views_and_not_a_shifted_one(page, example_erp):
    """The test above can fail: a view turned by 2 degrees, or mirrored, matches worse."""
    cam = turn(page, 55.0, 35.0, 40)
    only(page)
    seen = torch.from_numpy(shot(page).astype(np.float64) / 255).permute(2, 0, 1).mean(0)
    size = (cam["height"], cam["width"])

    def corr(yaw, flip=False):
        fov = math.radians(cam["hFov"])
        r = erp_to_perspective(example_erp, fov, size, yaw=yaw, pitch=cam["pitch"])[0].mean(0)
        r = r.flip(-1) if flip else r
        return float(torch.corrcoef(torch.stack((seen.flatten(), r.flatten())))[0, 1])

    right = corr(cam["yaw"])
    assert right > 0.97
    assert corr(cam["yaw"] + math.radians(2)) < right - 0.1
    assert corr(cam["yaw"], flip=True) < right - 0.3


def _blob_centre(mask: np.ndarray, near: tuple[float, float], radius: float = 15) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    keep = (xs - near[0]) ** 2 + (ys - near[1]) ** 2 <= radius**2
    assert keep.sum() > 20
    return np.array([xs[keep].mean(), ys[keep].mean()])


def points_drawn(page, name: str | None = None) -> np.ndarray:
    """Where the fixation points are on screen: pixels that change when their colour does (red
    then blue discs), whatever the panorama behind them."""
    only(page, "fixations")
    page.evaluate("() => pano360Report.fixationColours([1, 0, 0], [1, 0, 0])")
    red = shot(page, name)
    page.evaluate("() => pano360Report.fixationColours([0, 0, 1], [0, 0, 1])")
    blue = shot(page)
    page.evaluate("() => pano360Report.fixationColours([0.2, 1, 0.2], [0, 0, 0])")
    return changed(red, blue, 200)


@pytest.mark.parametrize(("lon", "lat"), CONVENTION_POINTS)
def test_convention_point_at_lon_lat_is_at_the_centre_when_turned_to_it(page, lon, lat):
    cam = turn(page, lon, lat, 30)
    centre = ((cam["width"] - 1) / 2, (cam["height"] - 1) / 2)
    found = _blob_centre(points_drawn(page), centre)
    assert np.abs(found - centre).max() <= 0.5
    if abs(lat) >= 90:
        return
    # Turned 8 degrees left and 4 down, the point is on the pixel the camera puts it on; away
    # from the poles, that is right of and above the centre (yaw right, pitch up).
    cam = turn(page, lon - 8, lat - 4, 30)
    (expected, inside) = project([[lon, lat]], cam)
    assert bool(inside[0])
    ex = expected[0].numpy()
    if abs(lat) < 60:
        assert ex[0] > centre[0] + 50 and ex[1] < centre[1] - 50
    found = _blob_centre(points_drawn(page, f"point_{lon}_{lat}"), ex)
    assert np.abs(found - ex).max() <= 0.5


def test_saliency_overlay_is_on_the_sphere_where_its_map_says(page):
    lon, lat = SALIENCY_CENTRE
    cam = turn(page, lon + 6, lat + 4, 40)
    only(page, "saliency")
    on = shot(page, "saliency")
    only(page)
    off = shot(page)
    (expected, _) = project([[lon, lat]], cam)
    ex = expected[0].numpy()
    found = _blob_centre(changed(on, off, 60), ex, radius=40)
    assert np.abs(found - ex).max() <= 1.5
    # Opacity follows the slider.
    only(page, "saliency")
    page.locator("#layers input[type=range]").fill("0")
    page.evaluate("() => pano360Report.rendered()")
    assert not changed(shot(page), off, 10).any()
    page.locator("#layers input[type=range]").fill("1")


def test_layers_toggle_change_the_pixels(page):
    face = FACES["grace_hopper_35n"]
    cam = turn(page, face["lon"], face["lat"], 40)
    only(page)
    base = shot(page)
    region = outline_points([face["rbfov"]], cam)
    x0, x1 = float(region[:, 0].min()), float(region[:, 0].max())
    y0, y1 = float(region[:, 1].min()), float(region[:, 1].max())
    only(page, "blur")
    blurred = shot(page, "blur_faces")
    diff = changed(blurred, base, 20)
    ys, xs = np.nonzero(diff)
    assert len(xs) > 0.2 * (x1 - x0) * (y1 - y0)  # much of the face changes...
    inside = (xs >= x0 - 2) & (xs <= x1 + 2) & (ys >= y0 - 2) & (ys <= y1 + 2)
    assert inside.all()  # ...and nothing outside its box
    # Detections: the cat (chelsea) is outlined in its own colour.
    cat = next(o for o in _objects() if o["label"] == "cat")
    turn(page, cat["rbfov"][0], cat["rbfov"][1], 70)
    only(page)
    base = shot(page)
    only(page, "detections")
    assert changed(shot(page, "detections"), base).sum() > 200


def test_hover_shows_label_and_score(page):
    cat = next(o for o in _objects() if o["label"] == "cat")
    cam = turn(page, cat["rbfov"][0], cat["rbfov"][1], 70)
    only(page, "detections")
    box = page.locator("#viewer").bounding_box()
    (uv, _) = project([cat["rbfov"][:2]], cam)
    page.mouse.move(box["x"] + float(uv[0, 0]), box["y"] + float(uv[0, 1]))
    tooltip = page.locator(".psv-tooltip")
    tooltip.wait_for(state="visible", timeout=5000)
    assert tooltip.inner_text().strip() == "cat 0.870"
    page.mouse.move(box["x"] + 2, box["y"] + 2)


def test_clicking_a_listed_box_turns_the_view_to_it(page):
    face = FACES["astronaut_seam"]  # across the seam
    index = list(FACES).index("astronaut_seam") + 1
    page.evaluate("() => pano360Report.chrome(true)")
    page.locator(f'#list li[data-id="faces-{index}"]').click()
    page.evaluate("() => pano360Report.turning")
    cam = page.evaluate("() => pano360Report.camera()")
    page.evaluate("() => pano360Report.chrome(false)")
    dyaw = (cam["yaw"] - math.radians(face["lon"]) + math.pi) % (2 * math.pi) - math.pi
    assert abs(dyaw) < 1e-3 and abs(cam["pitch"] - math.radians(face["lat"])) < 1e-3
    assert cam["vFov"] < 60  # zoomed in on it


def test_screenshot_for_the_docs(page):
    """The page as a person sees it (docs/report.md); PANO360_UPDATE_DOCS=1 updates the docs."""
    page.set_viewport_size(DOCS_VIEWPORT)
    page.evaluate("() => pano360Report.chrome(true)")
    only(page, "faces", "detections", "saliency", "fixations")
    turn(page, -35, -20, 100)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "report.png"))
    if os.environ.get("PANO360_UPDATE_DOCS") == "1":
        page.screenshot(path=str(DOCS_FIGURE), type="jpeg", quality=85)
    checked = page.locator("#layers input[type=checkbox]:checked").count()
    page.evaluate("() => pano360Report.chrome(false)")
    page.set_viewport_size(VIEWPORT)
    assert checked == 4  # the panel shows the layers as they are
    image = np.asarray(Image.open(SHOTS / "report.png").convert("L"), dtype=np.float64)
    assert image.shape == (DOCS_VIEWPORT["height"], DOCS_VIEWPORT["width"]) and image.std() > 20


def test_no_console_errors_after_everything(page):
    assert_clean(page, "file://")


# --- served, and too large to embed -------------------------------------------------------------


@pytest.fixture(scope="module")
def unembedded_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("served")
    small = torch.nn.functional.interpolate(read_image(EXAMPLE), size=(256, 512), mode="area")
    write_image(d / "pano.png", small)
    faces = ReportBoxes.from_boxes(torch.tensor([f["rbfov"] for f in FACES.values()]).deg2rad())
    write_report(d / "report", d / "pano.png", faces=faces, embed_limit_bytes=0)
    return d / "report"


def test_served_report_reads_its_files_over_http(browser, unembedded_report):
    assert not (unembedded_report / "media.js").exists()
    server = serve_report(unembedded_report)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        context, page = run_page(browser, origin + "index.html")
        page.evaluate("() => pano360Report.ready")
        page.evaluate("() => pano360Report.chrome(false)")
        face = FACES["astronaut_front"]
        cam = turn(page, face["lon"], face["lat"], 40)
        only(page, "faces")
        on = shot(page, "served")
        only(page)
        drawn = pixels(changed(on, shot(page)))
        near = torch.cdist(drawn, outline_points([face["rbfov"]], cam)).amin(1)
        assert len(drawn) > 100 and (near <= 3.0).double().mean() > 0.99
        assert any(u.endswith("/media/pano.png") for u in page.log["requests"])
        assert_clean(page, origin)
        context.close()
    finally:
        server.shutdown()
        server.server_close()


def test_unembedded_report_from_file_says_to_serve_it(browser, unembedded_report):
    context, page = run_page(browser, (unembedded_report / "index.html").as_uri())
    with pytest.raises(Exception, match="too large to embed"):
        page.evaluate("() => pano360Report.ready")
    assert "--serve" in page.locator("#error").inner_text()
    context.close()


# --- a video --------------------------------------------------------------------------------------

VIDEO_FPS = 4
VIDEO_FRAMES = 8


def video_lon(k: int) -> float:
    return -150.0 + 40.0 * k


@pytest.fixture(scope="module")
def video_page(browser, tmp_path_factory):
    """A grey 360° video with one saliency map per frame, each a blob at another longitude."""
    d = tmp_path_factory.mktemp("video")
    with VideoWriter(d / "tour.mp4", fps=VIDEO_FPS) as out:
        for _ in range(VIDEO_FRAMES):
            out.write(torch.full((1, 3, 128, 256), 0.4))
    centres = torch.tensor([[video_lon(k), 0.0] for k in range(VIDEO_FRAMES)]).deg2rad()
    maps = torch.cat([fixation_map(c[None], (64, 128), sigma_deg=6.0) for c in centres])
    times = torch.arange(VIDEO_FRAMES, dtype=torch.float64) / VIDEO_FPS
    write_report(
        d / "report", d / "tour.mp4", saliency=maps, fixations=centres, fixation_times=times
    )
    context, page = run_page(browser, (d / "report" / "index.html").as_uri())
    page.evaluate("() => pano360Report.ready")
    page.evaluate("() => pano360Report.chrome(false)")
    yield page
    context.close()


@pytest.mark.parametrize("k", [0, 3, 6])
def test_video_saliency_follows_the_frame_on_screen(video_page, k):
    page = video_page
    page.evaluate("(t) => pano360Report.seek(t)", (k + 0.5) / VIDEO_FPS)
    assert page.evaluate("() => pano360Report.frame()") == k
    only(page, "saliency")
    turn(page, video_lon(k), 0, 40)
    on = shot(page, f"video_frame_{k}")
    turn(page, video_lon(k + 1), 0, 40)
    next_on = shot(page)
    only(page)
    next_off = shot(page)
    turn(page, video_lon(k), 0, 40)
    off = shot(page)
    h, w = on.shape[:2]
    centre = (slice(h // 2 - 3, h // 2 + 4), slice(w // 2 - 3, w // 2 + 4))
    assert changed(on, off, 60)[centre].all()  # this frame's blob is in front
    assert not changed(next_on, next_off, 10)[centre].any()  # the next frame's is not shown
    assert_clean(page, "file://")


def test_video_plays_and_the_saliency_follows_while_playing(video_page):
    page = video_page
    page.evaluate("() => pano360Report.seek(0)")
    assert page.evaluate("() => pano360Report.frame()") == 0
    page.evaluate("() => pano360Report.viewer.getPlugin('video').play()")
    page.wait_for_function("() => pano360Report.frame() >= 2", timeout=15000)
    page.evaluate("() => pano360Report.viewer.getPlugin('video').pause()")
    assert_clean(page, "file://")
