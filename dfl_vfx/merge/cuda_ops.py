"""The merge operations on CUDA torch tensors (dfl_vfx._native_cuda): same names and semantics as the reference.

Every function validates its tensors, allocates outputs and scratch with torch (so on torch's caching allocator) and
enqueues the kernels on torch's current CUDA stream of the tensors' device: the work stays on the GPU, nothing is
copied back to the host, and it is ordered with other torch, ONNX Runtime or TensorRT work on that stream. Matrices,
boxes and scalars are host values. A missing GPU or CUDA build, a host (CPU) tensor or a bad option value is a
DflError; a wrong shape, dtype or layout is a ValueError, as in :mod:`dfl_vfx.merge.ops`. :class:`CudaMergeOps` is the
merger's :class:`~dfl_vfx.merge.merge_ops.MergeOps` on these functions. With :mod:`dfl_vfx.merge.color_transfer_torch`
this is where the merge imports torch, and the merger imports it only for a CUDA merge.
"""

from __future__ import annotations

import numpy as np
import torch

from dfl_vfx import native
from dfl_vfx.color.ocio import ALPHA_EPSILON
from dfl_vfx.errors import DflError
from dfl_vfx.face.crop import local_matrix
from dfl_vfx.merge.color_transfer import transfer_color
from dfl_vfx.merge.color_transfer_torch import TORCH_TRANSFER_MODES
from dfl_vfx.merge.color_transfer_torch import transfer_color as transfer_color_torch
from dfl_vfx.merge.face_filters import motion_blur, sharpen
from dfl_vfx.merge.ops import check_interpolation, finite_pixels
from dfl_vfx.merge.reference import paste_bbox

__all__ = ["CudaMergeOps", "composite", "crop_to_aligned", "erode_dilate", "gaussian_blur", "paste_face",
           "warp_to_plate"]

_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16"}


def _module(operation: str):
    """The CUDA module, or a DflError saying why the GPU path cannot run."""
    reason = native.cuda_unavailable_reason()
    if reason is not None:
        raise DflError(f"{operation} needs an NVIDIA GPU and the CUDA build of dfl_vfx ({reason}); "
                       "use dfl_vfx.merge.ops on NumPy arrays instead")
    return native._native_cuda


def _tensor(value: object, name: str, ndim: int, dtypes: tuple[torch.dtype, ...]) -> torch.Tensor:
    """Checks a CUDA tensor argument: device, dimensions, dtype, C-contiguity."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor on a CUDA device, got {type(value).__name__}")
    if value.device.type != "cuda":
        raise DflError(f"{name} is on the {value.device.type} device; the CUDA merge operations need CUDA tensors "
                       "(move it with .cuda(), or use dfl_vfx.merge.ops for host arrays)")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    if value.dtype not in dtypes:
        names = " or ".join(_DTYPE_NAMES[d] for d in dtypes)
        raise ValueError(f"{name} must be {names}, got {value.dtype}")
    if not value.is_contiguous():
        raise ValueError(f"{name} must be C-contiguous; call .contiguous() first")
    return value


def _same_device(reference: torch.Tensor, **others: torch.Tensor) -> None:
    for name, tensor in others.items():
        if tensor.device != reference.device:
            raise ValueError(f"{name} is on {tensor.device} but the other tensors are on {reference.device}")


def _launch_args(tensor: torch.Tensor) -> tuple[int, int]:
    """(device index, current stream handle) for work on ``tensor``'s device."""
    device = tensor.device.index if tensor.device.index is not None else torch.cuda.current_device()
    return device, torch.cuda.current_stream(device).cuda_stream


