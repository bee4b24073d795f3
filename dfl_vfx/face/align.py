"""Face alignment maths: Umeyama similarity fit, DeepFaceLab's frame->aligned crop matrix, point and image warps.

All matrices are 2x3 float64 affines mapping frame pixel coordinates to aligned-image pixel coordinates
(OpenCV convention: x right, y down, integer values at pixel centres).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.template import TEMPLATE_INDICES, TEMPLATE_POINTS

_INTERPOLATIONS: dict[str, int] = {
    "lanczos": cv2.INTER_LANCZOS4,
    "cubic": cv2.INTER_CUBIC,
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
}
_BORDERS: dict[str, int] = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}
_CV2_MAX_CHANNELS = 4


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity (or rigid, without scale) transform taking ``src`` onto ``dst``.

    Umeyama 1991, "Least-squares estimation of transformation parameters between two point patterns":
    with means mu_s, mu_d, source variance var_s and cross-covariance Sigma = (dst-mu_d)^T (src-mu_s) / n,
    take the SVD Sigma = U D V^T and S = diag(1, .., 1, -1) when det(Sigma) < 0 (else the identity); for a
    rank-deficient Sigma the last sign follows det(U) det(V) instead. Then R = U S V^T,
    c = trace(D S) / var_s and t = mu_d - c R mu_s.

    src, dst: (N, d) point sets. Returns the (d+1)x(d+1) homogeneous matrix [[c R, t], [0, 1]].
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise DflError(f"umeyama needs two equal (N, d) point sets with N >= 2, got {src.shape} and {dst.shape}")
    count, dim = src.shape
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_centred = src - src_mean
    dst_centred = dst - dst_mean
    covariance = dst_centred.T @ src_centred / count
    u, singular, vt = np.linalg.svd(covariance)

    signs = np.ones(dim)
    rank = int((singular > singular.max() * dim * np.finfo(np.float64).eps).sum())
    if rank == 0:
        raise DflError("umeyama: the point sets are degenerate (all points coincide)")
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            signs[-1] = -1.0
    elif np.linalg.det(covariance) < 0:
        signs[-1] = -1.0
    rotation = u @ np.diag(signs) @ vt

    scale = 1.0
    if estimate_scale:
        src_variance = (src_centred**2).sum() / count
        scale = float(singular @ signs) / src_variance

    result = np.eye(dim + 1)
    result[:dim, :dim] = scale * rotation
    result[:dim, dim] = dst_mean - scale * rotation @ src_mean
    return result


def invert_affine(mat: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine, in float64."""
    mat = np.asarray(mat, dtype=np.float64)
    linear_inverse = np.linalg.inv(mat[:, :2])
    return np.hstack([linear_inverse, -linear_inverse @ mat[:, 2:3]])


def transform_points(points: np.ndarray, mat: np.ndarray, invert: bool = False) -> np.ndarray:
    """Apply a 2x3 affine (or its inverse) to points of shape (..., 2); returns float64 of the same shape."""
    points = np.asarray(points, dtype=np.float64)
    mat = invert_affine(mat) if invert else np.asarray(mat, dtype=np.float64)
    return points @ mat[:, :2].T + mat[:, 2]


