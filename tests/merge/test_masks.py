"""Mask-mode expressions and DeepFaceLab's erode/blur units converted to plate pixels."""

import numpy as np
import pytest

from dfl_vfx.errors import DflError
from dfl_vfx.merge.masks import (
    clip_to_predicted_area,
    combine_masks,
    opencv_gaussian_sigma,
    parse_mask_mode,
    plate_blur_sigma,
    plate_erode_radius,
)

PRD = np.array([[0.2, 1.0], [0.5, 0.0]], np.float32)
DST = np.array([[0.5, 0.5], [1.0, 0.9]], np.float32)
HULL = np.array([[1.0, 1.0], [0.0, 1.0]], np.float32)
MASKS = {"learned-prd": PRD, "learned-dst": DST, "hull": HULL}


def test_products_sums_and_dfl_numbers() -> None:
    np.testing.assert_allclose(combine_masks("learned-prd*learned-dst", MASKS), PRD * DST)
    np.testing.assert_allclose(combine_masks("learned-prd+learned-dst", MASKS), np.clip(PRD + DST, 0, 1))
    np.testing.assert_allclose(combine_masks("hull*learned-dst+learned-prd", MASKS), np.clip(HULL * DST + PRD, 0, 1))
    np.testing.assert_allclose(combine_masks("4", MASKS), PRD * DST)  # DeepFaceLab's default mode number
    np.testing.assert_allclose(combine_masks("1", MASKS), HULL)
    np.testing.assert_allclose(combine_masks("full", MASKS), np.ones((2, 2)))
    assert parse_mask_mode("5") == [["learned-prd"], ["learned-dst"]]


def test_unknown_and_xseg_masks_are_clear_errors() -> None:
    with pytest.raises(DflError, match="mask_mode hull\\*eyes: unknown mask 'eyes'"):
        parse_mask_mode("hull*eyes")
    with pytest.raises(DflError, match="XSeg"):
        parse_mask_mode("xseg-prd")


def test_erode_and_blur_are_relative_to_the_face_size() -> None:
    # A face whose aligned 256 px crop spans 512 plate px: 1 aligned px = 2 plate px, 1 processing px = 0.5.
    matrix = np.array([[0.5, 0.0, -100.0], [0.0, 0.5, -50.0]])
    assert plate_erode_radius(40, matrix) == pytest.approx(40 / 2 * 0.5)
    assert plate_erode_radius(-40, matrix) == pytest.approx(-10.0)
    assert plate_blur_sigma(51, matrix) == pytest.approx(opencv_gaussian_sigma(51) * 0.5)
    assert plate_blur_sigma(50, matrix) == pytest.approx(opencv_gaussian_sigma(51) * 0.5)  # odd kernel, as DFL
    assert plate_blur_sigma(0, matrix) == 0.0
    rotated = np.array([[0.0, -0.5, 0.0], [0.5, 0.0, 0.0]])  # same scale, rotated 90 degrees
    assert plate_erode_radius(40, rotated) == pytest.approx(10.0)
    assert opencv_gaussian_sigma(3) == pytest.approx(0.8)


def test_clip_keeps_room_for_dilation_and_blur() -> None:
    mask = np.ones((64, 64), np.float32)
    clipped = clip_to_predicted_area(mask, erode=-16, blur=16)  # margin (8 + 8) / 4 = 4 aligned px
    assert clipped[4:60, 4:60].min() == 1.0 and clipped[:4].max() == 0.0 and clipped[:, 60:].max() == 0.0
    assert np.array_equal(clip_to_predicted_area(mask, erode=10, blur=0), mask)


def test_masks_combine_the_same_on_torch_tensors() -> None:
    import torch

    tensors = {name: torch.from_numpy(mask) for name, mask in MASKS.items()}
    for mode in ("4", "5", "hull*learned-dst+learned-prd", "full"):
        np.testing.assert_allclose(combine_masks(mode, tensors).numpy(), combine_masks(mode, MASKS), atol=1e-7)
    square = torch.ones(64, 64)
    np.testing.assert_array_equal(clip_to_predicted_area(square, -16, 16).numpy(),
                                  clip_to_predicted_area(square.numpy(), -16, 16))
