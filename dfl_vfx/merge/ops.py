"""The merge operations with a backend choice: the native C++ core when it is built, else the NumPy reference.

Same names and positional arguments as :mod:`dfl_vfx.merge.reference`, plus keyword ``backend`` ("auto": native
when built, "native": native or a DflError, "reference") and ``threads`` (native only; 0 = one per hardware thread).
Inputs are validated here, once, for both backends: a bad option value (interpolation, backend, non-finite erode or
blur) is a DflError naming it, a wrong array shape or dtype is a ValueError. Masks and faces of any float dtype are
converted to float32; warp sources stay float16 when they are; plates are changed in place and must already be
C-contiguous float16 or float32.
"""

from __future__ import annotations

import math

import numpy as np

from dfl_vfx import native
from dfl_vfx.errors import DflError
from dfl_vfx.merge import reference
from dfl_vfx.merge.reference import paste_bbox

BACKENDS = ("auto", "native", "reference")
INTERPOLATIONS = reference.INTERPOLATIONS
NATIVE_FUNCTIONS = ("warp_to_plate", "erode_dilate", "gaussian_blur", "composite", "paste_face")

__all__ = ["BACKENDS", "INTERPOLATIONS", "composite", "erode_dilate", "gaussian_blur", "native_available",
           "paste_bbox", "paste_face", "warp_to_plate"]


def native_available() -> bool:
    """True when dfl_vfx._native is built and has every merge operation."""
    return native.available() and all(hasattr(native._native, name) for name in NATIVE_FUNCTIONS)


def _use_native(backend: str, threads: int) -> bool:
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 0:
        raise ValueError(f"threads must be an int >= 0 (0 = one per hardware thread), got {threads!r}")
    if backend == "reference":
        return False
    if backend == "auto":
        return native_available()
    if backend == "native":
        if not native_available():
            raise DflError("merge backend 'native': the native core dfl_vfx._native is not built or lacks the merge "
                           "operations; rebuild it with `make` or use backend 'reference'")
        return True
    raise DflError(f"merge backend {backend!r}: unknown; use one of {', '.join(BACKENDS)}")


def check_interpolation(name: str) -> str:
    """The name when it is one of INTERPOLATIONS, else a DflError listing them."""
    if name not in INTERPOLATIONS:
        raise DflError(f"interpolation {name!r}: unknown; use one of {', '.join(INTERPOLATIONS)}")
    return name


