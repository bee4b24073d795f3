"""DeepFaceLab's merger rebuilt for scene-linear plates: per-face crop, colour transfer, masks and paste.

Per face: crop the plate at the model's face type and resolution (unpremultiplied, scene-linear, lanczos), convert
it to the model's input space, predict, transfer colour in that space under the face mask, sharpen or blur, convert
the face back to the plate's space with the exact inverse transform (values above 1 survive), build the mask from
the mask mode, and paste it with the native (or reference) warp / erode / blur / composite. Pixels the final mask
does not touch are not written, so they stay bit-identical to the plate.

This module holds no file I/O: :mod:`dfl_vfx.swap` reads frames, runs the network and writes the layers.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dfl_vfx.color.ocio import ALPHA_EPSILON, WorkingSpace, unpremultiply
from dfl_vfx.color.torch_color import TorchWorkingSpace
from dfl_vfx.face.align import aligned_quad, get_transform_mat, transform_points, warp_to_aligned
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.masks import hull_mask
from dfl_vfx.merge import ops
from dfl_vfx.merge.color_transfer import transfer_color
from dfl_vfx.merge.color_transfer_torch import TORCH_TRANSFER_MODES
from dfl_vfx.merge.color_transfer_torch import transfer_color as transfer_color_torch
from dfl_vfx.merge.face_filters import face_scale_matrix, motion_blur, sharpen
from dfl_vfx.merge.masks import (
    DEFAULT_MASK_MODE,
    clip_to_predicted_area,
    combine_masks,
    mask_names,
    plate_blur_sigma,
    plate_erode_radius,
)

LAYERS = ("rgba", "mask", "face", "raw")
DEFAULT_LAYERS = ("rgba", "mask", "face")
SHARPEN_MODES = ("none", "box", "gaussian")
TRANSFER_MARGIN = 0.05  # working-space units (ACEScct: about 0.85 stops)


@dataclass
class MergeSettings:
    """The merger's knobs (DeepFaceLab's names and ranges, see docs); defaults suit a first look at a shot."""

    mask_mode: str = DEFAULT_MASK_MODE
    erode: float = 0.0
    blur: float = 25.0
    color_transfer: str = "rct"
    face_scale: float = 0.0  # percent, -50..50
    interpolation: str = "bicubic"
    sharpen_mode: str = "none"
    sharpen_amount: float = 0.0  # -100..100
    motion_blur: float = 0.0  # 0..100, along the landmark motion; off with several faces
    seed: int = 0

    def validate(self) -> None:
        """Every knob checked by its declaration in :mod:`dfl_vfx.schema` (errors name the setting)."""
        from dfl_vfx.schema import validate_setting

        for name in asdict(self):
            validate_setting(name, getattr(self, name))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def digest(self, *extra: object) -> str:
        """A short hash of the settings (and anything else that changes the pixels), for skipping finished frames."""
        text = json.dumps([self.to_dict(), *extra], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class FacePlan:
    """One face to swap in a frame: landmarks in absolute plate pixels and, for motion blur, its motion."""

    landmarks: np.ndarray  # (68, 2)
    index: int = 0
    track_id: int = 0
    motion: np.ndarray | None = None  # (2,) plate pixels per frame (landmark centroid), or None


@dataclass
class PreparedFace:
    """A face cropped for the network: its model input and where it came from."""

    plan: FacePlan
    matrix: np.ndarray  # absolute plate -> aligned at the model resolution
    model_input: Any  # (R, R, 3) float32 in the model's input space (a CUDA tensor on the GPU-resident stage)
    hull: Any  # (R, R) float32 landmark hull in aligned space


@dataclass
class PastedFace:
    """What was pasted: for the header and the layers."""

    plan: FacePlan
    matrix: np.ndarray
    bbox: tuple[int, int, int, int]  # absolute plate pixels, end exclusive
    face_type: str
    resolution: int

    def header_entry(self) -> dict[str, object]:
        return {
            "index": self.plan.index,
            "track_id": self.plan.track_id,
            "landmarks": np.round(self.plan.landmarks, 4).tolist(),
            "matrix": np.round(self.matrix, 8).tolist(),
            "resolution": self.resolution,
            "face_type": self.face_type,
            "bbox": list(self.bbox),
        }


@dataclass
class MergeLayers:
    """Per-frame layer buffers in plate-array coordinates (None when not asked for); CUDA tensors on the GPU path."""

    mask: Any = None  # (H, W) the plate's dtype
    face: Any = None  # (H, W, 4) premultiplied, the plate's dtype
    raw: Any = None  # (H, W, 4)
    faces: list[PastedFace] = field(default_factory=list)


def _clip_to_source_range(face: np.ndarray, source: np.ndarray, margin: float = TRANSFER_MARGIN) -> np.ndarray:
    """Keep a colour-transferred face within the destination crop's range (per channel, plus a margin).

    Matching the statistics of a nearly flat prediction (an early model) multiplies its noise; in a log working
    space that noise would come back as scene-linear values in the hundreds. DeepFaceLab clips to its [0, 1] image
    range for the same reason; the plate's own range (highlights included) is the scene-linear analogue.
    """
    low = source.reshape(-1, 3).min(axis=0) - margin
    high = source.reshape(-1, 3).max(axis=0) + margin
    return np.clip(face, low, high).astype(np.float32)


def _local_matrix(matrix: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    """Absolute plate -> aligned becomes plate-array -> aligned."""
    local = np.array(matrix, np.float64)
    local[:, 2] += local[:, :2] @ np.array(origin, np.float64)
    return local


class FaceMerger:
    """Merges predicted faces into plates for one model (resolution, face type, input space)."""

    def __init__(self, settings: MergeSettings, space: WorkingSpace, resolution: int, face_type: FaceType,
                 backend: str = "auto", threads: int = 0, device: str = "cuda:0",
                 torch_space: TorchWorkingSpace | None = None) -> None:
        """``backend``: auto | native | reference (NumPy arrays) or cuda (the plate lives on ``device``).

        With cuda and a ``torch_space`` (the plate -> model conversion in torch), faces are also cropped, converted
        and colour-matched on the GPU (:meth:`prepare_device`, :meth:`finish_face_device`).
        """
        settings.validate()
        self.settings = settings
        self.space = space
        self.resolution = resolution
        self.face_type = face_type
        self.backend = backend
        self.threads = threads
        self.ops = CudaMergeOps(device) if backend == "cuda" else HostMergeOps(backend, threads)
        self.torch_space = torch_space if backend == "cuda" else None
        self._needs = mask_names(settings.mask_mode)

    # -- before the network -------------------------------------------------------------------------------------

    def prepare(self, rgb: np.ndarray, alpha: np.ndarray | None, origin: tuple[int, int],
                plan: FacePlan) -> PreparedFace:
        """Crop one face: only its box is converted to float32, cleaned of NaN/Inf and unpremultiplied."""
        size = self.resolution
        matrix = get_transform_mat(plan.landmarks, size, self.face_type)
        quad = aligned_quad(matrix, size) - np.array(origin, np.float64)
        h, w = rgb.shape[:2]
        x0, y0 = (max(0, int(math.floor(v)) - 4) for v in quad.min(axis=0))
        x1, y1 = min(w, int(math.ceil(quad[:, 0].max())) + 5), min(h, int(math.ceil(quad[:, 1].max())) + 5)
        if x1 <= x0 or y1 <= y0:
            crop = np.zeros((size, size, 3), np.float32)
        else:
            box = np.nan_to_num(np.asarray(rgb[y0:y1, x0:x1, :3], np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            if alpha is not None:
                a = np.asarray(alpha[y0:y1, x0:x1], np.float32)
                box = unpremultiply(box, np.nan_to_num(a, nan=1.0))
            local = _local_matrix(matrix, (origin[0] + x0, origin[1] + y0))
            crop = warp_to_aligned(box, local, size, "lanczos")
        aligned_landmarks = transform_points(plan.landmarks, matrix)
        hull = hull_mask((size, size), aligned_landmarks).astype(np.float32)
        return PreparedFace(plan, matrix, self.space.to_working(crop).astype(np.float32), hull)

    # -- after the network --------------------------------------------------------------------------------------

    def finish_face(self, prepared: PreparedFace, rgb: np.ndarray, mask_src: np.ndarray, mask_dst: np.ndarray,
                    several_faces: bool) -> tuple[np.ndarray, np.ndarray]:
        """(face in plate colours, mask) in aligned space, ready to paste."""
        s = self.settings
        masks = {"hull": prepared.hull, "learned-prd": mask_src, "learned-dst": mask_dst}
        mask = combine_masks(s.mask_mode, {k: v for k, v in masks.items() if k in self._needs or k == "hull"})
        face = np.asarray(rgb, np.float32)
        if s.color_transfer != "none":
            face = transfer_color(s.color_transfer, face, prepared.model_input, mask, mask, seed=s.seed)
            face = _clip_to_source_range(face, prepared.model_input)
        if s.sharpen_mode != "none" and s.sharpen_amount != 0:
            face = sharpen(face, s.sharpen_mode, s.sharpen_amount, self.resolution)
        if s.motion_blur > 0 and prepared.plan.motion is not None and not several_faces:
            velocity = prepared.matrix[:, :2] @ np.asarray(prepared.plan.motion, np.float64)
            face, mask = motion_blur(face, mask, (float(velocity[0]), float(velocity[1])), s.motion_blur)
        mask = clip_to_predicted_area(mask, s.erode, s.blur)
        return self.space.from_working(face).astype(np.float32), mask.astype(np.float32)

    # -- the GPU-resident stage (plate, crop, network and paste stay on the device) -----------------------------

    @property
    def device_stage(self) -> bool:
        """Whether faces can be cropped and converted on the GPU (CUDA merge and a torch form of the colours)."""
        return self.torch_space is not None

    def prepare_device(self, plate, alpha_channel: int | None, origin: tuple[int, int], plan: FacePlan) -> PreparedFace:
        """:meth:`prepare` on a CUDA plate: lanczos crop by the CUDA kernel, then unpremultiply, clean, convert.

        The crop is resampled premultiplied and unpremultiplied after (the host path does it before), and a NaN in
        the plate blanks the taps around it; both differ from the host path only at alpha edges and bad pixels.
        """
        import torch

        assert self.torch_space is not None
        size = self.resolution
        matrix = get_transform_mat(plan.landmarks, size, self.face_type)
        crop = self.ops.cuda_ops.crop_to_aligned(plate, _local_matrix(matrix, origin), size, "lanczos")
        rgb = crop[..., :3]
        if alpha_channel is not None:
            alpha = crop[..., alpha_channel:alpha_channel + 1]
            rgb = torch.where(alpha > ALPHA_EPSILON, rgb / alpha.clamp_min(ALPHA_EPSILON), rgb)
        rgb = torch.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0)
        hull = hull_mask((size, size), transform_points(plan.landmarks, matrix)).astype(np.float32)
        return PreparedFace(plan, matrix, self.torch_space.to_working(rgb).contiguous(), self.ops.upload(hull))

    def finish_face_device(self, prepared: PreparedFace, rgb, mask_src, mask_dst, several_faces: bool):
        """:meth:`finish_face` on CUDA tensors. rct runs in torch; the other colour modes, sharpening and motion blur
        take the aligned face (R x R, not the plate) through the host and back."""
        import torch

        assert self.torch_space is not None
        s = self.settings
        masks = {"hull": prepared.hull, "learned-prd": mask_src, "learned-dst": mask_dst}
        mask = combine_masks(s.mask_mode, {k: v for k, v in masks.items() if k in self._needs or k == "hull"})
        face = rgb.float()
        source = prepared.model_input
        if s.color_transfer in TORCH_TRANSFER_MODES:
            face = transfer_color_torch(s.color_transfer, face, source, mask)
        else:
            host = transfer_color(s.color_transfer, face.cpu().numpy(), source.cpu().numpy(), mask.cpu().numpy(),
                                  mask.cpu().numpy(), seed=s.seed)
            face = self.ops.upload(host)
        if s.color_transfer != "none":
            flat = source.reshape(-1, 3)
            face = torch.minimum(torch.maximum(face, flat.amin(0) - TRANSFER_MARGIN), flat.amax(0) + TRANSFER_MARGIN)
        if s.sharpen_mode != "none" and s.sharpen_amount != 0:
            face = self.ops.upload(sharpen(face.cpu().numpy(), s.sharpen_mode, s.sharpen_amount, self.resolution))
        if s.motion_blur > 0 and prepared.plan.motion is not None and not several_faces:
            velocity = prepared.matrix[:, :2] @ np.asarray(prepared.plan.motion, np.float64)
            blurred, blurred_mask = motion_blur(face.cpu().numpy(), mask.cpu().numpy(),
                                                (float(velocity[0]), float(velocity[1])), s.motion_blur)
            face, mask = self.ops.upload(blurred), self.ops.upload(blurred_mask)
        mask = clip_to_predicted_area(mask, s.erode, s.blur)
        return self.torch_space.from_working(face).contiguous(), mask.float().contiguous()

    def paste(self, plate, alpha_channel: int | None, origin: tuple[int, int], prepared: PreparedFace,
              face: np.ndarray, mask: np.ndarray, layers: MergeLayers) -> PastedFace:
        """Composite one finished face into ``plate`` (in place) and into the requested layers.

        ``plate`` and the layer buffers are NumPy arrays, or CUDA tensors when the merger runs on the GPU.
        """
        s = self.settings
        matrix = face_scale_matrix(prepared.matrix, self.resolution, s.face_scale) if s.face_scale else \
            prepared.matrix
        local = _local_matrix(matrix, origin)
        erode_px = plate_erode_radius(s.erode, matrix)
        blur_sigma = plate_blur_sigma(s.blur, matrix)
        run = self.ops
        face_buf, mask_buf = run.upload(face), run.upload(mask)
        bbox, final_mask = run.paste_face(plate, face_buf, mask_buf, local, erode_px, blur_sigma, s.interpolation,
                                          alpha_channel)
        x0, y0, x1, y1 = bbox
        if layers.mask is not None and x1 > x0 and y1 > y0:
            region = layers.mask[y0:y1, x0:x1]
            region[...] = run.union(region, final_mask)
        if (layers.face is not None or layers.raw is not None) and x1 > x0 and y1 > y0:
            warped = run.warp_to_plate(run.with_coverage(face), local, bbox, s.interpolation)
            rgb = run.contiguous(warped[..., :3])
            if layers.face is not None:
                run.composite(layers.face, rgb, final_mask, (x0, y0), 3)
            if layers.raw is not None:  # the warp of (face, 1) is premultiplied by its coverage already
                coverage = run.contiguous(warped[..., 3].clip(0.0, 1.0))
                run.composite(layers.raw, run.unpremultiply(rgb, coverage), coverage, (x0, y0), 3)
        absolute = (x0 + origin[0], y0 + origin[1], x1 + origin[0], y1 + origin[1])
        return PastedFace(prepared.plan, matrix, absolute, self.face_type.cli_name, self.resolution)


class HostMergeOps:
    """The merge operations on NumPy arrays: the native C++ core, or the NumPy/OpenCV reference."""

    on_gpu = False

    def __init__(self, backend: str = "auto", threads: int = 0) -> None:
        self.backend = backend
        self.threads = threads

    def upload(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.float32) if array.dtype != np.float16 else array

    def with_coverage(self, face: np.ndarray) -> np.ndarray:
        """(R, R, 4): the face and a channel of ones, warped together so the warp also gives the coverage."""
        return np.ascontiguousarray(np.dstack([face, np.ones(face.shape[:2], np.float32)]), dtype=np.float32)

    def download(self, buffer: np.ndarray) -> np.ndarray:
        return buffer

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.zeros(shape, dtype)

    def contiguous(self, buffer: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(buffer)

    def unpremultiply(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        return np.divide(rgb, alpha[..., None], out=np.zeros_like(rgb), where=alpha[..., None] > 1e-6)

    def union(self, matte: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mattes of several faces combine as 1 - (1 - a)(1 - b), in float32, kept in the matte's dtype."""
        return (1.0 - (1.0 - matte.astype(np.float32)) * (1.0 - mask)).astype(matte.dtype)

    def paste_face(self, plate, face, mask, matrix, erode_px, blur_sigma, interpolation, alpha_channel):
        return ops.paste_face(plate, face, mask, matrix, erode_px, blur_sigma, interpolation, alpha_channel,
                              backend=self.backend, threads=self.threads)

    def warp_to_plate(self, src, matrix, bbox, interpolation):
        return ops.warp_to_plate(src, matrix, bbox, interpolation, backend=self.backend, threads=self.threads)

    def composite(self, plate, face, mask, origin, alpha_channel) -> None:
        ops.composite(plate, face, mask, origin, alpha_channel, backend=self.backend, threads=self.threads)


