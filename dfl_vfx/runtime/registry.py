"""Backend registry and :func:`load_runtime`: pick the device and backend for a model and open it.

Automatic choices: the device is ``cuda:0`` when PyTorch sees a GPU, else ``cpu``. Exported files (``.onnx``,
``.dfm``) run on TensorRT when it is installed and the device is a GPU, else on ONNX Runtime (with its CUDA
provider on a GPU, or on the CPU when this onnxruntime build has no CUDA provider); trained model folders run on
PyTorch. An explicit choice that cannot work is a one-line DflError naming ``--backend`` or ``--device``.
"""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import torch

from dfl_vfx.errors import DflError
from dfl_vfx.runtime.base import SwapRuntime, parse_device
from dfl_vfx.runtime.model_file import KIND_CHECKPOINT, ModelInfo, inspect_model
from dfl_vfx.runtime.onnxruntime_backend import CUDA_EP, TENSORRT_EP, OnnxRuntimeBackend
from dfl_vfx.runtime.tensorrt_backend import NOT_INSTALLED, TensorRTBackend, onnx_precision, tensorrt_available
from dfl_vfx.runtime.torch_backend import TorchBackend

BACKENDS: dict[str, type[SwapRuntime]] = {
    "onnxruntime": OnnxRuntimeBackend,
    "tensorrt": TensorRTBackend,
    "torch": TorchBackend,
}
TRT_CACHE_DIR = ".trt_cache"


def available_backends() -> list[str]:
    """Backends that can run on this machine (TensorRT needs the package and a CUDA GPU)."""
    usable = {"onnxruntime": True, "tensorrt": tensorrt_available() and torch.cuda.is_available(), "torch": True}
    return [name for name in BACKENDS if usable[name]]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:0`` or ``cpu``; an explicit GPU must exist."""
    if device.strip().lower() == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    kind, index = parse_device(device)
    if kind == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise DflError(f"--device {device}: PyTorch sees no CUDA GPU on this machine; use --device cpu")
    if index >= torch.cuda.device_count():
        raise DflError(f"--device {device}: only {torch.cuda.device_count()} GPU(s) here; use cuda:0 or --device cpu")
    return f"cuda:{index}"


def resolve_backend(info: ModelInfo, backend: str, device: str) -> str:
    """The backend to use for ``info`` on the resolved ``device``; DflError when an explicit one cannot work."""
    name = backend.strip().lower()
    folder = info.kind == KIND_CHECKPOINT
    if name == "auto":
        if folder:
            return "torch"
        return "tensorrt" if device != "cpu" and tensorrt_available() else "onnxruntime"
    if name not in BACKENDS:
        raise DflError(f"--backend {backend!r} is unknown; use auto, {', '.join(BACKENDS)}")
    if folder and name != "torch":
        raise DflError(
            f"--backend {name} cannot run the model folder {info.path}: export it first with "
            f"`dfl-vfx export {info.path} --out NAME.onnx`, or use --backend torch"
        )
    if not folder and name == "torch":
        raise DflError(f"--backend torch runs trained model folders only, not {info.path.name}; use --backend "
                       "onnxruntime")
    if name == "tensorrt":
        if not tensorrt_available():
            raise DflError(NOT_INSTALLED)
        if device == "cpu":
            raise DflError("--backend tensorrt needs an NVIDIA GPU: use --device cuda:N, or --backend onnxruntime "
                           "with --device cpu")
    return name


def _ort_has_gpu() -> bool:
    return bool({CUDA_EP, TENSORRT_EP} & set(ort.get_available_providers()))


def load_runtime(
    model: str | Path,
    backend: str = "auto",
    device: str = "auto",
    max_batch: int = 8,
    threads: int = 0,
    cache_dir: str | Path | None = None,
) -> SwapRuntime:
    """Open ``model`` (``.onnx``, ``.dfm`` or a trained model folder) for inference; see the module docstring.

    ``cache_dir`` holds TensorRT engines and timing caches (default ``<model's folder>/.trt_cache``);
    ``threads`` sets ONNX Runtime's intra-op threads (0: its default).
    """
    resolved_device = resolve_device(device)
    info = inspect_model(model)
    name = resolve_backend(info, backend, resolved_device)
    if name == "onnxruntime" and device.strip().lower() == "auto" and not _ort_has_gpu():
        resolved_device = "cpu"  # a GPU, but the CPU build of onnxruntime: an automatic choice falls back quietly
    cache = Path(cache_dir) if cache_dir is not None else info.path.parent / TRT_CACHE_DIR
    if name == "torch":
        return TorchBackend(info, resolved_device, max_batch)
    if name == "tensorrt":
        return TensorRTBackend(info, resolved_device, max_batch, cache, precision=onnx_precision(info.path))
    return OnnxRuntimeBackend(info, resolved_device, max_batch, threads=threads, cache_dir=cache)
