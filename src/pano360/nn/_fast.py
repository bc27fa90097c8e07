"""The compiled CPU path of SphereConv2d (C++ in csrc/sphere_conv.cpp, built once, ahead of use).

The tap pattern of a spherical convolution depends on the output row only, so the kernel builds
its bilinear im2col from per-row tables (the pole rule folded in), reading the input
channels-last, tile by tile, each tile multiplied by a matrix product while it is in cache.
Two shapes take other routes: with fewer output than input channels (groups 1) the weights come
first, z = W_k x for every tap k in one matrix product, and the kernel sums the taps of z's
C_out-channel planes (:func:`_weights_first`); depthwise convolutions (one input channel per
group) have no product worth the name: each output row is a sum over the distinct input pixels
its taps' bilinear corners touch (:func:`depthwise_tables`), computed channels-last with
blocks of pixels and channels summed in vector registers, its backward pass vectorised over
channels too (from 16 channels; channels-first maps are converted and back; the kernels are
compiled for AVX-512 and AVX2 as well as the baseline, chosen when the library loads), or
plane by plane as runs of input rows (few channels, or several output channels per input one).
Inference with few input channels (an RGB stem) takes the same route as a depthwise
convolution, channels-last, each input value times a vector of output channels: with so few
channels, filling the im2col tile costs more than its product.

Building. The kernel is compiled with torch.utils.cpp_extension (about 50 s) once per key, a hash
of the C++ sources, the torch build, the Python ABI, the machine, the compiler and its flags (see
:func:`kernel_key_parts`), into its own folder ``<root>/<key>/`` (:func:`kernel_dir`). The root
is ``$PANO360_KERNEL_DIR`` if set, else ``$XDG_CACHE_HOME/pano360/kernels``, else
``~/.cache/pano360/kernels``. Two environments or checkouts with the same key share one library;
different ones never overwrite each other. Once the library of a key exists it is imported
directly: ninja is not run, so which ninja a PATH finds cannot cause a rebuild. A build runs in a
temporary folder under a file lock and its library is renamed into place, so processes that race
build it once and never load a half-written file. ``python -m pano360.nn.build`` builds ahead of
use (``make`` runs it); a build at first use says so on stderr, every time one happens.

If it cannot be built (no compiler, no ninja) pano360 warns once and uses the pure-torch path,
which gives the same results; ``PANO360_NO_EXTENSIONS=1`` forces the pure-torch path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import platform
import shlex
import shutil
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

import torch

from .._core import memory_format_of
from ..geometry import lonlat_to_pixel, strided_lonlat_grid
from ..geometry.sampling import bilinear_corners
from ._taps import output_hw, tap_lonlat

__all__ = [
    "BUILD_SECONDS",
    "build_kernel",
    "depthwise_tables",
    "describe_error",
    "extension_available",
    "fast_depthwise_sphere_conv",
    "fast_sphere_conv",
    "find_kernel",
    "kernel_dir",
    "kernel_key",
    "kernel_key_parts",
    "kernel_root",
    "load_kernel",
    "row_tables",
]

NAME = "pano360_sphere_conv"
_CSRC = Path(__file__).resolve().parent / "csrc"
_SOURCE = _CSRC / "sphere_conv.cpp"
_CFLAGS = ("-O3",)
_LIB_SUFFIX = ".pyd" if sys.platform == "win32" else ".so"
# What a build takes on our 2-core machines (python -m pano360.nn.build prints the real time).
BUILD_SECONDS = 50


def kernel_root() -> Path:
    """The folder holding one subfolder per kernel key.

    ``$PANO360_KERNEL_DIR`` if set, else ``$XDG_CACHE_HOME/pano360/kernels``, else
    ``~/.cache/pano360/kernels``.
    """
    if os.environ.get("PANO360_KERNEL_DIR"):
        return Path(os.environ["PANO360_KERNEL_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "pano360" / "kernels"


def _compiler() -> str:
    # What torch.utils.cpp_extension compiles with (its get_cxx_compiler), without importing it.
    return os.environ.get("CXX", "cl" if sys.platform == "win32" else "c++")


def kernel_key_parts() -> dict[str, str]:
    """Everything the compiled library depends on, and nothing else (not ninja's version).

    The C++ sources (a SHA-256 of every file in csrc/), the torch build (version and commit),
    the Python ABI (the extension suffix, e.g. ``.cpython-311-x86_64-linux-gnu.so``), the
    machine, the compiler command (``$CXX`` or the default) and the compiler flags.
    """
    digest = hashlib.sha256()
    for path in sorted(_CSRC.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return {
        "sources": digest.hexdigest(),
        "torch": f"{torch.__version__} {torch.version.git_version}",
        "python": sysconfig.get_config_var("EXT_SUFFIX") or sys.implementation.cache_tag,
        "machine": f"{sys.platform} {platform.machine()}",
        "compiler": _compiler(),
        "cflags": " ".join(_CFLAGS),
    }


def kernel_key(parts: dict[str, str] | None = None) -> str:
    """A short hash of :func:`kernel_key_parts` (or of ``parts``), the name of the kernel's folder.

    >>> a, b = {"sources": "a", "torch": "2.13.0"}, {"torch": "2.13.0", "sources": "a"}
    >>> kernel_key(a) == kernel_key(b), kernel_key(a) == kernel_key({**a, "torch": "2.14.0"})
    (True, False)
    """
    parts = kernel_key_parts() if parts is None else parts
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def kernel_dir() -> Path:
    """``kernel_root() / kernel_key()``: where the library of this environment's key lives."""
    return kernel_root() / kernel_key()


def find_kernel(folder: Path | None = None) -> Path | None:
    """The built library in ``folder`` (default :func:`kernel_dir`), or None if there is none."""
    folder = kernel_dir() if folder is None else folder
    newest, newest_time = None, -1.0
    for lib in folder.glob(f"{NAME}*{_LIB_SUFFIX}"):
        with contextlib.suppress(OSError):  # replaced by a build in another process meanwhile
            if lib.stat().st_mtime > newest_time:
                newest, newest_time = lib, lib.stat().st_mtime
    return newest


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path`` (POSIX; elsewhere the atomic rename alone keeps builds
    safe, at the cost of racing processes both compiling)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"pano360: waiting for another process building the SphereConv2d CPU kernel in "
                f"{path.parent}...",
                file=sys.stderr,
            )
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _packaged_ninja_first():
    """Build with the ninja installed with pano360's dependencies (the `ninja` package) when there
    is one, so a shell that has not activated the environment builds the same way."""
    try:
        import ninja

        bin_dir = str(ninja.BIN_DIR)
    except (ImportError, AttributeError):
        yield
        return
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = bin_dir + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def _check_build_tools() -> None:
    """Fail in one clear line, before announcing a build, if the compiler or ninja is missing."""
    compiler = _compiler()
    if shutil.which(shlex.split(compiler)[0] if compiler.strip() else compiler) is None:
        raise FileNotFoundError(f"no C++ compiler: {compiler!r} is not on PATH (set CXX)")
    with _packaged_ninja_first():
        if shutil.which("ninja") is None:
            raise FileNotFoundError("ninja is not on PATH (pip install ninja)")


