"""The swap runtime interface every backend implements: batching, face-size checks and GPU out-of-memory fallback.

A backend implements two batch calls: :meth:`SwapRuntime._run_batch` (numpy, channels last, RGB) and
:meth:`SwapRuntime._run_batch_torch` (torch, NCHW, on the runtime device). :meth:`SwapRuntime.predict` and
:meth:`SwapRuntime.predict_torch` split the faces into batches of ``max_batch``; when a batch runs out of GPU
memory they halve ``max_batch`` (one warning line) and retry, down to batch 1, where the error is a DflError.
They also check that the outputs come back at the model's declared resolution (a graph whose output sizes are
symbolic escapes the check :func:`~dfl_vfx.runtime.model_file.inspect_model` makes) and name the model if not.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.model_file import LAYOUT_NHWC_BGR, ModelInfo

log = logging.getLogger(__name__)

DEFAULT_MORPH = 0.75

# Lower-case fragments of out-of-memory messages from ONNX Runtime (CUDA / TensorRT EPs), cuDNN, cuBLAS and CUDA.
_OOM_MESSAGES = (
    "out of memory",
    "failed to allocate",
    "cudaerrormemoryallocation",
    "cudnn_status_alloc_failed",
    "cublas_status_alloc_failed",
)


class GpuOutOfMemory(RuntimeError):
    """A backend could not allocate GPU memory for a batch (raised where a library only returns a failure)."""


@dataclass
class Prediction:
    """Swap outputs, numpy float32, RGB, channels last: rgb (N, R, R, 3), mask_src and mask_dst (N, R, R)."""

    rgb: np.ndarray
    mask_src: np.ndarray
    mask_dst: np.ndarray


TorchPrediction = tuple[Tensor, Tensor, Tensor]


def prediction_to_numpy(outputs: TorchPrediction) -> Prediction:
    """NCHW tensors (rgb, mask_src, mask_dst) -> a channels-last float32 numpy :class:`Prediction`."""
    rgb, mask_src, mask_dst = (t.detach().to("cpu", torch.float32) for t in outputs)
    return Prediction(rgb.permute(0, 2, 3, 1).contiguous().numpy(), mask_src[:, 0].numpy(), mask_dst[:, 0].numpy())


def model_input_shape(info: ModelInfo, batch: int) -> tuple[int, int, int, int]:
    """The model's face input shape for ``batch`` faces: (n, 3, R, R), or (n, R, R, 3) for DFMs."""
    size = info.resolution
    return (batch, size, size, 3) if info.layout == LAYOUT_NHWC_BGR else (batch, 3, size, size)


def model_output_shapes(info: ModelInfo, batch: int) -> tuple[tuple[int, ...], ...]:
    """Shapes of the (rgb, mask_src, mask_dst) outputs in the model's own layout."""
    size = info.resolution
    if info.layout == LAYOUT_NHWC_BGR:
        return (batch, size, size, 3), (batch, size, size, 1), (batch, size, size, 1)
    return (batch, 3, size, size), (batch, 1, size, size), (batch, 1, size, size)


def to_model_layout(info: ModelInfo, faces: Tensor) -> Tensor:
    """(n, 3, R, R) RGB faces -> the model's input layout (NHWC BGR for DFMs), contiguous."""
    if info.layout == LAYOUT_NHWC_BGR:
        return faces.permute(0, 2, 3, 1).flip(-1).contiguous()
    return faces.contiguous()


def from_model_layout(info: ModelInfo, rgb: Tensor, mask_src: Tensor, mask_dst: Tensor) -> TorchPrediction:
    """Model outputs in its own layout -> float32 NCHW RGB (rgb (n, 3, R, R), masks (n, 1, R, R))."""
    if info.layout == LAYOUT_NHWC_BGR:
        rgb = rgb.flip(-1).permute(0, 3, 1, 2)
        mask_src, mask_dst = mask_src.permute(0, 3, 1, 2), mask_dst.permute(0, 3, 1, 2)
    rgb, mask_src, mask_dst = (t.to(torch.float32).contiguous() for t in (rgb, mask_src, mask_dst))
    return rgb, mask_src, mask_dst


def is_out_of_memory(exc: BaseException) -> bool:
    """True for GPU allocation failures from torch, ONNX Runtime, TensorRT or CUDA libraries."""
    if isinstance(exc, GpuOutOfMemory | torch.cuda.OutOfMemoryError):
        return True
    message = str(exc).lower()
    return any(fragment in message for fragment in _OOM_MESSAGES)


def parse_device(device: str) -> tuple[str, int]:
    """``"cpu"`` -> ("cpu", 0); ``"cuda"`` / ``"cuda:N"`` -> ("cuda", N); anything else is a DflError."""
    kind, _, index = device.strip().lower().partition(":")
    if kind == "cpu" and not index:
        return "cpu", 0
    if kind == "cuda" and (not index or index.isdigit()):
        return "cuda", int(index or 0)
    raise DflError(f"--device {device!r} is unknown; use auto, cpu or cuda:N (e.g. cuda:0)")