def _matrix(matrix: object) -> list[float]:
    """A 2x3 host matrix as 6 floats (row-major)."""
    if isinstance(matrix, torch.Tensor) and matrix.device.type != "cpu":
        raise ValueError("matrix must be a host array (NumPy or a CPU tensor), not a device tensor")
    values = np.asarray(matrix, dtype=np.float64)
    if values.shape != (2, 3):
        raise ValueError(f"matrix must have shape (2, 3), got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"matrix must be finite, got {values.tolist()}")
    return [float(v) for v in values.ravel()]


def _ints(values: tuple[int, ...], name: str, count: int) -> list[int]:
    values = tuple(values)
    if len(values) != count or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must be {count} ints, got {values!r}")
    return [int(v) for v in values]


def _alpha_channel(alpha_channel: int | None, channels: int) -> int | None:
    if alpha_channel is None:
        return None
    if isinstance(alpha_channel, bool) or not isinstance(alpha_channel, int | np.integer) or \
            not 3 <= alpha_channel < channels:
        raise ValueError(f"alpha_channel must be None or a channel index in 3..{channels - 1}, got {alpha_channel!r}")
    return int(alpha_channel)


def _plate(plate: torch.Tensor, alpha_channel: int | None) -> int | None:
    _tensor(plate, "plate", 3, (torch.float32, torch.float16))
    if plate.shape[2] < 3:
        raise ValueError(f"plate must have premultiplied RGB first, got {plate.shape[2]} channels")
    return _alpha_channel(alpha_channel, plate.shape[2])


def _workspace(elements: int, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(max(int(elements), 1), dtype=torch.float32, device=like.device)


def _warp(module, src: torch.Tensor, matrix: list[float], bbox: list[int], interpolation: str) -> torch.Tensor:
    h, w, channels = src.shape
    x0, y0, x1, y1 = bbox
    out = torch.empty((y1 - y0, x1 - x0, channels), dtype=torch.float32, device=src.device)
    device, stream = _launch_args(src)
    module.warp(src.data_ptr(), _DTYPE_NAMES[src.dtype], h, w, channels, matrix, bbox, interpolation,
                out.data_ptr(), device, stream)
    return out


def warp_to_plate(src: torch.Tensor, matrix: np.ndarray, bbox: tuple[int, int, int, int],
                  interpolation: str) -> torch.Tensor:
    """``src`` (h, w, C) float32|float16 sampled at ``matrix @ (x, y, 1)`` over ``bbox`` -> (y1-y0, x1-x0, C) float32.

    ``matrix`` (2x3, host) maps destination pixels to source pixels; taps outside the source read 0.
    """
    module = _module("warp_to_plate")
    _tensor(src, "src", 3, (torch.float32, torch.float16))
    matrix = _matrix(matrix)
    box = _ints(bbox, "bbox (x0, y0, x1, y1)", 4)
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"bbox {bbox!r} must satisfy x0 <= x1 and y0 <= y1")
    return _warp(module, src, matrix, box, check_interpolation(interpolation))


def crop_to_aligned(plate: torch.Tensor, frame_to_aligned_matrix: np.ndarray, size: int,
                    interpolation: str) -> torch.Tensor:
    """The aligned face (size, size, C) float32 cut from ``plate`` (H, W, C) float32|float16.

    The contract's forward crop: :func:`warp_to_plate` of the plate with the inverse of ``frame_to_aligned_matrix``
    over the box (0, 0, size, size).
    """
    module = _module("crop_to_aligned")
    _tensor(plate, "plate", 3, (torch.float32, torch.float16))
    forward = np.asarray(_matrix(frame_to_aligned_matrix)).reshape(2, 3)
    linear = forward[:, :2]
    if not abs(np.linalg.det(linear)) > 0.0:
        raise ValueError(f"frame_to_aligned_matrix {forward.tolist()} is not invertible")
    inverse_linear = np.linalg.inv(linear)
    inverse = np.hstack([inverse_linear, -(inverse_linear @ forward[:, 2:])])
    (size,) = _ints((size,), "size", 1)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    return _warp(module, plate, _matrix(inverse), [0, 0, size, size], check_interpolation(interpolation))


def erode_dilate(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Erosion (radius > 0) or dilation (radius < 0) of ``mask`` (h, w) float32 over a disc -> (h, w) float32."""
    module = _module("erode_dilate")
    _tensor(mask, "mask", 2, (torch.float32,))
    radius = finite_pixels(radius, "erode radius")
    h, w = mask.shape
    out = torch.empty_like(mask)
    workspace = _workspace(module.erode_dilate_workspace(h, w, radius), mask)
    device, stream = _launch_args(mask)
    module.erode_dilate(mask.data_ptr(), out.data_ptr(), h, w, radius, workspace.data_ptr(), device, stream)
    return out


def gaussian_blur(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``mask`` (h, w) float32, zero outside -> (h, w) float32; sigma <= 0 copies."""
    module = _module("gaussian_blur")
    _tensor(mask, "mask", 2, (torch.float32,))
    sigma = finite_pixels(sigma, "blur sigma")
    h, w = mask.shape
    out = torch.empty_like(mask)
    workspace = _workspace(module.gaussian_blur_workspace(h, w, sigma), mask)
    device, stream = _launch_args(mask)
    module.gaussian_blur(mask.data_ptr(), out.data_ptr(), h, w, sigma, workspace.data_ptr(), device, stream)
    return out


def composite(plate: torch.Tensor, face: torch.Tensor, mask: torch.Tensor, origin: tuple[int, int],
              alpha_channel: int | None) -> None:
    """Blend straight ``face`` (h, w, 3) float32 into premultiplied ``plate`` in place at ``origin`` by ``mask``.

    Pixels with mask <= 0 (or NaN) are not written; the part of the box outside the plate is ignored.
    """
    module = _module("composite")
    alpha_channel = _plate(plate, alpha_channel)
    _tensor(face, "face", 3, (torch.float32,))
    _tensor(mask, "mask", 2, (torch.float32,))
    _same_device(plate, face=face, mask=mask)
    if tuple(face.shape) != tuple(mask.shape) + (3,):
        raise ValueError(f"face must have shape (h, w, 3) matching mask {tuple(mask.shape)}, got {tuple(face.shape)}")
    x0, y0 = _ints(origin, "origin (x0, y0)", 2)
    plate_h, plate_w, channels = plate.shape
    h, w = mask.shape
    device, stream = _launch_args(plate)
    module.composite(plate.data_ptr(), _DTYPE_NAMES[plate.dtype], plate_h, plate_w, channels, face.data_ptr(),
                     mask.data_ptr(), h, w, x0, y0, alpha_channel, device, stream)


def paste_face(plate: torch.Tensor, face: torch.Tensor, mask: torch.Tensor, matrix: np.ndarray, erode_px: float,
               blur_sigma: float, interpolation: str,
               alpha_channel: int | None) -> tuple[tuple[int, int, int, int], torch.Tensor]:
    """Warp, shape and composite one aligned face into ``plate`` in place; returns (bbox, final mask of the bbox).

    ``face`` (r, r, 3) and ``mask`` (r, r) are float32 or float16 (e.g. straight from the model); ``matrix`` (host)
    maps plate pixels to aligned pixels; the bbox is :func:`dfl_vfx.merge.reference.paste_bbox` and the final mask a
    (y1-y0, x1-x0) float32 CUDA tensor.
    """
    module = _module("paste_face")
    alpha_channel = _plate(plate, alpha_channel)
    _tensor(face, "face", 3, (torch.float32, torch.float16))
    _tensor(mask, "mask", 2, (torch.float32, torch.float16))
    _same_device(plate, face=face, mask=mask)
    if tuple(face.shape) != tuple(mask.shape) + (3,) or mask.shape[0] != mask.shape[1]:
        raise ValueError(f"face must have shape (r, r, 3) and mask (r, r), got {tuple(face.shape)} and "
                         f"{tuple(mask.shape)}")
    matrix = _matrix(matrix)
    erode_px = finite_pixels(erode_px, "erode_px")
    blur_sigma = finite_pixels(blur_sigma, "blur_sigma")
    interpolation = check_interpolation(interpolation)
    plate_h, plate_w, channels = plate.shape
    size = mask.shape[0]
    bbox = paste_bbox(np.asarray(matrix).reshape(2, 3), (size, size), erode_px, blur_sigma, (plate_h, plate_w))
    x0, y0, x1, y1 = bbox
    final = torch.empty((y1 - y0, x1 - x0), dtype=torch.float32, device=plate.device)
    workspace = _workspace(module.paste_face_workspace(size, list(bbox), erode_px, blur_sigma), plate)
    device, stream = _launch_args(plate)
    module.paste_face(plate.data_ptr(), _DTYPE_NAMES[plate.dtype], plate_h, plate_w, channels, face.data_ptr(),
                      _DTYPE_NAMES[face.dtype], mask.data_ptr(), _DTYPE_NAMES[mask.dtype], size, matrix, list(bbox),
                      erode_px, blur_sigma, interpolation, alpha_channel, final.data_ptr(), workspace.data_ptr(),
                      device, stream)
    return bbox, final


class CudaMergeOps:
    """:class:`dfl_vfx.merge.merge_ops.MergeOps` on CUDA tensors, on torch's current stream.

    rct colour transfer runs in torch; the other colour modes, sharpening and motion blur take the aligned face
    (R x R, not the plate) through the host and back.
    """

    on_gpu = True

    def __init__(self, device: str = "cuda:0") -> None:
        self.device = torch.device(device if device.startswith("cuda") else "cuda:0")

    def upload(self, array: np.ndarray | torch.Tensor) -> torch.Tensor:
        if isinstance(array, torch.Tensor):  # already a tensor (the GPU-resident stage): just place it
            return array.to(self.device).contiguous()
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        if tensor.dtype not in (torch.float16, torch.float32):
            tensor = tensor.float()
        return tensor.to(self.device, non_blocking=False)

    def download(self, buffer: torch.Tensor) -> np.ndarray:
        return buffer.cpu().numpy()

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
        torch_dtype = torch.float16 if np.dtype(dtype) == np.float16 else torch.float32
        return torch.zeros(shape, dtype=torch_dtype, device=self.device)

    def contiguous(self, buffer: torch.Tensor) -> torch.Tensor:
        return buffer.contiguous()

    def float32(self, buffer: torch.Tensor) -> torch.Tensor:
        return buffer.float().contiguous()

    def crop_face(self, plate: torch.Tensor, alpha_channel: int | None, origin: tuple[int, int], matrix: np.ndarray,
                  size: int) -> torch.Tensor:
        """The device form of :func:`dfl_vfx.face.crop.crop_face_at`: the CUDA lanczos kernel, then unpremultiply
        and clean. The crop is resampled premultiplied and unpremultiplied after (the host form does it before),
        and a NaN in the plate blanks the taps around it; both differ from the host only at alpha edges and bad
        pixels."""
        crop = crop_to_aligned(plate, local_matrix(matrix, origin), size, "lanczos")
        rgb = crop[..., :3]
        if alpha_channel is not None:
            alpha = crop[..., alpha_channel:alpha_channel + 1]
            rgb = torch.where(alpha > ALPHA_EPSILON, rgb / alpha.clamp_min(ALPHA_EPSILON), rgb)
        return torch.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0)

    def transfer_color(self, mode: str, face: torch.Tensor, source: torch.Tensor, mask: torch.Tensor,
                       seed: int) -> torch.Tensor:
        if mode in TORCH_TRANSFER_MODES:
            return transfer_color_torch(mode, face, source, mask)
        host_mask = self.download(mask)
        return self.upload(transfer_color(mode, self.download(face), self.download(source), host_mask, host_mask,
                                          seed=seed))

    def clip_to_range(self, face: torch.Tensor, source: torch.Tensor, margin: float) -> torch.Tensor:
        flat = source.reshape(-1, 3)
        return torch.minimum(torch.maximum(face, flat.amin(0) - margin), flat.amax(0) + margin)

    def sharpen(self, face: torch.Tensor, mode: str, amount: float, resolution: int) -> torch.Tensor:
        return self.upload(sharpen(self.download(face), mode, amount, resolution))

    def motion_blur(self, face: torch.Tensor, mask: torch.Tensor, velocity: tuple[float, float],
                    power: float) -> tuple[torch.Tensor, torch.Tensor]:
        blurred, blurred_mask = motion_blur(self.download(face), self.download(mask), velocity, power)
        return self.upload(blurred), self.upload(blurred_mask)

    def warp_source(self, face: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor) -> torch.Tensor:
        face = self.upload(face).float()
        mask = self.upload(mask).float()
        return torch.cat([face, mask[..., None], torch.ones_like(face[..., :1])], dim=-1).contiguous()

    def warp_to_plate(self, src: torch.Tensor, matrix: np.ndarray, bbox: tuple[int, int, int, int],
                      interpolation: str) -> torch.Tensor:
        return warp_to_plate(src, matrix, bbox, interpolation)

    def unpremultiply(self, rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        safe = alpha.unsqueeze(-1)
        return (rgb / safe.clamp_min(1e-6)) * (safe > 1e-6)

    def union(self, matte: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (1.0 - (1.0 - matte.float()) * (1.0 - mask)).to(matte.dtype)

    def minimum(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.minimum(a, b)

    def erode_dilate(self, mask: torch.Tensor, radius: float) -> torch.Tensor:
        return erode_dilate(mask.float().contiguous(), radius)

    def gaussian_blur(self, mask: torch.Tensor, sigma: float) -> torch.Tensor:
        return gaussian_blur(mask.float().contiguous(), sigma)

    def composite(self, plate: torch.Tensor, face: torch.Tensor, mask: torch.Tensor, origin: tuple[int, int],
                  alpha_channel: int | None) -> None:
        composite(plate, face, mask, origin, alpha_channel)
