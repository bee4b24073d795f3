"""The plate -> aligned face crop, once for extraction, the merger and eval: matrix, box and lanczos warp.

A face is cut from a scene-linear plate at a face type and size: the frame -> aligned matrix of
:func:`dfl_vfx.face.align.get_transform_mat` (absolute plate pixels, data-window origin included), then only the box
of plate pixels the warp reads (the aligned square's corners plus the lanczos reach) is taken, made finite (NaN/Inf
-> 0), unpremultiplied by the plate's alpha when one is given, and warped. Extraction writes these crops into the
faceset, the merger feeds them to the network and eval compares them with the model's reconstruction, so the three
see the same pixels. The GPU merger's crop (:meth:`dfl_vfx.merge.cuda_ops.CudaMergeOps.crop_face`) is the device
form of :func:`crop_face_at`: the same matrices, the CUDA lanczos kernel.

Pure math: arrays in, arrays out, no I/O.
"""

from __future__ import annotations

import math

import numpy as np

from dfl_vfx.color.ocio import unpremultiply
from dfl_vfx.face.align import aligned_quad, get_transform_mat, warp_to_aligned
from dfl_vfx.face.face_type import FaceType

CROP_REACH = 4  # lanczos (a = 4) reads 3 pixels before a sample and 4 after: the box keeps 4 on each side


def local_matrix(matrix: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """An absolute plate -> aligned matrix for an array whose pixel (0, 0) lies at ``origin`` (x, y)."""
    local = np.array(matrix, np.float64)
    local[:, 2] += local[:, :2] @ np.array(origin, np.float64)
    return local


def crop_box(matrix: np.ndarray, size: int, origin: tuple[int, int],
             shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end exclusive, of the array pixels the crop reads: the aligned square's corners in the
    array grown by :data:`CROP_REACH`, clipped to ``shape`` (height, width); empty when the face is off the array."""
    quad = aligned_quad(matrix, size) - np.array(origin, np.float64)
    h, w = shape
    x0, y0 = (max(0, int(math.floor(v)) - CROP_REACH) for v in quad.min(axis=0))
    x1 = min(w, int(math.ceil(quad[:, 0].max())) + CROP_REACH + 1)
    y1 = min(h, int(math.ceil(quad[:, 1].max())) + CROP_REACH + 1)
    return x0, y0, x1, y1


def crop_face_at(pixels: np.ndarray, alpha: np.ndarray | None, origin: tuple[int, int], matrix: np.ndarray,
                 size: int, interpolation: str = "lanczos") -> np.ndarray:
    """The (size, size, C) float32 aligned face of ``matrix`` (absolute plate -> aligned) cut from ``pixels``.

    ``pixels`` (H, W, C) is premultiplied when ``alpha`` (H, W) is given, straight otherwise; its pixel (0, 0) lies
    at ``origin``. Only the box the warp reads is converted to float32, cleaned of NaN/Inf (alpha NaN counts as 1)
    and unpremultiplied. A face off the array is all zeros.
    """
    x0, y0, x1, y1 = crop_box(matrix, size, origin, pixels.shape[:2])
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size, size, pixels.shape[2]), np.float32)
    region = np.nan_to_num(np.asarray(pixels[y0:y1, x0:x1], np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if alpha is not None:
        region = unpremultiply(region, np.nan_to_num(np.asarray(alpha[y0:y1, x0:x1], np.float32), nan=1.0))
    return warp_to_aligned(region, local_matrix(matrix, (origin[0] + x0, origin[1] + y0)), size, interpolation)


def crop_face(pixels: np.ndarray, alpha: np.ndarray | None, origin: tuple[int, int], landmarks: np.ndarray,
              face_type: FaceType, size: int, interpolation: str = "lanczos") -> tuple[np.ndarray, np.ndarray]:
    """(aligned face, absolute plate -> aligned matrix) for 68 ``landmarks`` in absolute plate pixels at
    ``face_type`` and ``size``: :func:`get_transform_mat`, then :func:`crop_face_at`."""
    matrix = get_transform_mat(landmarks, size, face_type)
    return crop_face_at(pixels, alpha, origin, matrix, size, interpolation), matrix