def _compile(build_dir: Path, verbose: bool) -> Path:
    """Compile the kernel in ``build_dir`` and return the library file torch wrote there."""
    from torch.utils.cpp_extension import load

    with _packaged_ninja_first():
        load(
            name=NAME,
            sources=[str(_SOURCE)],
            extra_cflags=list(_CFLAGS),
            build_directory=str(build_dir),
            verbose=verbose,
        )
    # torch names a second build in one process NAME_v1, ...: the module name follows the file,
    # and find_kernel takes the newest. Older files stay: another process may be loading them.
    return next(build_dir.glob(f"{NAME}*{_LIB_SUFFIX}"))


def build_kernel(force: bool = False, verbose: bool = False) -> tuple[Path, bool]:
    """The path of the kernel library of this environment's key, building it if there is none.

    Returns ``(path, built)``: ``built`` is True when this call compiled it. Every build prints
    a line to stderr saying so, with the expected time. ``force`` rebuilds even if a library
    exists; ``verbose`` shows the compiler's commands and output.
    """
    folder = kernel_dir()
    if not force and (found := find_kernel(folder)) is not None:
        return found, False
    _check_build_tools()
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if not force and (found := find_kernel(folder)) is not None:
            return found, False  # another process built it while this one waited
        print(
            f"pano360: building the SphereConv2d CPU kernel (about {BUILD_SECONDS} s, once per "
            f"source, torch and python version) in {folder}...",
            file=sys.stderr,
            flush=True,
        )
        build_dir = Path(tempfile.mkdtemp(prefix="build-", dir=folder))
        try:
            built = _compile(build_dir, verbose)
            path = folder / built.name
            os.replace(built, path)  # atomic: a reader sees no library or a whole one
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
        (folder / "key.json").write_text(json.dumps(kernel_key_parts(), indent=1) + "\n")
    return path, True


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_kernel(force: bool = False, verbose: bool = False):
    """``(module, path, built)``: the kernel imported, building it first if it is not there
    (arguments as for :func:`build_kernel`).

    A library that exists but does not import (a torch rebuilt in place, a damaged file) is
    rebuilt once, saying why.
    """
    path, built = build_kernel(force=force, verbose=verbose)
    try:
        return _import(path), path, built
    except ImportError as error:
        if built:
            raise
        print(f"pano360: {path} does not load ({error}); rebuilding it", file=sys.stderr)
    path, built = build_kernel(force=True, verbose=verbose)
    return _import(path), path, built


