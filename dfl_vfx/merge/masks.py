"""Merge masks: mask-mode expressions over the landmark hull and the learned masks, DeepFaceLab's erode/blur units.

A mask mode is a sum of products of mask names, e.g. ``learned-prd*learned-dst`` (DeepFaceLab's default) or
``hull+learned-dst``; sums are clipped to 1. DeepFaceLab's numeric modes 0..9 are accepted as aliases. The XSeg
masks (``xseg-prd``: an XSeg model on the predicted face, ``xseg-dst``: on the dst face) need the ``xseg_model``
setting (see :mod:`dfl_vfx.xseg.masker`).

Erode and blur keep DeepFaceLab's units: pixels of the aligned face at 4x the model resolution (an erode of 40 on a
256 model is 40 px at 1024). :func:`plate_px_per_unit` is the plate size of one such unit for a face, and
:func:`plate_erode_radius`, :func:`plate_clip_margin` and :func:`plate_blur_sigma` turn the settings into plate
pixels with it, so the same setting looks the same on a 1080p and a 4K plate. The swap header gives each face's
``px_per_unit`` so that a host converts any erode or blur with these same formulas (docs/dev/swap-output.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dfl_vfx.schema import SettingError

XSEG_NAMES = ("xseg-prd", "xseg-dst")
MASK_NAMES = ("full", "hull", "learned-prd", "learned-dst", *XSEG_NAMES)
DFL_MASK_MODES = {
    "0": "full",
    "1": "hull",
    "2": "learned-prd",
    "3": "learned-dst",
    "4": "learned-prd*learned-dst",
    "5": "learned-prd+learned-dst",
    "6": "xseg-prd",
    "7": "xseg-dst",
    "8": "xseg-prd*xseg-dst",
    "9": "learned-prd*learned-dst*xseg-prd*xseg-dst",
}
DEFAULT_MASK_MODE = "learned-prd*learned-dst"
MASK_PROCESSING_SCALE = 4  # DeepFaceLab processes masks in aligned space at 4x the model resolution


def parse_mask_mode(mode: str) -> list[list[str]]:
    """``"a*b+c"`` -> ``[["a", "b"], ["c"]]``; DeepFaceLab's numbers map to their names."""
    text = DFL_MASK_MODES.get(str(mode).strip(), str(mode).strip().lower())
    terms = [[name.strip() for name in term.split("*")] for term in text.split("+")]
    for term in terms:
        for name in term:
            if name not in MASK_NAMES:
                raise SettingError("mask_mode", mode, f"unknown mask {name!r}; combine {', '.join(MASK_NAMES)} "
                                   f"with * and + (e.g. {DEFAULT_MASK_MODE}) or use DeepFaceLab's 0..9")
    return terms


def mask_names(mode: str) -> set[str]:
    """The masks a mode needs (so callers only build those)."""
    return {name for term in parse_mask_mode(mode) for name in term}


def needs_xseg(mode: str) -> bool:
    """Whether a mode uses an XSeg mask (and so needs the ``xseg_model`` setting)."""
    return bool(mask_names(mode) & set(XSEG_NAMES))


def combine_masks(mode: str, masks: dict[str, Any]) -> Any:
    """Evaluate a mask mode over named (H, W) masks in [0, 1] (float32 NumPy arrays or torch tensors alike)."""
    terms = parse_mask_mode(mode)
    if not masks:
        raise ValueError("combine_masks needs at least one mask array to know the shape")
    like = next(iter(masks.values()))
    total = None
    for term in terms:
        product = None
        for name in term:
            if name == "full":
                value = like * 0 + 1.0
            elif name in masks:
                value = masks[name]
                value = np.asarray(value, np.float32) if isinstance(value, np.ndarray | list) else value
                value = value.clip(0.0, 1.0)
            else:
                raise ValueError(f"mask mode {mode!r} needs the {name!r} mask")
            product = value if product is None else product * value
        total = product if total is None else total + product
    return total.clip(0.0, 1.0)


def face_scale(matrix: np.ndarray) -> float:
    """Aligned pixels per plate pixel of a 2x3 similarity (plate -> aligned)."""
    return float(math.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def opencv_gaussian_sigma(kernel_size: int) -> float:
    """The sigma OpenCV derives from an odd kernel size when given sigma 0 (as DeepFaceLab's blur does)."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1.0) + 0.8


def plate_px_per_unit(matrix: np.ndarray) -> float:
    """Plate pixels per DeepFaceLab erode/blur unit (a pixel of the face at 4x model resolution):
    ``1 / (4 * scale)``, scale = aligned pixels per plate pixel of ``matrix`` (plate -> aligned)."""
    return 1.0 / (face_scale(matrix) * MASK_PROCESSING_SCALE)


def dfl_blur_kernel(blur: float) -> int:
    """DeepFaceLab's odd blur kernel size for a blur setting: ``int(blur)`` made odd by adding 1 to even sizes."""
    return int(blur) + (1 - int(blur) % 2)


def plate_erode_radius(erode: float, matrix: np.ndarray) -> float:
    """DeepFaceLab erode (elliptical kernel of ``erode`` px at 4x model res) as a disc radius in plate pixels:
    ``erode / 2 * px_per_unit`` (> 0 erodes, < 0 dilates)."""
    return erode / 2.0 * plate_px_per_unit(matrix)


def plate_clip_margin(blur: float, matrix: np.ndarray) -> float:
    """How far inside the face's coverage the shaped matte must stay so that blurring it fades to 0 within the
    predicted face (DeepFaceLab clips the eroded mask by half the blur kernel): ``max(blur, 0) / 2 * px_per_unit``
    plate pixels, the radius the coverage is eroded by before it limits the matte."""
    return max(float(blur), 0.0) / 2.0 * plate_px_per_unit(matrix)


def plate_blur_sigma(blur: float, matrix: np.ndarray) -> float:
    """DeepFaceLab blur (Gaussian, odd kernel ``blur`` px at 4x model res, OpenCV sigma) as a plate-pixel sigma:
    ``opencv_gaussian_sigma(dfl_blur_kernel(blur)) * px_per_unit``, 0 for ``blur <= 0``."""
    if blur <= 0:
        return 0.0
    return opencv_gaussian_sigma(dfl_blur_kernel(blur)) * plate_px_per_unit(matrix)
