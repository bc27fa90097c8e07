"""Cube maps: six 90-degree faces F R B L U D, and their layouts.

Convention: see :mod:`pano360.geometry.conventions` (face orientations as in py360convert, our
pixel-centre rule: face pixel i sits at face coordinate (2i + 1) / w - 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._core import (
    ShapeError,
    as_image,
    check_choice,
    check_erp,
    check_hw,
    check_positive_int,
)
from ._cache import GridCache
from .conventions import CUBE_FACES
from .coords import xyz_components_to_lonlat
from .sampling import (
    _PAD,
    MODES,
    FoldedGrid,
    _erp_axes,
    grid_dtype,
    grid_sample_parallel,
    plan_folded,
    sample_folded,
)

__all__ = [
    "CUBE_LAYOUTS",
    "cube_face_directions",
    "cubemap_from_faces",
    "cubemap_to_erp",
    "cubemap_to_faces",
    "erp_to_cubemap",
    "sample_cube_faces",
]

#: Layouts accepted by the cube-map functions. The default is ``"dice"`` everywhere (every
#: function here, the CLI's ``--layout``, and py360convert's ``cube_format``).
CUBE_LAYOUTS: tuple[str, ...] = ("dict", "list", "horizon", "dice")

# Face frames: columns are the directions of +a (right along the face's columns), +b (down along
# its rows) and the face centre, so face point (a, b) looks along FRAMES[f] @ (a, b, 1).
_FRAMES = torch.tensor(
    [
        [[1, 0, 0], [0, -1, 0], [0, 0, 1]],  # F: ( a, -b,  1)
        [[0, 0, 1], [0, -1, 0], [-1, 0, 0]],  # R: ( 1, -b, -a)
        [[-1, 0, 0], [0, -1, 0], [0, 0, -1]],  # B: (-a, -b, -1)
        [[0, 0, -1], [0, -1, 0], [1, 0, 0]],  # L: (-1, -b,  a)
        [[1, 0, 0], [0, 0, 1], [0, 1, 0]],  # U: ( a,  1,  b)
        [[1, 0, 0], [0, 0, -1], [0, -1, 0]],  # D: ( a, -1, -b)
    ],
    dtype=torch.float64,
)

# (row, column) of each face in the 3 x 4 dice layout: U above F; L F R B; D below F.
_DICE_CELLS = {"F": (1, 1), "R": (1, 2), "B": (1, 3), "L": (1, 0), "U": (0, 1), "D": (2, 1)}


def _face_coords(face_w: int, pad: int = 0, dtype=torch.float64, device=None) -> torch.Tensor:
    """Face coordinates (2i + 1) / w - 1 of pixel indices -pad .. face_w + pad - 1."""
    i = torch.arange(-pad, face_w + pad, dtype=dtype, device=device)
    return (2 * i + 1) / face_w - 1


def cube_face_directions(
    face_w: int, *, dtype: torch.dtype = torch.float32, device=None
) -> torch.Tensor:
    """Unit directions of every cube-face pixel centre.

    Returns:
        (6, face_w, face_w, 3), faces in F R B L U D order, [f, row, column].
    """
    face_w = check_positive_int(face_w, "face_w")
    c = _face_coords(face_w, device=device)
    b, a = torch.meshgrid(c, c, indexing="ij")
    ab1 = torch.stack((a, b, torch.ones_like(a)), dim=-1)
    dirs = torch.einsum("fij,hwj->fhwi", _FRAMES.to(device), ab1)
    # Normalised by hand: linalg.norm over a short last dimension is slow on the CPU.
    return (dirs * torch.rsqrt((dirs * dirs).sum(-1, keepdim=True))).to(dtype)


def _locate_on_cube(dirs: torch.Tensor):
    """Face index and face coordinates (a, b) in [-1, 1] of directions (..., 3)."""
    return _locate_components(*dirs.unbind(-1))


def _locate_components(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor):
    """:func:`_locate_on_cube` of direction components that broadcast together.

    The face is the one whose centre axis carries the largest component (argmax of |x|, |y|,
    |z| and its sign), ties going to the first in F R B L U D order; (a, b) are the other two
    components, signed by the face's frame (:data:`_FRAMES`), over the largest one.
    """
    ax, ay, az = x.abs(), y.abs(), z.abs()
    m = torch.maximum(torch.maximum(ax, az), ay)
    # F R B L U D in order: the first whose centre component (z, x, -z, -x, y, -y) equals m.
    face = torch.where(
        z == m,
        0,
        torch.where(
            x == m, 1, torch.where(az == m, 2, torch.where(ax == m, 3, torch.where(y == m, 4, 5)))
        ),
    )
    side = face < 4
    # Frames: F (x, -y), R (-z, -y), B (-x, -y), L (z, -y), U (x, z), D (x, -z), over m.
    a = torch.where(
        face == 0,
        x,
        torch.where(face == 1, -z, torch.where(face == 2, -x, torch.where(face == 3, z, x))),
    )
    b = torch.where(side, -y, torch.where(face == 4, z, -z))
    inv = 1 / m
    return face, a * inv, b * inv


_RING_INDEX = GridCache("cube face padding rings")


def _face_ring_index(face_w: int, pad: int, device: torch.device):
    """Where the padding ring around each face comes from.

    Returns ``(dst, src)``: flat indices into the padded faces (6, w + 2 pad, w + 2 pad) of the
    ring pixels, and flat indices into the faces (6, w, w) of their values: the nearest pixel of
    the neighbouring face in the direction of the ring pixel's centre, found geometrically (no
    hand-written adjacency tables). Computed once per face size, for the ring pixels only.
    """

    def build():
        sp = face_w + 2 * pad
        i = torch.arange(sp)
        edge = (i < pad) | (i >= face_w + pad)
        rr, cc = torch.nonzero(edge[:, None] | edge[None, :], as_tuple=True)
        c = _face_coords(face_w, pad)
        ab1 = torch.stack((c[cc], c[rr], torch.ones(len(rr), dtype=torch.float64)), dim=-1)
        dirs = torch.einsum("fij,nj->fni", _FRAMES, ab1)  # (6, ring, 3)
        face, fa, fb = _locate_on_cube(dirs)
        col = torch.round(((fa + 1) * face_w - 1) / 2).clamp(0, face_w - 1).long()
        row = torch.round(((fb + 1) * face_w - 1) / 2).clamp(0, face_w - 1).long()
        src = ((face * face_w + row) * face_w + col).flatten()
        dst = (torch.arange(6)[:, None] * sp * sp + rr * sp + cc).flatten()
        return dst.to(device), src.to(device)

    return _RING_INDEX.get((face_w, pad, torch.device(device)), build)


def cubemap_to_faces(cube, layout: str = "dice") -> torch.Tensor:
    """Any layout to a (B, 6, C, w, w) tensor of faces in F R B L U D order."""
    check_choice(layout, "layout", CUBE_LAYOUTS)
    if layout == "dict":
        if not isinstance(cube, dict) or set(cube) != set(CUBE_FACES):
            got = sorted(cube) if isinstance(cube, dict) else type(cube).__name__
            raise ShapeError(f"cube must be a dict with keys {list(CUBE_FACES)}, got {got}")
        faces = [cube[k] for k in CUBE_FACES]
    elif layout == "list":
        if not isinstance(cube, (list, tuple)) or len(cube) != 6:
            raise ShapeError("cube must be a list of 6 face tensors in F R B L U D order")
        faces = list(cube)
    else:
        if not isinstance(cube, torch.Tensor) or cube.ndim != 4:
            got = tuple(cube.shape) if isinstance(cube, torch.Tensor) else type(cube).__name__
            hint = {dict: " (pass layout='dict')", list: " (pass layout='list')"}
            raise ShapeError(
                f"cube must be a (B, C, h, w) tensor for layout {layout!r}, got "
                f"{got}{hint.get(type(cube), '')}"
            )
        h, w = cube.shape[-2:]
        if layout == "horizon":
            if w != 6 * h:
                raise ShapeError(f"horizon cube must be (B, C, w, 6w), got {tuple(cube.shape)}")
            return torch.stack(cube.split(h, dim=-1), dim=1)
        if 3 * w != 4 * h or h % 3:
            raise ShapeError(f"dice cube must be (B, C, 3w, 4w), got {tuple(cube.shape)}")
        s = h // 3
        faces = [
            cube[..., r * s : (r + 1) * s, c * s : (c + 1) * s]
            for r, c in (_DICE_CELLS[k] for k in CUBE_FACES)
        ]
    shapes = {tuple(f.shape) if isinstance(f, torch.Tensor) else None for f in faces}
    if len(shapes) != 1 or None in shapes:
        raise ShapeError(f"cube faces must be tensors of one shape, got {sorted(map(str, shapes))}")
    shape = shapes.pop()
    if len(shape) != 4 or shape[-1] != shape[-2]:
        raise ShapeError(f"cube faces must be square (B, C, w, w), got {shape}")
    return torch.stack(faces, dim=1)


def cubemap_from_faces(faces: torch.Tensor, layout: str = "dice"):
    """A (B, 6, C, w, w) tensor of faces (F R B L U D) to the requested layout."""
    check_choice(layout, "layout", CUBE_LAYOUTS)
    if faces.ndim != 5 or faces.shape[1] != 6:
        raise ShapeError(f"faces must be (B, 6, C, w, w), got {tuple(faces.shape)}")
    if layout == "dict":
        return dict(zip(CUBE_FACES, faces.unbind(1), strict=True))
    if layout == "list":
        return list(faces.unbind(1))
    if layout == "horizon":
        return torch.cat(faces.unbind(1), dim=-1)
    b, _, c, s, _ = faces.shape
    dice = faces.new_zeros(b, c, 3 * s, 4 * s)
    for f, name in enumerate(CUBE_FACES):
        r, col = _DICE_CELLS[name]
        dice[..., r * s : (r + 1) * s, col * s : (col + 1) * s] = faces[:, f]
    return dice


def erp_to_cubemap(erp: torch.Tensor, face_w: int, layout: str = "dice", mode: str = "bilinear"):
    """Cube map of an ERP image.

    Args:
        erp: (B, C, H, W) with W == 2H: floating-point or uint8 tensors, or a numpy array
            (H, W, C) or (H, W) (:mod:`pano360.geometry.conventions`, Images).
        face_w: width of each square face in pixels.
        layout: "dice" ((B, C, 3w, 4w), the default, as the CLI's and py360convert's), "dict"
            ({"F": (B, C, w, w), ...}), "list" (six tensors, F R B L U D) or "horizon"
            ((B, C, w, 6w)).
        mode: "nearest", "bilinear" or "bicubic".

    Returns:
        The cube map in ``layout``, each image in ``erp``'s form (dtype; numpy (h, w, C) or
        (h, w), as py360convert's ``e2c``); differentiable with respect to a floating-point
        ``erp``.

    Raises:
        TypeError: ``erp`` is not an image (a path names itself), or of another dtype.
        ShapeError: ``erp`` is not (B, C, H, W) with W == 2H.
        ValueRangeError: ``face_w`` is not a positive integer.
        ValueError: unknown ``layout`` or ``mode``.

    Precision:
        Sampling coordinates are computed in the image's dtype (float32 images up to 4096
        pixels wide: within 6e-4 pixel of exact) and in float64 for wider float32 images
        (:func:`~pano360.geometry.sampling.grid_dtype`); no padded copy of the image is made.

    Convention:
        Face orientations of :mod:`pano360.geometry.conventions`; each face is a 90-degree
        :func:`erp_to_perspective` view (F: yaw 0, R: 90, B: 180, L: -90 degrees, U: pitch 90,
        D: pitch -90). Inverse: :func:`cubemap_to_erp`.

    Example:
        >>> erp_to_cubemap(torch.rand(2, 3, 32, 64), 16, layout="dice").shape
        torch.Size([2, 3, 48, 64])
    """
    erp, spec = as_image(erp, "erp")
    check_erp(erp)
    check_choice(layout, "layout", CUBE_LAYOUTS)
    check_choice(mode, "mode", MODES)
    face_w = check_positive_int(face_w, "face_w")
    b, c = erp.shape[:2]
    hw = tuple(erp.shape[-2:])
    key = (face_w, hw, mode, erp.dtype, erp.device)

    def build():
        grid = _cube_grid(face_w, grid_dtype(erp.dtype, hw[1]), erp.device)
        return plan_folded(grid.to(erp.dtype), hw, mode)

    plan = _CUBE_PLANS.get(key, build)
    if b == 1:
        # One pseudo-batch entry per face: grid_sample spreads the faces over the CPU threads
        # and returns them already in (6, C, w, w) order, with no copy.
        faces = sample_folded(erp.expand(6, -1, -1, -1), plan, mode)[None]
    else:
        # The six faces as one tall grid (the same samples in the same order).
        taps = plan.taps.reshape(1, -1) if mode == "nearest" else plan.taps
        flat = FoldedGrid(plan.grid.view(1, 6 * face_w, face_w, 2), plan.points, taps, plan.local)
        faces = sample_folded(erp, flat, mode).reshape(b, c, 6, face_w, face_w).transpose(1, 2)
    return _restore_cube(cubemap_from_faces(faces, layout), spec)


_CUBE_PLANS = GridCache("erp_to_cubemap sampling plans")


def _cube_grid(face_w: int, dtype, device) -> torch.Tensor:
    """(6, w, w, 2) ERP coordinates of every face pixel, in ``dtype``: :func:`direction_grid`'s
    (gx, gy) = (lon / pi, -2 lat / pi), lon and lat from :func:`xyz_components_to_lonlat`.

    Face f pixel (a, b) looks along _FRAMES[f] (a, b, 1); only F and U are computed so, each
    written straight into the result. F's longitude atan2(a, 1) depends on the column only (a
    row of w values); its latitude is shared by the four side faces. R, B and L are F turned by
    a quarter, a half and three quarters of a turn of longitude (gx + k / 2, wrapped into
    [-1, 1]; same latitudes), and D is U upside down (rows reversed, latitudes negated). Tested
    against all six frames.
    """
    c = _face_coords(face_w, dtype=dtype, device=device)
    a, b = c.view(1, face_w), c.view(face_w, 1)
    out = torch.empty(6, face_w, face_w, 2, dtype=dtype, device=device)
    # F: (a, -b, 1); lon is (1, w), lat (w, w).
    lon, lat = xyz_components_to_lonlat(a, -b, torch.ones((), dtype=dtype, device=device))
    gx = lon.mul_(1 / math.pi) + c.new_tensor([0.0, 0.5, 1.0, 1.5]).view(4, 1, 1)
    out[:4, ..., 0] = torch.where(gx > 1, gx - 2, gx)
    out[:4, ..., 1] = lat.mul_(-2 / math.pi)
    # U: (a, 1, b).
    lon, lat = xyz_components_to_lonlat(a, torch.ones((), dtype=dtype, device=device), b)
    out[4, ..., 0] = lon.mul_(1 / math.pi)
    out[4, ..., 1] = lat.mul_(-2 / math.pi)
    out[5] = out[4].flip(0)
    out[5, ..., 1].neg_()
    return out


def _restore_cube(cube, spec):
    """Every image of a cube map in the input's form (:meth:`ImageSpec.restore`)."""
    if isinstance(cube, dict):
        return {k: spec.restore(v) for k, v in cube.items()}
    if isinstance(cube, list):
        return [spec.restore(v) for v in cube]
    return spec.restore(cube)