def finite_pixels(value: float, name: str) -> float:
    """``value`` as a finite float (a pixel amount), else a DflError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DflError(f"{name} must be a number of pixels, got {value!r}") from None
    if not math.isfinite(number):
        raise DflError(f"{name} must be a finite number of pixels, got {value!r}")
    return number


def _float_array(array: np.ndarray, name: str, ndim: int, keep_half: bool = False) -> np.ndarray:
    """C-contiguous float32 (or float16 when ``keep_half``) array of ``ndim`` dimensions."""
    array = np.asarray(array)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be a float array, got dtype {array.dtype}")
    dtype = np.float16 if keep_half and array.dtype == np.float16 else np.float32
    return np.ascontiguousarray(array, dtype=dtype)


def _matrix(matrix: np.ndarray) -> np.ndarray:
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3):
        raise ValueError(f"matrix must have shape (2, 3), got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"matrix must be finite, got {matrix.tolist()}")
    return matrix


def _ints(values: tuple[int, ...], name: str, count: int) -> tuple[int, ...]:
    values = tuple(values)
    if len(values) != count or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must be {count} ints, got {values!r}")
    return tuple(int(v) for v in values)


def _plate(plate: np.ndarray, alpha_channel: int | None) -> int | None:
    """Checks a plate composited in place; returns alpha_channel as an int or None."""
    if not isinstance(plate, np.ndarray) or plate.ndim != 3 or plate.dtype not in (np.float16, np.float32):
        raise ValueError("plate must be a (H, W, C) float16 or float32 numpy array")
    if not plate.flags.c_contiguous or not plate.flags.writeable:
        raise ValueError("plate must be C-contiguous and writeable (it is changed in place)")
    if plate.shape[2] < 3:
        raise ValueError(f"plate must have premultiplied RGB first, got {plate.shape[2]} channels")
    if alpha_channel is None:
        return None
    if isinstance(alpha_channel, bool) or not isinstance(alpha_channel, int | np.integer) or \
            not 3 <= alpha_channel < plate.shape[2]:
        raise ValueError(f"alpha_channel must be None or a channel index in 3..{plate.shape[2] - 1}, "
                         f"got {alpha_channel!r}")
    return int(alpha_channel)


def warp_to_plate(src: np.ndarray, matrix: np.ndarray, bbox: tuple[int, int, int, int], interpolation: str, *,
                  backend: str = "auto", threads: int = 0) -> np.ndarray:
    """``src`` (h, w, C) float32|float16 sampled at ``matrix @ (x, y, 1)`` over ``bbox`` -> (y1-y0, x1-x0, C)."""
    src = _float_array(src, "src", 3, keep_half=True)
    matrix = _matrix(matrix)
    x0, y0, x1, y1 = _ints(bbox, "bbox (x0, y0, x1, y1)", 4)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"bbox {bbox!r} must satisfy x0 <= x1 and y0 <= y1")
    interpolation = check_interpolation(interpolation)
    if _use_native(backend, threads):
        return native._native.warp_to_plate(src, matrix, (x0, y0, x1, y1), interpolation, threads)
    return reference.warp_to_plate(src, matrix, (x0, y0, x1, y1), interpolation)


def erode_dilate(mask: np.ndarray, radius: float, *, backend: str = "auto", threads: int = 0) -> np.ndarray:
    """Erosion (radius > 0) or dilation (radius < 0) of ``mask`` (h, w) over a disc -> (h, w) float32."""
    mask = _float_array(mask, "mask", 2)
    radius = finite_pixels(radius, "erode radius")
    if _use_native(backend, threads):
        return native._native.erode_dilate(mask, radius, threads)
    return reference.erode_dilate(mask, radius)


def gaussian_blur(mask: np.ndarray, sigma: float, *, backend: str = "auto", threads: int = 0) -> np.ndarray:
    """Separable Gaussian blur of ``mask`` (h, w), zero outside -> (h, w) float32; sigma <= 0 copies."""
    mask = _float_array(mask, "mask", 2)
    sigma = finite_pixels(sigma, "blur sigma")
    if _use_native(backend, threads):
        return native._native.gaussian_blur(mask, sigma, threads)
    return reference.gaussian_blur(mask, sigma)


def composite(plate: np.ndarray, face: np.ndarray, mask: np.ndarray, origin: tuple[int, int],
              alpha_channel: int | None, *, backend: str = "auto", threads: int = 0) -> None:
    """Blend straight ``face`` (h, w, 3) into premultiplied ``plate`` in place at ``origin`` (x0, y0) by ``mask``."""
    alpha_channel = _plate(plate, alpha_channel)
    face = _float_array(face, "face", 3)
    mask = _float_array(mask, "mask", 2)
    if face.shape != mask.shape + (3,):
        raise ValueError(f"face must have shape (h, w, 3) matching mask {mask.shape}, got {face.shape}")
    origin = _ints(origin, "origin (x0, y0)", 2)
    if _use_native(backend, threads):
        native._native.composite(plate, face, mask, origin, alpha_channel, threads)
    else:
        reference.composite(plate, face, mask, origin, alpha_channel)


def paste_face(plate: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray, erode_px: float,
               blur_sigma: float, interpolation: str, alpha_channel: int | None, *, backend: str = "auto",
               threads: int = 0) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Warp, shape and composite one aligned face into ``plate`` in place; returns (bbox, final mask of the bbox).

    ``matrix`` maps plate pixels to aligned pixels; the bbox is :func:`paste_bbox` (end exclusive, array coordinates).
    """
    alpha_channel = _plate(plate, alpha_channel)
    face = _float_array(face, "face", 3)
    mask = _float_array(mask, "mask", 2)
    if face.shape != mask.shape + (3,):
        raise ValueError(f"face must have shape (r, r, 3) matching mask {mask.shape}, got {face.shape}")
    matrix = _matrix(matrix)
    erode_px = finite_pixels(erode_px, "erode_px")
    blur_sigma = finite_pixels(blur_sigma, "blur_sigma")
    interpolation = check_interpolation(interpolation)
    if not _use_native(backend, threads):
        return reference.paste_face(plate, face, mask, matrix, erode_px, blur_sigma, interpolation, alpha_channel)
    bbox = paste_bbox(matrix, mask.shape, erode_px, blur_sigma, plate.shape[:2])
    final = native._native.paste_face(plate, face, mask, matrix, bbox, erode_px, blur_sigma, interpolation,
                                      alpha_channel, threads)
    return bbox, final
