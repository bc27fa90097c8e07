"""MTCNN's three networks (P-Net, R-Net, O-Net) in plain torch, with converted pretrained weights.

MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", 2016) finds faces in three stages: the fully convolutional P-Net scans an image
pyramid for 12 x 12 face windows, R-Net re-scores 24 x 24 crops of the candidates and O-Net
re-scores 48 x 48 crops and adds five landmarks. The detection pipeline that drives them is in
:mod:`pano360.detection`.

The pretrained weights are those shipped in facenet-pytorch 2.6.0 (MIT licence; see
``weights/LICENSE-facenet-pytorch.md``), converted once to safetensors by
``tools/convert_mtcnn_weights.py`` through :func:`remap_facenet_mtcnn_state_dict`. facenet-pytorch
is never imported.

Input contract (all three networks):
    RGB images, float in [0, 1], ``(B, 3, H, W)`` with rows top to bottom: the natural
    orientation, *not* transposed. Each network normalises internally with
    :func:`mtcnn_normalize`, ``(x * 255 - 127.5) / 128``. The original Caffe networks were trained
    on transposed (column-major, MATLAB) images and the TensorFlow port transposed its input to
    match; facenet-pytorch's conversion transposed the kernels again (TF ``(kh, kw, in, out)``
    -> torch ``(out, in, kw, kh)``), so these weights read upright images. Our pipeline checks it:
    the landmarks of upright faces come out with the eyes above the nose and left of each other
    in image order.

Output contract:
    ``face_logits``: logits of (background, face) on dim 1; the face probability is
    ``softmax(face_logits, 1)[:, 1]`` (:attr:`MTCNNOutput.face_prob`).
    ``box_deltas``: (dx1, dy1, dx2, dy2), offsets of the left, top, right and bottom edges of the
    input window in units of its width (x) and height (y); x to the right, y down.
    ``landmarks`` (O-Net): (N, 5, 2) points (x, y) as fractions of the crop's width and height,
    (0, 0) at the crop's top-left corner: the eye on the image's left, the eye on the image's
    right, the nose, the mouth corner on the image's left, the mouth corner on the image's right.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import nn

from .._core import (
    InputContract,
    ShapeError,
    ValueRangeError,
    WeightsError,
    WeightsSpec,
    check_choice,
    create_model,
    register_model,
)
from .._core.registry import register_task

__all__ = [
    "MTCNN_ONET_WEIGHTS",
    "MTCNN_PNET_WEIGHTS",
    "MTCNN_RNET_WEIGHTS",
    "MTCNNOutput",
    "ONet",
    "PNet",
    "RNet",
    "mtcnn_normalize",
    "mtcnn_pnet_stack",
    "remap_facenet_mtcnn_state_dict",
]


def mtcnn_normalize(x: torch.Tensor) -> torch.Tensor:
    """MTCNN's input normalisation: ``(x * 255 - 127.5) * 0.0078125`` for x in [0, 1]."""
    return (x * 255.0 - 127.5) * 0.0078125


def _features_input(x: torch.Tensor) -> torch.Tensor:
    # Channels-last: oneDNN's convolutions and torch's CPU max pooling run 2-3x faster on
    # MTCNN's narrow layers in this layout; values are unchanged.
    return mtcnn_normalize(x).contiguous(memory_format=torch.channels_last)


class MTCNNOutput(NamedTuple):
    """Outputs of an MTCNN network (see the module docstring for the exact contract).

    Attributes:
        face_logits: (B, 2, h, w) for P-Net, (N, 2) for R-Net and O-Net; (background, face).
        box_deltas: (B, 4, h, w) or (N, 4); (dx1, dy1, dx2, dy2) in window widths/heights.
        landmarks: (N, 5, 2) (x, y) fractions of the crop for O-Net, None otherwise.
    """

    face_logits: torch.Tensor
    box_deltas: torch.Tensor
    landmarks: torch.Tensor | None = None

    @property
    def face_prob(self) -> torch.Tensor:
        """Face probability, (B, h, w) or (N,): ``softmax(face_logits, dim=1)[:, 1]``."""
        return torch.softmax(self.face_logits, dim=1)[:, 1]