def _cube_as_tensors(cube, layout: str):
    """A cube map given as tensors or numpy arrays (as py360convert's ``c2e`` takes them) as
    float tensors, and the form to give the result back in (that of its first image)."""
    if layout == "dict" and isinstance(cube, dict):
        items = {k: as_image(v, f"cube[{k!r}]") for k, v in cube.items()}
        converted = {k: t for k, (t, _) in items.items()}
        specs = [sp for _, sp in items.values()]
    elif layout == "list" and isinstance(cube, (list, tuple)):
        items = [as_image(v, f"cube[{i}]") for i, v in enumerate(cube)]
        converted = [t for t, _ in items]
        specs = [sp for _, sp in items]
    elif layout in ("horizon", "dice") and not isinstance(cube, (dict, list, tuple)):
        converted, spec = as_image(cube, "cube")
        specs = [spec]
    else:
        return cube, None  # cubemap_to_faces says what is wrong
    if len(set(specs)) > 1:
        raise TypeError(
            f"cube faces must all be of one kind and dtype, got {sorted(map(str, specs))}"
        )
    return converted, specs[0] if specs else None


def cubemap_to_erp(
    cube, erp_hw: Sequence[int], layout: str = "dice", mode: str = "bilinear"
) -> torch.Tensor:
    """ERP image of a cube map.

    Args:
        cube: a cube map in ``layout`` (see :func:`erp_to_cubemap`): its images floating-point
            or uint8 tensors, or numpy arrays (h, w, C) or (h, w) as py360convert's ``c2e``
            takes them.
        erp_hw: (H, W) of the output, W == 2H.
        layout: "dice" (the default, as the CLI's and py360convert's), "dict", "list" or
            "horizon".
        mode: "nearest", "bilinear" or "bicubic".

    Returns:
        (B, C, H, W) in the faces' form (dtype; numpy (H, W, C) or (H, W)), differentiable
        with respect to floating-point faces.

    Raises:
        TypeError: an image of the cube is not a tensor or a numpy array (a path names
            itself), of another dtype, or the faces differ in kind or dtype.
        ShapeError: the cube does not match ``layout`` or faces are not square; ``erp_hw`` not 2:1.
        ValueError: unknown ``layout`` or ``mode``.

    Precision:
        Sampling coordinates are computed in the faces' dtype while the six padded faces
        stack to at most 4096 rows (float32: within 6e-4 pixel), else in float64
        (:func:`~pano360.geometry.sampling.grid_dtype`); an ERP pixel's face and face
        coordinates come from rows times columns (cos(lat) cancels), never a stored
        (H, W, 3) direction tensor.

    Convention:
        Each ERP pixel reads the face its direction hits (largest component along a face normal).
        Interpolation continues across face edges: every face is padded with its neighbours'
        nearest pixels, so there are no seams of black or clamped pixels.

    Example:
        >>> cubemap_to_erp(torch.rand(1, 3, 16, 96), (32, 64), layout="horizon").shape
        torch.Size([1, 3, 32, 64])
    """
    check_choice(layout, "layout", CUBE_LAYOUTS)
    check_choice(mode, "mode", MODES)
    h, w = check_hw(erp_hw, "erp_hw", erp=True)
    cube, spec = _cube_as_tensors(cube, layout)
    faces = cubemap_to_faces(cube, layout)
    face_w = faces.shape[-1]
    key = (face_w, (h, w), mode, faces.dtype, faces.device)
    grid = _ERP_FROM_CUBE_GRIDS.get(
        key, lambda: _erp_from_cube_grid(face_w, (h, w), mode, faces.dtype, faces.device)
    )
    out = grid_sample_parallel(_pad_faces(faces, mode), grid, mode)
    return out if spec is None else spec.restore(out)


