"""One frame in, one swapped frame out: the engine that `dfl-vfx swap` and `dfl-vfx serve` share.

The engine keeps a model loaded (any runtime backend) and, per plate colourspace, a :class:`FaceMerger`. A frame is
an :class:`~dfl_vfx.io.image.Image` read with its native pixel type, so half plates stay half: the composite writes
only pixels the final mask touches, everything else (other layers, windows, metadata, NaN/Inf outside the face)
passes through. The layers of ``docs/dev/swap-output.md`` go to a companion image cut to the faces
(:mod:`dfl_vfx.swap.layout`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import OpenImageIO as oiio

import dfl_vfx
from dfl_vfx.color.ocio import SRGB_SPACE, WORKING_SPACE, WorkingSpace, load_config, plate_colorspace
from dfl_vfx.errors import DflError
from dfl_vfx.face.face_type import FaceType
from dfl_vfx.io.image import Image, interleave_channels
from dfl_vfx.merge.merger import FaceMerger, FacePlan, MergeLayers, MergeSettings, PastedFace
from dfl_vfx.swap.header import FACES_ATTRIBUTE, SWAP_ATTRIBUTE, FaceRecord, SwapHeader, SwapRecord
from dfl_vfx.swap.layout import layers_image, wants_layers_file

if TYPE_CHECKING:
    from dfl_vfx.color.torch_color import TorchWorkingSpace
    from dfl_vfx.runtime import SwapRuntime

__all__ = ["FACES_ATTRIBUTE", "SWAP_ATTRIBUTE", "FrameResult", "ModelCaches", "StageTimes", "SwapEngine",
           "SwapSettings", "check_output_format", "face_record", "plate_channel_indices"]


@dataclass
class SwapSettings:
    """Everything that decides how a frame is swapped (merge knobs, model, runtime, layers, colour)."""

    model: str
    merge: MergeSettings = field(default_factory=MergeSettings)
    layers: tuple[str, ...] = ("rgba", "mask", "face")
    backend: str = "auto"
    device: str = "auto"
    batch: int = 8
    face_type: str | None = None  # only for models that do not say (external DFMs)
    colorspace: str | None = None
    ocio_config: str | None = None
    merge_backend: str = "auto"  # auto (cuda beside a GPU runtime, else native) | native | reference | cuda
    threads: int = 0
    layer_window: str = "face"  # the companion's data window: face (the faces' boxes) | display

    def validate(self) -> None:
        """Every setting checked by its declaration in :mod:`dfl_vfx.schema` (errors name the setting)."""
        from dfl_vfx.schema import validate_setting

        self.merge.validate()
        for name in ("layers", "backend", "device", "batch", "face_type", "merge_backend", "colorspace",
                     "ocio_config", "layer_window"):
            validate_setting(name, getattr(self, name))


@dataclass
class StageTimes:
    """Seconds spent per stage (summed over frames; stages of different frames overlap in time)."""

    read: float = 0.0
    prepare: float = 0.0
    infer: float = 0.0
    merge: float = 0.0
    write: float = 0.0

    def add(self, other: StageTimes) -> None:
        for name in ("read", "prepare", "infer", "merge", "write"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class FrameResult:
    """A swapped frame and what happened to it."""

    image: Image  # the delivered frame: the plate's channels with R G B A swapped
    faces: list[PastedFace]
    times: StageTimes
    layers: Image | None = None  # the companion (dfl_vfx/swap/layout.py), None when only rgba is asked for
    planes: dict[str, np.ndarray] = field(default_factory=dict)  # the layers by name over the plate's data window


def plate_channel_indices(image: Image) -> tuple[list[int], int | None]:
    """Indices of a plate's R, G, B channels and of its A (None without one); a one-line DflError naming the
    file when it has no colour channels."""
    names = {c: i for i, c in enumerate(image.channels)}
    where = f"{image.path}: " if image.path else ""
    if all(c in names for c in "RGB"):
        rgb = [names["R"], names["G"], names["B"]]
    elif "Y" in names:
        raise DflError(f"{where}luminance-only (Y) plates cannot be swapped; convert the plate to RGB first")
    else:
        raise DflError(f"{where}the plate has no R, G, B channels (has {', '.join(image.channels)}); "
                       "give a colour plate")
    return rgb, names.get("A")


def check_output_format(pattern: str | Path, layers: tuple[str, ...] | list[str], layers_option: str = "--layers",
                        output: str = "the output frames (named like the plate)",
                        remedy: str = "give an EXR plate (e.g. convert it with oiiotool) or pass --layers rgba",
                        ) -> None:
    """Refuse, before any work, an output file format that cannot hold what the swap writes.

    The layers beyond ``rgba`` are named channels (``mask.A``, ``face.R`` ...) that only EXR keeps; every frame
    gains an alpha, so the format must store one. ``--layers rgba`` works for any format with alpha (PNG, TIFF).
    ``layers_option``, ``output`` and ``remedy`` word the one-line error for the caller (CLI or serve).
    """
    suffix = Path(pattern).suffix.lower()
    kind = suffix.lstrip(".").upper() or "extension-less"
    extra = [layer for layer in layers if layer != "rgba"]
    if extra and suffix != ".exr":
        raise DflError(f"{layers_option} {','.join(layers)}: {output} are {kind}, which cannot hold the "
                       f"{', '.join(extra)} layer(s) (only EXR keeps named layers); {remedy}")
    writer = oiio.ImageOutput.create(f"probe{suffix}") if suffix else None
    if writer is None or not writer.supports("alpha"):
        raise DflError(f"{pattern}: {kind} files cannot hold the alpha channel every swapped frame carries; give an "
                       "EXR (or PNG/TIFF) plate")


def _runtime_is_reentrant(runtime: SwapRuntime) -> bool:
    """Whether frame threads may call the runtime at once: ONNX Runtime sessions are documented thread-safe and
    a torch module in inference mode keeps no state, but a TensorRT execution context and a captured CUDA graph
    (its static input buffer) serve one call at a time."""
    if runtime.backend_name == "tensorrt":
        return False
    return not getattr(runtime, "cuda_graphs", False)


class ModelCaches:
    """What every settings view over one loaded model shares (thread-safe): the lock that serialises a runtime
    that serves one call at a time, and the colour conversions keyed by what they depend on, so a host scrubbing a
    merge setting builds no new OCIO processors."""

    def __init__(self, runtime: SwapRuntime) -> None:
        self.infer_lock: threading.Lock | contextlib.nullcontext = (
            contextlib.nullcontext() if _runtime_is_reentrant(runtime) else threading.Lock())
        self._lock = threading.Lock()
        self._spaces: dict[tuple[str, str, str | None], WorkingSpace] = {}
        self._torch_spaces: dict[tuple[str, str, str | None], TorchWorkingSpace] = {}

    def working_space(self, plate_space: str, model_space: str, ocio_config: str | None) -> WorkingSpace:
        key = (plate_space, model_space, ocio_config)
        with self._lock:
            if key not in self._spaces:
                self._spaces[key] = WorkingSpace(plate_space, model_space, ocio_config)
            return self._spaces[key]

    def torch_space(self, plate_space: str, model_space: str, ocio_config: str | None) -> TorchWorkingSpace | None:
        """The torch form of the conversion (None when it has none); imports torch (only the GPU stage asks)."""
        from dfl_vfx.color.torch_color import TorchWorkingSpace

        key = (plate_space, model_space, ocio_config)
        with self._lock:
            if key not in self._torch_spaces:
                self._torch_spaces[key] = TorchWorkingSpace.from_ocio(plate_space, model_space, ocio_config)
            return self._torch_spaces[key]


class SwapEngine:
    """A loaded model plus merge settings; :meth:`swap_image` is thread-safe.

    An engine made with another engine's ``runtime`` and ``caches`` is a light view with other merge, layer or
    colour settings over the same loaded model: what `dfl-vfx serve` makes per request.
    """

    def __init__(self, settings: SwapSettings, runtime: SwapRuntime | None = None,
                 caches: ModelCaches | None = None) -> None:
        """Load the model (or reuse ``runtime``, already loaded for ``settings.model``, and its ``caches``)."""
        from dfl_vfx.runtime import load_runtime

        settings.validate()
        self.settings = settings
        self.runtime = runtime or load_runtime(settings.model, backend=settings.backend, device=settings.device,
                                               max_batch=settings.batch, threads=settings.threads)
        self.caches = caches if caches is not None and runtime is not None else ModelCaches(self.runtime)
        info = self.runtime.info
        model_type = info.face_type
        if settings.face_type and model_type and FaceType.parse(settings.face_type).cli_name != \
                FaceType.parse(model_type).cli_name:
            raise DflError(f"--face-type {settings.face_type} disagrees with the model, trained on {model_type}; "
                           "leave --face-type out")
        chosen = model_type or settings.face_type
        if not chosen:
            raise DflError(f"{settings.model} does not say its face type; pass --face-type (f, wf or head: the "
                           "type its faceset was extracted with)")
        self.face_type = FaceType.parse(chosen)
        self.resolution = int(info.resolution)
        self.model_space = SRGB_SPACE if info.input_space == "srgb" else WORKING_SPACE
        self.config = load_config(settings.ocio_config)
        self.merge_backend = self._merge_backend(settings.merge_backend, self.runtime.device)
        self._mergers: dict[str, FaceMerger] = {}
        self._lock = threading.Lock()
        # frames in flight (and every view of this model) share the runtime: serialise the calls of a runtime
        # that cannot serve two at once
        self._infer_lock = self.caches.infer_lock
        # the companion's window changes its file, not the frame: it counts only when a companion is written
        window = (settings.layer_window,) if wants_layers_file(settings.layers) else ()
        self.settings_hash = settings.merge.digest(info.sha256, sorted(settings.layers), self.face_type.cli_name,
                                                   self.model_space, settings.colorspace, *window)

    @staticmethod
    def _merge_backend(asked: str, runtime_device: str) -> str:
        """auto: the CUDA merge beside a model on the GPU when the CUDA build can run, else the native CPU core."""
        from dfl_vfx import native

        if asked == "cuda":
            reason = native.cuda_unavailable_reason()
            if reason is not None:
                raise DflError(f"--merge-backend cuda: {reason}; use --merge-backend native")
            return "cuda"
        if asked == "auto":
            on_gpu = runtime_device.startswith("cuda") and native.cuda_available()
            return "cuda" if on_gpu else "auto"
        return asked

    @property
    def model_name(self) -> str:
        return Path(self.settings.model).name

    def merger_for(self, plate_space: str) -> FaceMerger:
        with self._lock:
            if plate_space not in self._mergers:
                space = self.caches.working_space(plate_space, self.model_space, self.settings.ocio_config)
                torch_space = None
                if self.merge_backend == "cuda" and getattr(self.runtime, "is_cuda", False):  # the GPU stage
                    torch_space = self.caches.torch_space(plate_space, self.model_space, self.settings.ocio_config)
                device = self.runtime.device if self.runtime.device.startswith("cuda") else "cuda:0"
                self._mergers[plate_space] = FaceMerger(self.settings.merge, space, self.resolution, self.face_type,
                                                        backend=self.merge_backend, threads=self.settings.threads,
                                                        device=device, torch_space=torch_space)
            return self._mergers[plate_space]

    def plate_space(self, image: Image) -> str:
        return plate_colorspace(self.settings.colorspace, image.metadata, self.config)

    def plate_rows(self, header: Image, plans: list[FacePlan]) -> list[tuple[int, int]]:
        """The absolute rows [y0, y1) of the plate ``header`` describes (pixels not needed) that swapping ``plans``
        reads or writes, merged where they overlap: reading only these rows swaps exactly as reading all."""
        merger = self.merger_for(self.plate_space(header))
        window = header.data_window
        origin, shape = (window.x, window.y), (window.height, window.width)
        spans = sorted((window.y + a, window.y + b) for a, b in (merger.plate_rows(plan, origin, shape)
                                                                   for plan in plans) if b > a)
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return merged

    def swap_image(self, image: Image, plans: list[FacePlan], frame: int) -> FrameResult:
        """Swap the planned faces of ``image`` (its pixels are modified in place and reused by the result)."""
        times = StageTimes()
        start = time.perf_counter()
        rgb_idx, alpha_idx = plate_channel_indices(image)
        pixels, channels, formats = image.pixels, list(image.channels), list(image.channel_formats)
        rgb_format = formats[rgb_idx[0]]
        had_alpha = alpha_idx is not None
        if not had_alpha:  # the composite needs an alpha: an opaque plate gets A = 1
            pixels = interleave_channels([pixels, np.ones(pixels.shape[:2] + (1,), pixels.dtype)])
            channels.append("A")
            formats.append(rgb_format)
            alpha_idx = len(channels) - 1
        direct = rgb_idx == [0, 1, 2]
        work = pixels if direct else np.ascontiguousarray(pixels[..., rgb_idx + [alpha_idx]])
        work_alpha = alpha_idx if direct else 3
        origin = (image.data_window.x, image.data_window.y)
        merger = self.merger_for(self.plate_space(image))

        h, w = work.shape[:2]
        run = merger.ops
        wanted = self.settings.layers
        layers = MergeLayers(
            mask=run.zeros((h, w), work.dtype) if "mask" in wanted else None,
            matte=run.zeros((h, w), work.dtype) if "matte" in wanted else None,
            face=run.zeros((h, w, 4), work.dtype) if "face" in wanted else None,
            raw=run.zeros((h, w, 4), work.dtype) if "raw" in wanted else None,
            xseg=run.zeros((h, w), work.dtype) if "xseg" in wanted else None,
        )
        plate = run.upload(work) if run.on_gpu and plans else work
        # with a GPU stage, crop, colour, network and paste all run on the device: no plate-sized host copies per face
        on_device = merger.device_stage
        prepared = [merger.prepare(plate if on_device else work, work_alpha if had_alpha else None, origin, plan)
                    for plan in plans]
        times.prepare = time.perf_counter() - start
        if prepared:
            t = time.perf_counter()
            if on_device:
                import torch

                batch = torch.stack([p.model_input.permute(2, 0, 1) for p in prepared])
                with self._infer_lock:
                    rgb, mask_src, mask_dst = self.runtime.predict_torch(batch)
                outputs = [(rgb[i].permute(1, 2, 0), mask_src[i, 0], mask_dst[i, 0]) for i in range(len(prepared))]
            else:
                batch = np.stack([p.model_input for p in prepared])
                with self._infer_lock:
                    prediction = self.runtime.predict(batch)
                outputs = [(prediction.rgb[i], prediction.mask_src[i], prediction.mask_dst[i])
                           for i in range(len(prepared))]
            times.infer = time.perf_counter() - t
            t = time.perf_counter()
            for face, (face_rgb, face_src, face_dst) in zip(prepared, outputs, strict=True):
                rgb_linear, mask = merger.finish_face(face, face_rgb, face_src, face_dst, len(prepared) > 1)
                layers.faces.append(merger.paste(plate, work_alpha, origin, face, rgb_linear, mask, layers))
            if run.on_gpu:
                work[...] = run.download(plate)
            times.merge = time.perf_counter() - t
        if run.on_gpu:
            layers.mask, layers.matte, layers.face, layers.raw, layers.xseg = (
                None if b is None else run.download(b)
                for b in (layers.mask, layers.matte, layers.face, layers.raw, layers.xseg))
        if not direct:
            pixels[..., rgb_idx + [alpha_idx]] = work

        planes = {name: buffer for name, buffer in (("mask", layers.mask), ("matte", layers.matte),
                                                     ("face", layers.face), ("raw", layers.raw),
                                                     ("xseg", layers.xseg)) if buffer is not None}
        metadata = dict(image.metadata)
        record = SwapRecord(
            model=self.model_name,
            model_sha256=self.runtime.info.sha256,
            backend=self.runtime.backend_name,
            device=self.runtime.device,
            merge_backend="cuda" if run.on_gpu else "cpu",
            settings=self.settings.merge.to_dict(),
            layers=tuple(self.settings.layers),
            settings_hash=self.settings_hash,
            frame=frame,
            dfl_vfx_version=dfl_vfx.__version__,
        )
        metadata.update(SwapHeader(record, [face_record(face) for face in layers.faces]).to_metadata())
        types = {k: v for k, v in image.metadata_types.items() if k not in (SWAP_ATTRIBUTE, FACES_ATTRIBUTE)}
        out = Image(pixels=pixels, channels=channels, data_window=image.data_window,
                    display_window=image.display_window, channel_formats=formats, metadata=metadata,
                    metadata_types=types, path=image.path)
        companion = layers_image(out, planes, [face.bbox for face in layers.faces], self.settings.layer_window,
                                 "half" if rgb_format == "half" else "float")
        return FrameResult(out, layers.faces, times, companion, planes)


def face_record(face: PastedFace) -> FaceRecord:
    """The header entry of a pasted face (landmarks to 1e-4 px, matrix to 1e-8: what the file keeps)."""
    return FaceRecord(
        index=face.plan.index,
        track_id=face.plan.track_id,
        landmarks=np.round(face.plan.landmarks, 4),
        matrix=np.round(face.matrix, 8),
        resolution=face.resolution,
        face_type=face.face_type,
        bbox=face.bbox,
        footprint=face.footprint,
        px_per_unit=face.px_per_unit,
        erode_px=face.erode_px,
        clip_px=face.clip_px,
        blur_sigma=face.blur_sigma,
    )
