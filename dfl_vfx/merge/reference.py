"""NumPy/OpenCV reference of the merge operations (docs/dev/merge-ops.md): the executable form of the contract.

Owns the exact math every backend is compared against: the affine warp (bilinear, Keys bicubic a = -0.75,
normalised Lanczos a = 4; float64 coordinates, float32 accumulation, 0 outside the source), grey erosion / dilation
over a disc, the separable Gaussian blur, the premultiplied composite (pixels with mask <= 0 are never written) and
the fused per-face paste with its bounding box. No speed tricks: the native core (dfl_vfx._native) is the fast path,
``dfl_vfx.merge.ops`` picks between the two and validates inputs.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

INTERPOLATIONS = ("bilinear", "bicubic", "lanczos")
TAP_OFFSETS = {
    "bilinear": np.arange(0, 2),
    "bicubic": np.arange(-1, 3),
    "lanczos": np.arange(-3, 5),
}
"""Tap positions relative to floor(coordinate), per interpolation."""

MASK_FLOOR = np.float32(1.0 / 255.0)
"""Final mask values below this become 0 in the paste."""

_KEYS_A = -0.75
_CHUNK_PIXELS = 1 << 16  # warp output pixels evaluated at once (bounds the gather buffers)


def kernel_weights(frac: np.ndarray, interpolation: str) -> np.ndarray:
    """Per-axis tap weights (..., taps) float32 for fractional positions ``frac`` in [0, 1) (float64)."""
    t = np.asarray(frac, dtype=np.float64)[..., None] - TAP_OFFSETS[interpolation]
    if interpolation == "bilinear":
        weights = 1.0 - np.abs(t)
    elif interpolation == "bicubic":
        d = np.abs(t)
        near = ((_KEYS_A + 2.0) * d - (_KEYS_A + 3.0)) * d * d + 1.0
        far = ((_KEYS_A * d - 5.0 * _KEYS_A) * d + 8.0 * _KEYS_A) * d - 4.0 * _KEYS_A
        weights = np.where(d <= 1.0, near, np.where(d < 2.0, far, 0.0))
    else:
        weights = np.sinc(t) * np.sinc(t / 4.0)
        weights /= weights.sum(axis=-1, keepdims=True)
    return weights.astype(np.float32)


def warp_to_plate(src: np.ndarray, matrix: np.ndarray, bbox: tuple[int, int, int, int],
                  interpolation: str) -> np.ndarray:
    """Sample ``src`` (h, w, C) at ``matrix @ (x, y, 1)`` for every pixel of ``bbox`` -> (y1-y0, x1-x0, C) float32.

    ``matrix`` (2x3) maps destination pixels to source pixels; taps outside the source read 0. A float16 source is
    converted to float32 first.
    """
    src = np.asarray(src, dtype=np.float32)
    m = np.asarray(matrix, dtype=np.float64)
    x0, y0, x1, y1 = (int(v) for v in bbox)
    h, w, channels = src.shape
    out = np.zeros((y1 - y0, x1 - x0, channels), np.float32)
    if out.size == 0:
        return out
    taps = len(TAP_OFFSETS[interpolation])
    pad = 2 * taps + 1  # coordinates are clamped to (-taps, size + taps), so every tap index lands in the padding
    padded = np.zeros((h + 2 * pad, w + 2 * pad, channels), np.float32)
    padded[pad:pad + h, pad:pad + w] = src
    xs = np.arange(x0, x1, dtype=np.float64)
    rows = max(1, _CHUNK_PIXELS // out.shape[1])
    for r0 in range(0, out.shape[0], rows):
        ys = np.arange(y0 + r0, min(y1, y0 + r0 + rows), dtype=np.float64)[:, None]
        u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        out[r0:r0 + ys.shape[0]] = _sample(padded, pad, u, v, (h, w), interpolation)
    return out


def _sample(padded: np.ndarray, pad: int, u: np.ndarray, v: np.ndarray, size: tuple[int, int],
            interpolation: str) -> np.ndarray:
    """Interpolated values (..., C) of the zero-padded source at coordinates (u, v)."""
    offsets = TAP_OFFSETS[interpolation]
    taps = len(offsets)
    h, w = size
    # A coordinate whose taps all fall outside (or NaN) moves to -taps, where its taps still all read 0.
    outside = ~((u > -taps) & (u < w + taps) & (v > -taps) & (v < h + taps))
    u = np.where(outside, -taps, u)
    v = np.where(outside, -taps, v)
    fu = np.floor(u)
    fv = np.floor(v)
    wx = kernel_weights(u - fu, interpolation)
    wy = kernel_weights(v - fv, interpolation)
    ix = fu.astype(np.int64) + offsets[0] + pad
    iy = fv.astype(np.int64) + offsets[0] + pad
    acc = np.zeros(u.shape + (padded.shape[2],), np.float32)
    for ky in range(taps):
        line = np.zeros_like(acc)
        for kx in range(taps):
            line += wx[..., kx, None] * padded[iy + ky, ix + kx]
        acc += wy[..., ky, None] * line
    return acc


def disc_kernel(radius: float) -> np.ndarray:
    """uint8 (2R+1, 2R+1) structuring element of the integer offsets with dx^2 + dy^2 <= radius^2, R = floor(|r|)."""
    r = abs(float(radius))
    reach = math.floor(r)
    d = np.arange(-reach, reach + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2 <= r * r).astype(np.uint8)


def erode_dilate(mask: np.ndarray, radius: float) -> np.ndarray:
    """Grey erosion (radius > 0) or dilation (radius < 0) of ``mask`` (h, w) over a disc; outside pixels read 0.

    ``|radius| < 1`` returns a copy. Radii beyond ``h + w`` act like ``h + w`` (the extra offsets only reach outside
    pixels, which the disc already covers).
    """
    mask = np.asarray(mask, dtype=np.float32)
    r = abs(float(radius))
    if not r >= 1.0 or mask.size == 0:
        return mask.copy()
    r = min(r, float(mask.shape[0] + mask.shape[1]))
    op = cv2.erode if radius > 0 else cv2.dilate
    return op(mask, disc_kernel(r), borderType=cv2.BORDER_CONSTANT, borderValue=0)


def gaussian_taps(sigma: float) -> np.ndarray:
    """float32 taps k = -r..r, r = ceil(3 sigma): exp(-k^2 / (2 sigma^2)) normalised to sum 1 (in float64)."""
    reach = math.ceil(3.0 * sigma)
    k = np.arange(-reach, reach + 1, dtype=np.float64)
    weights = np.exp(-k * k / (2.0 * sigma * sigma))
    return (weights / weights.sum()).astype(np.float32)


def gaussian_blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``mask`` (h, w) by :func:`gaussian_taps`; outside pixels read 0; sigma <= 0 copies."""
    mask = np.asarray(mask, dtype=np.float32)
    if not sigma > 0 or mask.size == 0:
        return mask.copy()
    taps = gaussian_taps(sigma)
    return cv2.sepFilter2D(mask, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_CONSTANT)