def _pad_faces(faces: torch.Tensor, mode: str) -> torch.Tensor:
    """(B, 6, C, w, w) faces, each padded with its neighbours, stacked into one tall image."""
    b, _, c, s, _ = faces.shape
    pad = _PAD[mode]
    sp = s + 2 * pad
    tall = faces.new_empty(b, c, 6, sp, sp)
    tall[..., pad : s + pad, pad : s + pad] = faces.transpose(1, 2)
    dst, src = _face_ring_index(s, pad, faces.device)
    flat = tall.view(b, c, 6 * sp * sp)
    flat[:, :, dst] = faces.transpose(1, 2).reshape(b, c, 6 * s * s)[:, :, src]
    return tall.view(b, c, 6 * sp, sp)


def _cube_sampling_grid(x, y, z, face_w: int, mode: str) -> torch.Tensor:
    """grid_sample coordinates, in the tall image of :func:`_pad_faces`, of directions given
    by components that broadcast together, in their dtype."""
    pad = _PAD[mode]
    sp = face_w + 2 * pad
    face, fa, fb = _locate_components(x, y, z)
    # x = ((a + 1) w - 1) / 2 + pad on sp columns, y likewise plus face * sp on 6 sp rows:
    # gx = a w / sp, gy = (b w + (2 face + 1) sp) / (6 sp) - 1.
    gx = fa * (face_w / sp)
    gy = torch.addcmul(
        face.to(fb.dtype) * (1 / 3) + (1 / 6 - 1), fb, fa.new_tensor(face_w / (6 * sp))
    )
    return torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)


