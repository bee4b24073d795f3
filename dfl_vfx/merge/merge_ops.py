"""The merger's operations as one typed protocol, and its host form on NumPy arrays.

:class:`dfl_vfx.merge.merger.FaceMerger` writes its per-face steps (crop, colour match, sharpen, motion blur, paste)
once, against :class:`MergeOps`. :class:`HostMergeOps` runs them on NumPy arrays (the native C++ core or the
NumPy/OpenCV reference, :mod:`dfl_vfx.merge.ops`); :class:`dfl_vfx.merge.cuda_ops.CudaMergeOps` runs them on CUDA
torch tensors. This module imports no torch: the CPU merge loads without it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dfl_vfx.face.crop import crop_face_at
from dfl_vfx.merge import ops
from dfl_vfx.merge.color_transfer import transfer_color
from dfl_vfx.merge.face_filters import motion_blur, sharpen

Buffer = Any  # a NumPy array for HostMergeOps, a CUDA torch tensor for CudaMergeOps


class ColourConversion(Protocol):
    """Plate colours <-> the model's input space, on the ops' buffers (WorkingSpace on NumPy arrays,
    TorchWorkingSpace on tensors)."""

    def to_working(self, rgb: Buffer) -> Buffer: ...

    def from_working(self, rgb: Buffer) -> Buffer: ...


class MergeOps(Protocol):
    """What the merger does to its buffers, host or device. Matrices, boxes and scalars are host values."""

    on_gpu: bool

    # buffers
    def upload(self, array: np.ndarray | Buffer) -> Buffer:
        """A host array as a buffer of these ops (float32, or float16 kept)."""
        ...

    def download(self, buffer: Buffer) -> np.ndarray: ...

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> Buffer: ...

    def contiguous(self, buffer: Buffer) -> Buffer: ...

    def float32(self, buffer: Buffer) -> Buffer:
        """The buffer as C-contiguous float32."""
        ...

    # before the network
    def crop_face(self, plate: Buffer, alpha_channel: int | None, origin: tuple[int, int], matrix: np.ndarray,
                  size: int) -> Buffer:
        """The straight, finite (size, size, 3) lanczos crop of ``plate`` (premultiplied RGB first, its alpha at
        ``alpha_channel``; pixel (0, 0) at ``origin``) by the absolute plate -> aligned ``matrix``: the contract
        of :func:`dfl_vfx.face.crop.crop_face_at`."""
        ...

    # after the network, in aligned space
    def transfer_color(self, mode: str, face: Buffer, source: Buffer, mask: Buffer, seed: int) -> Buffer: ...

    def clip_to_range(self, face: Buffer, source: Buffer, margin: float) -> Buffer:
        """``face`` kept within ``source``'s per-channel range plus ``margin``."""
        ...

    def sharpen(self, face: Buffer, mode: str, amount: float, resolution: int) -> Buffer: ...

    def motion_blur(self, face: Buffer, mask: Buffer, velocity: tuple[float, float],
                    power: float) -> tuple[Buffer, Buffer]: ...

    # the paste, in plate pixels
    def warp_source(self, face: Buffer, mask: Buffer) -> Buffer:
        """(R, R, 5): face, mask and a channel of ones, warped together so the warp also gives the coverage."""
        ...

    def warp_to_plate(self, src: Buffer, matrix: np.ndarray, bbox: tuple[int, int, int, int],
                      interpolation: str) -> Buffer: ...

    def unpremultiply(self, rgb: Buffer, alpha: Buffer) -> Buffer: ...

    def union(self, matte: Buffer, mask: Buffer) -> Buffer: ...

    def minimum(self, a: Buffer, b: Buffer) -> Buffer: ...

    def erode_dilate(self, mask: Buffer, radius: float) -> Buffer: ...

    def gaussian_blur(self, mask: Buffer, sigma: float) -> Buffer: ...

    def composite(self, plate: Buffer, face: Buffer, mask: Buffer, origin: tuple[int, int],
                  alpha_channel: int | None) -> None: ...


class HostMergeOps:
    """:class:`MergeOps` on NumPy arrays: the native C++ core, or the NumPy/OpenCV reference."""

    on_gpu = False

    def __init__(self, backend: str = "auto", threads: int = 0) -> None:
        self.backend = backend
        self.threads = threads

    def upload(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.float32) if array.dtype != np.float16 else array

    def download(self, buffer: np.ndarray) -> np.ndarray:
        return buffer

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.zeros(shape, dtype)

    def contiguous(self, buffer: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(buffer)

    def float32(self, buffer: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(buffer, dtype=np.float32)

    def crop_face(self, plate: np.ndarray, alpha_channel: int | None, origin: tuple[int, int], matrix: np.ndarray,
                  size: int) -> np.ndarray:
        alpha = None if alpha_channel is None else plate[..., alpha_channel]
        return crop_face_at(plate[..., :3], alpha, origin, matrix, size, "lanczos")

    def transfer_color(self, mode: str, face: np.ndarray, source: np.ndarray, mask: np.ndarray,
                       seed: int) -> np.ndarray:
        return transfer_color(mode, face, source, mask, mask, seed=seed)

    def clip_to_range(self, face: np.ndarray, source: np.ndarray, margin: float) -> np.ndarray:
        low = source.reshape(-1, 3).min(axis=0) - margin
        high = source.reshape(-1, 3).max(axis=0) + margin
        return np.clip(face, low, high).astype(np.float32)

    def sharpen(self, face: np.ndarray, mode: str, amount: float, resolution: int) -> np.ndarray:
        return sharpen(face, mode, amount, resolution)

    def motion_blur(self, face: np.ndarray, mask: np.ndarray, velocity: tuple[float, float],
                    power: float) -> tuple[np.ndarray, np.ndarray]:
        return motion_blur(face, mask, velocity, power)

    def warp_source(self, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.dstack([face, mask, np.ones(face.shape[:2], np.float32)]), dtype=np.float32)

    def warp_to_plate(self, src: np.ndarray, matrix: np.ndarray, bbox: tuple[int, int, int, int],
                      interpolation: str) -> np.ndarray:
        return ops.warp_to_plate(src, matrix, bbox, interpolation, backend=self.backend, threads=self.threads)

    def unpremultiply(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """rgb / alpha where alpha > 1e-6, else 0 (one reciprocal per pixel: rgb stays exact where alpha is 1)."""
        inverse = np.zeros_like(alpha, dtype=np.float32)
        np.divide(np.float32(1.0), alpha, out=inverse, where=alpha > 1e-6)
        return rgb * inverse[..., None]

    def union(self, matte: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mattes of several faces combine as 1 - (1 - a)(1 - b), in float32, kept in the matte's dtype."""
        return (1.0 - (1.0 - matte.astype(np.float32)) * (1.0 - mask)).astype(matte.dtype)

    def minimum(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.minimum(a, b)

    def erode_dilate(self, mask: np.ndarray, radius: float) -> np.ndarray:
        return ops.erode_dilate(mask, radius, backend=self.backend, threads=self.threads)

    def gaussian_blur(self, mask: np.ndarray, sigma: float) -> np.ndarray:
        return ops.gaussian_blur(mask, sigma, backend=self.backend, threads=self.threads)

    def composite(self, plate: np.ndarray, face: np.ndarray, mask: np.ndarray, origin: tuple[int, int],
                  alpha_channel: int | None) -> None:
        ops.composite(plate, face, mask, origin, alpha_channel, backend=self.backend, threads=self.threads)
