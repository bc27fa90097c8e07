"""Make the images shipped in src/pano360/data/assets/ for pano360.data.synthetic, and LICENSES.md.

Every asset is described once, in ``pano360.data.synthetic.SCENE_ASSETS`` (source, crop, scale,
face box, licence); this script cuts the crops out of the public-domain and CC0 sample images
that scikit-image and matplotlib ship, resizes them, writes them as JPEG and writes the licence
table next to them. Run from the repository root (needs the ``assets`` extra)::

    .venv/bin/python tools/make_synthetic_assets.py

The output is deterministic for given library versions.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

from pano360.data.synthetic import SCENE_ASSETS, SceneAsset

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "pano360" / "data" / "assets"
JPEG_QUALITY = 90
MAX_TOTAL_BYTES = 400_000


def load_source(asset: SceneAsset) -> Image.Image:
    """The source photo of an asset, as stored by the package that ships it."""
    if asset.name == "grace_hopper":
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            return Image.open(f).convert("RGB")
    array = getattr(skimage.data, asset.name)()
    return Image.fromarray(np.ascontiguousarray(array))


def make(asset: SceneAsset) -> Path:
    image = load_source(asset)
    x0, y0, x1, y1 = asset.source_crop_xyxy
    if not (0 <= x0 < x1 <= image.width and 0 <= y0 < y1 <= image.height):
        raise ValueError(f"{asset.name}: crop {asset.source_crop_xyxy} outside {image.size}")
    h, w = asset.size_hw
    # The table's scale must give whole pixels, so the face box maps exactly.
    if (w, h) != ((x1 - x0) * asset.scale, (y1 - y0) * asset.scale):
        raise ValueError(f"{asset.name}: crop times scale is not a whole number of pixels")
    crop = image.crop((x0, y0, x1, y1))
    if (w, h) != crop.size:
        crop = crop.resize((w, h), Image.Resampling.LANCZOS)
    if asset.kind == "texture":
        crop = crop.convert("L")
    path = OUT / asset.file
    crop.save(path, quality=JPEG_QUALITY, optimize=True)
    return path


LICENCE_HEADER = """\
# Licences of the synthetic-scene assets

These images are pasted onto the sphere by `pano360.data.synthetic` (see
docs/synthetic-scenes.md). Each is a crop of a public-domain or CC0 photo that scikit-image or
matplotlib ships, resized, made by `tools/make_synthetic_assets.py` from the table
`pano360.data.synthetic.SCENE_ASSETS`. The crops themselves are released under CC0.

| file | kind | source | origin | licence | crop of the source (x0, y0, x1, y1) | scale |
|---|---|---|---|---|---|---|
"""

LICENCE_FOOTER = """
Statements of the licences, as given by the shipping packages:

- astronaut (Eileen Collins, NASA Great Images database): "No known copyright restrictions,
  released into the public domain" (scikit-image, `skimage.data.astronaut`).
- Grace Hopper: official US Navy portrait, a work of the US federal government; the file's JPEG
  comment reads "File source: http://commons.wikimedia.org/wiki/File:Grace_Hopper.jpg"; added to
  matplotlib as a "public domain image" (matplotlib pull request #1599).
- coffee: "No copyright restrictions. CC0 by the photographer (Rachel Michetti)."
- chelsea: "No copyright restrictions. CC0 by the photographer (Stefan van der Walt)."
- rocket: "captured by SpaceX and released in the public domain".
- grass: "Grass 01" by linolafett on DeviantArt, "licensed under the Creative Commons CC0 License".

The face boxes of the two portraits (`SceneAsset.source_face_xyxy`) were measured by eye, as in
examples/make_panorama.py: hairline (astronaut) or cap brim (Grace Hopper) to chin, cheek to cheek.
"""


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows, total = [], 0
    for asset in SCENE_ASSETS.values():
        path = make(asset)
        size = path.stat().st_size
        total += size
        face = f", face box {tuple(asset.face_xyxy)}" if asset.face_xyxy else ""
        print(f"{path.name:18s} {asset.size_hw[1]}x{asset.size_hw[0]}  {size / 1e3:5.1f} kB{face}")
        rows.append(
            f"| {asset.file} | {asset.kind} | `{asset.source}` | {asset.origin} | {asset.licence} "
            f"| {asset.source_crop_xyxy} | {asset.scale} |"
        )
    (OUT / "LICENSES.md").write_text(LICENCE_HEADER + "\n".join(rows) + "\n" + LICENCE_FOOTER)
    if total > MAX_TOTAL_BYTES:
        raise RuntimeError(f"assets total {total} bytes, more than {MAX_TOTAL_BYTES}")
    print(f"total {total / 1e3:.0f} kB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