@functools.lru_cache(maxsize=1)
def _extension():
    if os.environ.get("PANO360_NO_EXTENSIONS"):
        return None
    try:
        return load_kernel()[0]
    except Exception as error:  # no compiler, no ninja, ...: the pure-torch path still works
        warnings.warn(
            f"pano360: the compiled SphereConv2d kernel is unavailable ({describe_error(error)}); "
            "using the pure-torch path",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def describe_error(error: Exception) -> str:
    """One line for a failed build: the compiler's first ``error:`` line if there is one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = next((line for line in lines if "error:" in line.lower()), lines[0] if lines else "")
    return f"{type(error).__name__}: {first[:300]}"


def extension_available() -> bool:
    """Whether the compiled CPU kernel of SphereConv2d is (or can be) loaded."""
    return _extension() is not None


def _column0_corners(local_dirs: tuple, in_hw: tuple[int, int], stride: int, output_grid: str):
    """The four bilinear corners (rows, columns, weights; (Ho, K, 4) each, folded onto the
    sphere) of every tap of output column 0, from the float64 geometry of
    :func:`~._taps.tap_lonlat`; column j's are these shifted by ``stride * j`` columns."""
    dirs = torch.tensor(local_dirs, dtype=torch.float64)
    grid = strided_lonlat_grid(in_hw, stride, output_grid, dtype=torch.float64)
    centres = grid[:, 0]  # output column 0
    x, y = lonlat_to_pixel(tap_lonlat(dirs, centres), in_hw).unbind(-1)  # (Ho, K) each
    return bilinear_corners(x, y, in_hw)


@functools.lru_cache(maxsize=64)
def row_tables(
    local_dirs: tuple,
    in_hw: tuple[int, int],
    stride: int,
    dtype: torch.dtype,
    output_grid: str = "sphere",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (output row, tap): the input rows of the upper and lower bilinear corners (Ho, K, 2),
    their left columns at output column 0 (Ho, K, 2) and the four bilinear weights (Ho, K, 4).

    A corner past a pole reads the mirrored row with its column shifted by W / 2 (the pole rule
    of :func:`~pano360.geometry.sampling.spherical_pad`), so the kernel needs no padded copy.
    """
    rows, cols, wts = _column0_corners(local_dirs, in_hw, stride, output_grid)
    # The kernel reads the upper and lower corner pairs from their left corners.
    pairs = [0, 2]
    return rows[..., pairs].contiguous(), cols[..., pairs].contiguous(), wts.to(dtype).contiguous()


class _GatherTaps(torch.autograd.Function):
    """(B, C, Ho, Wo) = the sum over taps k of z[:, k] (B, K, C, H, W) read at tap k."""

    @staticmethod
    def forward(ctx, z, rows, cols, wts, out_w, stride):
        ctx.tables, ctx.args = (rows, cols, wts), (z.shape[1], z.shape[3], z.shape[4], stride)
        return _extension().gather_taps(z, rows, cols, wts, out_w, stride)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        gz = _extension().gather_taps_backward(grad.contiguous(), *ctx.tables, *ctx.args)
        return gz, *([None] * 5)


# Weights first: the largest z (K C_out planes of the input's size) built at once, in bytes;
# a larger batch is cut into pieces of at most this.
_WEIGHTS_FIRST_BYTES = 64 << 20


def _weights_first(x, weight, bias, tables, stride):
    """SphereConv2d with fewer output than input channels (groups 1): apply the weight of every
    tap first, z = W_k x for k = 1 .. K (one matrix product), then read each tap's C_out planes
    of z at its taps and sum. Gathers K C_out values per output pixel instead of K C_in, the
    same products as the im2col path."""
    b, c_in, h, w = x.shape
    c_out, _, k = weight.shape
    w_all = weight.permute(2, 0, 1).reshape(k * c_out, c_in)  # row k C_out + o: W[o, :, k]
    flat = x.reshape(b, c_in, h * w)
    step = max(1, _WEIGHTS_FIRST_BYTES // (k * c_out * h * w * x.element_size()))
    wo = output_hw((h, w), stride)[1]
    pieces = [
        _GatherTaps.apply(
            torch.matmul(w_all, flat[i : i + step]).view(-1, k, c_out, h, w), *tables, wo, stride
        )
        for i in range(0, b, step)
    ]
    out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    if memory_format_of(x) == torch.channels_last:
        return out.contiguous(memory_format=torch.channels_last)
    return out


def _to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) as a contiguous (B, H, W, C): a view when x is channels-last, the kernel's
    blocked transpose when it is contiguous (torch's permuted copy measured several times
    slower)."""
    if x.is_contiguous(memory_format=torch.channels_last) or not x.is_contiguous():
        return x.permute(0, 2, 3, 1).contiguous()
    b, c, h, w = x.shape
    return _extension().transpose_maps(x.view(b, c, h * w)).view(b, h, w, c)


def _to_channels_first(y: torch.Tensor) -> torch.Tensor:
    """y (B, H, W, C) contiguous as a contiguous (B, C, H, W)."""
    b, h, w, c = y.shape
    return _extension().transpose_maps(y.view(b, h * w, c)).view(b, c, h, w)


class _FastSphereConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, rows, cols, wts, groups, out_hw, stride):
        ext = _extension()
        channels_last = memory_format_of(x) == torch.channels_last
        x_nhwc = _to_channels_last(x)
        ctx.save_for_backward(x_nhwc, weight, x)
        ctx.tables, ctx.args = (rows, cols, wts), (groups, out_hw[1], stride)
        ctx.has_bias = bias is not None
        # Few input channels: the kernel fills its tiles from x channels-first (see csrc).
        few = weight.shape[1] // rows.shape[1] <= 4
        x_planar = x.contiguous() if few else x.new_empty(0)
        out = ext.forward(
            x_nhwc,
            x_planar,
            weight,
            bias,
            rows,
            cols,
            wts,
            groups,
            out_hw[1],
            stride,
            channels_last,
        )
        b, c_out = x.shape[0], weight.shape[0]
        if channels_last:
            return out.view(b, *out_hw, c_out).permute(0, 3, 1, 2)
        return out.view(b, c_out, *out_hw)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x_nhwc, weight, x = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        b, c_out = grad.shape[:2]
        empty = grad.new_empty(0)
        grad_nchw = grad.contiguous().view(b, c_out, -1) if need_w else empty
        grad_nhwc = _to_channels_last(grad).view(b, -1, c_out) if need_x else empty
        x_planar = x.contiguous() if need_w else empty
        gx, gw = _extension().backward(
            grad_nchw, grad_nhwc, x_nhwc, x_planar, weight, *ctx.tables, *ctx.args, need_x, need_w
        )
        gb = grad.sum(dim=(0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return (
            gx.permute(0, 3, 1, 2) if need_x else None,
            gw if need_w else None,
            gb,
            *([None] * 6),
        )


# Channels-last inference with at most this many input channels (groups 1) runs
# few_channels_forward_cl.
_FEW_CHANNELS = 4


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def fast_sphere_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    local_dirs: tuple,
    stride: int,
    groups: int,
    output_grid: str = "sphere",
) -> torch.Tensor:
    """(B, C_out, Ho, Wo) from x (B, C_in, H, W) and the weight as (C_out, C_in / groups, K).

    The output is channels-last when x is, contiguous otherwise.
    """
    in_hw = (x.shape[-2], x.shape[-1])
    c_out, c_group, k = weight.shape
    channels_last = memory_format_of(x) == torch.channels_last
    if (
        channels_last
        and groups == 1
        and c_group <= _FEW_CHANNELS
        and not _needs_grad(x, weight, bias)
    ):
        # Channels-last inference with few input channels (an RGB stem): summed per entry.
        # (Channels-first maps stay on the im2col path: copying the output to their layout
        # would cost more than the kernel saves.)
        tables = depthwise_tables(local_dirs, in_hw, stride, x.dtype, output_grid)
        wo = output_hw(in_hw, stride)[1]
        return (
            _extension()
            .few_channels_forward_cl(_to_channels_last(x), weight, bias, *tables, wo, stride)
            .permute(0, 3, 1, 2)
        )
    rows, cols, wts = row_tables(local_dirs, in_hw, stride, x.dtype, output_grid)
    if groups == 1 and c_out < c_group:
        return _weights_first(x, weight, bias, (rows, cols, wts), stride)
    # Tap-major columns (tap, then channel): the kernel reads a tap's channels contiguously.
    weight_taps = weight.transpose(1, 2).reshape(c_out, k * c_group)
    return _FastSphereConv.apply(
        x, weight_taps, bias, rows, cols, wts, groups, output_hw(in_hw, stride), stride
    )


@functools.lru_cache(maxsize=64)
def depthwise_tables(
    local_dirs: tuple,
    in_hw: tuple[int, int],
    stride: int,
    dtype: torch.dtype,
    output_grid: str = "sphere",
) -> tuple[torch.Tensor, ...]:
    """The tables of the depthwise and few-channel kernels: the bilinear corners of
    :func:`row_tables`, merged per output row into distinct input pixels ("entries"), since
    neighbouring taps share corners.

    Returns ``(rows, cols, count, corner, wts)``: the entries' input rows and their columns at
    output column 0 (Ho, E), padded to the longest row; the number of entries of each row (Ho,);
    the entry of each bilinear corner of each tap (Ho, K, 4); the corners' weights (Ho, K, 4).
    """
    w = in_hw[1]
    ho = output_hw(in_hw, stride)[0]
    rows, cols, wts = _column0_corners(local_dirs, in_hw, stride, output_grid)
    pixels = (rows * w + cols).reshape(ho, -1)
    merged = [torch.unique(p, return_inverse=True) for p in pixels]
    count = torch.tensor([len(u) for u, _ in merged], dtype=torch.long)
    entries = torch.zeros(ho, int(count.max()), dtype=torch.long)
    for i, (u, _) in enumerate(merged):
        entries[i, : len(u)] = u
    corner = torch.stack([inv for _, inv in merged]).reshape(rows.shape)
    return (
        entries // w,
        entries % w,
        count,
        corner.contiguous(),
        wts.to(dtype).contiguous(),
    )


# Depthwise convolutions with one output channel per input channel and at least this many
# channels run the channels-last kernels (see csrc), forward and backward, in either layout: with
# fewer, the plane-by-plane kernels win (the channels-last ones fill their vectors poorly).
# Channels-first maps are converted by the kernel's blocked transpose, which costs less than the
# plane-by-plane kernels lose from 16 channels on (measured with and without gradients).
_CHANNELS_LAST_DEPTHWISE = 16


def _remember_depthwise(ctx, saved, bias, tables, out_hw, stride, channels_last) -> None:
    """What both depthwise autograd Functions keep for their backward pass."""
    ctx.save_for_backward(*saved)
    ctx.tables, ctx.args = tables, (out_hw[1], stride)
    ctx.has_bias, ctx.channels_last = bias is not None, channels_last


def _depthwise_gradients(ctx, grad, gx, gw) -> tuple:
    """backward's return of both depthwise autograd Functions (input, weight, bias, the rest)."""
    gb = grad.sum(dim=(0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
    need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    return gx if need_x else None, gw if need_w else None, gb, None, None, None


class _FastDepthwiseChannelsLast(torch.autograd.Function):
    """Depthwise, one output channel per input channel, computed channels-last (a channels-first
    x is copied to channels-last and its output and gradient back)."""

    @staticmethod
    def compute(x, weight, bias, tables, out_hw, stride):
        """The output in x's layout, and x channels-last (what the backward pass reads)."""
        x_nhwc = _to_channels_last(x)
        out = _extension().depthwise_forward_cl(x_nhwc, weight, bias, *tables, out_hw[1], stride)
        if memory_format_of(x) == torch.channels_last:
            return out.permute(0, 3, 1, 2), x_nhwc
        return _to_channels_first(out), x_nhwc

    @staticmethod
    def forward(ctx, x, weight, bias, tables, out_hw, stride):
        out, x_nhwc = _FastDepthwiseChannelsLast.compute(x, weight, bias, tables, out_hw, stride)
        channels_last = memory_format_of(x) == torch.channels_last
        _remember_depthwise(ctx, (x_nhwc, weight), bias, tables, out_hw, stride, channels_last)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x_nhwc, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx, gw = _extension().depthwise_backward_cl(
            _to_channels_last(grad),
            x_nhwc,
            weight,
            *ctx.tables,
            *ctx.args,
            need_x,
            need_w,
        )
        if need_x:
            gx = gx.permute(0, 3, 1, 2) if ctx.channels_last else _to_channels_first(gx)
        return _depthwise_gradients(ctx, grad, gx, gw)


class _FastDepthwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, tables, out_hw, stride):
        channels_last = memory_format_of(x) == torch.channels_last
        x = x.contiguous()
        _remember_depthwise(ctx, (x, weight), bias, tables, out_hw, stride, channels_last)
        out = _extension().depthwise_forward(x, weight, bias, *tables, out_hw[1], stride)
        return out.contiguous(memory_format=torch.channels_last) if channels_last else out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx, gw = _extension().depthwise_backward(
            grad.contiguous(), x, weight, *ctx.tables, *ctx.args, need_x, need_w
        )
        if need_x and ctx.channels_last:
            gx = gx.contiguous(memory_format=torch.channels_last)
        return _depthwise_gradients(ctx, grad, gx, gw)


def fast_depthwise_sphere_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    local_dirs: tuple,
    stride: int,
    output_grid: str = "sphere",
) -> torch.Tensor:
    """(B, C_out, Ho, Wo) from x (B, C_in, H, W) and a depthwise weight (C_out, 1, K), C_out a
    multiple of C_in (output channel o reads input channel o // (C_out / C_in)).

    The output is channels-last when x is, contiguous otherwise.
    """
    in_hw = (x.shape[-2], x.shape[-1])
    tables = depthwise_tables(local_dirs, in_hw, stride, x.dtype, output_grid)
    weight_k = weight.reshape(weight.shape[0], -1)
    out_hw = output_hw(in_hw, stride)
    if weight.shape[0] == x.shape[1] >= _CHANNELS_LAST_DEPTHWISE:
        if not _needs_grad(x, weight, bias):  # no autograd bookkeeping: small layers feel it
            return _FastDepthwiseChannelsLast.compute(x, weight_k, bias, tables, out_hw, stride)[0]
        return _FastDepthwiseChannelsLast.apply(x, weight_k, bias, tables, out_hw, stride)
    return _FastDepthwise.apply(x, weight_k, bias, tables, out_hw, stride)