def _check_input(x: torch.Tensor, name: str, hw: tuple[int, int] | None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise ShapeError(f"{name} input must be (B, 3, H, W), got {tuple(getattr(x, 'shape', ()))}")
    h, w = x.shape[-2:]
    if hw is None and (h < 12 or w < 12):
        raise ShapeError(f"{name} input must be at least 12 x 12, got (H, W) = {(h, w)}")
    if hw is not None and (h, w) != hw:
        raise ShapeError(f"{name} input must be (B, 3, {hw[0]}, {hw[1]}), got {tuple(x.shape)}")


class PNet(nn.Module):
    """MTCNN's proposal network: fully convolutional, one 12 x 12 window per output cell.

    Layers (``features`` is a plain stack, so each 3 x 3 convolution can be swapped for a
    spherical one and distilled layer by layer)::

        features: conv1 3x3 (3->10), PReLU, pool1 MaxPool 2x2 stride 2 ceil_mode=True,
                  conv2 3x3 (10->16), PReLU, conv3 3x3 (16->32), PReLU   (no padding anywhere)
        face: 1x1 conv (32->2) logits      box: 1x1 conv (32->4) deltas

    Output cell (i, j) sees input rows 2i .. 2i+11 and columns 2j .. 2j+11 (stride 2, window 12).
    ``pool1`` uses ceil_mode: on an odd-sized map it keeps a last, partial window, so on an
    input of odd height (width) the last row (column) of cells reaches one pixel past the image.

    Args (forward):
        x: (B, 3, H, W) RGB in [0, 1], H, W >= 12.

    Returns:
        :class:`MTCNNOutput` with ``face_logits`` (B, 2, h, w) and ``box_deltas`` (B, 4, h, w),
        h = ceil((H - 2) / 2) - 4, w likewise; ``landmarks`` None.

    Raises:
        ShapeError: ``x`` is not (B, 3, H, W) with H, W >= 12.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 10, 3),
                prelu1=nn.PReLU(10),
                pool1=nn.MaxPool2d(2, 2, ceil_mode=True),
                conv2=nn.Conv2d(10, 16, 3),
                prelu2=nn.PReLU(16),
                conv3=nn.Conv2d(16, 32, 3),
                prelu3=nn.PReLU(32),
            )
        )
        self.face = nn.Conv2d(32, 2, 1)
        self.box = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> MTCNNOutput:
        _check_input(x, "PNet", None)
        f = self.features(_features_input(x))
        return MTCNNOutput(self.face(f), self.box(f))


class RNet(nn.Module):
    """MTCNN's refinement network: re-scores 24 x 24 crops and refines their boxes.

    Layers::

        features: conv1 3x3 (3->28), PReLU, pool1 MaxPool 3x3 stride 2 ceil_mode=True,
                  conv2 3x3 (28->48), PReLU, pool2 MaxPool 3x3 stride 2 ceil_mode=True,
                  conv3 2x2 (48->64), PReLU, flatten (C, H, W order), dense4 (576->128), PReLU
        face: linear (128->2) logits      box: linear (128->4) deltas

    Args (forward):
        x: (N, 3, 24, 24) RGB crops in [0, 1].

    Returns:
        :class:`MTCNNOutput` with ``face_logits`` (N, 2), ``box_deltas`` (N, 4) relative to the
        crop's box; ``landmarks`` None.

    Raises:
        ShapeError: ``x`` is not (N, 3, 24, 24).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 28, 3),
                prelu1=nn.PReLU(28),
                pool1=nn.MaxPool2d(3, 2, ceil_mode=True),
                conv2=nn.Conv2d(28, 48, 3),
                prelu2=nn.PReLU(48),
                pool2=nn.MaxPool2d(3, 2, ceil_mode=True),
                conv3=nn.Conv2d(48, 64, 2),
                prelu3=nn.PReLU(64),
                flatten=nn.Flatten(),
                dense4=nn.Linear(576, 128),
                prelu4=nn.PReLU(128),
            )
        )
        self.face = nn.Linear(128, 2)
        self.box = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> MTCNNOutput:
        _check_input(x, "RNet", (24, 24))
        f = self.features(_features_input(x))
        return MTCNNOutput(self.face(f), self.box(f))