class SwapRuntime(ABC):
    """A loaded swap model on one device. ``morph`` (0..1) feeds the identity morph of AMP DFMs."""

    backend_name: str = ""

    def __init__(self, info: ModelInfo, device: str = "cpu", max_batch: int = 8) -> None:
        if max_batch < 1:
            raise DflError(f"max batch {max_batch} is invalid; use a batch size of 1 or more")
        device_type, device_index = parse_device(device)
        self.info = info
        self.device = "cpu" if device_type == "cpu" else f"cuda:{device_index}"
        self.device_index = device_index
        self.max_batch = max_batch
        self.morph = DEFAULT_MORPH

    @property
    def is_cuda(self) -> bool:
        return self.device != "cpu"

    # -----------------------------------------------------------------------------------------------------------
    # Public calls

    def predict(self, faces: np.ndarray) -> Prediction:
        """Swap (N, R, R, 3) float32 RGB faces in ``info.input_space``; see :class:`Prediction`."""
        faces = np.asarray(faces)
        size = self.info.resolution
        if faces.ndim != 4 or faces.shape[1:] != (size, size, 3):
            raise DflError(
                f"faces have shape {faces.shape}, but {self.info.path.name} takes (N, {size}, {size}, 3) RGB faces at "
                f"its resolution {size}; align faces at {size} px"
            )
        faces = np.ascontiguousarray(faces, dtype=np.float32)
        parts = self._batched(faces, self._run_batch)
        for part in parts:
            self._check_output_sizes(part.rgb.shape, (size, size, 3), part.mask_src.shape, part.mask_dst.shape,
                                     (size, size))
        if not parts:
            empty = np.zeros((0, size, size), np.float32)
            return Prediction(np.zeros((0, size, size, 3), np.float32), empty, empty.copy())
        return Prediction(
            rgb=np.concatenate([part.rgb for part in parts]),
            mask_src=np.concatenate([part.mask_src for part in parts]),
            mask_dst=np.concatenate([part.mask_dst for part in parts]),
        )

    def predict_torch(self, faces: Tensor) -> TorchPrediction:
        """GPU-resident swap: (N, 3, R, R) float32 RGB on the runtime device -> (rgb (N, 3, R, R), mask_src
        (N, 1, R, R), mask_dst (N, 1, R, R)) on the same device."""
        size = self.info.resolution
        if faces.ndim != 4 or tuple(faces.shape[1:]) != (3, size, size):
            raise DflError(
                f"faces have shape {tuple(faces.shape)}, but {self.info.path.name} takes (N, 3, {size}, {size}) "
                f"faces at its resolution {size}; align faces at {size} px"
            )
        faces = faces.detach().to(self.device, torch.float32).contiguous()
        parts = self._batched(faces, self._run_batch_torch)
        for rgb, mask_src, mask_dst in parts:
            self._check_output_sizes(tuple(rgb.shape), (3, size, size), tuple(mask_src.shape),
                                     tuple(mask_dst.shape), (1, size, size))
        if not parts:
            masks = faces.new_zeros(0, 1, size, size)
            return faces.new_zeros(0, 3, size, size), masks, masks.clone()
        rgb, mask_src, mask_dst = zip(*parts, strict=True)
        return torch.cat(rgb), torch.cat(mask_src), torch.cat(mask_dst)

    # -----------------------------------------------------------------------------------------------------------
    # Backend hooks

    @abstractmethod
    def _run_batch(self, faces: np.ndarray) -> Prediction:
        """One batch (n <= max_batch) of contiguous (n, R, R, 3) float32 RGB faces."""

    @abstractmethod
    def _run_batch_torch(self, faces: Tensor) -> TorchPrediction:
        """One batch (n <= max_batch) of contiguous (n, 3, R, R) float32 faces on the runtime device."""

    def _release_memory(self) -> None:
        """Return cached GPU memory after an out-of-memory failure, before the retry."""
        if self.is_cuda and torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -----------------------------------------------------------------------------------------------------------

    def _check_output_sizes(
        self,
        rgb: tuple[int, ...],
        rgb_expected: tuple[int, ...],
        mask_src: tuple[int, ...],
        mask_dst: tuple[int, ...],
        mask_expected: tuple[int, ...],
    ) -> None:
        """DflError naming the model when a batch's outputs are not (n, *expected)."""
        for role, shape, expected in (("rgb", rgb, rgb_expected), ("mask_src", mask_src, mask_expected),
                                      ("mask_dst", mask_dst, mask_expected)):
            if tuple(shape[1:]) != expected:
                raise DflError(
                    f"{self.info.path}: declares resolution {self.info.resolution}, so its {role} output should be "
                    f"(N, {', '.join(map(str, expected))}), but it returned {tuple(shape)}; export the model again"
                )

    def _batched(self, faces: Any, run: Callable[[Any], Any]) -> list:
        """``run`` over consecutive slices of ``faces`` (numpy array or tensor), shrinking the batch on GPU OOM."""
        results = []
        start = 0
        while start < len(faces):
            batch = faces[start : start + self.max_batch]
            try:
                results.append(run(batch))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                self._shrink_batch(len(batch))
                continue
            start += len(batch)
        return results

    def _shrink_batch(self, failed: int) -> None:
        name = self.info.path.name
        if failed <= 1:
            raise DflError(
                f"GPU out of memory running {name} at batch 1: "
                "free GPU memory or use --backend onnxruntime --device cpu"
            ) from None
        self.max_batch = max(1, min(self.max_batch, failed) // 2)
        self._release_memory()
        log.warning("GPU out of memory running %s at batch %d; retrying at batch %d", name, failed, self.max_batch)
