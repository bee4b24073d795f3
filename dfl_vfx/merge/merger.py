"""DeepFaceLab's merger rebuilt for scene-linear plates: per-face crop, colour transfer, masks and paste.

Per face: crop the plate at the model's face type and resolution (unpremultiplied, scene-linear, lanczos), convert
it to the model's input space, predict, transfer colour in that space under the face mask, sharpen or blur, convert
the face back to the plate's space with the exact inverse transform (values above 1 survive), build the mask from
the mask mode, and paste it with the native (or reference, or CUDA) warp / erode / blur / composite. Pixels the
final mask does not touch are not written, so they stay bit-identical to the plate.

Everything after the warp into the plate is a **live** step that a host redoes from the ``matte`` and ``raw`` layers
and the per-face header (:meth:`FaceMerger.paste`, docs/dev/swap-output.md): erode/dilate the warped matte, limit it
to the face's coverage eroded by the blur margin, blur, zero below 1/255, times ``opacity``; the unpremultiplied
face times ``2 ** face_exposure`` is composited by it. Erode and blur happen in plate pixels, never in aligned space,
so a host's redo equals the engine's render.

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
    combine_masks,
    mask_names,
    plate_blur_sigma,
    plate_clip_margin,
    plate_erode_radius,
    plate_px_per_unit,
)
from dfl_vfx.merge.reference import MASK_FLOOR, gaussian_taps, warp_footprint

LAYERS = ("rgba", "mask", "face", "raw", "matte")
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
    opacity: float = 1.0  # 0..1, multiplies each face's final matte (live)
    face_exposure: float = 0.0  # stops, -4..4: the face's plate-space RGB times 2**stops before the composite (live)

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
    """What was pasted: for the header and the layers (what a host needs to redo the live steps of this face)."""

    plan: FacePlan
    matrix: np.ndarray
    bbox: tuple[int, int, int, int]  # absolute plate pixels, end exclusive: the region the paste could write
    face_type: str
    resolution: int
    footprint: tuple[int, int, int, int] = (0, 0, 0, 0)  # absolute, end exclusive: where matte/raw can be non-zero
    px_per_unit: float = 0.0  # plate pixels per DeepFaceLab erode/blur unit for this face
    erode_px: float = 0.0  # disc radius the matte was eroded (> 0) or dilated (< 0) by
    clip_px: float = 0.0  # disc radius the coverage was eroded by before it limited the matte
    blur_sigma: float = 0.0  # Gaussian sigma of the matte's blur

    def header_entry(self) -> dict[str, object]:
        return {
            "index": self.plan.index,
            "track_id": self.plan.track_id,
            "landmarks": np.round(self.plan.landmarks, 4).tolist(),
            "matrix": np.round(self.matrix, 8).tolist(),
            "resolution": self.resolution,
            "face_type": self.face_type,
            "bbox": list(self.bbox),
            "footprint": list(self.footprint),
            "px_per_unit": self.px_per_unit,
            "erode_px": self.erode_px,
            "clip_px": self.clip_px,
            "blur_sigma": self.blur_sigma,
        }


@dataclass
class MergeLayers:
    """Per-frame layer buffers in plate-array coordinates (None when not asked for); CUDA tensors on the GPU path."""

    mask: Any = None  # (H, W) the plate's dtype
    matte: Any = None  # (H, W) the matte before the live steps (erode, blur, opacity), the plate's dtype
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
        return self.torch_space.from_working(face).contiguous(), mask.float().contiguous()

    def paste(self, plate, alpha_channel: int | None, origin: tuple[int, int], prepared: PreparedFace,
              face: np.ndarray, mask: np.ndarray, layers: MergeLayers) -> PastedFace:
        """Composite one finished face into ``plate`` (in place) and into the requested layers.

        Warp face, mask and a channel of ones (the coverage) into the plate together, then the live steps of
        :func:`shape_matte`, then composite the unpremultiplied face times ``2 ** face_exposure`` by that matte.
        ``plate`` and the layer buffers are NumPy arrays, or CUDA tensors when the merger runs on the GPU; both go
        through the same steps (:class:`HostMergeOps`, :class:`CudaMergeOps`).
        """
        s = self.settings
        matrix = face_scale_matrix(prepared.matrix, self.resolution, s.face_scale) if s.face_scale else \
            prepared.matrix
        local = _local_matrix(matrix, origin)
        px_per_unit = plate_px_per_unit(matrix)
        erode_px = plate_erode_radius(s.erode, matrix)
        clip_px = plate_clip_margin(s.blur, matrix)
        blur_sigma = plate_blur_sigma(s.blur, matrix)
        plate_shape = tuple(plate.shape[:2])
        size = (self.resolution, self.resolution)
        fx0, fy0, fx1, fy1 = warp_footprint(local, size, s.interpolation, plate_shape)
        reach = blur_reach(blur_sigma)
        h, w = plate_shape
        x0, y0 = max(fx0 - reach, 0), max(fy0 - reach, 0)
        x1, y1 = min(fx1 + reach, w), min(fy1 + reach, h)
        pasted = PastedFace(prepared.plan, matrix, (x0 + origin[0], y0 + origin[1], x1 + origin[0], y1 + origin[1]),
                            self.face_type.cli_name, self.resolution,
                            footprint=(fx0 + origin[0], fy0 + origin[1], fx1 + origin[0], fy1 + origin[1]),
                            px_per_unit=px_per_unit, erode_px=erode_px, clip_px=clip_px, blur_sigma=blur_sigma)
        if fx1 <= fx0 or fy1 <= fy0:  # the face lies off the plate
            return pasted
        run = self.ops
        bbox = (x0, y0, x1, y1)
        warped = run.warp_to_plate(run.warp_source(face, mask), local, bbox, s.interpolation)
        matte = run.contiguous(warped[..., 3].clip(0.0, 1.0))
        coverage = run.contiguous(warped[..., 4].clip(0.0, 1.0))
        colour = run.unpremultiply(run.contiguous(warped[..., :3]), coverage)  # the straight face
        final = shape_matte(run, matte, coverage, erode_px, clip_px, blur_sigma, s.opacity)
        graded = colour * float(2.0 ** s.face_exposure) if s.face_exposure else colour
        run.composite(plate, graded, final, (x0, y0), alpha_channel)
        if layers.mask is not None:
            region = layers.mask[y0:y1, x0:x1]
            region[...] = run.union(region, final)
        if layers.matte is not None:
            region = layers.matte[y0:y1, x0:x1]
            region[...] = run.union(region, matte)
        if layers.face is not None:
            run.composite(layers.face, graded, final, (x0, y0), 3)
        if layers.raw is not None:  # composited by the coverage: raw.RGB is the face premultiplied by raw.A
            run.composite(layers.raw, colour, coverage, (x0, y0), 3)
        return pasted


def blur_reach(blur_sigma: float) -> int:
    """How many pixels the matte's blur reaches beyond the matte: the radius of :func:`gaussian_taps`."""
    return len(gaussian_taps(blur_sigma)) // 2 if blur_sigma > 0 else 0