def composite(plate: np.ndarray, face: np.ndarray, mask: np.ndarray, origin: tuple[int, int],
              alpha_channel: int | None) -> None:
    """Blend ``face`` (h, w, 3) into ``plate`` (H, W, C) in place over the box at ``origin`` (x0, y0), by ``mask``.

    The plate's first three channels are premultiplied RGB, ``face`` is straight opaque RGB. Per pixel with
    m = mask: m <= 0 or NaN leaves the plate pixel unwritten; m >= 1 writes the face and alpha 1; otherwise
    rgb = face * m + rgb * (1 - m) and alpha = m + alpha * (1 - m), in float32, rounded once to the plate's dtype.
    The part of the box outside the plate is ignored.
    """
    x0, y0 = int(origin[0]), int(origin[1])
    h, w = mask.shape
    i0, i1 = max(0, -y0), min(h, plate.shape[0] - y0)
    j0, j1 = max(0, -x0), min(w, plate.shape[1] - x0)
    if i1 <= i0 or j1 <= j0:
        return
    region = plate[y0 + i0:y0 + i1, x0 + j0:x0 + j1]
    m = np.asarray(mask[i0:i1, j0:j1], dtype=np.float32)
    write = m > 0
    if not write.any():
        return
    mw = m[write]
    full = mw >= 1
    keep = np.float32(1.0) - mw
    fw = np.asarray(face[i0:i1, j0:j1, :3], dtype=np.float32)[write]
    rgb = region[..., :3]
    old = rgb[write].astype(np.float32)
    rgb[write] = np.where(full[:, None], fw, fw * mw[:, None] + old * keep[:, None]).astype(plate.dtype)
    if alpha_channel is not None:
        alpha = region[..., alpha_channel]
        old_alpha = alpha[write].astype(np.float32)
        alpha[write] = np.where(full, np.float32(1.0), mw + old_alpha * keep).astype(plate.dtype)