_ERP_FROM_CUBE_GRIDS = GridCache("cubemap_to_erp sampling grids")


def _erp_from_cube_grid(face_w: int, erp_hw, mode: str, dtype, device) -> torch.Tensor:
    """(1, H, W, 2) grid of the ERP pixels on the padded faces. Cube faces are projective, so
    the direction cos(lat) (sin lon, tan lat, cos lon) is located by (sin lon, tan lat, cos lon):
    rows times columns, never a stored (H, W, 3) tensor."""
    slon, clon, slat, clat = _erp_axes(erp_hw, torch.float64, device)
    work = grid_dtype(dtype, 6 * (face_w + 2 * _PAD[mode]))
    x, y, z = (t.to(work) for t in (slon, slat / clat, clon))
    return _cube_sampling_grid(x, y, z, face_w, mode).to(dtype)


def sample_cube_faces(faces: torch.Tensor, dirs: torch.Tensor, mode: str = "bilinear"):
    """Sample cube faces at arbitrary directions.

    Args:
        faces: (B, 6, C, w, w) in F R B L U D order (see :func:`cubemap_to_faces`).
        dirs: (B or 1, h, w, 3) directions (any non-zero length).
        mode: "nearest", "bilinear" or "bicubic".

    Returns:
        (B, C, h, w), differentiable with respect to ``faces``.
    """
    check_choice(mode, "mode", MODES)
    face_w = faces.shape[-1]
    dirs = dirs.to(grid_dtype(faces.dtype, 6 * (face_w + 2 * _PAD[mode])))
    grid = _cube_sampling_grid(*dirs.unbind(-1), face_w, mode).to(faces.dtype)
    return grid_sample_parallel(_pad_faces(faces, mode), grid, mode)
