"""Loads the compiled native core and its CUDA kernels, or reports why they are missing (pure-Python paths serve)."""

from __future__ import annotations

import functools

try:
    from dfl_vfx import _native
except ImportError:  # pragma: no cover - exercised only on a broken install
    _native = None

try:
    from dfl_vfx import _native_cuda
except ImportError:  # built only where nvcc was found (setup.py)
    _native_cuda = None


def available() -> bool:
    """True when the compiled module imported."""
    return _native is not None


def build_info() -> dict[str, object]:
    """Compiler and CUDA facts of the native build; {} when it is not built."""
    return dict(_native.build_info()) if _native is not None else {}


def cuda_compiled() -> bool:
    """True when the CUDA kernels (dfl_vfx._native_cuda) were built and imported."""
    return _native_cuda is not None


@functools.cache
def cuda_unavailable_reason() -> str | None:
    """None when the CUDA kernels can run; else why not (not built, no driver, no device).

    The first call initialises the CUDA driver in this process (as torch.cuda does on first use).
    """
    if _native_cuda is None:
        return "dfl_vfx was built without CUDA kernels (nvcc not found or DFL_WITH_CUDA=0)"
    try:
        count = _native_cuda.device_count()
    except RuntimeError as error:  # e.g. cudaErrorInsufficientDriver / cudaErrorNoDevice
        return f"no usable NVIDIA GPU: {error}"
    return None if count > 0 else "no NVIDIA GPU found"


def cuda_available() -> bool:
    """True when the CUDA kernels are compiled and a CUDA device is usable."""
    return cuda_unavailable_reason() is None


def cuda_build_info() -> dict[str, object]:
    """nvcc and CUDA runtime versions and GPU architectures of the CUDA build; {} when it is not built."""
    return dict(_native_cuda.build_info()) if _native_cuda is not None else {}
