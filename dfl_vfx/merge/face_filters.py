"""Per-face filters of the merger (reference section 6 knobs) applied to the aligned face before compositing.

Owns ``--sharpen-mode`` / ``--sharpen-amount`` (blur or unsharp-mask sharpen), ``--motion-blur-power``,
``--bicubic-degrade-power`` and ``--output-face-scale``. Faces are (H, W, 3) float32 in the working space (ACEScct);
nothing is clipped, so values above 1 and slightly negative ones survive. Every function returns new arrays.
"""

import math
from numbers import Real

import cv2
import numpy as np

from dfl_vfx.schema import SettingError

SHARPEN_MODES = ("none", "box", "gaussian")
REFERENCE_RESOLUTION = 256
"""Face resolution at which the ``size`` given to :func:`sharpen` is the kernel size in pixels."""
DEGRADE_MIN_SCALE = 0.1
"""Relative size of the intermediate image of :func:`degrade_bicubic` at power 100 (linear from 1.0 at power 0)."""


def _check_range(setting: str, value: float, low: float, high: float) -> float:
    if not (isinstance(value, Real) and math.isfinite(value) and low <= value <= high):
        raise SettingError(setting, value, f"must be in {low:g}..{high:g}")
    return float(value)


def _as_face(face: np.ndarray) -> np.ndarray:
    face = np.asarray(face, dtype=np.float32)
    if face.ndim != 3 or face.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) face, got shape {face.shape}")
    return face


def scaled_kernel_size(size: int, resolution: int) -> int:
    """Odd kernel size for a face of ``resolution`` px: the radius ``(size - 1) / 2`` of a 256-px face scaled by
    ``resolution / 256`` and rounded, so a 3-px kernel at 256 is 5 px at 512 and 9 px at 1024; at least 3."""
    radius = round((size - 1) / 2 * resolution / REFERENCE_RESOLUTION)
    return max(3, 2 * radius + 1)


def sharpen(face: np.ndarray, mode: str, amount: float, size: int = 3) -> np.ndarray:
    """Unsharp-mask sharpen (``amount`` > 0) or blur (< 0) of an aligned face; ``mode`` "none" or 0 is a copy.

    ``out = face + amount / 100 * (face - blurred)`` with ``blurred`` a box or Gaussian (OpenCV's default sigma for
    the kernel size) of :func:`scaled_kernel_size` (``size``, face height): +100 doubles the detail above the kernel
    scale, -100 is the blurred face itself. Borders reflect (OpenCV's BORDER_REFLECT_101).
    """
    if mode not in SHARPEN_MODES:
        raise SettingError("sharpen_mode", mode, f"unknown; use one of {', '.join(SHARPEN_MODES)}")
    amount = _check_range("sharpen_amount", amount, -100, 100)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise SettingError("sharpen_size", size, "must be a whole number of pixels >= 1")
    face = _as_face(face)
    if mode == "none" or amount == 0:
        return face.copy()
    kernel = scaled_kernel_size(int(size), face.shape[0])
    if mode == "box":
        blurred = cv2.blur(face, (kernel, kernel))
    else:
        blurred = cv2.GaussianBlur(face, (kernel, kernel), 0)
    return (face + np.float32(amount / 100.0) * (face - blurred)).astype(np.float32)


def motion_blur_kernel(velocity_px: tuple[float, float], power: float) -> np.ndarray | None:
    """Normalised line kernel (odd square) of length ``|v| * power / 100`` along ``v`` = (dx, dy), centred, with
    sub-pixel (bilinear) end points; None when the length is below 0.01 px (no blur)."""
    dx, dy = (float(c) for c in velocity_px)
    length = math.hypot(dx, dy) * power / 100.0
    if not math.isfinite(length) or length < 0.01:
        return None
    half = math.ceil(length / 2.0) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), np.float64)
    samples = max(2, math.ceil(length * 8.0) + 1)
    t = np.linspace(-0.5, 0.5, samples) * length
    xs = half + t * dx / math.hypot(dx, dy)
    ys = half + t * dy / math.hypot(dx, dy)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for offset_y, offset_x, weight in (
        (0, 0, (1 - fx) * (1 - fy)),
        (0, 1, fx * (1 - fy)),
        (1, 0, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(kernel, (y0 + offset_y, x0 + offset_x), weight)
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(
    face: np.ndarray, mask: np.ndarray, velocity_px: tuple[float, float], power: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linear motion blur of the aligned face and its mask along the face's motion ``velocity_px`` = (dx, dy).

    The velocity is in aligned pixels per frame; the blur is a centred line of length ``|v| * power / 100``
    (:func:`motion_blur_kernel`). Face borders replicate, the mask reads 0 outside the square. ``power`` 0 or no
    motion returns copies.
    """
    power = _check_range("motion_blur", power, 0, 100)
    face = _as_face(face)
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != face.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match face {face.shape[:2]}")
    kernel = motion_blur_kernel(velocity_px, power)
    if kernel is None:
        return face.copy(), mask.copy()
    blurred_face = cv2.filter2D(face, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    blurred_mask = cv2.filter2D(mask, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return blurred_face, blurred_mask


def degrade_bicubic(face: np.ndarray, power: float) -> np.ndarray:
    """Down/up-scale degradation: bicubic to ``1 - 0.9 * power / 100`` of the size (at least 2 px) and back.

    ``power`` 0 is a copy; 100 goes through a tenth of the resolution.
    """
    power = _check_range("bicubic_degrade_power", power, 0, 100)
    face = _as_face(face)
    if power == 0:
        return face.copy()
    height, width = face.shape[:2]
    scale = 1.0 - (1.0 - DEGRADE_MIN_SCALE) * power / 100.0
    small = (max(2, round(width * scale)), max(2, round(height * scale)))
    reduced = cv2.resize(face, small, interpolation=cv2.INTER_CUBIC)
    return cv2.resize(reduced, (width, height), interpolation=cv2.INTER_CUBIC)


def face_scale_matrix(matrix: np.ndarray, size: int, scale_percent: float) -> np.ndarray:
    """DFL's output_face_scale: the plate->aligned 2x3 ``matrix`` changed so the pasted face is ``1 + s/100`` times
    bigger in the plate, about the aligned centre ``(size / 2, size / 2)`` (the middle of the square the crop maps
    to ``(0, 0)..(size, size)``), whose plate point stays put. Returns a new float64 2x3 matrix.
    """
    scale_percent = _check_range("face_scale", scale_percent, -50, 50)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (2, 3) or size <= 0:
        raise ValueError(f"need a 2x3 matrix and a positive size, got {matrix.shape} and {size}")
    shrink = 1.0 / (1.0 + scale_percent / 100.0)
    centre = size / 2.0
    about_centre = np.array([[shrink, 0.0, centre * (1.0 - shrink)], [0.0, shrink, centre * (1.0 - shrink)]])
    return about_centre[:, :2] @ matrix + np.hstack([np.zeros((2, 2)), about_centre[:, 2:]])
