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

The steps are written once against the typed :class:`~dfl_vfx.merge.merge_ops.MergeOps`: NumPy arrays on the host
(:class:`~dfl_vfx.merge.merge_ops.HostMergeOps`), CUDA tensors for a CUDA merge
(:class:`~dfl_vfx.merge.cuda_ops.CudaMergeOps`, the only form that imports torch, and only when asked for).

This module holds no file I/O: :mod:`dfl_vfx.swap` reads frames, runs the network and writes the layers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dfl_vfx.color.ocio import WorkingSpace
from dfl_vfx.face.align import get_transform_mat, transform_points
from dfl_vfx.face.crop import crop_box, local_matrix
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.face.masks import hull_mask
from dfl_vfx.merge.face_filters import face_scale_matrix
from dfl_vfx.merge.masks import (
    DEFAULT_MASK_MODE,
    combine_masks,
    mask_names,
    needs_xseg,
    plate_blur_sigma,
    plate_clip_margin,
    plate_erode_radius,
    plate_px_per_unit,
)
from dfl_vfx.merge.merge_ops import Buffer, ColourConversion, HostMergeOps, MergeOps
from dfl_vfx.merge.reference import MASK_FLOOR, gaussian_taps, warp_footprint

if TYPE_CHECKING:
    from dfl_vfx.color.torch_color import TorchWorkingSpace

LAYERS = ("rgba", "mask", "face", "raw", "matte", "xseg")
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
    xseg_model: str | None = None  # XSeg model folder for the xseg-prd / xseg-dst masks

    def validate(self) -> None:
        """Every knob checked by its declaration in :mod:`dfl_vfx.schema` (errors name the setting); an XSeg mask
        mode needs ``xseg_model``."""
        from dfl_vfx.schema import SettingError, validate_setting

        for name in asdict(self):
            validate_setting(name, getattr(self, name))
        if needs_xseg(self.mask_mode) and not self.xseg_model:
            raise SettingError("mask_mode", self.mask_mode, "uses XSeg masks: set xseg_model to a trained XSeg model "
                               "folder (dfl-vfx xseg train)")

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
    xseg_dst: Any = None  # (R, R) the XSeg mask of the dst face, once computed


@dataclass
class PastedFace:
    """What was pasted: for the header (:class:`dfl_vfx.swap.header.FaceRecord`) and the layers (what a host needs
    to redo the live steps of this face)."""

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


@dataclass
class MergeLayers:
    """Per-frame layer buffers in plate-array coordinates (None when not asked for); CUDA tensors on the GPU path."""

    mask: Any = None  # (H, W) the plate's dtype
    matte: Any = None  # (H, W) the matte before the live steps (erode, blur, opacity), the plate's dtype
    face: Any = None  # (H, W, 4) premultiplied, the plate's dtype
    raw: Any = None  # (H, W, 4)
    xseg: Any = None  # (H, W) the XSeg mask of the plate's faces (xseg-dst, as predicted), the plate's dtype
    faces: list[PastedFace] = field(default_factory=list)