def paste_bbox(matrix: np.ndarray, face_shape: tuple[int, int], erode_px: float, blur_sigma: float,
               plate_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Plate box (x0, y0, x1, y1), end exclusive, that a face of ``face_shape`` (h, w) can touch in the paste.

    The aligned square's corners (-0.5, -0.5) and (w - 0.5, h - 0.5) (the area its pixels cover) are mapped into the
    plate with the inverse of ``matrix`` (plate -> aligned); the box holds every pixel whose centre lies within their
    extent grown by ``max(0, -erode_px) + 3 * max(0, blur_sigma) + 2``, clipped to ``plate_shape`` (H, W). A face
    entirely off the plate gives an empty box. Raises ValueError for a singular matrix.
    """
    (a, b, c), (d, e, f) = (tuple(float(x) for x in row) for row in np.asarray(matrix, dtype=np.float64))
    det = a * e - b * d
    if det == 0.0 or not math.isfinite(det):
        raise ValueError(f"matrix {np.asarray(matrix).tolist()} is not invertible")
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    tx = -(ia * c + ib * f)
    ty = -(id_ * c + ie * f)
    h, w = face_shape
    corners = [(-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5)]
    xs = [ia * cx + ib * cy + tx for cx, cy in corners]
    ys = [id_ * cx + ie * cy + ty for cx, cy in corners]
    grow = max(0.0, -float(erode_px)) + 3.0 * max(0.0, float(blur_sigma)) + 2.0
    plate_h, plate_w = plate_shape
    x0 = min(max(math.floor(min(xs) - grow), 0), plate_w)
    x1 = min(max(math.floor(max(xs) + grow) + 1, 0), plate_w)
    y0 = min(max(math.floor(min(ys) - grow), 0), plate_h)
    y1 = min(max(math.floor(max(ys) + grow) + 1, 0), plate_h)
    return x0, y0, x1, y1


def warp_footprint(matrix: np.ndarray, face_shape: tuple[int, int], interpolation: str,
                   plate_shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Plate box (x0, y0, x1, y1), end exclusive, outside which :func:`warp_to_plate` of a face of ``face_shape``
    (h, w) with ``matrix`` (plate -> aligned) and ``interpolation`` is exactly 0, clipped to ``plate_shape`` (H, W).

    A source pixel k gets weight only at coordinates u with floor(u) - k in the kernel's tap offsets, so the warp is 0
    unless u lies in [-last offset, w - first offset) (bilinear [-1, w), bicubic [-2, w + 1), lanczos [-4, w + 3)),
    and likewise for v. The box is that rectangle's bounding box in the plate, one pixel wider each side for rounding.
    Raises ValueError for a singular matrix.
    """
    m = np.asarray(matrix, dtype=np.float64)
    det = float(np.linalg.det(m[:, :2]))
    if det == 0.0 or not math.isfinite(det):
        raise ValueError(f"matrix {m.tolist()} is not invertible")
    offsets = TAP_OFFSETS[interpolation]
    h, w = face_shape
    low, high_x, high_y = -float(offsets[-1]), float(w - offsets[0]), float(h - offsets[0])
    corners = np.array([(low, low), (high_x, low), (low, high_y), (high_x, high_y)], np.float64)
    inverse = np.linalg.inv(m[:, :2])
    plate = (corners - m[:, 2]) @ inverse.T
    plate_h, plate_w = plate_shape
    x0 = min(max(math.floor(plate[:, 0].min()) - 1, 0), plate_w)
    x1 = min(max(math.floor(plate[:, 0].max()) + 2, 0), plate_w)
    y0 = min(max(math.floor(plate[:, 1].min()) - 1, 0), plate_h)
    y1 = min(max(math.floor(plate[:, 1].max()) + 2, 0), plate_h)
    return x0, y0, x1, y1


def paste_face(plate: np.ndarray, face: np.ndarray, mask: np.ndarray, matrix: np.ndarray, erode_px: float,
               blur_sigma: float, interpolation: str,
               alpha_channel: int | None) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Paste an aligned face (r, r, 3) with its mask (r, r) into ``plate`` in place; ``matrix`` maps plate -> aligned.

    Steps: :func:`paste_bbox`; warp face and mask together into the box; clip the mask to [0, 1]; erode/dilate by
    ``erode_px``; blur by ``blur_sigma``; zero values below 1/255; :func:`composite`. Returns (bbox, final mask).
    """
    bbox = paste_bbox(matrix, mask.shape, erode_px, blur_sigma, plate.shape[:2])
    source = np.concatenate([np.asarray(face, np.float32), np.asarray(mask, np.float32)[..., None]], axis=2)
    warped = warp_to_plate(source, matrix, bbox, interpolation)
    final = np.clip(warped[..., 3], 0.0, 1.0)
    final = gaussian_blur(erode_dilate(final, erode_px), blur_sigma)
    final[final < MASK_FLOOR] = 0.0
    composite(plate, warped[..., :3], final, bbox[:2], alpha_channel)
    return bbox, final