class CudaMergeOps:
    """The same operations on CUDA tensors (dfl_vfx._native_cuda), on torch's current stream."""

    on_gpu = True

    def __init__(self, device: str = "cuda:0") -> None:
        import torch

        from dfl_vfx.merge import cuda_ops

        self.torch = torch
        self.cuda_ops = cuda_ops
        self.device = torch.device(device if device.startswith("cuda") else "cuda:0")

    def upload(self, array):
        if isinstance(array, self.torch.Tensor):  # already a tensor (the GPU-resident stage): just place it
            return array.to(self.device).contiguous()
        tensor = self.torch.from_numpy(np.ascontiguousarray(array))
        if tensor.dtype not in (self.torch.float16, self.torch.float32):
            tensor = tensor.float()
        return tensor.to(self.device, non_blocking=False)

    def with_coverage(self, face):
        face = self.upload(face).float()
        return self.torch.cat([face, self.torch.ones_like(face[..., :1])], dim=-1).contiguous()

    def download(self, buffer) -> np.ndarray:
        return buffer.cpu().numpy()

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype):
        torch_dtype = self.torch.float16 if np.dtype(dtype) == np.float16 else self.torch.float32
        return self.torch.zeros(shape, dtype=torch_dtype, device=self.device)

    def contiguous(self, buffer):
        return buffer.contiguous()

    def unpremultiply(self, rgb, alpha):
        safe = alpha.unsqueeze(-1)
        return (rgb / safe.clamp_min(1e-6)) * (safe > 1e-6)

    def union(self, matte, mask):
        return (1.0 - (1.0 - matte.float()) * (1.0 - mask)).to(matte.dtype)

    def paste_face(self, plate, face, mask, matrix, erode_px, blur_sigma, interpolation, alpha_channel):
        return self.cuda_ops.paste_face(plate, face, mask, matrix, erode_px, blur_sigma, interpolation,
                                        alpha_channel)

    def warp_to_plate(self, src, matrix, bbox, interpolation):
        return self.cuda_ops.warp_to_plate(src, matrix, bbox, interpolation)

    def composite(self, plate, face, mask, origin, alpha_channel) -> None:
        self.cuda_ops.composite(plate, face, mask, origin, alpha_channel)
