"""Plate <-> model space in torch agrees with OpenColorIO where it applies, and declines where it does not."""

import numpy as np
import pytest
import torch

from dfl_vfx.color.ocio import SRGB_SPACE, ColorTransform
from dfl_vfx.color.torch_color import TorchWorkingSpace

SAMPLES = np.concatenate([np.linspace(-0.02, 1.0, 90).reshape(30, 3), np.linspace(1.0, 50.0, 30).reshape(10, 3)])


@pytest.mark.parametrize("plate", ["ACEScg", "Linear Rec.709 (sRGB)", "ACES2065-1"])
@pytest.mark.parametrize("model", ["ACEScct", SRGB_SPACE])
def test_linear_plates_match_opencolorio(plate: str, model: str) -> None:
    space = TorchWorkingSpace.from_ocio(plate, model)
    assert space is not None
    samples = SAMPLES.astype(np.float32)
    expected = ColorTransform(plate, model)(samples)
    ours = space.to_working(torch.from_numpy(samples)).numpy()
    np.testing.assert_allclose(ours, expected, atol=5e-4)
    back = space.from_working(torch.from_numpy(expected)).numpy()
    np.testing.assert_allclose(back, samples, rtol=2e-3, atol=1e-4)  # above 1 survives the round trip


@pytest.mark.parametrize("plate", ["ACEScct", SRGB_SPACE])
def test_encoded_plates_are_declined(plate: str) -> None:
    assert TorchWorkingSpace.from_ocio(plate, "ACEScct") is None


def test_a_model_space_without_a_known_curve_is_declined() -> None:
    assert TorchWorkingSpace.from_ocio("ACEScg", "ACEScc") is None