class ONet(nn.Module):
    """MTCNN's output network: re-scores 48 x 48 crops, refines boxes, finds five landmarks.

    Layers::

        features: conv1 3x3 (3->32), PReLU, pool1 MaxPool 3x3 stride 2 ceil_mode=True,
                  conv2 3x3 (32->64), PReLU, pool2 MaxPool 3x3 stride 2 ceil_mode=True,
                  conv3 3x3 (64->64), PReLU, pool3 MaxPool 2x2 stride 2 ceil_mode=True,
                  conv4 2x2 (64->128), PReLU, flatten (C, H, W order), dense5 (1152->256), PReLU
        face: linear (256->2)   box: linear (256->4)   landmarks: linear (256->10), (x, y) pairs

    Args (forward):
        x: (N, 3, 48, 48) RGB crops in [0, 1].

    Returns:
        :class:`MTCNNOutput` with ``face_logits`` (N, 2), ``box_deltas`` (N, 4) and
        ``landmarks`` (N, 5, 2), points (x, y) as fractions of the crop (module docstring).

    Raises:
        ShapeError: ``x`` is not (N, 3, 48, 48).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 32, 3),
                prelu1=nn.PReLU(32),
                pool1=nn.MaxPool2d(3, 2, ceil_mode=True),
                conv2=nn.Conv2d(32, 64, 3),
                prelu2=nn.PReLU(64),
                pool2=nn.MaxPool2d(3, 2, ceil_mode=True),
                conv3=nn.Conv2d(64, 64, 3),
                prelu3=nn.PReLU(64),
                pool3=nn.MaxPool2d(2, 2, ceil_mode=True),
                conv4=nn.Conv2d(64, 128, 2),
                prelu4=nn.PReLU(128),
                flatten=nn.Flatten(),
                dense5=nn.Linear(1152, 256),
                prelu5=nn.PReLU(256),
            )
        )
        self.face = nn.Linear(256, 2)
        self.box = nn.Linear(256, 4)
        self.landmarks = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> MTCNNOutput:
        _check_input(x, "ONet", (48, 48))
        f = self.features(_features_input(x))
        points = self.landmarks(f).unflatten(1, (5, 2))
        return MTCNNOutput(self.face(f), self.box(f), points)


# facenet-pytorch key -> our key, per network. Every source key must appear here.
_FACENET_KEYS = {
    "pnet": {
        **{f"{p}{i}": f"features.{p}{i}" for p in ("conv", "prelu") for i in (1, 2, 3)},
        "conv4_1": "face",
        "conv4_2": "box",
    },
    "rnet": {
        **{f"{p}{i}": f"features.{p}{i}" for p in ("conv", "prelu") for i in (1, 2, 3)},
        "dense4": "features.dense4",
        "prelu4": "features.prelu4",
        "dense5_1": "face",
        "dense5_2": "box",
    },
    "onet": {
        **{f"{p}{i}": f"features.{p}{i}" for p in ("conv", "prelu") for i in (1, 2, 3, 4)},
        "dense5": "features.dense5",
        "prelu5": "features.prelu5",
        "dense6_1": "face",
        "dense6_2": "box",
        "dense6_3": "landmarks",
    },
}
# The first dense layer and the shape (C, H, W) of the map it reads.
_FACENET_DENSE = {"rnet": ("dense4", (64, 3, 3)), "onet": ("dense5", (128, 3, 3))}


def remap_facenet_mtcnn_state_dict(
    net: str, state_dict: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Convert a facenet-pytorch 2.6.0 MTCNN state dict into our modules' layout.

    Three changes, all explicit:

    - keys are renamed (``conv4_1`` -> ``face``, ``dense4`` -> ``features.dense4``, ...);
    - the first dense layer of R-Net / O-Net is permuted from facenet-pytorch's flattening order
      (it flattens ``x.permute(0, 3, 2, 1)``, i.e. (W, H, C)) to ``nn.Flatten``'s (C, H, W);
    - O-Net's landmark rows go from (x1..x5, y1..y5) to interleaved (x1, y1, ..., x5, y5), so
      the output reshapes to (N, 5, 2) points (x, y).

    Args:
        net: "pnet", "rnet" or "onet".
        state_dict: the facenet-pytorch state dict (``torch.load(path, weights_only=True)``).

    Returns:
        A new state dict for :class:`PNet`, :class:`RNet` or :class:`ONet` (tensors contiguous).

    Raises:
        ValueError: unknown ``net``.
        WeightsError: keys missing from or unexpected in ``state_dict``.
    """
    check_choice(net, "net", tuple(_FACENET_KEYS))
    table = _FACENET_KEYS[net]
    expected = {f"{m}.{p}" for m in table for p in ("weight", "bias") if not m.startswith("prelu")}
    expected |= {f"{m}.weight" for m in table if m.startswith("prelu")}
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise WeightsError(
            f"not a facenet-pytorch {net} state dict: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    out = {}
    for key, value in state_dict.items():
        module, param = key.rsplit(".", 1)
        out[f"{table[module]}.{param}"] = value.detach().clone()
    if net in _FACENET_DENSE:
        dense, (c, h, w) = _FACENET_DENSE[net]
        weight = out[f"features.{dense}.weight"]
        # Column index (w, h, c) in facenet-pytorch's order becomes (c, h, w).
        out[f"features.{dense}.weight"] = (
            weight.unflatten(1, (w, h, c)).permute(0, 3, 2, 1).flatten(1)
        )
    if net == "onet":
        order = [i + 5 * k for i in range(5) for k in range(2)]  # x1, y1, x2, y2, ...
        out["landmarks.weight"] = out["landmarks.weight"][order]
        out["landmarks.bias"] = out["landmarks.bias"][order]
    return {k: v.contiguous() for k, v in out.items()}


_MTCNN_LICENCE = "weights/LICENSE-facenet-pytorch.md"
_MTCNN_NORMALISATION = "(x * 255 - 127.5) * 0.0078125, applied inside forward"


def _mtcnn_weights(net: str, sha256: str, hw: tuple[int, int] | None) -> WeightsSpec:
    return WeightsSpec(
        file=f"weights/mtcnn_{net}.safetensors",
        package=__package__,
        sha256=sha256,
        input=InputContract(
            channel_order="RGB",
            value_range=(0.0, 1.0),
            hw=hw,
            min_hw=hw or (12, 12),
            normalisation=_MTCNN_NORMALISATION,
        ),
        licence="MIT",
        licence_file=_MTCNN_LICENCE,
        provenance=(
            f"facenet-pytorch 2.6.0 (PyPI wheel), facenet_pytorch/data/{net}.pt, converted by "
            "tools/convert_mtcnn_weights.py with remap_facenet_mtcnn_state_dict; originally the "
            "MTCNN Caffe models of Zhang et al. via davidsandberg/facenet's TensorFlow port"
        ),
    )


MTCNN_PNET_WEIGHTS = _mtcnn_weights(
    "pnet", "bfffe201171b94b2b33ae0b506cb986e25723e99d755f61b32931d0d27cdb4c6", None
)
MTCNN_RNET_WEIGHTS = _mtcnn_weights(
    "rnet", "e0d0c8e15e8fd6855847dcfc7cf55ed1cc34a02c45f489f44b32637ea5d37eb4", (24, 24)
)
MTCNN_ONET_WEIGHTS = _mtcnn_weights(
    "onet", "3bb7e5649900fcc1383e7e447e9105a911833f644f6fb2170993231361ebeb38", (48, 48)
)


def _check_mtcnn_output(output, inputs: torch.Tensor) -> None:
    """The task contract of the MTCNN networks (module docstring): an :class:`MTCNNOutput`,
    face logits with 2 channels and box deltas with 4, batch first; landmarks (N, 5, 2) or
    None; every value finite."""
    if not isinstance(output, MTCNNOutput):
        raise TypeError(f"an MTCNN network must return an MTCNNOutput, got {type(output).__name__}")
    b = inputs.shape[0]
    logits, deltas, marks = output
    if (
        logits.shape[:2] != (b, 2)
        or deltas.shape[:2] != (b, 4)
        or logits.shape[2:] != deltas.shape[2:]
    ):
        raise ShapeError(
            f"MTCNN face_logits must be (B, 2, ...) and box_deltas (B, 4, ...) on the same grid "
            f"for B = {b}, got {tuple(logits.shape)} and {tuple(deltas.shape)}"
        )
    if marks is not None and tuple(marks.shape) != (b, 5, 2):
        raise ShapeError(f"MTCNN landmarks must be (B, 5, 2) for B = {b}, got {tuple(marks.shape)}")
    if not all(bool(torch.isfinite(t).all()) for t in output if t is not None):
        raise ValueRangeError("MTCNN outputs must be finite")


register_task(
    "mtcnn",
    "images (B, 3, h, w) -> MTCNNOutput(face_logits (B, 2, ...), box_deltas (B, 4, ...), "
    "landmarks (B, 5, 2) or None): one stage of the MTCNN face detection cascade",
    _check_mtcnn_output,
)


def mtcnn_pnet_stack() -> nn.Sequential:
    """P-Net's convolutions as a conv stack to distil, with the pretrained weights.

    A frozen 1 x 1 conv doing :func:`mtcnn_normalize` (so the stack reads RGB in [0, 1]), then
    ``PNet.features`` (conv1, prelu1, pool1, conv2, prelu2, conv3, prelu3; receptive field 12,
    stride 2). P-Net's 1 x 1 heads read one feature pixel each, so they need no distillation:
    apply ``model.face`` / ``model.box`` to the stack's output.
    """
    model = create_model("mtcnn_pnet", pretrained=True)
    # (x * 255 - 127.5) / 128 as a pointwise layer of the stack.
    normalize = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        normalize.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) * (255 / 128))
        normalize.bias.fill_(-127.5 / 128)
    normalize.requires_grad_(False)
    return nn.Sequential(OrderedDict([("normalize", normalize), *model.features.named_children()]))


@register_model(
    "mtcnn_pnet",
    task="mtcnn",
    input_size=(3, 12, 12),
    weights=MTCNN_PNET_WEIGHTS,
    stack=mtcnn_pnet_stack,
)
def mtcnn_pnet() -> PNet:
    """MTCNN P-Net (:class:`PNet`), learned; pretrained weights: facenet-pytorch 2.6.0, MIT."""
    return PNet()


@register_model("mtcnn_rnet", task="mtcnn", input_size=(3, 24, 24), weights=MTCNN_RNET_WEIGHTS)
def mtcnn_rnet() -> RNet:
    """MTCNN R-Net (:class:`RNet`), learned; pretrained weights: facenet-pytorch 2.6.0, MIT."""
    return RNet()


@register_model("mtcnn_onet", task="mtcnn", input_size=(3, 48, 48), weights=MTCNN_ONET_WEIGHTS)
def mtcnn_onet() -> ONet:
    """MTCNN O-Net (:class:`ONet`), learned; pretrained weights: facenet-pytorch 2.6.0, MIT."""
    return ONet()