class FaceMerger:
    """Merges predicted faces into plates for one model (resolution, face type, input space).

    The per-face steps are written once against :class:`~dfl_vfx.merge.merge_ops.MergeOps`: ``face_ops`` crop,
    colour-match and filter the face in aligned space, ``ops`` paste it into the plate. On the host both are
    :class:`~dfl_vfx.merge.merge_ops.HostMergeOps`; a CUDA merge pastes with
    :class:`~dfl_vfx.merge.cuda_ops.CudaMergeOps` and, given a ``torch_space``, also crops and colours with it.
    """

    def __init__(self, settings: MergeSettings, space: WorkingSpace, resolution: int, face_type: FaceType,
                 backend: str = "auto", threads: int = 0, device: str = "cuda:0",
                 torch_space: TorchWorkingSpace | None = None) -> None:
        """``backend``: auto | native | reference (NumPy arrays) or cuda (the plate lives on ``device``).

        With cuda and a ``torch_space`` (the plate -> model conversion in torch), faces are also cropped, converted
        and colour-matched on the GPU (:attr:`device_stage`): :meth:`prepare` and :meth:`finish_face` then take
        and give CUDA tensors. Only a CUDA merge imports torch.
        """
        settings.validate()
        self.settings = settings
        self.space = space
        self.resolution = resolution
        self.face_type = face_type
        self.backend = backend
        self.threads = threads
        self.ops: MergeOps
        if backend == "cuda":
            from dfl_vfx.merge.cuda_ops import CudaMergeOps

            self.ops = CudaMergeOps(device)
        else:
            self.ops = HostMergeOps(backend, threads)
        self.torch_space = torch_space if backend == "cuda" else None
        # the aligned-space steps run where the face is: on the GPU with a device stage, else on the host
        on_host = self.ops.on_gpu and not self.device_stage
        self.face_ops: MergeOps = HostMergeOps(threads=threads) if on_host else self.ops
        self.colours: ColourConversion = self.torch_space if self.torch_space is not None else space
        self._needs = mask_names(settings.mask_mode)
        self.xseg = None  # the XSeg model, run on aligned faces for the xseg-prd / xseg-dst masks and xseg layer
        if settings.xseg_model:
            from dfl_vfx.xseg.masker import XSegMasker

            self.xseg = XSegMasker(settings.xseg_model, face_type.cli_name, resolution)

    @property
    def device_stage(self) -> bool:
        """Whether faces are cropped, converted and colour-matched on the GPU (a CUDA merge with a torch form of
        the colours): :meth:`prepare` then takes the plate as a CUDA tensor."""
        return self.torch_space is not None

    # -- before the network -------------------------------------------------------------------------------------

    def prepare(self, plate: Buffer, alpha_channel: int | None, origin: tuple[int, int],
                plan: FacePlan) -> PreparedFace:
        """Crop one face for the network (:func:`dfl_vfx.face.crop.crop_face`, or its device form) and convert it
        to the model's input space.

        ``plate`` (H, W, C): premultiplied RGB first and its alpha at ``alpha_channel`` (None: opaque), a NumPy
        array, or a CUDA tensor with :attr:`device_stage`; pixel (0, 0) lies at ``origin`` (absolute pixels).
        """
        run = self.face_ops
        size = self.resolution
        matrix = get_transform_mat(plan.landmarks, size, self.face_type)
        crop = run.crop_face(plate, alpha_channel, origin, matrix, size)
        hull = hull_mask((size, size), transform_points(plan.landmarks, matrix)).astype(np.float32)
        return PreparedFace(plan, matrix, run.float32(self.colours.to_working(crop)), run.upload(hull))

    def plate_rows(self, plan: FacePlan, origin: tuple[int, int], plate_shape: tuple[int, int]) -> tuple[int, int]:
        """The array rows [y0, y1) that :meth:`prepare` reads and :meth:`paste` writes for ``plan`` on a plate of
        ``plate_shape`` (H, W) whose pixel (0, 0) lies at ``origin``: the crop's box and the pasted box (the warp's
        footprint grown by the blur's reach), computed as those steps compute them. (0, 0) when the face is off the
        plate. A frame read only over these rows swaps exactly as the whole frame does."""
        size = self.resolution
        s = self.settings
        matrix = get_transform_mat(plan.landmarks, size, self.face_type)
        _, cy0, _, cy1 = crop_box(matrix, size, origin, plate_shape)
        pasted = face_scale_matrix(matrix, size, s.face_scale) if s.face_scale else matrix
        _, fy0, _, fy1 = warp_footprint(local_matrix(pasted, origin), (size, size), s.interpolation, plate_shape)
        reach = blur_reach(plate_blur_sigma(s.blur, pasted))
        spans = [(cy0, cy1)] if cy1 > cy0 else []
        if fy1 > fy0:
            spans.append((max(fy0 - reach, 0), min(fy1 + reach, plate_shape[0])))
        if not spans:
            return 0, 0
        return min(a for a, _ in spans), max(b for _, b in spans)

    # -- after the network --------------------------------------------------------------------------------------

    def finish_face(self, prepared: PreparedFace, rgb: Buffer, mask_src: Buffer, mask_dst: Buffer,
                    several_faces: bool) -> tuple[Buffer, Buffer]:
        """(face in plate colours, mask) in aligned space, ready to paste: mask mode, colour transfer kept within
        the crop's range, sharpen, motion blur, back to plate colours."""
        run = self.face_ops
        s = self.settings
        masks = {"hull": prepared.hull, "learned-prd": mask_src, "learned-dst": mask_dst}
        if "xseg-dst" in self._needs:
            masks["xseg-dst"] = self.xseg_dst(prepared)
        if "xseg-prd" in self._needs:
            masks["xseg-prd"] = self.xseg(rgb)
        mask = combine_masks(s.mask_mode, {k: v for k, v in masks.items() if k in self._needs or k == "hull"})
        face = run.float32(rgb)
        if s.color_transfer != "none":
            face = run.transfer_color(s.color_transfer, face, prepared.model_input, mask, s.seed)
            # Matching the statistics of a nearly flat prediction (an early model) multiplies its noise; in a log
            # working space that noise would come back as scene-linear values in the hundreds. DeepFaceLab clips
            # to its [0, 1] image range for the same reason; the crop's own range is the scene-linear analogue.
            face = run.clip_to_range(face, prepared.model_input, TRANSFER_MARGIN)
        if s.sharpen_mode != "none" and s.sharpen_amount != 0:
            face = run.sharpen(face, s.sharpen_mode, s.sharpen_amount, self.resolution)
        if s.motion_blur > 0 and prepared.plan.motion is not None and not several_faces:
            velocity = prepared.matrix[:, :2] @ np.asarray(prepared.plan.motion, np.float64)
            face, mask = run.motion_blur(face, mask, (float(velocity[0]), float(velocity[1])), s.motion_blur)
        return run.float32(self.colours.from_working(face)), run.float32(mask)

    def xseg_dst(self, prepared: PreparedFace) -> Buffer:
        """The XSeg mask of the dst face (computed once per face)."""
        if prepared.xseg_dst is None:
            prepared.xseg_dst = self.xseg(prepared.model_input)
        return prepared.xseg_dst

    def paste(self, plate, alpha_channel: int | None, origin: tuple[int, int], prepared: PreparedFace,
              face: np.ndarray, mask: np.ndarray, layers: MergeLayers) -> PastedFace:
        """Composite one finished face into ``plate`` (in place) and into the requested layers.

        Warp face, mask and a channel of ones (the coverage) into the plate together, then the live steps of
        :func:`shape_matte`, then composite the unpremultiplied face times ``2 ** face_exposure`` by that matte.
        ``plate`` and the layer buffers are NumPy arrays, or CUDA tensors when the merger runs on the GPU; both go
        through the same steps (:class:`~dfl_vfx.merge.merge_ops.MergeOps`).
        """
        s = self.settings
        matrix = face_scale_matrix(prepared.matrix, self.resolution, s.face_scale) if s.face_scale else \
            prepared.matrix
        local = local_matrix(matrix, origin)
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
        if layers.xseg is not None:  # the dst face's XSeg mask, warped like the matte (no erode, blur or opacity)
            xseg = self.face_ops.float32(self.xseg_dst(prepared))
            warped_xseg = run.warp_to_plate(run.warp_source(face, xseg), local, bbox, s.interpolation)
            region = layers.xseg[y0:y1, x0:x1]
            region[...] = run.union(region, run.contiguous(warped_xseg[..., 3].clip(0.0, 1.0)))
        return pasted


def blur_reach(blur_sigma: float) -> int:
    """How many pixels the matte's blur reaches beyond the matte: the radius of :func:`gaussian_taps`."""
    return len(gaussian_taps(blur_sigma)) // 2 if blur_sigma > 0 else 0


def shape_matte(run: MergeOps, matte: Buffer, coverage: Buffer, erode_px: float, clip_px: float,
                blur_sigma: float, opacity: float) -> Buffer:
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
