"""Plate <-> model-space conversion as torch ops, for faces that stay on the GPU.

OpenColorIO has no CUDA processor, so the GPU swap path needs the conversion in torch. That is exact for the common
case: a scene-linear plate (ACEScg, linear Rec.709, ...) is a 3x3 matrix away from the primaries the model's curve
encodes (ACEScct encodes ACEScg; the sRGB curve encodes linear Rec.709). :meth:`TorchWorkingSpace.from_ocio` reads
the matrix from OpenColorIO, checks that the transform really is that matrix followed by the curve, and returns None
when it is not (a log or display-referred plate): the caller then converts on the host with OpenColorIO.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from dfl_vfx.color.ocio import ColorTransform, load_config, resolve_colorspace
from dfl_vfx.color.torch_curves import (
    acescct_to_linear,
    apply_matrix,
    linear_to_acescct,
    srgb_eotf,
    srgb_inverse_eotf,
)

# model (encoded) space -> (the linear space its curve encodes, encode, decode)
CURVES: dict[str, tuple[str, Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "ACEScct": ("ACEScg", linear_to_acescct, acescct_to_linear),
    "sRGB Encoded Rec.709 (sRGB)": ("Linear Rec.709 (sRGB)", srgb_inverse_eotf, srgb_eotf),
}
MATRIX_TOLERANCE = 1e-4  # relative: the plate -> linear transform must be this close to a matrix
CURVE_TOLERANCE = 5e-4  # absolute, in the model space, against OpenColorIO over -0.05..60 scene-linear


def _samples() -> np.ndarray:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-0.05, 1.0, (256, 3)), rng.uniform(0.0, 60.0, (64, 3)),
                             np.eye(3), np.full((1, 3), 0.18)])
    return values.astype(np.float32)


@dataclass(frozen=True)
class TorchWorkingSpace:
    """plate RGB -> model space as ``encode(M @ rgb)`` and back, channels last, any device."""

    matrix: np.ndarray  # plate linear -> the curve's linear primaries
    inverse: np.ndarray
    encode: Callable[[Tensor], Tensor]
    decode: Callable[[Tensor], Tensor]

    def to_working(self, rgb: Tensor) -> Tensor:
        return self.encode(apply_matrix(rgb, self.matrix))

    def from_working(self, rgb: Tensor) -> Tensor:
        return apply_matrix(self.decode(rgb), self.inverse)

    @classmethod
    def from_ocio(cls, plate_space: str, model_space: str, config_src: str | None = None) -> TorchWorkingSpace | None:
        """The torch form of OpenColorIO's plate -> model transform, or None when it is not matrix + curve."""
        config = load_config(config_src)
        model = resolve_colorspace(model_space, config)
        if model not in CURVES:
            return None
        linear_name, encode, decode = CURVES[model]
        to_linear = ColorTransform(plate_space, resolve_colorspace(linear_name, config), config)
        matrix = to_linear(np.eye(3, dtype=np.float32)).T.astype(np.float64)
        samples = _samples()
        expected = to_linear(samples)
        with np.errstate(invalid="ignore", over="ignore"):  # encoded plates can give NaN here: declined below
            error = np.abs(samples @ matrix.T - expected) / (np.abs(expected) + 1e-3)
        if not np.all(np.isfinite(error)) or error.max() > MATRIX_TOLERANCE or abs(np.linalg.det(matrix)) < 1e-8:
            return None
        candidate = cls(matrix, np.linalg.inv(matrix), encode, decode)
        import torch

        reference = ColorTransform(plate_space, model, config)(samples)
        ours = candidate.to_working(torch.from_numpy(samples)).numpy()
        if not np.allclose(ours, reference, atol=CURVE_TOLERANCE, rtol=0.0):
            return None
        return candidate
