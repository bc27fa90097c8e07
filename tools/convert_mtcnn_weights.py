"""Convert facenet-pytorch 2.6.0's MTCNN weights to pano360's safetensors files.

Usage (the wheel comes from ``pip download facenet-pytorch==2.6.0 --no-deps``)::

    .venv/bin/python tools/convert_mtcnn_weights.py facenet_pytorch-2.6.0-py3-none-any.whl

Reads ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` out of the wheel (a zip file; nothing is
installed or imported from it) with ``torch.load(weights_only=True)``, checks each file against
the wheel's RECORD and against the sha256 pinned below, remaps it with
:func:`pano360.models.mtcnn.remap_facenet_mtcnn_state_dict`, checks that our module computes what
facenet-pytorch's forward computes on random inputs, and writes
``src/pano360/models/weights/mtcnn_{net}.safetensors`` plus ``LICENSE-facenet-pytorch.md`` (the
wheel's MIT licence text and the provenance). It prints the sha256 of each output file, which
``pano360/models/mtcnn.py`` pins.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from pano360.models.mtcnn import ONet, PNet, RNet, remap_facenet_mtcnn_state_dict

NETS = {"pnet": PNet, "rnet": RNet, "onet": ONet}
# sha256 of the source files in facenet-pytorch 2.6.0 (also checked against the wheel's RECORD).
SOURCE_SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
OUT_DIR = Path(__file__).resolve().parents[1] / "src" / "pano360" / "models" / "weights"
LICENCE_MEMBER = "facenet_pytorch-2.6.0.dist-info/LICENSE.md"
RECORD_MEMBER = "facenet_pytorch-2.6.0.dist-info/RECORD"


def facenet_forward(net: str, sd: dict[str, torch.Tensor], x: torch.Tensor) -> list[torch.Tensor]:
    """facenet-pytorch's forward, written out from its source (normalised input, logits out)."""

    def conv(y, name, pool=None):
        y = F.prelu(
            F.conv2d(y, sd[f"conv{name}.weight"], sd[f"conv{name}.bias"]), sd[f"prelu{name}.weight"]
        )
        return F.max_pool2d(y, *pool, ceil_mode=True) if pool else y

    def dense(y, name, prelu=None):
        y = F.linear(y, sd[f"{name}.weight"], sd[f"{name}.bias"])
        return F.prelu(y, sd[f"{prelu}.weight"]) if prelu else y

    if net == "pnet":
        y = conv(conv(conv(x, 1, (2, 2)), 2), 3)
        logits = F.conv2d(y, sd["conv4_1.weight"], sd["conv4_1.bias"])
        return [logits, F.conv2d(y, sd["conv4_2.weight"], sd["conv4_2.bias"])]
    if net == "rnet":
        y = conv(conv(conv(x, 1, (3, 2)), 2, (3, 2)), 3)
        y = dense(y.permute(0, 3, 2, 1).flatten(1), "dense4", "prelu4")
        return [dense(y, "dense5_1"), dense(y, "dense5_2")]
    y = conv(conv(conv(conv(x, 1, (3, 2)), 2, (3, 2)), 3, (2, 2)), 4)
    y = dense(y.permute(0, 3, 2, 1).flatten(1), "dense5", "prelu5")
    points = dense(y, "dense6_3")
    return [
        dense(y, "dense6_1"),
        dense(y, "dense6_2"),
        torch.stack((points[:, :5], points[:, 5:]), -1),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="facenet_pytorch-2.6.0-py3-none-any.whl")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    wheel_sha = hashlib.sha256(args.wheel.read_bytes()).hexdigest()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with zipfile.ZipFile(args.wheel) as wheel:
        record = wheel.read(RECORD_MEMBER).decode()
        licence = wheel.read(LICENCE_MEMBER).decode().strip()
        for net, cls in NETS.items():
            member = f"facenet_pytorch/data/{net}.pt"
            raw = wheel.read(member)
            digest = hashlib.sha256(raw).digest()
            record_hash = "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if f"{member},{record_hash}," not in record:
                sys.exit(f"{member}: hash not in the wheel's RECORD; not the published file")
            if digest.hex() != SOURCE_SHA256[net]:
                sys.exit(f"{member}: sha256 {digest.hex()}, expected {SOURCE_SHA256[net]}")
            source = torch.load(io.BytesIO(raw), weights_only=True)
            converted = remap_facenet_mtcnn_state_dict(net, source)
            model = cls().eval()
            model.load_state_dict(converted, strict=True)
            hw = {"pnet": (29, 37), "rnet": (24, 24), "onet": (48, 48)}[net]
            x = torch.rand(4, 3, *hw, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                ours = [t for t in model(x) if t is not None]
                theirs = facenet_forward(net, source, (x * 255 - 127.5) * 0.0078125)
            for a, b in zip(ours, theirs, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
            out = args.out_dir / f"mtcnn_{net}.safetensors"
            provenance = {
                "source": f"facenet-pytorch 2.6.0 wheel, {member}",
                "source_sha256": digest.hex(),
                "licence": "MIT (see LICENSE-facenet-pytorch.md)",
                "converted_by": "tools/convert_mtcnn_weights.py",
            }
            # One metadata key: safetensors writes several in random order (not reproducible).
            metadata = {"provenance": json.dumps(provenance, sort_keys=True)}
            save_file(converted, str(out), metadata=metadata)
            out.chmod(0o644)  # safetensors creates files readable by their owner only
            out_sha = hashlib.sha256(out.read_bytes()).hexdigest()
            rows.append(f"| `{out.name}` | `{member}` | `{digest.hex()}` | `{out_sha}` |")
            print(f"{net}: {out} sha256 {out_sha}")
    notice = LICENCE_TEMPLATE.format(
        licence=licence, wheel=args.wheel.name, wheel_sha=wheel_sha, rows="\n".join(rows)
    )
    (args.out_dir / "LICENSE-facenet-pytorch.md").write_text(notice)
    return 0


LICENCE_TEMPLATE = """\
# MTCNN weights: licence and provenance

The files `mtcnn_pnet.safetensors`, `mtcnn_rnet.safetensors` and `mtcnn_onet.safetensors` in this
folder are the MTCNN P-Net, R-Net and O-Net weights distributed in the facenet-pytorch 2.6.0
wheel on PyPI, converted to safetensors. facenet-pytorch is distributed under the MIT licence
below. facenet-pytorch ported them from David Sandberg's TensorFlow facenet repository
(davidsandberg/facenet), which took them from the Caffe models of Zhang et al.'s MTCNN.

## Provenance

- Package: facenet-pytorch 2.6.0 from PyPI, obtained with
  `pip download facenet-pytorch==2.6.0 --no-deps`: `{wheel}`,
  sha256 `{wheel_sha}`.
- Conversion command: `.venv/bin/python tools/convert_mtcnn_weights.py {wheel}`.
  The script reads each `.pt` file from the wheel with `torch.load(..., weights_only=True)`,
  checks it against the wheel's RECORD, renames the keys, permutes the first dense layer of
  R-Net and O-Net from facenet-pytorch's (W, H, C) flattening order to (C, H, W), interleaves
  O-Net's landmark rows as (x, y) pairs, checks that the converted modules compute
  facenet-pytorch's outputs, and writes safetensors.
  facenet-pytorch's code is neither used nor a dependency.

| file | source in the wheel | sha256 of the source | sha256 of the file |
|---|---|---|---|
{rows}

## Licence of facenet-pytorch (MIT)

```
{licence}
```
"""


if __name__ == "__main__":
    raise SystemExit(main())