def _landmarks_68(landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
        raise DflError(f"face landmarks must be 68 finite (x, y) points, got an array of shape {landmarks.shape}")
    return landmarks


def averaged_yaw(template_landmarks: np.ndarray) -> float:
    """Horizontal asymmetry of a face in template units, the yaw cue used to centre HEAD crops.

    Mean x-distance from the nose bridge (27, 28, 29) to the image-right jaw (16, 15, 14), minus the mean
    x-distance from the image-left jaw (0, 1, 2) to the same bridge points. Zero for a frontal face; positive
    when the image-right side of the face looks wider (the nose has moved toward the image's left).
    """
    x = np.asarray(template_landmarks, dtype=np.float64)[:, 0]
    bridge = x[[27, 28, 29]]
    left = bridge - x[[0, 1, 2]]
    right = x[[16, 15, 14]] - bridge
    return float(right.mean() - left.mean())


def get_transform_mat(landmarks: np.ndarray, output_size: int, face_type: FaceType, scale: float = 1.0) -> np.ndarray:
    """The 2x3 frame->aligned affine of DeepFaceLab (reference 1.3) for a square output of ``output_size``.

    ``scale`` > 1 zooms in (the crop half-diagonal is divided by it). MARK_ONLY has no crop and raises.
    """
    face_type = FaceType(face_type)
    if not face_type.has_crop:
        raise DflError("face type mark_only has no aligned crop; extract with half_face, full_face, whole_face or head")
    if output_size <= 0 or scale <= 0:
        raise DflError(f"aligned output size and scale must be positive, got {output_size} and {scale}")
    landmarks = _landmarks_68(landmarks)

    to_template = umeyama(landmarks[list(TEMPLATE_INDICES)], TEMPLATE_POINTS, estimate_scale=True)[:2]
    unit_square = np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0.5, 0.5)], dtype=np.float64)
    top_left, top_right, bottom_right, bottom_left, centre = transform_points(unit_square, to_template, invert=True)

    diagonal_tl_br = bottom_right - top_left
    diagonal_bl_tr = top_right - bottom_left
    unit_diag_1 = diagonal_tl_br / np.linalg.norm(diagonal_tl_br)
    unit_diag_2 = diagonal_bl_tr / np.linalg.norm(diagonal_bl_tr)
    half_diagonal = (1.0 / scale) * np.linalg.norm(diagonal_tl_br) * (face_type.padding * math.sqrt(2.0) + 0.5)

    up = top_left - bottom_left  # one template side long, pointing to the top edge
    across = top_right - top_left  # one template side long, pointing along template +x
    if face_type is FaceType.HEAD:
        yaw = averaged_yaw(transform_points(landmarks, to_template))
        yaw *= abs(math.tanh(2.0 * yaw))
        centre = centre + across * (yaw / 2.0)
    centre = centre + up * face_type.up_shift

    corners = np.array(
        [
            centre - unit_diag_1 * half_diagonal,
            centre + unit_diag_2 * half_diagonal,
            centre + unit_diag_1 * half_diagonal,
        ]
    )
    if face_type.remove_align:
        # The rotated square has area 2 m^2 (m = half-diagonal): same area, axis-aligned, half-side m / sqrt(2).
        half_side = half_diagonal / math.sqrt(2.0)
        corners = centre + np.array([(-half_side, -half_side), (half_side, -half_side), (half_side, half_side)])
    targets = np.array([(0, 0), (output_size, 0), (output_size, output_size)], dtype=np.float32)
    return cv2.getAffineTransform(corners.astype(np.float32), targets).astype(np.float64)


def aligned_quad(mat: np.ndarray, size: int) -> np.ndarray:
    """Frame-space corners (TL, TR, BR, BL) of the ``size`` x ``size`` aligned square, shape (4, 2)."""
    corners = np.array([(0, 0), (size, 0), (size, size), (0, size)], dtype=np.float64)
    return transform_points(corners, mat, invert=True)


def warp_to_aligned(
    image: np.ndarray, mat: np.ndarray, size: int, interpolation: str = "lanczos", border: str = "constant"
) -> np.ndarray:
    """Warp a float image (H, W) or (H, W, C), any C, into the ``size`` x ``size`` aligned frame of ``mat``.

    interpolation: lanczos, cubic, linear or nearest; border: constant (zeros) or replicate.
    Returns float32 with the input's channel layout.
    """
    if interpolation not in _INTERPOLATIONS:
        raise DflError(f"unknown interpolation {interpolation!r}: use one of {', '.join(_INTERPOLATIONS)}")
    if border not in _BORDERS:
        raise DflError(f"unknown border mode {border!r}: use one of {', '.join(_BORDERS)}")
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating) or image.ndim not in (2, 3):
        raise DflError(f"warp_to_aligned needs a float (H, W) or (H, W, C) image, got {image.dtype} {image.shape}")
    image = image.astype(np.float32, copy=False)

    def warp(plane: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(
            np.ascontiguousarray(plane),
            np.asarray(mat, dtype=np.float64),
            (size, size),
            flags=_INTERPOLATIONS[interpolation],
            borderMode=_BORDERS[border],
            borderValue=0.0,
        )

    if image.ndim == 2:
        return warp(image)
    channels = image.shape[2]
    chunks = []
    for start in range(0, channels, _CV2_MAX_CHANNELS):
        warped = warp(image[:, :, start : start + _CV2_MAX_CHANNELS])
        chunks.append(warped.reshape(size, size, -1))
    return np.concatenate(chunks, axis=2) if len(chunks) > 1 else chunks[0]
