"""Swap fixtures: an identity runtime that echoes its input (the exported tiny model is in tests/conftest.py)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@dataclass(frozen=True)
class EchoInfo:
    path: Path
    resolution: int = 64
    face_type: str | None = "f"
    input_space: str = "working"
    sha256: str = "echo"
    kind: str = "echo"


class EchoRuntime:
    """Predicts the destination face itself with full masks: an identity swap, to check geometry and colour."""

    backend_name = "echo"
    device = "cpu"

    def __init__(self, resolution: int = 64, face_type: str = "f", mask_value: float = 1.0) -> None:
        self.info = EchoInfo(Path("echo.onnx"), resolution, face_type)
        self.mask_value = mask_value
        self.calls: list[int] = []

    def predict(self, faces: np.ndarray):
        from dfl_vfx.runtime import Prediction

        self.calls.append(len(faces))
        masks = np.full(faces.shape[:3], self.mask_value, np.float32)
        return Prediction(rgb=faces.astype(np.float32).copy(), mask_src=masks, mask_dst=masks.copy())


@pytest.fixture()
def make_echo():
    """EchoRuntime factory: ``make_echo(resolution)``."""
    return EchoRuntime
