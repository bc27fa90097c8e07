"""Images as users pass them to pano360's image functions, and results given back in the same form.

The one home of the input rule of the public geometry functions (``erp_to_perspective``,
``perspective_to_erp``, ``erp_to_cubemap``, ``cubemap_to_erp``, ``rotate_erp``, ``sample_erp``,
``resize_erp``):

- floating-point tensors (B, C, H, W): used as they are (no copy, autograd kept), results in
  the same dtype;
- uint8 tensors (B, C, H, W): read as value / 255 in float32, results converted back to uint8
  (rounded, clipped to [0, 255]);
- numpy arrays (H, W, C) or (H, W), as py360convert takes them, of dtype uint8, uint16,
  float16, float32 or float64: results are numpy arrays of the same dtype and layout (uint8 and
  uint16 are read as value / 255 and value / 65535, and rounded and clipped back; float16 is
  computed in float32). A result with more than one image (batched angles) gets a leading
  batch axis (B, H, W, C);
- anything else is a TypeError naming the parameter; for a path, it says to read the image
  with :func:`pano360.io.read_image`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ShapeError

__all__ = ["ImageSpec", "as_image"]

# numpy dtypes accepted, and the scale that maps them to floats in [0, 1].
_NUMPY_SCALE = {
    np.dtype(np.uint8): 255.0,
    np.dtype(np.uint16): 65535.0,
    np.dtype(np.float16): None,
    np.dtype(np.float32): None,
    np.dtype(np.float64): None,
}

_EXPECTED = "a torch.Tensor (B, C, H, W) or a numpy array (H, W, C) or (H, W)"


@dataclass(frozen=True)
class ImageSpec:
    """How an image was given (container, dtype, layout), to give results back the same way.

    Attributes:
        numpy: True for a numpy array, False for a tensor.
        dtype: the input's dtype (a ``torch.dtype`` or a ``numpy.dtype``).
        layout: ``"bchw"`` (tensors), ``"hwc"`` or ``"hw"`` (numpy arrays).
    """

    numpy: bool
    dtype: torch.dtype | np.dtype
    layout: str

    @property
    def scale(self) -> float | None:
        """The integer range of the input (255, 65535), or None for floating-point input."""
        if self.numpy:
            return _NUMPY_SCALE[self.dtype]
        return 255.0 if self.dtype == torch.uint8 else None

    def restore(self, out: torch.Tensor, *, keep_float: bool = False):
        """A (B, C, h, w) float result in the input's form.

        Args:
            out: the result, computed on the tensor :func:`as_image` returned.
            keep_float: keep the values as they are (floats; e.g. a coverage mask), changing
                only the container and layout.

        Returns:
            ``out`` itself for floating-point tensors; a uint8 tensor for uint8 input; for
            numpy input an array (h, w, C) or (h, w) (with a leading B when B > 1).
        """
        scale = None if keep_float else self.scale
        if not self.numpy:
            if scale is None:
                return out
            return (out.detach() * scale).round_().clamp_(0, scale).to(self.dtype)
        # numpy does the numpy side: one predictable single-threaded pass per step.
        array = out.detach().cpu().numpy()
        array = array[:, 0] if self.layout == "hw" else array.transpose(0, 2, 3, 1)
        if array.shape[0] == 1:
            array = array[0]
        if scale is not None:
            array = array * scale
            np.rint(array, out=array)
            np.clip(array, 0, scale, out=array)
        # Integer input with keep_float: the values are floats, given as float32.
        target = np.float32 if keep_float and self.scale is not None else self.dtype
        # Always a new C-contiguous array: never memory the input or a cache holds.
        return array.astype(target, order="C")


def _refuse(value, name: str):
    if isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{name} must be an image, {_EXPECTED}, got the path {os.fsdecode(value)!r}: "
            f"pass pano360.io.read_image(path)"
        )
    if type(value).__module__.startswith("PIL."):
        raise TypeError(
            f"{name} must be {_EXPECTED}, got a PIL image: pass numpy.asarray(image) or "
            f"pano360.io.read_image(path)"
        )
    raise TypeError(f"{name} must be {_EXPECTED}, got {type(value).__name__}")


def as_image(value, name: str) -> tuple[torch.Tensor, ImageSpec]:
    """An image as pano360 computes with it: a floating-point (B, C, H, W) tensor.

    Args:
        value: the image as the user gave it (module docstring).
        name: the parameter's name, for the messages.

    Returns:
        ``(tensor, spec)``: the tensor (``value`` itself for floating-point tensors) and how to
        give results back (:meth:`ImageSpec.restore`). Shapes are not checked here beyond what
        the layout needs; the calling function checks its own (e.g. W == 2H).

    Raises:
        TypeError: ``value`` is not a tensor or a numpy array (a path is named as such), or
            its dtype is not one of those accepted.
        ShapeError: a numpy array that is not (H, W, C) or (H, W), or that looks like
            (C, H, W) (at most 4 rows, more than 4 channels).

    Example:
        >>> img, spec = as_image(np.zeros((4, 8, 3), np.uint8), "erp")
        >>> img.shape, img.dtype, spec.restore(img + 0.5).dtype
        (torch.Size([1, 3, 4, 8]), torch.float32, dtype('uint8'))
    """
    if isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point:
            return value, ImageSpec(False, value.dtype, "bchw")
        if value.dtype == torch.uint8:
            return value.float().div_(255), ImageSpec(False, value.dtype, "bchw")
        raise TypeError(f"{name} must be a floating-point or uint8 tensor, got {value.dtype}")
    if not isinstance(value, np.ndarray):
        _refuse(value, name)
    if value.dtype not in _NUMPY_SCALE:
        accepted = ", ".join(str(d) for d in _NUMPY_SCALE)
        raise TypeError(f"{name} must be a numpy array of dtype {accepted}, got {value.dtype}")
    if value.ndim not in (2, 3):
        raise ShapeError(
            f"{name} must be a numpy array (H, W, C) or (H, W), got shape {value.shape}"
        )
    if value.ndim == 3 and value.shape[0] <= 4 < value.shape[2]:
        raise ShapeError(
            f"{name} must be a numpy array (H, W, C) as py360convert takes it, got shape "
            f"{value.shape}, which looks like (C, H, W): pass array.transpose(1, 2, 0)"
        )
    spec = ImageSpec(True, value.dtype, "hwc" if value.ndim == 3 else "hw")
    scale = spec.scale
    work = np.float64 if value.dtype == np.float64 else np.float32
    # (C, H, W) in one pass (a copy unless the array already is a contiguous float image).
    moved = value if value.ndim == 2 else value.transpose(2, 0, 1)
    array = np.ascontiguousarray(moved, dtype=work)
    if scale is not None:
        np.divide(array, scale, out=array)  # a fresh copy: integer input is never float
    with warnings.catch_warnings():
        # A read-only float array is only read (never written) by the samplers.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(array)
    return (tensor[None, None] if value.ndim == 2 else tensor[None]), spec