def shape_matte(run: HostMergeOps | CudaMergeOps, matte, coverage, erode_px: float, clip_px: float,
                blur_sigma: float, opacity: float):
    """The live steps, on the warped matte and coverage of one face in plate pixels (what a host redoes).

    ``min(erode(matte, erode_px), erode(coverage, clip_px))``, Gaussian blur by ``blur_sigma``, values below 1/255
    set to 0, times ``opacity``. The limit keeps a dilated matte on the face and, before the blur, ``clip_px``
    inside it, so that the blur fades to 0 where the face still has pixels (DeepFaceLab's clip to the predicted
    area, done in plate pixels so that a host can redo it from ``raw.A``).
    """
    shaped = run.erode_dilate(matte, erode_px) if abs(erode_px) >= 1.0 else matte
    limit = run.erode_dilate(coverage, clip_px) if clip_px >= 1.0 else coverage
    final = run.gaussian_blur(run.minimum(shaped, limit), blur_sigma) if blur_sigma > 0 else \
        run.minimum(shaped, limit)
    final[final < float(MASK_FLOOR)] = 0.0
    if opacity != 1.0:
        final = run.contiguous(final * float(opacity))
    return final


class HostMergeOps:
    """The merge operations on NumPy arrays: the native C++ core, or the NumPy/OpenCV reference."""

    on_gpu = False

    def __init__(self, backend: str = "auto", threads: int = 0) -> None:
        self.backend = backend
        self.threads = threads

    def upload(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.float32) if array.dtype != np.float16 else array

    def warp_source(self, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(R, R, 5): face, mask and a channel of ones, warped together so the warp also gives the coverage."""
        return np.ascontiguousarray(np.dstack([face, mask, np.ones(face.shape[:2], np.float32)]), dtype=np.float32)

    def download(self, buffer: np.ndarray) -> np.ndarray:
        return buffer

    def zeros(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.zeros(shape, dtype)

    def contiguous(self, buffer: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(buffer)

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

    def warp_source(self, face, mask):
        face = self.upload(face).float()
        mask = self.upload(mask).float()
        return self.torch.cat([face, mask[..., None], self.torch.ones_like(face[..., :1])], dim=-1).contiguous()

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

    def minimum(self, a, b):
        return self.torch.minimum(a, b)

    def erode_dilate(self, mask, radius: float):
        return self.cuda_ops.erode_dilate(mask.float().contiguous(), radius)

    def gaussian_blur(self, mask, sigma: float):
        return self.cuda_ops.gaussian_blur(mask.float().contiguous(), sigma)

    def warp_to_plate(self, src, matrix, bbox, interpolation):
        return self.cuda_ops.warp_to_plate(src, matrix, bbox, interpolation)

    def composite(self, plate, face, mask, origin, alpha_channel) -> None:
        self.cuda_ops.composite(plate, face, mask, origin, alpha_channel)
