"""Face detection backends: the registry, `create_backend`, `backend_help` and the shared interface."""

from __future__ import annotations

from typing import Any

from dfl_vfx.errors import DflError
from dfl_vfx.face.detect.base import (
    AUTO,
    BackendOption,
    DetectedFace,
    FaceBackend,
    auto_min_face,
    detection_plan,
    find_faces,
)
from dfl_vfx.face.detect.dlib_backend import DlibBackend
from dfl_vfx.face.detect.onnx_backend import OnnxBackend

__all__ = [
    "AUTO",
    "BACKENDS",
    "BackendOption",
    "DetectedFace",
    "DlibBackend",
    "FaceBackend",
    "OnnxBackend",
    "backend_help",
    "auto_min_face",
    "create_backend",
    "detection_plan",
    "find_faces",
]

BACKENDS: dict[str, type[FaceBackend]] = {"dlib": DlibBackend, "onnx": OnnxBackend}


def create_backend(name: str, **options: Any) -> FaceBackend:
    """The backend registered as `name`, configured with `options` (validated by the backend)."""
    if name not in BACKENDS:
        raise DflError(f"unknown face backend '{name}'; available: {', '.join(BACKENDS)}")
    return BACKENDS[name](**options)


def backend_help() -> str:
    """A text table of every backend and its options, for `--help`."""
    lines = ["Face backends and their options:"]
    for name, backend in BACKENDS.items():
        lines.append(f"  {name:<8} {backend.description}")
        width = max((len(key) for key in backend.options), default=0)
        for key, option in backend.options.items():
            default = repr(round(option.default, 4)) if isinstance(option.default, float) else repr(option.default)
            choices = f" [{' | '.join(str(c) for c in option.choices)}]" if option.choices else ""
            lines.append(f"      {key:<{width}}  default {default}{choices}: {option.help}")
    return "\n".join(lines)
